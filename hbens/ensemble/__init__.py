"""Ensembles: hard, weighted and class-wise votes on runs; soft means of probability maps over their crops."""

from hbens.ensemble.fuse import (
    FuseItem,
    FuseStats,
    classwise_rules,
    describe_fuse,
    fuse_csvs,
    fuse_image,
    hard_rules,
    parse_pick,
    read_class_weights,
)
from hbens.ensemble.soft import (
    HardRule,
    SoftFuseItem,
    SoftRule,
    classwise_soft_rules,
    fuse_inputs,
    fuse_stores_image,
    hard_store_rules,
    soft_fuse_image,
    soft_rules,
)
from hbens.ensemble.vote import VoteRule, hard_vote, vote_strings

__all__ = [
    "FuseItem",
    "FuseStats",
    "HardRule",
    "SoftFuseItem",
    "SoftRule",
    "VoteRule",
    "classwise_rules",
    "classwise_soft_rules",
    "describe_fuse",
    "fuse_csvs",
    "fuse_image",
    "fuse_inputs",
    "fuse_stores_image",
    "hard_store_rules",
    "hard_rules",
    "hard_vote",
    "parse_pick",
    "read_class_weights",
    "soft_fuse_image",
    "soft_rules",
    "vote_strings",
]

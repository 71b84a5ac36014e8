"""Ensembles of submissions: hard, weighted and class-wise votes computed on runs."""

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
from hbens.ensemble.vote import VoteRule, hard_vote, vote_strings

__all__ = [
    "FuseItem",
    "FuseStats",
    "VoteRule",
    "classwise_rules",
    "describe_fuse",
    "fuse_csvs",
    "fuse_image",
    "hard_rules",
    "hard_vote",
    "parse_pick",
    "read_class_weights",
    "vote_strings",
]

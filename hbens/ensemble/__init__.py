"""Ensembles of submissions: hard, weighted and class-wise votes computed on runs."""

from hbens.ensemble.fuse import FuseSummary, classwise_rules, fuse_csvs, hard_rules, parse_pick, read_class_weights
from hbens.ensemble.vote import VoteRule, hard_vote, vote_strings

__all__ = [
    "FuseSummary",
    "VoteRule",
    "classwise_rules",
    "fuse_csvs",
    "hard_rules",
    "hard_vote",
    "parse_pick",
    "read_class_weights",
    "vote_strings",
]

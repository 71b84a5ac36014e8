"""Ensembles of submissions: hard, weighted and class-wise votes computed on runs."""

from hbens.ensemble.vote import VoteRule, hard_vote, vote_strings

__all__ = ["VoteRule", "hard_vote", "vote_strings"]

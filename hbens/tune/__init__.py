"""Tuning of per-class recipes on images with ground truth (``hbens tune``).

:mod:`~hbens.tune.histograms` gives the Dice of every threshold of a stored class crop at once,
:mod:`~hbens.tune.search` chooses thresholds and members and guards each choice by
cross-validation, and :mod:`~hbens.tune.recipe` writes and reads the resulting recipe.
"""

from hbens.tune.histograms import dice_curve, level_of, threshold_histograms
from hbens.tune.recipe import ClassRecipe, ClassScores, Recipe, RecipeInput, read_recipe, write_recipe
from hbens.tune.search import (
    GuardResult,
    Members,
    best_candidate,
    coarse_to_fine_threshold,
    greedy_members,
    guarded_choice,
    kfold_indices,
)

__all__ = [
    "ClassRecipe",
    "ClassScores",
    "GuardResult",
    "Members",
    "Recipe",
    "RecipeInput",
    "best_candidate",
    "coarse_to_fine_threshold",
    "dice_curve",
    "greedy_members",
    "guarded_choice",
    "kfold_indices",
    "level_of",
    "read_recipe",
    "threshold_histograms",
    "write_recipe",
]

"""Tuning of per-class recipes on images with ground truth (``hbens tune``), and their use (``hbens apply``).

:mod:`~hbens.tune.histograms` gives the Dice of every threshold of a stored or fused class crop at
once, :mod:`~hbens.tune.search` chooses thresholds and members and guards each choice by
cross-validation, :mod:`~hbens.tune.evaluate` scores the candidates image by image,
:mod:`~hbens.tune.tuning` runs the guarded steps (:func:`tune_inputs`), :mod:`~hbens.tune.recipe`
writes and reads the resulting recipe and :mod:`~hbens.tune.apply` runs it on test predictions
(:func:`apply_recipe`).
"""

from hbens.tune.apply import apply_recipe
from hbens.tune.histograms import dice_curve, grid_dice, grid_histograms, level_of, threshold_histograms
from hbens.tune.recipe import ClassRecipe, ClassScores, Recipe, RecipeInput, read_recipe, write_recipe
from hbens.tune.report import describe_tuning
from hbens.tune.search import (
    GuardResult,
    Members,
    best_candidate,
    coarse_to_fine_threshold,
    greedy_members,
    guarded_choice,
    kfold_indices,
)
from hbens.tune.tuning import STEPS, TuneResult, tune_inputs

__all__ = [
    "ClassRecipe",
    "ClassScores",
    "GuardResult",
    "Members",
    "Recipe",
    "RecipeInput",
    "STEPS",
    "TuneResult",
    "apply_recipe",
    "best_candidate",
    "coarse_to_fine_threshold",
    "describe_tuning",
    "dice_curve",
    "greedy_members",
    "grid_dice",
    "grid_histograms",
    "guarded_choice",
    "kfold_indices",
    "level_of",
    "read_recipe",
    "threshold_histograms",
    "tune_inputs",
    "write_recipe",
]

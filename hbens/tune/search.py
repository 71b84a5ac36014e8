"""Choices made on per-image Dice, and the cross-validated guard that decides whether to keep them.

Every search here maximises a mean Dice over images (the competition's score of one class).
A candidate replaces an earlier or simpler one only when it is better by more than
:data:`TOLERANCE`, so float noise in sums never decides.  :func:`guarded_choice` fits a choice
on some folds and scores it on the held-out one: a class moves away from its baseline only when
that out-of-fold Dice improves, not when the choice merely fits the images it was made on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np

from hbens.errors import HbensError
from hbens.tune.histograms import LEVELS, level_of

TOLERANCE = 1e-9
"""Mean-Dice margin by which a candidate must beat the one before it."""

Choice = TypeVar("Choice")


def _first_best(scores: Sequence[float]) -> int:
    """Index of the first score within :data:`TOLERANCE` of the best."""
    scores = np.asarray(scores, np.float64)
    return int(np.flatnonzero(scores >= scores.max() - TOLERANCE)[0])


def best_candidate(dice: np.ndarray) -> int:
    """The candidate with the best mean Dice over images; ties go to the earlier candidate.

    Order candidates from simplest to most elaborate so that a tie keeps the simpler one.

    Parameters
    ----------
    dice : (images, candidates) array
        Per-image Dice of each candidate.

    Returns
    -------
    int
        The column of the chosen candidate.

    Example
    -------
    >>> best_candidate(np.array([[0.9, 0.8, 0.95], [0.7, 0.9, 0.75]]))  # means 0.8, 0.85, 0.85
    1
    """
    dice = np.asarray(dice, np.float64)
    if dice.ndim != 2 or dice.shape[0] == 0 or dice.shape[1] == 0:
        raise ValueError(f"expected a non-empty (images, candidates) array, got shape {dice.shape}")
    return _first_best(dice.mean(axis=0))


def coarse_to_fine_threshold(
    curves: np.ndarray,
    *,
    coarse_step: float = 0.05,
    fine_step: float = 0.01,
    thresholds: Sequence[float] | None = None,
) -> float:
    """The threshold with the best mean Dice over images, searched coarse then fine.

    The coarse grid is the multiples of ``coarse_step`` strictly inside (0, 1) (0.05..0.95 by default);
    ties there go to the threshold closest to 0.5, the usual default.  The fine grid is the
    multiples of ``fine_step`` away from the best coarse threshold by less than one coarse step;
    a fine threshold replaces the coarse one only when strictly better (ties: the closest).
    Thresholds are rounded to 10 decimals, so 0.3 + 0.01 is written as 0.31.

    Parameters
    ----------
    curves : (images, 256) array, or (images, len(thresholds))
        Per-image Dice of ``stored > t`` (:func:`hbens.tune.histograms.dice_curve`), or, with
        ``thresholds``, per-image Dice at each of ``thresholds``.
    coarse_step, fine_step : float
        Grid steps, with ``0 < fine_step <= coarse_step < 1``.
    thresholds : sequence of float, optional
        The threshold of each column of ``curves``; it must hold every threshold of both grids
        (:data:`hbens.tune.histograms.GRID` does for the default steps).

    Returns
    -------
    float
        The chosen threshold; its per-image Dice is ``curves[:, level_of(threshold)]`` (or the
        column of ``thresholds`` holding it).

    Example
    -------
    >>> peak = 1.0 - np.abs(np.arange(256) / 255 - 0.33)
    >>> coarse_to_fine_threshold(peak[None, :])
    0.33
    """
    curves = np.asarray(curves, np.float64)
    width = LEVELS if thresholds is None else len(thresholds)
    if curves.ndim != 2 or curves.shape[0] == 0 or curves.shape[1] != width:
        raise ValueError(f"expected a non-empty (images, {width}) array of Dice curves, "
                         f"got shape {curves.shape}")
    if not 0.0 < fine_step <= coarse_step < 1.0:
        raise ValueError(f"expected 0 < fine_step <= coarse_step < 1, got {fine_step} and {coarse_step}")
    column = level_of if thresholds is None else _columns(thresholds)
    mean = curves.mean(axis=0)
    grid = [round(k * coarse_step, 10) for k in range(1, int(np.ceil(1.0 / coarse_step)))]
    grid = sorted((t for t in grid if 0.0 < t < 1.0), key=lambda t: (abs(t - 0.5), t))
    best = grid[_first_best([mean[column(t)] for t in grid])]
    reach = int(np.ceil(coarse_step / fine_step - 1e-9)) - 1
    fine = [round(best + k * fine_step, 10) for k in range(-reach, reach + 1)]
    fine = sorted((t for t in fine if 0.0 <= t <= 1.0), key=lambda t: (abs(t - best), t))
    return fine[_first_best([mean[column(t)] for t in fine])]


def _columns(thresholds: Sequence[float]) -> Callable[[float], int]:
    """The column of each threshold (rounded to 10 decimals) in ``thresholds``; ValueError if absent."""
    index = {round(float(t), 10): j for j, t in enumerate(thresholds)}

    def column(threshold: float) -> int:
        if threshold not in index:
            raise ValueError(f"threshold {threshold} is not among the thresholds of the curves' columns")
        return index[threshold]

    return column


@dataclass(frozen=True)
class Members:
    """Inputs fused for one class, their weights, and the objective they reached."""

    members: tuple[int, ...]
    weights: tuple[float, ...]
    score: float


def greedy_members(
    score_fn: Callable[[tuple[int, ...], tuple[float, ...]], float],
    n_inputs: int,
    *,
    weight_grid: Sequence[float] = (1, 2, 3),
    max_members: int | None = None,
) -> Members:
    """Greedy forward selection of the inputs to fuse, and of their weights.

    Start from the best single input (weight 1); then, while it helps and fewer than
    ``max_members`` are fused, add the one input and weight from ``weight_grid`` that improve the
    objective most (a ``score_fn`` may return ``-inf`` for a fusion it cannot make).  Stop as soon as no addition
    improves it by more than :data:`TOLERANCE`, so an input that adds nothing is never taken.
    Ties go to the lower input index, then to the earlier weight in the grid.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(members, weights) -> float``: the objective (mean Dice over the images at
        hand) of fusing ``members`` with ``weights``.
    n_inputs : int
        Number of inputs, numbered 0..n_inputs-1.
    weight_grid : sequence of float
        Weights tried for each added input (all > 0).
    max_members : int, optional
        Most inputs fused (default: all of them).

    Returns
    -------
    Members
        The chosen inputs in the order they were added, their weights and the objective.

    Example
    -------
    >>> quality = [0.6, 0.9, 0.1]
    >>> greedy_members(lambda m, w: max(quality[i] for i in m) + 0.01 * (0 in m), 3)
    Members(members=(1, 0), weights=(1, 1), score=0.91)
    """
    if n_inputs < 1:
        raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
    if not weight_grid or min(weight_grid) <= 0:
        raise ValueError(f"weight_grid must hold weights > 0, got {tuple(weight_grid)}")
    if max_members is not None and max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    most = n_inputs if max_members is None else min(max_members, n_inputs)
    singles = [score_fn((i,), (1,)) for i in range(n_inputs)]
    first = _first_best(singles)
    members, weights, score = (first,), (1,), float(singles[first])
    while len(members) < most:
        trials = [(members + (i,), weights + (w,))
                  for i in range(n_inputs) if i not in members for w in weight_grid]
        scores = [score_fn(m, w) for m, w in trials]
        best = _first_best(scores)
        if scores[best] <= score + TOLERANCE:
            break
        (members, weights), score = trials[best], float(scores[best])
    return Members(members, weights, score)


def kfold_indices(n_images: int, folds: int, *, seed: int) -> list[np.ndarray]:
    """Split images 0..n_images-1 into ``folds`` held-out sets, the same for the same seed.

    The images are shuffled by ``numpy.random.default_rng(seed)`` and cut into folds whose sizes
    differ by at most one; each fold's indices are sorted.

    Parameters
    ----------
    n_images : int
        Number of images.
    folds : int
        Number of folds, 2..n_images.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of int64 arrays
        The held-out images of each fold; together they hold every image once.

    Example
    -------
    >>> [fold.tolist() for fold in kfold_indices(5, 2, seed=0)]
    [[2, 3, 4], [0, 1]]
    """
    if folds < 2:
        raise HbensError(f"--folds {folds}: cross-validation needs at least 2 folds")
    if n_images < folds:
        raise HbensError(f"--folds {folds}: needs at least {folds} images with ground truth, got {n_images}")
    order = np.random.default_rng(seed).permutation(n_images)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, folds)]


@dataclass(frozen=True)
class GuardResult(Generic[Choice]):
    """The outcome of :func:`guarded_choice` for one class (Dice values are means over images).

    ``choice`` is fitted on all images; it should replace the baseline only when ``accepted``.
    ``held_out`` holds each image's Dice from the fold that held it out (the baseline of a
    further step made on top of this one).
    """

    choice: Choice
    accepted: bool
    baseline: float
    in_sample: float
    out_of_fold: float
    held_out: np.ndarray = field(repr=False, compare=False)


def guarded_choice(
    baseline: np.ndarray,
    fit: Callable[[np.ndarray], Choice],
    score: Callable[[Choice, np.ndarray], np.ndarray],
    folds: Sequence[np.ndarray],
) -> GuardResult[Choice]:
    """Cross-validate a tuning step and accept it only if it beats the baseline out of fold.

    For each fold, the choice is fitted on the other folds and scored on the held-out images;
    the held-out Dice of all folds together give the out-of-fold mean.  The choice refitted on
    all images is accepted when that mean beats the baseline's by more than :data:`TOLERANCE`.
    The in-sample mean (the refit scored on the images it was fitted on) is reported, never
    used to decide: it rewards choices that only fit the tuning images.

    Parameters
    ----------
    baseline : (images,) array
        Per-image Dice of the untuned setting (it is not fitted, so it needs no folds).
    fit : callable
        ``fit(train_indices) -> choice``, a choice made on those images only.
    score : callable
        ``score(choice, indices) -> (len(indices),) array``, the per-image Dice of a choice.
    folds : sequence of int arrays
        Held-out images of each fold (:func:`kfold_indices`), together every image once.

    Returns
    -------
    GuardResult
        The refit choice, whether it is accepted, and the baseline, in-sample and out-of-fold
        mean Dice.

    Example
    -------
    >>> dice = np.array([[0.8, 0.9], [0.7, 0.8], [0.9, 0.95], [0.6, 0.7]])
    >>> result = guarded_choice(dice[:, 0], lambda train: best_candidate(dice[train]),
    ...                         lambda c, idx: dice[idx, c], kfold_indices(4, 2, seed=0))
    >>> result.choice, result.accepted, round(result.out_of_fold, 4)
    (1, True, 0.8375)
    """
    baseline = np.asarray(baseline, np.float64)
    n_images = baseline.size
    if baseline.ndim != 1 or n_images == 0:
        raise ValueError(f"expected a non-empty (images,) array of baseline Dice, got shape {baseline.shape}")
    held = np.sort(np.concatenate([np.asarray(fold, np.int64) for fold in folds] or [np.empty(0, np.int64)]))
    if len(folds) < 2 or not np.array_equal(held, np.arange(n_images)):
        raise ValueError(f"folds must split the {n_images} images into at least 2 held-out sets, "
                         "each image once")
    everyone = np.arange(n_images)
    out_of_fold = np.empty(n_images, np.float64)
    for fold in folds:
        fold = np.asarray(fold, np.int64)
        out_of_fold[fold] = _scored(score, fit(np.setdiff1d(everyone, fold)), fold)
    choice = fit(everyone)
    in_sample = _scored(score, choice, everyone).mean()
    accepted = bool(out_of_fold.mean() > baseline.mean() + TOLERANCE)
    return GuardResult(choice, accepted, float(baseline.mean()), float(in_sample), float(out_of_fold.mean()),
                       out_of_fold)


def _scored(
    score: Callable[[Choice, np.ndarray], np.ndarray], choice: Choice, indices: np.ndarray
) -> np.ndarray:
    """``score(choice, indices)`` as a float64 array, checked to hold one Dice per image."""
    values = np.asarray(score(choice, indices), np.float64)
    if values.shape != indices.shape:
        raise ValueError(f"score returned shape {values.shape} for {indices.size} images")
    return values

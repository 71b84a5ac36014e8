"""Dice of every threshold at once, from histograms of probabilities inside and outside the truth.

A uint8 store keeps ``round(p * 255)`` over a class's crop (see :mod:`hbens.maps.probabilities`).
Thresholding ``stored / 255 > threshold`` can only give 256 different masks, ``stored > t``
for ``t = 0..255``, so counting the stored values inside and outside the ground truth once
gives the Dice of every threshold by cumulative sums: one pass over the crop per (image, class)
instead of one pass per threshold.

Fused probabilities (a weighted mean of several maps) take other values than ``k / 255``; for
them :func:`grid_histograms` counts float32 values by how many thresholds of :data:`GRID` they
exceed, compared as every hbens output compares (float32 value against float32 threshold), so
:func:`grid_dice` is the Dice of exactly the masks ``fused > threshold`` for each threshold of
the grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LEVELS = 256
"""Number of distinct uint8 stored values, and so of distinct thresholded masks."""

_DEQUANTIZED = np.arange(LEVELS, dtype=np.float32) / np.float32(255.0)
"""The probability each stored value reads back as (:func:`hbens.maps.probabilities.dequantize`)."""

GRID = np.round(np.arange(101) * 0.01, 10)
"""The thresholds 0.00, 0.01, ..., 1.00 of :func:`grid_histograms`: both grids of
:func:`hbens.tune.search.coarse_to_fine_threshold` with its default steps."""

_GRID32 = GRID.astype(np.float32)


@njit(cache=True, nogil=True)
def _count(stored, truth, inside, outside):
    """Add each stored value to ``inside`` or ``outside`` by the truth pixel at the same place."""
    for k in range(stored.size):
        if truth[k]:
            inside[stored[k]] += 1
        else:
            outside[stored[k]] += 1


def threshold_histograms(
    stored: np.ndarray, truth: np.ndarray, *, truth_outside: int
) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of one (image, class)'s stored values inside and outside the ground truth.

    Pixels outside the stored crop read back as 0, which no threshold turns on: they matter to
    Dice only where they are ground truth, and those ``truth_outside`` pixels are counted in
    ``inside[0]``.  Background outside the crop is never foreground, so it is left out of
    ``outside`` (it does not change Dice).

    Parameters
    ----------
    stored : (H, W) uint8 array
        The class's stored crop, ``round(p * 255)``; may be empty (shape ``(0, 0)``).
    truth : (H, W) bool array
        The ground truth over the same box.
    truth_outside : int
        Ground-truth pixels of this class outside the box.

    Returns
    -------
    inside, outside : (256,) int64 arrays
        ``inside[v]``: ground-truth pixels whose stored value is ``v``; ``outside[v]``: the
        other pixels of the crop whose stored value is ``v``.

    Example
    -------
    >>> stored = np.array([[0, 128], [255, 10]], np.uint8)
    >>> truth = np.array([[False, True], [True, False]])
    >>> inside, outside = threshold_histograms(stored, truth, truth_outside=3)
    >>> inside[[0, 128, 255]], outside[[0, 10]]
    (array([3, 1, 1]), array([1, 1]))
    """
    stored = np.asarray(stored)
    truth = np.asarray(truth)
    if stored.dtype != np.uint8:
        raise ValueError(f"stored values must be uint8 (p * 255), got {stored.dtype}")
    if truth.shape != stored.shape:
        raise ValueError(f"truth has shape {truth.shape}, stored values {stored.shape}; "
                         "pass crops of the same box")
    if truth_outside < 0:
        raise ValueError(f"truth_outside must be >= 0, got {truth_outside}")
    inside = np.zeros(LEVELS, np.int64)
    outside = np.zeros(LEVELS, np.int64)
    _count(np.ascontiguousarray(stored).reshape(-1), np.ascontiguousarray(truth, dtype=bool).reshape(-1),
           inside, outside)
    inside[0] += truth_outside
    return inside, outside


def dice_curve(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Dice of the mask ``stored > t`` against the ground truth, for every ``t`` in 0..255.

    With ``above(x)[t] = sum(x[t + 1:])`` (a reverse cumulative sum), the mask ``stored > t``
    has ``above(inside)[t]`` true positives and ``above(inside + outside)[t]`` pixels, and the
    ground truth has ``inside.sum()`` pixels.  Dice is 1 where both masks are empty, as in
    :mod:`hbens.metrics`.  Use :func:`level_of` to read the Dice of a threshold in [0, 1].

    Parameters
    ----------
    inside, outside : (256,) integer arrays
        Histograms from :func:`threshold_histograms` (or sums of them, for pooled Dice).

    Returns
    -------
    (256,) float64 array
        ``curve[t]`` is the Dice of ``stored > t``; ``curve[255]`` is that of the empty mask.

    Example
    -------
    >>> inside = np.zeros(256, np.int64); inside[200] = 2
    >>> outside = np.zeros(256, np.int64); outside[100] = 2
    >>> dice_curve(inside, outside)[[0, 99, 100, 199, 200]]
    array([0.66666667, 0.66666667, 1.        , 1.        , 0.        ])
    """
    inside = np.asarray(inside, np.int64)
    outside = np.asarray(outside, np.int64)
    if inside.shape != (LEVELS,) or outside.shape != (LEVELS,):
        raise ValueError(f"histograms must have {LEVELS} bins, got {inside.shape} and {outside.shape}")
    return _curve(inside, outside)


def _curve(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Dice of the mask of bins above ``t``, for every bin ``t`` (the last: the empty mask), along
    the last axis.

    ``2.0 * tp / total`` in float64, as :func:`hbens.metrics.dice_runs` computes it, so the two
    agree to the last bit.
    """
    curve = np.empty(inside.shape, np.float64)
    _curves(inside.reshape(-1, inside.shape[-1]), outside.reshape(-1, inside.shape[-1]),
            curve.reshape(-1, inside.shape[-1]))
    return curve


@njit(cache=True, nogil=True)
def _curves(inside, outside, curves):
    """Row by row: true positives and predicted pixels above each bin by running sums from the top."""
    for row in range(inside.shape[0]):
        truth = 0
        for b in range(inside.shape[1]):
            truth += inside[row, b]
        true_positives = 0
        predicted = 0
        for b in range(inside.shape[1] - 1, -1, -1):
            total = predicted + truth
            curves[row, b] = 2.0 * true_positives / total if total > 0 else 1.0
            true_positives += inside[row, b]
            predicted += inside[row, b] + outside[row, b]


_GRID32_PADDED = np.append(_GRID32, np.float32([np.inf, np.inf]))


@njit(cache=True, nogil=True, inline="always")
def _grid_bin(value, grid):
    """The number of thresholds of ``grid`` (GRID in float32, padded with two infinities) below ``value``.

    ``grid[j]`` is ``j / 100`` within a relative 2**-24, so for ``b0 = floor(100 * value)`` every
    ``grid[j]`` with ``j < b0`` is below the value and every one with ``j > b0 + 1`` above it: the
    bin is ``b0`` plus the exact float32 comparisons with ``grid[b0]`` and ``grid[b0 + 1]``.
    """
    guess = min(max(int(np.float64(value) * 100.0), 0), grid.size - 3)
    return guess + (grid[guess] < value) + (grid[guess + 1] < value)


@njit(cache=True, nogil=True)
def _count_grid(values, inside, outside, grid, counted_inside, counted_outside):
    """Add each value's counts to its bin (:func:`_grid_bin`); counts are summed while neighbouring
    values fall in the same bin, which they mostly do."""
    current = 0
    sum_inside = 0
    sum_outside = 0
    for k in range(values.size):
        b = _grid_bin(values[k], grid)
        if b != current:
            counted_inside[current] += sum_inside
            counted_outside[current] += sum_outside
            current = b
            sum_inside = 0
            sum_outside = 0
        sum_inside += inside[k]
        sum_outside += outside[k]
    counted_inside[current] += sum_inside
    counted_outside[current] += sum_outside


@njit(cache=True, nogil=True)
def _count_crop(values, top, left, rows, begins, ends, grid, counted_inside, counted_outside):
    """Count every pixel of a crop as outside the truth, then move the truth's pixels inside; return
    how many truth pixels lie in the crop."""
    height, width = values.shape
    current = 0
    run = 0
    for r in range(height):
        for c in range(width):
            b = _grid_bin(values[r, c], grid)
            if b != current:
                counted_outside[current] += run
                current = b
                run = 0
            run += 1
    counted_outside[current] += run
    moved = 0
    for s in range(rows.size):
        r = rows[s] - top
        if r < 0 or r >= height:
            continue
        for c in range(max(begins[s] - left, 0), min(ends[s] - left, width)):
            counted_inside[_grid_bin(values[r, c], grid)] += 1
            moved += 1
    for b in range(counted_inside.size):
        counted_outside[b] -= counted_inside[b]
    return moved


def grid_histograms(
    values: np.ndarray, inside: np.ndarray, outside: np.ndarray, *, truth_elsewhere: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of fused probabilities by how many thresholds of :data:`GRID` they exceed.

    Bin ``b`` holds the values ``v`` with ``b`` grid thresholds below them (float32 ``v``
    against float32 thresholds), so ``v > GRID[j]`` exactly when ``v``'s bin is above ``j``.
    Values may stand for several pixels each (``inside`` and ``outside`` are their counts).

    Parameters
    ----------
    values : (n,) float32 array
        Fused probabilities, as :func:`hbens.ensemble.combine.fuse_class` returns them.
    inside, outside : (n,) integer or bool arrays
        Ground-truth and other pixels having each value (for one pixel per value: the truth
        mask and its complement).
    truth_elsewhere : int
        Ground-truth pixels whose probability is 0 and not among ``values`` (never foreground).

    Returns
    -------
    inside, outside : (102,) int64 arrays
        Histograms for :func:`grid_dice`.

    Example
    -------
    >>> values = np.array([0.3, 0.305, 0.9], np.float32)
    >>> inside, outside = grid_histograms(values, np.array([0, 2, 5]), np.array([4, 0, 0]), truth_elsewhere=1)
    >>> inside[[0, 30, 31, 90]], outside[[30]]
    (array([1, 0, 2, 5]), array([4]))
    """
    values = np.asarray(values)
    if values.dtype != np.float32:
        raise ValueError(f"fused values must be float32 (as hbens thresholds them), got {values.dtype}")
    if truth_elsewhere < 0:
        raise ValueError(f"truth_elsewhere must be >= 0, got {truth_elsewhere}")
    inside = np.asarray(inside)
    outside = np.asarray(outside)
    if inside.dtype.kind not in "biu" or outside.dtype.kind not in "biu":
        raise ValueError(f"counts must be integers or booleans, got {inside.dtype} and {outside.dtype}")
    if inside.shape != values.shape or outside.shape != values.shape:
        raise ValueError(f"expected one inside and one outside count per value, got shapes {inside.shape} "
                         f"and {outside.shape} for {values.shape}")
    counted_inside = np.zeros(GRID.size + 1, np.int64)
    counted_outside = np.zeros(GRID.size + 1, np.int64)
    _count_grid(values.reshape(-1), inside.reshape(-1), outside.reshape(-1), _GRID32_PADDED, counted_inside,
                counted_outside)
    counted_inside[0] += truth_elsewhere
    return counted_inside, counted_outside


@njit(cache=True, nogil=True)
def _count_stored_crop(stored, top, left, rows, begins, ends, inside, outside):
    """Count every stored value of a crop outside the truth (summing runs of equal values, which
    are long on the 0 and 255 plateaus), then move the truth's pixels inside; return how many
    truth pixels lie in the crop."""
    height, width = stored.shape
    flat = stored.reshape(-1)
    current = flat[0] if flat.size else 0
    run = 0
    for k in range(flat.size):
        if flat[k] != current:
            outside[current] += run
            current = flat[k]
            run = 0
        run += 1
    outside[current] += run
    moved = 0
    for s in range(rows.size):
        r = rows[s] - top
        if r < 0 or r >= height:
            continue
        for c in range(max(begins[s] - left, 0), min(ends[s] - left, width)):
            inside[stored[r, c]] += 1
            moved += 1
    for v in range(inside.size):
        outside[v] -= inside[v]
    return moved


def stored_crop_histograms(
    stored: np.ndarray, origin: tuple[int, int], truth: tuple[np.ndarray, np.ndarray, np.ndarray], *, truth_total: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`threshold_histograms` of a stored crop against truth given as row segments in the frame.

    The same histograms without building the truth's mask over the crop: ``truth`` is
    ``(rows, begins, ends)`` (:func:`hbens.runs.runs_to_segments`) and ``truth_total`` its pixels.

    Example
    -------
    >>> stored = np.array([[0, 128], [255, 10]], np.uint8)
    >>> truth = (np.array([3, 4]), np.array([8, 7]), np.array([9, 8]))  # (3, 8) and (4, 7)
    >>> inside, outside = stored_crop_histograms(stored, (3, 7), truth, truth_total=5)
    >>> inside[[0, 128, 255]], outside[[0, 10]]
    (array([3, 1, 1]), array([1, 1]))
    """
    stored = np.ascontiguousarray(stored)
    if stored.dtype != np.uint8 or stored.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 stored crop, got {stored.dtype} of shape {stored.shape}")
    inside = np.zeros(LEVELS, np.int64)
    outside = np.zeros(LEVELS, np.int64)
    rows, begins, ends = truth
    moved = _count_stored_crop(stored, int(origin[0]), int(origin[1]), np.asarray(rows, np.int64),
                               np.asarray(begins, np.int64), np.asarray(ends, np.int64), inside, outside)
    if moved > truth_total:
        raise ValueError(f"{moved} truth pixels in the crop, more than truth_total={truth_total}")
    inside[0] += truth_total - moved
    return inside, outside


def crop_grid_histograms(
    values: np.ndarray, origin: tuple[int, int], truth: tuple[np.ndarray, np.ndarray, np.ndarray], *, truth_total: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grid_histograms` of every pixel of a float32 crop, against truth given as row segments.

    Parameters
    ----------
    values : (H, W) float32 array
        The crop (pixels outside it are never foreground).
    origin : (int, int)
        Its top-left pixel in the frame.
    truth : (rows, begins, ends) int64 arrays
        The ground truth's row segments in the frame (:func:`hbens.runs.runs_to_segments`).
    truth_total : int
        Ground-truth pixels in the frame.

    Example
    -------
    >>> values = np.array([[0.2, 0.7], [0.9, 0.0]], np.float32)
    >>> truth = (np.array([5]), np.array([7]), np.array([9]))  # row 5, columns 7 and 8
    >>> inside, outside = crop_grid_histograms(values, (5, 7), truth, truth_total=3)
    >>> inside[[0, 20, 70]], outside[[0, 90]]
    (array([1, 1, 1]), array([1, 1]))
    """
    values = np.ascontiguousarray(values)
    if values.dtype != np.float32 or values.ndim != 2:
        raise ValueError(f"expected a 2-D float32 crop, got {values.dtype} of shape {values.shape}")
    inside = np.zeros(GRID.size + 1, np.int64)
    outside = np.zeros(GRID.size + 1, np.int64)
    rows, begins, ends = (np.asarray(part, np.int64) for part in truth)
    moved = _count_crop(values, int(origin[0]), int(origin[1]), rows, begins, ends, _GRID32_PADDED, inside, outside)
    if moved > truth_total:
        raise ValueError(f"{moved} truth pixels in the crop, more than truth_total={truth_total}")
    inside[0] += truth_total - moved
    return inside, outside


def grid_dice(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Dice of ``fused > GRID[j]`` against the ground truth for every ``j``, from :func:`grid_histograms`.

    ``inside`` and ``outside`` may hold several histograms along their first axes (their last
    axis is the bins); the curves keep those axes.

    Example
    -------
    >>> values = np.array([0.3, 0.305, 0.9], np.float32)
    >>> curve = grid_dice(*grid_histograms(values, np.array([0, 2, 5]), np.array([4, 0, 0]), truth_elsewhere=1))
    >>> curve[[0, 30, 31, 90]].round(4).tolist()
    [0.7368, 0.9333, 0.7692, 0.0]
    """
    inside = np.asarray(inside, np.int64)
    outside = np.asarray(outside, np.int64)
    if inside.shape[-1:] != (GRID.size + 1,) or outside.shape != inside.shape:
        raise ValueError(f"histograms must have {GRID.size + 1} bins, got {inside.shape} and {outside.shape}")
    return _curve(inside, outside)[..., : GRID.size]


def level_of(threshold: float) -> int:
    """The ``t`` for which ``stored > t`` is the mask ``stored / 255 > threshold``.

    For real numbers ``stored / 255 > threshold`` is ``stored > threshold * 255``, and for an
    integer ``stored`` that is ``stored > floor(threshold * 255)``, so ``t`` is
    ``floor(threshold * 255)``.  Computing that product in floating point can round across an
    integer when ``threshold`` lies within rounding of some ``k / 255``; instead ``t`` is read off
    the comparison the pipeline makes (:func:`hbens.maps.probabilities.crops_to_rles`: float32
    ``stored / 255`` against float32 ``threshold``), which is monotone in ``stored``: ``t`` is the
    largest stored value that this comparison leaves off.  It is exact for every threshold.

    Parameters
    ----------
    threshold : float
        A probability threshold in [0, 1]; foreground is strictly above it.

    Returns
    -------
    int
        ``t`` in 0..255 (0 for a threshold of 0, 255 for 1: the empty mask).

    Example
    -------
    >>> level_of(0.5), level_of(0.2), level_of(0.0), level_of(1.0)
    (127, 51, 0, 255)
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return int(np.searchsorted(_DEQUANTIZED, np.float32(threshold), side="right")) - 1

"""Dice of every threshold at once, from two 256-bin histograms of stored probabilities.

A uint8 store keeps ``round(p * 255)`` over a class's crop (see :mod:`hbens.probabilities`).
Thresholding ``stored / 255 > threshold`` can only give 256 different masks, ``stored > t``
for ``t = 0..255``, so counting the stored values inside and outside the ground truth once
gives the Dice of every threshold by cumulative sums: one pass over the crop per (image, class)
instead of one pass per threshold.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LEVELS = 256
"""Number of distinct uint8 stored values, and so of distinct thresholded masks."""

_DEQUANTIZED = np.arange(LEVELS, dtype=np.float32) / np.float32(255.0)
"""The probability each stored value reads back as (:func:`hbens.probabilities.dequantize`)."""


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
    true_positives = np.zeros(LEVELS, np.int64)
    predicted = np.zeros(LEVELS, np.int64)
    true_positives[:-1] = np.cumsum(inside[::-1])[::-1][1:]
    predicted[:-1] = np.cumsum((inside + outside)[::-1])[::-1][1:]
    total = predicted + inside.sum()
    curve = np.ones(LEVELS, np.float64)
    np.divide(2.0 * true_positives, total, out=curve, where=total > 0)
    return curve


def level_of(threshold: float) -> int:
    """The ``t`` for which ``stored > t`` is the mask ``stored / 255 > threshold``.

    For real numbers ``stored / 255 > threshold`` is ``stored > threshold * 255``, and for an
    integer ``stored`` that is ``stored > floor(threshold * 255)``, so ``t`` is
    ``floor(threshold * 255)``.  Computing that product in floating point can round across an
    integer when ``threshold`` lies within rounding of some ``k / 255``; instead ``t`` is read off
    the comparison the pipeline makes (:func:`hbens.probabilities.crops_to_rles`: float32
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

"""Run-level connected components against scikit-image's pixel labelling (an independent reference)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import label

from hbens.postproc.components import hole_segments, label_segments
from hbens.rle import mask_to_runs
from hbens.runs import runs_to_segments

MASKS = st.integers(1, 24).flatmap(lambda h: st.integers(1, 24).flatmap(
    lambda w: arrays(np.bool_, (h, w), elements=st.booleans())))


def pixel_labels(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """hbens' component of each foreground pixel (numbered by first pixel), painted from its segments."""
    rows, begins, ends = runs_to_segments(mask_to_runs(mask), mask.shape)
    labels, _ = label_segments((rows, begins, ends), connectivity)
    painted = np.zeros(mask.shape, np.int64)
    for row, begin, end, component in zip(rows, begins, ends, labels):
        painted[row, begin:end] = component + 1
    return painted


@settings(max_examples=150, deadline=None)
@given(MASKS, st.sampled_from([4, 8]))
def test_components_equal_skimage_label(mask, connectivity):
    ours = pixel_labels(mask, connectivity)
    theirs = label(mask, connectivity=1 if connectivity == 4 else 2)  # numbered in row-major order too
    assert np.array_equal(ours, theirs)
    _, areas = label_segments(runs_to_segments(mask_to_runs(mask), mask.shape), connectivity)
    assert areas.tolist() == np.bincount(theirs.ravel())[1:].tolist()


@settings(max_examples=150, deadline=None)
@given(MASKS, st.sampled_from([4, 8]))
def test_holes_are_skimage_background_components_off_the_border(mask, connectivity):
    rows, begins, ends = hole_segments(runs_to_segments(mask_to_runs(mask), mask.shape), mask.shape, connectivity)
    filled = mask.copy()
    for row, begin, end in zip(rows, begins, ends):
        filled[row, begin:end] = True
    # Holes are background components that do not touch the border, connected the other way round.
    background = label(~mask, connectivity=2 if connectivity == 4 else 1)
    border = np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]))
    expected = mask | ((background > 0) & ~np.isin(background, border))
    assert np.array_equal(filled, expected)

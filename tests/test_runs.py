import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens import rle
from hbens.runs import box_to_runs, runs_bounds, runs_to_box, runs_to_segments, segments_to_runs, union_runs
from tests.oracles import encode_reference


def test_box_runs_equal_full_frame_runs(rng):
    shape = (40, 50)
    for _ in range(50):
        top, left = rng.integers(0, 30), rng.integers(0, 40)
        h, w = rng.integers(1, shape[0] - top + 1), rng.integers(1, shape[1] - left + 1)
        box = (rng.random((h, w)) < 0.6).astype(np.uint8)
        frame = np.zeros(shape, np.uint8)
        frame[top : top + h, left : left + w] = box
        runs = box_to_runs(box, top, left, shape)
        assert rle.runs_to_string(*runs) == encode_reference(frame)
        bounds = runs_bounds(runs, shape)
        if bounds is None:
            assert frame.sum() == 0
            continue
        crop = runs_to_box(runs, bounds, shape)
        b_top, b_left, b_bottom, b_right = bounds
        assert np.array_equal(crop, frame[b_top:b_bottom, b_left:b_right])
        outside = frame.copy()
        outside[b_top:b_bottom, b_left:b_right] = 0
        assert outside.sum() == 0


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, (7, 9), elements=st.integers(0, 1)))
def test_segments_round_trip_and_cover_each_row(mask):
    runs = rle.mask_to_runs(mask, parallel=False)
    rows, begins, ends = runs_to_segments(runs, mask.shape)
    rebuilt = np.zeros_like(mask)
    for row, begin, end in zip(rows, begins, ends):
        assert 0 <= begin < end <= mask.shape[1]
        rebuilt[row, begin:end] = 1
    assert np.array_equal(rebuilt, mask)
    back = segments_to_runs((rows, begins, ends), mask.shape)
    assert rle.runs_to_string(*back) == encode_reference(mask)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, (6, 11), elements=st.integers(0, 1)), arrays(np.uint8, (6, 11), elements=st.integers(0, 1)))
def test_union_runs_equals_mask_union(a, b):
    union = union_runs(rle.mask_to_runs(a, parallel=False), rle.mask_to_runs(b, parallel=False))
    assert rle.runs_to_string(*union) == encode_reference(a | b)

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens.maps.probabilities import dequantize
from hbens.tune.histograms import dice_curve, level_of, threshold_histograms


def dice_oracle(stored_frame: np.ndarray, truth_frame: np.ndarray, t: int) -> float:
    """Plain numpy Dice of ``stored > t`` over the whole frame; 1 when both masks are empty."""
    prediction = stored_frame > t
    total = int(prediction.sum()) + int(truth_frame.sum())
    if total == 0:
        return 1.0
    return 2 * int((prediction & truth_frame).sum()) / total


def curve_of(stored_frame: np.ndarray, truth_frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The fast curve of a frame, fed as the pipeline will: the crop of ``box`` and the GT outside it."""
    top, left, bottom, right = box
    truth_crop = truth_frame[top:bottom, left:right]
    inside, outside = threshold_histograms(
        stored_frame[top:bottom, left:right], truth_crop, truth_outside=int(truth_frame.sum() - truth_crop.sum())
    )
    return dice_curve(inside, outside)


def frame_with_crop(shape, box, crop):
    frame = np.zeros(shape, np.uint8)
    top, left, bottom, right = box
    frame[top:bottom, left:right] = crop
    return frame


def assert_matches_oracle(stored_frame, truth_frame, box):
    curve = curve_of(stored_frame, truth_frame, box)
    expected = np.array([dice_oracle(stored_frame, truth_frame, t) for t in range(256)])
    np.testing.assert_array_equal(curve, expected)


@st.composite
def cases(draw):
    height = draw(st.integers(1, 12))
    width = draw(st.integers(1, 12))
    top = draw(st.integers(0, height))
    bottom = draw(st.integers(top, height))
    left = draw(st.integers(0, width))
    right = draw(st.integers(left, width))
    if bottom == top or right == left:
        top = left = bottom = right = 0
    values = draw(st.sampled_from([st.integers(0, 255), st.sampled_from([0, 1, 127, 128, 254, 255])]))
    crop = draw(arrays(np.uint8, (bottom - top, right - left), elements=values))
    truth = draw(arrays(np.bool_, (height, width)))
    return frame_with_crop((height, width), (top, left, bottom, right), crop), truth, (top, left, bottom, right)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_curve_equals_brute_force_thresholding(case):
    assert_matches_oracle(*case)


def test_curve_on_random_frames(rng):
    for _ in range(20):
        shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
        box = (2, 1, shape[0] - 1, shape[1] - 3)
        crop = rng.integers(0, 256, (box[2] - box[0], box[3] - box[1])).astype(np.uint8)
        truth = rng.random(shape) < rng.random()
        assert_matches_oracle(frame_with_crop(shape, box, crop), truth, box)


ADVERSARIAL = {
    "empty ground truth": (lambda shape: np.full(shape, 200, np.uint8), lambda shape: np.zeros(shape, bool)),
    "empty prediction": (lambda shape: np.zeros(shape, np.uint8), lambda shape: np.eye(*shape, dtype=bool)),
    "both empty": (lambda shape: np.zeros(shape, np.uint8), lambda shape: np.zeros(shape, bool)),
    "all 255": (lambda shape: np.full(shape, 255, np.uint8), lambda shape: np.ones(shape, bool)),
    "all 255, half truth": (lambda shape: np.full(shape, 255, np.uint8),
                            lambda shape: np.indices(shape).sum(axis=0) % 2 == 0),
    "all 1": (lambda shape: np.ones(shape, np.uint8), lambda shape: np.ones(shape, bool)),
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_curve_on_adversarial_inputs(name):
    make_crop, make_truth = ADVERSARIAL[name]
    shape, box = (9, 11), (2, 3, 7, 10)
    crop_shape = (box[2] - box[0], box[3] - box[1])
    truth = np.zeros(shape, bool)
    truth[box[0] : box[2], box[1] : box[3]] = make_truth(crop_shape)
    assert_matches_oracle(frame_with_crop(shape, box, make_crop(crop_shape)), truth, box)


def test_ground_truth_outside_the_crop():
    shape, box = (10, 10), (0, 0, 4, 4)
    stored = frame_with_crop(shape, box, np.full((4, 4), 230, np.uint8))
    truth = np.zeros(shape, bool)
    truth[6:, 6:] = True
    assert_matches_oracle(stored, truth, box)
    inside, _ = threshold_histograms(stored[:4, :4], truth[:4, :4], truth_outside=16)
    assert inside[0] == 16 and inside.sum() == 16


def test_empty_crop_with_ground_truth_elsewhere():
    no_crop, no_truth = np.zeros((0, 0), np.uint8), np.zeros((0, 0), bool)
    inside, outside = threshold_histograms(no_crop, no_truth, truth_outside=4)
    assert inside[0] == 4 and inside.sum() == 4 and outside.sum() == 0
    np.testing.assert_array_equal(dice_curve(inside, outside), np.zeros(256))
    both_empty = dice_curve(*threshold_histograms(no_crop, no_truth, truth_outside=0))
    np.testing.assert_array_equal(both_empty, np.ones(256))


def test_histograms_count_every_crop_pixel(rng):
    crop = rng.integers(0, 256, (30, 20)).astype(np.uint8)
    truth = rng.random((30, 20)) < 0.3
    inside, outside = threshold_histograms(crop, truth, truth_outside=5)
    np.testing.assert_array_equal(inside - np.eye(256, dtype=np.int64)[0] * 5, np.bincount(crop[truth], minlength=256))
    np.testing.assert_array_equal(outside, np.bincount(crop[~truth], minlength=256))
    assert inside.dtype == outside.dtype == np.int64 and inside.shape == outside.shape == (256,)


def test_histograms_of_strided_views_and_uint8_truth(rng):
    crop = rng.integers(0, 256, (20, 30)).astype(np.uint8)
    truth = (rng.random((20, 30)) < 0.5).astype(np.uint8)
    view, truth_view = crop[::2, 1::3], truth[::2, 1::3]
    inside, outside = threshold_histograms(view, truth_view, truth_outside=0)
    expected_inside, expected_outside = threshold_histograms(view.copy(), truth_view.astype(bool), truth_outside=0)
    np.testing.assert_array_equal(inside, expected_inside)
    np.testing.assert_array_equal(outside, expected_outside)


@pytest.mark.parametrize(
    "stored, truth, outside, message",
    [
        (np.zeros((2, 2), np.float16), np.zeros((2, 2), bool), 0, "uint8"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 3), bool), 0, "same box"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), bool), -1, "truth_outside"),
    ],
)
def test_histograms_refuse_bad_inputs(stored, truth, outside, message):
    with pytest.raises(ValueError, match=message):
        threshold_histograms(stored, truth, truth_outside=outside)


def test_dice_curve_refuses_wrong_bins():
    with pytest.raises(ValueError, match="256 bins"):
        dice_curve(np.zeros(255, np.int64), np.zeros(256, np.int64))


STORED = np.arange(256, dtype=np.uint8)


def pipeline_mask(threshold: float) -> np.ndarray:
    """What hbens.maps.probabilities.crops_to_rles keeps of every stored value at ``threshold``."""
    return dequantize(STORED) > np.float32(threshold)


def awkward_thresholds() -> np.ndarray:
    """Every k/255 in float64 and float32, their float neighbours, a 0.001 grid and random draws."""
    exact = np.arange(256) / 255.0
    exact32 = (np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float64)
    near = [exact, exact32]
    for values in (exact, exact32):
        near += [np.nextafter(values, 2.0), np.nextafter(values, -1.0)]
        near += [np.nextafter(values.astype(np.float32), np.float32(2)).astype(np.float64),
                 np.nextafter(values.astype(np.float32), np.float32(-1)).astype(np.float64)]
    grid = np.round(np.arange(1001) * 0.001, 10)
    random = np.random.default_rng(5).random(5000)
    return np.clip(np.concatenate(near + [grid, random]), 0.0, 1.0)


def test_level_of_matches_the_pipeline_comparison_for_every_stored_value():
    for threshold in awkward_thresholds():
        np.testing.assert_array_equal(STORED > level_of(float(threshold)), pipeline_mask(threshold), err_msg=repr(threshold))


@settings(max_examples=500, deadline=None)
@given(st.floats(0.0, 1.0))
def test_level_of_matches_the_pipeline_comparison_for_any_float(threshold):
    np.testing.assert_array_equal(STORED > level_of(threshold), pipeline_mask(threshold))


def test_level_of_is_floor_of_threshold_times_255_and_the_float64_comparison_on_decimal_grids():
    for threshold in np.round(np.arange(1001) * 0.001, 10):
        level = level_of(float(threshold))
        assert level == math.floor(round(threshold * 255, 6)), threshold
        np.testing.assert_array_equal(STORED > level, STORED / 255.0 > threshold, err_msg=repr(threshold))


def test_level_of_bounds_and_exact_steps():
    assert level_of(0.0) == 0
    assert level_of(1.0) == 255
    assert level_of(0.5) == 127
    assert [level_of(k / 255) for k in range(256)] == list(range(256))


@pytest.mark.parametrize("threshold", [-0.01, 1.01, float("nan")])
def test_level_of_refuses_thresholds_outside_0_1(threshold):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        level_of(threshold)


def test_curve_at_a_threshold_equals_the_pipeline_mask_dice(rng):
    stored = rng.integers(0, 256, (25, 25)).astype(np.uint8)
    truth = rng.random((25, 25)) < 0.5
    curve = dice_curve(*threshold_histograms(stored, truth, truth_outside=0))
    for threshold in (0.0, 0.2, 0.33, 0.5, 51 / 255, 0.95, 1.0):
        mask = dequantize(stored) > np.float32(threshold)
        expected = 2 * int((mask & truth).sum()) / (int(mask.sum()) + int(truth.sum()))
        assert curve[level_of(threshold)] == expected


def grid_oracle(values: np.ndarray) -> np.ndarray:
    """Bin of each float32 value: how many float32 thresholds of GRID lie below it."""
    from hbens.tune.histograms import GRID

    return np.searchsorted(GRID.astype(np.float32), values, side="left")


def test_grid_bins_every_float32_near_the_thresholds_exactly():
    """Dense values, every 1/255 level and the float32 neighbours of each grid threshold."""
    from hbens.tune.histograms import GRID, grid_histograms

    grid32 = GRID.astype(np.float32)
    near = [np.nextafter(grid32, np.float32(2)), grid32, np.nextafter(grid32, np.float32(-1))]
    values = np.clip(np.concatenate([np.linspace(0, 1, 300_001, dtype=np.float32), dequantize(np.arange(256,
                     dtype=np.uint8)), *near]), 0, 1).astype(np.float32)
    for chunk in np.array_split(values, 7):
        inside, outside = grid_histograms(chunk, np.ones(chunk.size, np.int64), np.zeros(chunk.size, np.int64),
                                          truth_elsewhere=0)
        assert np.array_equal(inside, np.bincount(grid_oracle(chunk), minlength=GRID.size + 1))
    one = np.array([grid32[37]], np.float32)
    inside, _ = grid_histograms(one, np.ones(1, np.int64), np.zeros(1, np.int64), truth_elsewhere=0)
    assert inside[37] == 1  # 0.37 is not above the threshold 0.37


def test_crop_histograms_from_segments_equal_the_mask_histograms(rng):
    """The kernels that read the truth as row segments count what the masked histograms count."""
    from hbens.runs import box_to_runs, runs_to_segments
    from hbens.tune.histograms import crop_grid_histograms, grid_histograms, stored_crop_histograms

    shape = (30, 40)
    for _ in range(20):
        truth_frame = rng.random(shape) < rng.uniform(0, 0.6)
        segments = runs_to_segments(box_to_runs(truth_frame.astype(np.uint8), 0, 0, shape), shape)
        top, left = rng.integers(0, 20), rng.integers(0, 30)
        bottom, right = top + rng.integers(0, 11), left + rng.integers(0, 11)
        stored = rng.integers(0, 256, (bottom - top, right - left)).astype(np.uint8)
        truth = truth_frame[top:bottom, left:right]
        outside_truth = int(truth_frame.sum() - truth.sum())
        expected = threshold_histograms(stored, truth, truth_outside=outside_truth)
        found = stored_crop_histograms(stored, (top, left), segments, truth_total=int(truth_frame.sum()))
        assert all(np.array_equal(a, b) for a, b in zip(found, expected))
        values = dequantize(stored) * np.float32(0.7)
        expected = grid_histograms(values.reshape(-1), truth.reshape(-1), ~truth.reshape(-1),
                                   truth_elsewhere=outside_truth)
        found = crop_grid_histograms(values, (top, left), segments, truth_total=int(truth_frame.sum()))
        assert all(np.array_equal(a, b) for a, b in zip(found, expected))

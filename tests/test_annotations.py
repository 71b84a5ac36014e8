import json

import numpy as np
import pytest

from hbens import rle
from hbens.annotations import GroundTruth, annotation_masks, polygon_mask, polygon_runs, read_annotation
from hbens.errors import HbensError


def test_polygon_on_bounding_box_equals_full_frame_fill(rng):
    shape = (300, 400)
    for _ in range(40):
        points = rng.uniform(-50, 450, (rng.integers(3, 12), 2))
        assert rle.runs_to_string(*polygon_runs(points, shape)) == rle.encode(polygon_mask(points, shape))


def test_read_annotation_overlapping_classes(tmp_path):
    path = tmp_path / "a.json"
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    path.write_text(json.dumps({"annotations": [
        {"label": "finger-1", "points": square},
        {"label": "finger-2", "points": square},
    ]}))
    masks = annotation_masks(path, (8, 8))
    assert masks.shape == (29, 8, 8)
    assert masks[0].sum() == 16 and np.array_equal(masks[0], masks[1]) and masks[2:].sum() == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not an annotation JSON"),
        ('{"annotations": [{"label": "Nail", "points": [[1, 1]]}]}', "annotation 1: unknown class 'Nail'"),
        ('{"annotations": [{"label": "Ulna", "points": [1, 2]}]}', "annotation 1: points must be"),
        ('{"annotations": [{"points": [[1, 2]]}]}', "annotation 1: label"),
    ],
)
def test_bad_annotation_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(HbensError, match=message):
        read_annotation(path)


def test_ground_truth_sources(tmp_path):
    with pytest.raises(HbensError, match="no annotation"):
        GroundTruth(tmp_path)
    with pytest.raises(HbensError, match="no such file"):
        GroundTruth(tmp_path / "nope")

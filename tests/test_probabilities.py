import json

import numpy as np
import pytest

from hbens.errors import HbensError
from hbens.probabilities import (
    ClassCrop,
    ProbabilityStore,
    crop_box,
    is_valid_store,
    load_probabilities,
    quantize,
    tight_crop,
    write_store,
)


def store(path, probabilities, precision="uint8"):
    crops = []
    for p in probabilities:
        top, left, bottom, right = crop_box(p)
        crops.append(ClassCrop((top, left, bottom, right), quantize(p[top:bottom, left:right], precision)))
    write_store(path, crops, probabilities.shape[1:], precision, classes=tuple(f"c{i}" for i in range(len(crops))),
                model="test")


@pytest.mark.parametrize("precision, tolerance", [("uint8", 0.5 / 255 + 1e-7), ("float16", 1e-3)])
def test_round_trip_within_one_step(tmp_path, rng, precision, tolerance):
    p = np.zeros((3, 40, 50), np.float32)
    p[0, 5:20, 7:9] = rng.random((15, 2))
    p[1] = rng.random((40, 50))
    path = tmp_path / "a.npz"
    store(path, p, precision)
    back = load_probabilities(path)
    assert back.dtype == np.float32 and back.shape == p.shape
    assert np.abs(back - p).max() <= max(tolerance, 1 / 255)
    assert np.array_equal(back[2], np.zeros((40, 50)))
    meta = ProbabilityStore(path).meta
    assert meta["format"] == "hbens-probabilities" and meta["precision"] == precision and meta["model"] == "test"


def test_crop_box_pads_and_clips():
    p = np.zeros((20, 20), np.float32)
    p[0, 18] = 0.5
    assert crop_box(p, padding=4) == (0, 14, 5, 20)
    assert crop_box(np.full((4, 4), 1 / 255, np.float32)) == (0, 0, 0, 0)


def test_tight_crop_places_the_cut_in_image_coordinates():
    p = np.zeros((20, 20), np.float32)
    p[10, 12] = 0.5
    crop = tight_crop(p, (100, 200), padding=1)
    assert crop.box == (109, 211, 112, 214)
    assert crop.values.dtype == np.uint8 and crop.values[1, 1] == 128 and crop.values.sum() == 128
    empty = tight_crop(np.zeros((5, 5), np.float32), (100, 200), "float16")
    assert empty.box == (0, 0, 0, 0) and empty.values.shape == (0, 0) and empty.values.dtype == np.float16


def test_store_is_readable_with_numpy_alone(tmp_path):
    p = np.zeros((1, 8, 8), np.float32)
    p[0, 2:4, 3:5] = 1.0
    store(tmp_path / "a.npz", p)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["meta"]))["shape"] == [8, 8]
        assert archive["boxes"].tolist() == [[0, 0, 8, 8]]
        assert archive["data"].max() == 255


def test_damaged_and_foreign_files(tmp_path):
    p = np.ones((1, 8, 8), np.float32)
    store(tmp_path / "a.npz", p)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:50])
    assert is_valid_store(tmp_path / "a.npz") and not is_valid_store(tmp_path / "cut.npz")
    with pytest.raises(HbensError, match="cut.npz: not a readable hbens probability file"):
        ProbabilityStore(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "x", "version": 9})))
    with pytest.raises(HbensError, match="format x v9, expected hbens-probabilities v1"):
        ProbabilityStore(tmp_path / "other.npz")
    assert not is_valid_store(tmp_path / "missing.npz")

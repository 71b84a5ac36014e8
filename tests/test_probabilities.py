import json

import numpy as np
import pytest

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.maps.probabilities import (
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
    write_store(path, crops, probabilities.shape[1:], precision, classes=CLASSES[: len(crops)],
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


def raw_store(path, **change):
    """A valid two-class 8x8 float16 store written by numpy, with arrays, meta keys (a dict) or meta replaced."""
    meta = change.pop("meta", {})
    if isinstance(meta, dict):
        meta = np.array(json.dumps({"format": "hbens-probabilities", "version": 1, "classes": ["finger-1", "Ulna"],
                                    "shape": [8, 8], "precision": "float16", **meta}))
    arrays = {"meta": meta, "boxes": np.array([[0, 0, 2, 3], [0, 0, 0, 0]], np.int32),
              "offsets": np.array([0, 6, 6], np.int64), "data": np.full(6, 0.5, np.float16), **change}
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return path


def test_raw_store_helper_is_valid(tmp_path):
    store = ProbabilityStore(raw_store(tmp_path / "a.npz"))
    assert store.classes == ["finger-1", "Ulna"] and store.crop(0).values.shape == (2, 3)


@pytest.mark.parametrize("change, message", [
    ({"meta": np.array("[1, 2]")}, "meta is not a JSON object"),
    ({"meta": np.array("{")}, "meta is not valid JSON"),
    ({"meta": np.array([1, 2])}, "meta is not a JSON text"),
    ({"meta": {"version": 2}}, "format hbens-probabilities v2, expected hbens-probabilities v1"),
    ({"meta": {"classes": "finger-1,Ulna"}}, "meta classes is not a list of class names"),
    ({"meta": {"classes": ["finger-1", "Nail"]}}, "meta classes has unknown name(s) Nail"),
    ({"meta": {"classes": ["Ulna", "Ulna"]}}, "meta classes repeats Ulna"),
    ({"meta": {"shape": [8, 0]}}, "meta shape [8, 0] is not two positive whole numbers"),
    ({"meta": {"shape": [8.0, 8]}}, "meta shape [8.0, 8] is not two positive whole numbers"),
    ({"meta": {"precision": "float32"}}, "meta precision float32 is not one of uint8, float16"),
    ({"boxes": np.zeros((3, 4), np.int32)}, "boxes are int32 (3, 4), expected integers (2, 4)"),
    ({"boxes": np.zeros((2, 4), np.float32)}, "boxes are float32 (2, 4), expected integers (2, 4)"),
    ({"boxes": np.array([[0, 0, 2, 3], [0, 0, 9, 1]])}, "outside the 8x8 image or inverted: Ulna (0, 0, 9, 1)"),
    ({"boxes": np.array([[2, 0, 0, 3], [0, 0, 0, 0]])}, "inverted: finger-1 (2, 0, 0, 3)"),
    ({"boxes": np.array([[0, -1, 2, 2], [0, 0, 0, 0]])}, "inverted: finger-1 (0, -1, 2, 2)"),
    ({"offsets": np.array([0, 6])}, "offsets are int64 (2,), expected integers (3,)"),
    ({"offsets": np.array([1, 7, 7])}, "offsets do not match the box sizes (start 1"),
    ({"offsets": np.array([0, 5, 6])}, "offsets do not match the box sizes (start 0, classes finger-1, Ulna)"),
    ({"data": np.full(7, 0.5, np.float16)}, "offsets end at 6 but data holds 7 values"),
    ({"data": np.full(6, 128, np.uint8)}, "data is uint8 (6,), expected 1-D float16"),
    ({"data": np.array([0.5, np.nan, 2, -1, 0, np.inf], np.float16)}, "4 data value(s) not finite in [0, 1], e.g. nan, 2.0, -1.0"),
    ({"data": None}, "lacks the array(s) data"),
])
def test_damaged_store_is_one_line_naming_the_problem(tmp_path, change, message):
    path = raw_store(tmp_path / "bad.npz", **change)
    with pytest.raises(HbensError) as error:
        ProbabilityStore(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and message in text and "predict it again" in text
    assert "\n" not in text and len(text) < 300 + len(str(path))
    assert not is_valid_store(path)


def test_foreign_numpy_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(HbensError, match="a single numpy array, not an hbens probability file"):
        ProbabilityStore(tmp_path / "a.npy")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(HbensError, match="t.npz: not a readable hbens probability file"):
        ProbabilityStore(tmp_path / "t.npz")

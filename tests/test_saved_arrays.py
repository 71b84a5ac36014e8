"""Saved arrays (peers' .npy/.npz/.pt outputs) read as probability crops, against a float64 numpy oracle."""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.importer import import_image
from hbens.maps.array_files import SavedImage, find_saved_arrays, is_saved_array_folder, read_saved_image
from hbens.maps.probabilities import (
    FLOOR,
    PROBABILITY_CLIP,
    ProbabilityStore,
    dequantize,
    tight_crop,
    write_store,
)
from hbens.maps.saved_arrays import EXACT_FLOOR, ArrayFormat, parse_kind

SIZE = (64, 64)
FEW = CLASSES[:5]


# ---------------------------------------------------------------------------- oracle


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    return np.log(p / (1 - p))


def resize_reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with half-pixel centres (torch's align_corners=False), plainly in float64."""

    def axis(source: int, target: int):
        position = np.maximum((np.arange(target) + 0.5) * source / target - 0.5, 0)
        first = np.floor(position).astype(int)
        return first, np.minimum(first + 1, source - 1), position - first

    y0, y1, fy = axis(image.shape[0], size[0])
    x0, x1, fx = axis(image.shape[1], size[1])
    image = image.astype(np.float64)
    upper = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    lower = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return upper * (1 - fy)[:, None] + lower * fy[:, None]


def resized_probabilities(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What a low-resolution (C, h, w) probability map means at ``size``: resized on logits."""
    return np.stack([sigmoid(resize_reference(logit(p), size)) for p in probabilities])


def bone_probabilities(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """(n, H, W) float64 maps, each a soft blob at a random place: mostly 0, some near 1."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    maps = []
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        radius = rng.uniform(2, max(shape) / 4)
        distance = np.hypot(rows - cy, columns - cx)
        maps.append(sigmoid(3 * (radius - distance)))
    return np.stack(maps)


def read_maps(image: SavedImage) -> np.ndarray:
    """The (C, H, W) float64 probabilities of an image's crops, 0 outside them."""
    out = np.zeros((len(image.crops), *image.shape))
    for index, crop in enumerate(image.crops):
        top, left, bottom, right = crop.box
        out[index, top:bottom, left:right] = dequantize(crop.values)
    return out


def assert_matches(image: SavedImage, oracle: np.ndarray, precision: str = "uint8") -> None:
    """Within a quantisation step everywhere (FLOOR outside the crops), within rounding inside them."""
    read = read_maps(image)
    assert read.shape == oracle.shape
    error = np.abs(read - oracle)
    assert error.max() <= FLOOR + 1e-5
    inside = oracle > 2 * FLOOR
    assert error[inside].max(initial=0) <= (0.5 / 255 + 1e-4 if precision == "uint8" else 1e-3)


# ---------------------------------------------------------------------------- layouts


def test_npz_output_uint16_full_size(tmp_path, rng):
    p = bone_probabilities(rng, 29, SIZE)
    stored = np.rint(p * 10000).astype(np.uint16)
    np.savez_compressed(tmp_path / "image1.npz", output=stored)
    image = read_saved_image(tmp_path / "image1.npz", ArrayFormat(size=SIZE))
    assert image.name == "image1.png" and image.shape == SIZE and image.classes == CLASSES
    assert "[output]" in image.source and "scaled:10000" in image.source and "CHW" in image.source
    assert_matches(image, stored / 10000)


def test_npz_logits_key_uint16_with_other_arrays(tmp_path, rng):
    p = bone_probabilities(rng, 29, SIZE)
    stored = np.rint(p * 10000).astype(np.uint16)
    np.savez_compressed(tmp_path / "a.npz", logits=stored, names=np.arange(29))
    image = read_saved_image(tmp_path / "a.npz", ArrayFormat(key="logits", size=SIZE))
    assert_matches(image, stored / 10000)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("factor", [4, 2])
def test_npy_low_resolution_logits(tmp_path, rng, dtype, factor):
    low = (SIZE[0] // factor, SIZE[1] // factor)
    logits = logit(bone_probabilities(rng, 29, low)).astype(dtype)
    np.save(tmp_path / "b.npy", logits)
    image = read_saved_image(tmp_path / "b.npy", ArrayFormat(size=SIZE))
    assert "logits" in image.source and f"resized:{low[0]}x{low[1]}->64x64" in image.source
    oracle = np.stack([sigmoid(resize_reference(channel, SIZE)) for channel in logits.astype(np.float64)])
    assert_matches(image, oracle)


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_torch_low_resolution_logits(tmp_path, rng, as_dict, dtype):
    torch = pytest.importorskip("torch")
    logits = logit(bone_probabilities(rng, 29, (16, 16)))
    tensor = torch.from_numpy(logits).to(getattr(torch, dtype))
    torch.save({"logits": tensor, "epoch": torch.tensor(3)} if as_dict else tensor, tmp_path / "c.pt")
    image = read_saved_image(tmp_path / "c.pt", ArrayFormat(key="logits" if as_dict else None, size=SIZE))
    oracle = np.stack([sigmoid(resize_reference(channel, SIZE)) for channel in tensor.double().numpy()])
    assert_matches(image, oracle)


def test_torch_batch_of_one(tmp_path, rng):
    torch = pytest.importorskip("torch")
    logits = logit(bone_probabilities(rng, 29, SIZE))
    torch.save(torch.from_numpy(logits[None]).float(), tmp_path / "d.pth")
    image = read_saved_image(tmp_path / "d.pth", ArrayFormat(size=SIZE))
    assert "1CHW" in image.source
    assert_matches(image, sigmoid(logits.astype(np.float32).astype(np.float64)))


@pytest.mark.parametrize("shape, dtype", [("C1HW", np.float16), ("CHW", np.float32)])
def test_nnunet_probabilities_with_background(tmp_path, rng, shape, dtype):
    p = bone_probabilities(rng, 29, SIZE)
    background = 1 - p.max(axis=0, keepdims=True)
    stored = np.concatenate([background, p]).astype(dtype)
    np.savez_compressed(tmp_path / "e.npz", probabilities=stored[:, None] if shape == "C1HW" else stored)
    image = read_saved_image(tmp_path / "e.npz", ArrayFormat(drop_channel=0, size=SIZE), precision="float16")
    assert f"{shape} probs drop:0" in image.source
    assert_matches(image, stored[1:].astype(np.float64), "float16")


def test_low_resolution_probabilities_resize_on_logits(tmp_path, rng):
    p = bone_probabilities(rng, 29, (32, 32)).astype(np.float32)
    np.savez_compressed(tmp_path / "f.npz", probabilities=p[:, None])
    image = read_saved_image(tmp_path / "f.npz", ArrayFormat(size=SIZE))
    assert_matches(image, resized_probabilities(p.astype(np.float64), SIZE))


def test_channels_last_uint8_subset_of_classes(tmp_path, rng):
    p = bone_probabilities(rng, len(FEW), SIZE)
    stored = np.rint(p * 255).astype(np.uint8)
    np.save(tmp_path / "g.npy", np.ascontiguousarray(stored.transpose(1, 2, 0)))
    image = read_saved_image(tmp_path / "g.npy", ArrayFormat(classes=FEW, size=SIZE))
    assert image.classes == FEW and "HWC scaled:255" in image.source
    assert_matches(image, stored / 255)


def test_binary_uint8_masks_are_probabilities(tmp_path, rng):
    masks = (bone_probabilities(rng, 29, SIZE) > 0.5).astype(np.uint8)
    np.savez_compressed(tmp_path / "h.npz", mask=masks)
    image = read_saved_image(tmp_path / "h.npz", ArrayFormat(size=SIZE))
    assert "probs" in image.source
    assert_matches(image, masks.astype(np.float64))


def test_real_binary_masks_read_back_exactly(realdata):
    path = next(iter(sorted((realdata / "masks").glob("*/*.npz"))))
    image = read_saved_image(path, ArrayFormat())
    assert image.shape == IMAGE_SHAPE and "[mask] uint8[29, 2048, 2048] CHW probs" in image.source
    with np.load(path) as archive:
        masks = archive["mask"]
    for crop, mask in zip(image.crops, masks):
        top, left, bottom, right = crop.box
        assert mask.sum() == mask[top:bottom, left:right].sum()
        assert np.array_equal(crop.values, mask[top:bottom, left:right] * np.uint8(255))


def test_explicit_kind_overrides_detection(tmp_path, rng):
    logits = np.clip(logit(bone_probabilities(rng, 3, SIZE)), -0.9, 0.9).astype(np.float32)
    np.save(tmp_path / "i.npy", logits)
    fmt = ArrayFormat(kind="logits", classes=CLASSES[:3], size=SIZE)
    assert_matches(read_saved_image(tmp_path / "i.npy", fmt), sigmoid(logits.astype(np.float64)))


def test_small_map_keeps_its_size_unless_a_frame_is_given(tmp_path):
    logits = np.full((1, 16, 16), -20.0, np.float32)
    logits[0, 7:9, 7:9] = 8
    np.save(tmp_path / "j.npy", logits)
    assert read_saved_image(tmp_path / "j.npy", ArrayFormat(classes=("Radius",))).shape == (16, 16)
    image = read_saved_image(tmp_path / "j.npy", ArrayFormat(classes=("Radius",), size=IMAGE_SHAPE))
    assert image.shape == IMAGE_SHAPE
    top, left, bottom, right = image.crops[0].box
    assert 0 < top < bottom < IMAGE_SHAPE[0] and 0 < left < right < IMAGE_SHAPE[1]


def test_empty_classes_have_empty_crops(tmp_path):
    np.save(tmp_path / "k.npy", np.zeros((29, 8, 8), np.float32))
    image = read_saved_image(tmp_path / "k.npy", ArrayFormat(size=(32, 32)))
    assert all(crop.box == (0, 0, 0, 0) and crop.values.size == 0 for crop in image.crops)


# ---------------------------------------------------------------------------- import and folders


def test_import_writes_a_store_with_its_source(tmp_path, rng):
    p = bone_probabilities(rng, 29, SIZE)
    stored = np.rint(p * 10000).astype(np.uint16)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    np.savez_compressed(tmp_path / "in" / "image7.npz", output=stored)
    stats = import_image(tmp_path / "in" / "image7.npz", tmp_path / "out", ArrayFormat(size=SIZE),
                         precision="uint8")
    assert stats.store == tmp_path / "out" / "image7.npz" and stats.store_bytes == stats.store.stat().st_size
    store = ProbabilityStore(stats.store)
    assert store.meta["image"] == "image7.png" and "scaled:10000" in store.meta["source"]
    assert store.shape == SIZE and tuple(store.classes) == CLASSES
    error = np.abs(store.to_array() - stored / 10000)
    assert error.max() <= FLOOR + 1e-5


def test_import_never_replaces_its_input(tmp_path, rng):
    source = tmp_path / "image7.npz"
    np.savez_compressed(source, output=np.zeros((29, 8, 8), np.uint16) + 300)
    before = source.read_bytes()
    with pytest.raises(HbensError, match="overwrite"):
        import_image(source, tmp_path, ArrayFormat())
    assert source.read_bytes() == before


def test_folders(tmp_path, rng):
    arrays, stores = tmp_path / "arrays", tmp_path / "stores"
    (arrays / "ID001").mkdir(parents=True)
    stores.mkdir()
    np.save(arrays / "ID001" / "b.npy", np.zeros((29, 4, 4), np.float32))
    np.savez(arrays / "a.npz", output=np.zeros((29, 4, 4), np.uint16))
    (arrays / "notes.txt").write_text("x")
    write_store(stores / "a.npz", [tight_crop(np.zeros((4, 4)), (0, 0))] * 29, (4, 4))
    assert find_saved_arrays(arrays) == [arrays / "a.npz", arrays / "ID001" / "b.npy"]
    assert is_saved_array_folder(arrays) and not is_saved_array_folder(stores)
    assert find_saved_arrays(stores) == [] and not is_saved_array_folder(tmp_path / "missing")
    np.save(arrays / "a.npy", np.zeros(3))
    with pytest.raises(HbensError, match="one file per image"):
        find_saved_arrays(arrays)


def test_only_regular_files_are_opened_and_a_folder_named_like_a_map_is_named(tmp_path):
    """Issue 19: a FIFO named x.npz blocked fuse forever; a folder x.npz/ gave "no probability maps"."""
    import os

    from hbens.maps.folders import open_map_folder

    arrays, stores = tmp_path / "arrays", tmp_path / "stores"
    arrays.mkdir()
    stores.mkdir()
    os.mkfifo(arrays / "a.npy")
    os.mkfifo(stores / "a.npz")
    np.save(arrays / "b.npy", np.zeros((29, 4, 4), np.float32))
    write_store(stores / "b.npz", [tight_crop(np.zeros((4, 4)), (0, 0))] * 29, (4, 4))
    assert find_saved_arrays(arrays) == [arrays / "b.npy"]
    assert open_map_folder(arrays).images == open_map_folder(stores).images == ["b.png"]
    assert open_map_folder(stores).kind == "hbens stores"
    for folder, name in ((arrays, "x.npy"), (stores, "x.npz")):
        (folder / name).mkdir()
        with pytest.raises(HbensError, match=f"{name}: a folder named like a probability map"):
            open_map_folder(folder)


def test_saved_arrays_read_directly_keep_their_precision(tmp_path, rng):
    """uint8 levels stay uint8 crops; uint16 p x 10000 and floats are float32 crops of their own values."""
    from hbens.maps.folders import MapFile

    p = bone_probabilities(rng, 2, SIZE)
    saved = {"u8.npy": np.rint(p * 255).astype(np.uint8), "u16.npy": np.rint(p * 10000).astype(np.uint16),
             "f16.npy": p.astype(np.float16), "f32.npy": p.astype(np.float32)}
    fmt = ArrayFormat(classes=FEW[:2], size=SIZE)
    for name, values in saved.items():
        np.save(tmp_path / name, values)
        maps = MapFile(str(tmp_path / name), fmt).read()
        expected = {"u8.npy": np.uint8}.get(name, np.float32)
        assert {crop.values.dtype for crop in maps.crops} == {np.dtype(expected)}, name
        assert maps.meta["precision"] == ("uint8" if name == "u8.npy" else "float16")
        exact = values.astype(np.float32) / np.float32({"u8.npy": 255, "u16.npy": 10000}.get(name, 1))
        for crop, channel in zip(maps.crops, exact):
            top, left, bottom, right = crop.box
            assert np.array_equal(dequantize(crop.values), channel[top:bottom, left:right]), name
            outside = channel.copy()
            outside[top:bottom, left:right] = 0
            assert outside.max() <= EXACT_FLOOR, name


def test_reader_pickles_for_workers(tmp_path, rng):
    np.savez(tmp_path / "l.npz", output=np.rint(bone_probabilities(rng, 29, SIZE) * 10000).astype(np.uint16))
    fmt = ArrayFormat(key="output", size=(32, 32))
    function, settings_ = pickle.loads(pickle.dumps((read_saved_image, fmt)))
    image = pickle.loads(pickle.dumps(function(tmp_path / "l.npz", settings_)))
    assert image.shape == (32, 32) and len(image.crops) == 29


def test_torch_is_not_imported_with_the_module():
    code = "import sys, hbens.maps.array_files; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ---------------------------------------------------------------------------- bad inputs


def _refused(path: Path, fmt: ArrayFormat, match: str) -> None:
    out = path.parent / "out"
    out.mkdir(exist_ok=True)
    with pytest.raises(HbensError, match=match) as caught:
        import_image(path, out, fmt)
    message = str(caught.value)
    assert "\n" not in message and len(message) <= 300 and str(path) in message
    assert list(out.iterdir()) == []


def test_several_arrays_need_a_key(tmp_path):
    np.savez(tmp_path / "m.npz", first=np.zeros((29, 4, 4)), second=np.zeros((29, 4, 4)))
    _refused(tmp_path / "m.npz", ArrayFormat(), r"'first', 'second'.*--key")
    _refused(tmp_path / "m.npz", ArrayFormat(key="third"), r"no array 'third'.*--key")


def test_no_channel_axis_names_classes_and_drop_channel(tmp_path):
    np.save(tmp_path / "n.npy", np.zeros((28, 8, 8), np.float32))
    _refused(tmp_path / "n.npy", ArrayFormat(), r"no axis of 29 channels.*--classes or --drop-channel")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, bad):
    values = np.zeros((29, 8, 8), np.float32)
    values[28, 3, 3] = bad
    np.save(tmp_path / "p.npy", values)
    _refused(tmp_path / "p.npy", ArrayFormat(), "NaN or infinite")


def test_pickled_torch_file_is_not_loaded(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"logits": np.zeros((29, 4, 4), np.float32)}, tmp_path / "q.pt")
    _refused(tmp_path / "q.pt", ArrayFormat(), "not loaded for safety")
    torch.save([torch.zeros(29, 4, 4)], tmp_path / "r.pt")
    _refused(tmp_path / "r.pt", ArrayFormat(), "holds a list")
    (tmp_path / "s.pt").write_bytes(b"not a torch file")
    _refused(tmp_path / "s.pt", ArrayFormat(), "not a readable torch.save file")


def test_values_that_are_not_the_kind(tmp_path):
    np.save(tmp_path / "t.npy", np.full((29, 8, 8), 200, np.uint16))
    _refused(tmp_path / "t.npy", ArrayFormat(), r"cannot tell.*--kind")
    np.save(tmp_path / "u.npy", np.full((29, 8, 8), 3.0, np.float32))
    _refused(tmp_path / "u.npy", ArrayFormat(kind="probs"), r"not probs.*--kind")
    np.save(tmp_path / "v.npy", np.full((29, 8, 8), 70000, np.int64))
    _refused(tmp_path / "v.npy", ArrayFormat(kind="scaled:10000"), r"not scaled:10000.*--kind")
    np.savez(tmp_path / "w.npz", names=np.array([["a"] * 8] * 8 * 29).reshape(29, 8, 8))
    _refused(tmp_path / "w.npz", ArrayFormat(), r"not numbers.*--key")
    np.savez(tmp_path / "x.npz", objects=np.array([None] * 29, dtype=object))
    _refused(tmp_path / "x.npz", ArrayFormat(), r"not a readable \.npz")


@pytest.mark.parametrize("settings_, option", [
    (dict(kind="scaled"), "--kind"), (dict(kind="scaled:-3"), "--kind"), (dict(kind="logit"), "--kind"),
    (dict(kind="probs:2"), "--kind"), (dict(classes=("Radius", "Elbow")), "--classes"),
    (dict(classes=("Radius", "Radius")), "--classes"), (dict(classes=()), "--classes"),
    (dict(size=(0, 5)), "--size"),
    (dict(drop_channel=30), "--drop-channel 30"), (dict(drop_channel=-31), "--drop-channel"),
])
def test_bad_settings(settings_, option):
    with pytest.raises(HbensError, match=option):
        ArrayFormat(**settings_)


def test_settings_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        ArrayFormat("output")
    with pytest.raises(Exception):
        ArrayFormat().key = "x"
    assert parse_kind("scaled:10000").name == "scaled:10000" and parse_kind("probs").name == "probs"


# ---------------------------------------------------------------------------- properties


# Spatial sizes of 4 or more: a (3, 1, 3) map is both CHW and HWC of 3 channels, and the first layout wins.
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), low=st.tuples(st.integers(4, 20), st.integers(4, 20)),
       size=st.tuples(st.integers(1, 48), st.integers(1, 48)), layout=st.sampled_from(["CHW", "HWC", "C1HW"]))
def test_resized_logits_match_the_oracle_in_any_layout(seed, low, size, layout):
    rng = np.random.default_rng(seed)
    logits = rng.normal(-6, 5, size=(3, *low)).astype(np.float32)
    arranged = {"CHW": logits, "HWC": logits.transpose(1, 2, 0), "C1HW": logits[:, None]}[layout]
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "y.npy", np.ascontiguousarray(arranged))
        fmt = ArrayFormat(classes=CLASSES[:3], kind="logits", size=size)
        image = read_saved_image(Path(folder) / "y.npy", fmt)
    oracle = np.stack([sigmoid(resize_reference(channel, size)) for channel in logits.astype(np.float64)])
    assert_matches(image, oracle)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       density=st.floats(0, 1), precision=st.sampled_from(["uint8", "float16"]))
def test_full_size_crops_equal_converting_the_whole_map(seed, shape, density, precision):
    rng = np.random.default_rng(seed)
    values = (rng.random((2, *shape)) * 10000 * (rng.random((2, *shape)) < density)).astype(np.uint16)
    values[0, 0, 0] = 10000
    with tempfile.TemporaryDirectory() as folder:
        np.savez_compressed(Path(folder) / "z.npz", output=values)
        fmt = ArrayFormat(classes=CLASSES[:2], size=shape)
        image = read_saved_image(Path(folder) / "z.npz", fmt, precision=precision)
    for crop, channel in zip(image.crops, values):
        whole = tight_crop(channel.astype(np.float32) / np.float32(10000), (0, 0), precision)
        assert crop.box == whole.box and np.array_equal(crop.values, whole.values)

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from hbens.classes import CLASSES
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.importer import import_folder
from hbens.maps.folders import MapFile
from hbens.maps.probabilities import (
    ClassCrop,
    ProbabilityStore,
    crop_box,
    load_probabilities,
    quantize,
    write_store,
)
from hbens.maps.saved_arrays import ArrayFormat
from hbens.metrics import dice_masks
from hbens.postproc.crf import CRFParams, CRFStats, crf_folder, describe_dice, refine, refine_store
from hbens.rle import encode
from hbens.submission import write_submission

SHAPE = (96, 96)


def scene(rng):
    """An image with a sharp bright square, and a blurred, noisy probability of it."""
    truth = np.zeros(SHAPE, np.uint8)
    truth[30:60, 25:70] = 1
    image = (40 + 160 * truth + rng.normal(0, 5, SHAPE)).clip(0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 6)
    probability = np.clip(0.15 + 0.7 * blurred + rng.normal(0, 0.08, SHAPE), 0, 1).astype(np.float32)
    return truth, image, probability


def test_refine_sharpens_towards_the_image_edges(rng):
    truth, image, probability = scene(rng)
    refined = refine(probability, image)
    assert refined.shape == SHAPE and refined.dtype == np.float32
    assert 0 <= refined.min() and refined.max() <= 1
    assert dice_masks(refined > 0.5, truth) > dice_masks(probability > 0.5, truth)
    assert np.array_equal(refine(probability, image), refined)


def write_scene(folder, rng, n=2):
    images = folder / "images" / "ID001"
    images.mkdir(parents=True)
    stores = folder / "stores"
    stores.mkdir()
    classes = ("finger-1", "Ulna")
    for i in range(n):
        truth, image, probability = scene(rng)
        cv2.imwrite(str(images / f"img{i}.png"), image)
        box = crop_box(probability)
        top, left, bottom, right = box
        crops = [ClassCrop(box, quantize(probability[top:bottom, left:right])), ClassCrop((0, 0, 0, 0), quantize(np.zeros((0, 0))))]
        write_store(stores / f"img{i}.npz", crops, SHAPE, classes=classes, image=f"img{i}.png", model="m")
    return folder / "images", stores


def test_refine_store_keeps_layout_and_empty_classes(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng, 1)
    store = MapFile(str(stores / "img0.npz")).read()
    image = cv2.imread(str(images / "ID001" / "img0.png"), cv2.IMREAD_GRAYSCALE)
    crops = refine_store(store, image, CRFParams(iterations=3))
    assert crops[1].box == (0, 0, 0, 0) and crops[1].values.size == 0
    assert crops[0].values.dtype == np.uint8
    with pytest.raises(HbensError, match="image is 48x48, the store 96x96"):
        refine_store(store, image[:48, :48])


def test_crf_folder_and_cli(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng)
    summary = crf_folder(stores, images, tmp_path / "out", CRFParams(iterations=2))
    assert summary.images == 2
    refined = load_probabilities(tmp_path / "out" / "img0.npz")
    assert refined.shape == (2, *SHAPE) and ProbabilityStore(tmp_path / "out" / "img0.npz").meta["crf"]["iterations"] == 2
    result = CliRunner().invoke(cli, ["crf", str(stores), "--images", str(images), "-o", str(tmp_path / "o2"),
                                      "--csv", str(tmp_path / "crf.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "crf.csv").read_text().splitlines()
    assert lines[0] == "image_name,class,rle" and lines[1].startswith("img0.png,finger-1,") and len(lines) == 5
    result = CliRunner().invoke(cli, ["crf", str(stores), "--images", str(images), "-o", str(stores)])
    assert result.exit_code == 1 and "is also the input STORES" in result.output
    (images / "ID001" / "img1.png").unlink()
    result = CliRunner().invoke(cli, ["crf", str(stores), "--images", str(images), "-o", str(tmp_path / "o3")])
    assert result.exit_code == 1 and "img1.npz: its image img1.png is not under" in result.output


CLASS_PAIR = ("finger-1", "Ulna")
TRUTH = np.zeros(SHAPE, np.uint8)
TRUTH[30:60, 25:70] = 1


SAVED = {"uint8": (255, np.uint8), "uint16": (10000, np.uint16)}
"""Saved integer probabilities: scale and dtype."""


def write_array_scene(folder, rng, n=2, dtype="uint16"):
    """X-rays and another pipeline's saved arrays of them: finger-1 (p x 10000 as uint16, or p x 255 as
    uint8) and an empty Ulna."""
    images = folder / "images" / "ID001"
    images.mkdir(parents=True)
    arrays = folder / "arrays"
    arrays.mkdir()
    scale, kind = SAVED[dtype]
    for i in range(n):
        truth, image, probability = scene(rng)
        cv2.imwrite(str(images / f"img{i}.png"), image)
        saved = np.stack([probability, np.zeros(SHAPE, np.float32)])
        np.savez_compressed(arrays / f"img{i}.npz", output=np.rint(saved * scale).astype(kind))
    (folder / "classes.txt").write_text("\n".join(CLASS_PAIR) + "\n")
    return folder / "images", arrays


def store_contents(path):
    with np.load(path) as archive:
        meta = json.loads(str(archive["meta"]))
        return {name: archive[name] for name in ("boxes", "offsets", "data")}, meta


def crf_on_arrays(tmp_path, images, arrays):
    """``crf_folder`` of the saved arrays with the CRF settings of the tests' imported stores."""
    summary = crf_folder(arrays, images, tmp_path / "from-arrays", CRFParams(iterations=2), csv=tmp_path / "arrays.csv",
                         array_format=ArrayFormat(classes=CLASS_PAIR))
    assert summary.images == 2 and not summary.failed


def test_crf_on_uint8_saved_arrays_equals_crf_on_the_imported_stores(tmp_path, rng):
    images, arrays = write_array_scene(tmp_path, rng, dtype="uint8")
    import_folder(arrays, tmp_path / "stores", ArrayFormat(classes=CLASS_PAIR, size=SHAPE))
    refined = crf_folder(tmp_path / "stores", images, tmp_path / "from-stores", CRFParams(iterations=2),
                         csv=tmp_path / "stores.csv")
    crf_on_arrays(tmp_path, images, arrays)
    assert refined.images == 2 and (tmp_path / "arrays.csv").read_bytes() == (tmp_path / "stores.csv").read_bytes()
    for name in ("img0.npz", "img1.npz"):
        (ours, meta), (theirs, imported) = (store_contents(tmp_path / folder / name)
                                            for folder in ("from-arrays", "from-stores"))
        assert all(np.array_equal(ours[key], theirs[key]) for key in ours)
        assert meta["classes"] == list(CLASS_PAIR) and meta["precision"] == "uint8" and meta["crf"]["iterations"] == 2
        assert meta["image"] == imported["image"] and meta["source"] == imported["source"] and "scaled:255" in meta["source"]


def test_crf_on_uint16_saved_arrays_refines_their_own_values(tmp_path, rng):
    """Issue 19: p x 10000 is refined as read (float32, never rounded to 1/255) and stored as float16."""
    images, arrays = write_array_scene(tmp_path, rng)
    crf_on_arrays(tmp_path, images, arrays)
    fmt = ArrayFormat(classes=CLASS_PAIR, size=SHAPE)
    for i in range(2):
        maps = MapFile(str(arrays / f"img{i}.npz"), fmt).read()
        with np.load(arrays / f"img{i}.npz") as archive:
            saved = archive["output"][0]
        top, left, bottom, right = maps.crops[0].box
        assert np.array_equal(maps.crops[0].values, saved[top:bottom, left:right] / np.float32(10000))
        image = cv2.imread(str(images / "ID001" / f"img{i}.png"), cv2.IMREAD_GRAYSCALE)
        expected = refine_store(maps, image, CRFParams(iterations=2), precision="float16")
        ours, meta = store_contents(tmp_path / "from-arrays" / f"img{i}.npz")
        assert meta["precision"] == "float16" and "scaled:10000" in meta["source"]
        assert np.array_equal(ours["data"], np.concatenate([crop.values.reshape(-1) for crop in expected]))


def test_crf_on_bad_saved_arrays_is_one_line_and_writes_nothing(tmp_path, rng):
    images, arrays = write_array_scene(tmp_path, rng)
    base = ["crf", str(arrays), "--images", str(images), "-o", str(tmp_path / "out"), "--csv", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 1 and "img0.npz: shape (2, 96, 96) has no axis of 29 channels" in result.output
    np.savez(arrays / "img1.npz", output=np.zeros((2, *SHAPE)), other=np.zeros(2))
    result = CliRunner().invoke(cli, [*base, "--classes", str(tmp_path / "classes.txt")])
    assert result.exit_code == 1 and "img1.npz: holds arrays 'output', 'other'; choose one with --key" in result.output
    for output in (result.output, CliRunner().invoke(cli, base).output):
        assert len(output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.csv").exists()


def write_truth(path, names):
    rows = {(name, "finger-1"): encode(TRUTH) for name in names}
    write_submission(path, rows)


def test_crf_gt_prints_each_class_dice_before_and_after(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng)
    write_truth(tmp_path / "gt.csv", ["img0.png", "img1.png"])
    result = CliRunner().invoke(cli, ["crf", str(stores), "--images", str(images), "-o", str(tmp_path / "out"),
                                      "--iterations", "2", "--gt", str(tmp_path / "gt.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    before = np.mean([dice_masks(load_probabilities(stores / f"img{i}.npz")[0] > 0.5, TRUTH) for i in (0, 1)])
    after = np.mean([dice_masks(load_probabilities(tmp_path / "out" / f"img{i}.npz")[0] > 0.5, TRUTH)
                     for i in (0, 1)])
    assert after > before
    assert lines[0].split() == ["class", "before", "after", "change"]
    assert lines[1].split() == ["finger-1", f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}"]
    assert lines[2].split() == ["Ulna", "1.0000", "1.0000", "+0.0000"]
    mean = (before + 1) / 2, (after + 1) / 2
    assert lines[3].split() == ["mean", f"{mean[0]:.4f}", f"{mean[1]:.4f}", f"{mean[1] - mean[0]:+.4f}", "(2", "images)"]
    assert lines[4] == "CRF lowers the Dice of 0 class(es)" and len(lines) == 5


def test_describe_dice_marks_the_classes_crf_lowers():
    stats = CRFStats(before=[0.0] * len(CLASSES), after=[0.0] * len(CLASSES), scored=[0] * len(CLASSES))
    stats.before[:2], stats.after[:2], stats.scored[:2] = [1.8, 1.0], [1.6, 1.2], [2, 2]
    text = describe_dice(stats).splitlines()
    assert text[1].split() == ["finger-1", "0.9000", "0.8000", "-0.1000", "lower"]
    assert text[2].split() == ["finger-2", "0.5000", "0.6000", "+0.1000"]
    assert text[-1] == "CRF lowers the Dice of 1 class(es): finger-1"
    assert describe_dice(CRFStats()) == "no image scored"


def test_crf_gt_of_other_images_is_one_line_and_writes_nothing(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng)
    write_truth(tmp_path / "gt.csv", ["img0.png"])
    result = CliRunner().invoke(cli, ["crf", str(stores), "--images", str(images), "-o", str(tmp_path / "out"),
                                      "--gt", str(tmp_path / "gt.csv")])
    assert result.exit_code == 1 and "gt.csv: no ground truth for 1 image(s), e.g. img1.png" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_crf_does_not_import_torch(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng, 1)
    code = ("import sys; from hbens.postproc.crf import crf_folder\n"
            f"crf_folder({str(stores)!r}, {str(images)!r}, {str(tmp_path / 'o')!r})\n"
            "assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--workers", "2"], ["--scheduler", "processes", "--workers", "2"],
                                   ["--scheduler", "local", "--workers", "2"]])
def test_crf_is_identical_under_every_executor(tmp_path, rng, extra):
    images, stores = write_scene(tmp_path, rng, 3)
    base = ["crf", str(stores), "--images", str(images), "--iterations", "2", "--quiet", "--largest"]
    for name, options in (("one", ["--workers", "1"]), ("other", extra)):
        result = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / name), "--csv", str(tmp_path / f"{name}.csv"),
                                          *options])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "other.csv").read_bytes()
    for path in (tmp_path / "one").glob("*.npz"):
        assert np.array_equal(load_probabilities(path), load_probabilities(tmp_path / "other" / path.name))

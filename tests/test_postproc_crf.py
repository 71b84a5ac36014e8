import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from hbens.cli import cli
from hbens.errors import HbensError
from hbens.metrics import dice_masks
from hbens.postproc.crf import CRFParams, crf_folder, refine, refine_store
from hbens.probabilities import ClassCrop, ProbabilityStore, crop_box, load_probabilities, quantize, write_store

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
        t, l, b, r = box
        crops = [ClassCrop(box, quantize(probability[t:b, l:r])), ClassCrop((0, 0, 0, 0), quantize(np.zeros((0, 0))))]
        write_store(stores / f"img{i}.npz", crops, SHAPE, classes=classes, image=f"img{i}.png", model="m")
    return folder / "images", stores


def test_refine_store_keeps_layout_and_empty_classes(tmp_path, rng):
    images, stores = write_scene(tmp_path, rng, 1)
    store = ProbabilityStore(stores / "img0.npz")
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

"""Region (crop) models: ``hbens predict --crop-from``, against a plain numpy oracle.

The model is a known function of its input (per class, a fixed affine map of the gray value), so
the store of a region model must equal: cut the region, resize it to ``--size``, apply the map,
resize back to the region, sigmoid, paste into zeros.  Region boxes are written out by hand.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from hbens.classes import CLASS_INDEX, CLASSES, WRIST  # noqa: E402
from hbens.cli import cli  # noqa: E402
from hbens.maps.probabilities import ClassCrop, ProbabilityStore, load_probabilities, write_store  # noqa: E402
from hbens.predictors.region import region_of, square_box  # noqa: E402
from hbens.rle import decode, encode  # noqa: E402
from hbens.runs import EMPTY_RUNS, box_to_runs  # noqa: E402
from hbens.submission import read_submission, write_submission  # noqa: E402

SHAPE = (96, 128)
SIZE = 64
WRIST_MODEL = ["--model-classes", ",".join(WRIST)]
STEP = 1 / 255 + 1e-5
"""A stored value is within half a uint8 step of the truth, or 0 where the truth is at most 1/255."""

MASKS = {
    "hand_R.png": {"Capitate": (40, 66, 50, 80), "Pisiform": (52, 82, 60, 90), "finger-3": (0, 0, 20, 20)},
    "hand_L.png": {"Capitate": (40, 48, 50, 62), "Pisiform": (52, 38, 60, 46), "finger-3": (0, 108, 20, 128)},
    "corner.png": {"Hamate": (80, 112, 96, 120), "Lunate": (84, 120, 90, 128)},
    "tall.png": {"Scaphoid": (10, 30, 50, 45), "Trapezium": (50, 45, 90, 60)},
    "empty.png": {"finger-1": (30, 30, 60, 60)},
}
"""First-stage masks ``(top, left, bottom, right)`` per image and class; hand_L mirrors hand_R."""

REGIONS = {
    "hand_R.png": (34, 62, 66, 94),  # union 20x24, side 24 + 2 * round(3.6) = 32, centred
    "hand_L.png": (34, 34, 66, 66),  # the mirror image: columns 128 - 94, 128 - 62
    "corner.png": (76, 108, 96, 128),  # 16x16, side 20, shifted up and left into the image
    "tall.png": (0, 0, 96, 104),  # 80x30, side 104: all 96 rows; columns 30 - 37 < 0 shifted to 0
    "empty.png": (0, 0, 96, 128),  # no wrist bone: the whole frame
}


class Affine(torch.nn.Module):
    """Logits of class c: ``slopes[c] * x + biases[c]`` of the first input channel (the gray image)."""

    def __init__(self, classes: int):
        super().__init__()
        slopes = torch.linspace(4.0, 16.0, classes)
        self.register_buffer("slopes", slopes.view(1, -1, 1, 1))
        self.register_buffer("biases", (-slopes * torch.linspace(0.3, 0.7, classes)).view(1, -1, 1, 1))

    def forward(self, x):
        return x[:, :1] * self.slopes + self.biases


def oracle(image: np.ndarray, box: tuple[int, int, int, int], classes: int) -> np.ndarray:
    """(classes, H, W) probabilities of the affine model run on the ``box`` of ``image`` at SIZE."""
    top, left, bottom, right = box
    crop = torch.from_numpy(image[top:bottom, left:right].copy())[None, None]
    small = F.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    logits = Affine(classes)(small)
    back = F.interpolate(logits, size=(bottom - top, right - left), mode="bilinear", align_corners=False)
    full = np.zeros((classes, *image.shape), np.float32)
    full[:, top:bottom, left:right] = torch.sigmoid(back)[0].numpy()
    return full


def mask(box: tuple[int, int, int, int]) -> np.ndarray:
    out = np.zeros(SHAPE, np.uint8)
    out[box[0]:box[2], box[1]:box[3]] = 1
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Images, a first-stage CSV and store folder of MASKS, and the affine models (29 and 8 classes)."""
    import cv2

    root = tmp_path_factory.mktemp("region")
    rng = np.random.default_rng(5)
    (root / "images" / "ID1").mkdir(parents=True)
    for name in MASKS:
        cv2.imwrite(str(root / "images" / "ID1" / name), (rng.random(SHAPE) * 255).astype(np.uint8))
    rows = {(name, c): encode(mask(box)) for name, boxes in MASKS.items() for c, box in boxes.items()}
    rows.update({(name, c): "" for name in MASKS for c in WRIST if (name, c) not in rows})
    write_submission(root / "first.csv", rows)
    (root / "first").mkdir()
    for name, boxes in MASKS.items():
        crops = [ClassCrop((0, 0, 0, 0), np.zeros((0, 0), np.uint8)) for _ in CLASSES]
        for c, (top, left, bottom, right) in boxes.items():
            grown = (max(top - 3, 0), max(left - 3, 0), min(bottom + 3, SHAPE[0]), min(right + 3, SHAPE[1]))
            values = np.full((grown[2] - grown[0], grown[3] - grown[1]), 102, np.uint8)  # p = 0.4: not a mask
            values[top - grown[0]:bottom - grown[0], left - grown[1]:right - grown[1]] = 230
            crops[CLASS_INDEX[c]] = ClassCrop(grown, values)
        if name == "empty.png":  # a wrist bone below 0.5 everywhere: no mask
            crops[CLASS_INDEX["Hamate"]] = ClassCrop((0, 0, 10, 10), np.full((10, 10), 102, np.uint8))
        write_store(root / "first" / f"{name[:-4]}.npz", crops, SHAPE, image=name)
    for stem, classes in (("full", 29), ("wrist", 8)):
        torch.jit.trace(Affine(classes), torch.rand(1, 3, 32, 32)).save(str(root / f"{stem}.pt"))
    return root


def gray(data, name):
    import cv2

    return cv2.imread(str(data / "images" / "ID1" / name), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255


def predict(data, out, *extra, quiet=True):
    args = ["predict", "--images", str(data / "images"), "-o", str(out), "--size", str(SIZE), *extra]
    result = CliRunner().invoke(cli, [*args, "--quiet"] if quiet else args)
    assert result.exit_code == 0, result.output
    return result.output


def test_region_boxes_by_hand():
    for name, boxes in MASKS.items():
        runs = [box_to_runs(mask(box), 0, 0, SHAPE) for c, box in boxes.items() if c in WRIST]
        expected = REGIONS[name] if runs else None
        assert region_of([*runs, EMPTY_RUNS], SHAPE, margin=0.15) == expected
    assert region_of([], SHAPE, margin=0.15) is None
    assert square_box((0, 0, 10, 12), SHAPE, margin=0.15) == (0, 0, 16, 16)
    assert square_box((40, 60, 50, 70), SHAPE, margin=0) == (40, 60, 50, 70)
    assert square_box((40, 60, 51, 70), SHAPE, margin=0) == (40, 60, 51, 71)


@pytest.mark.parametrize("first, model, extra", [
    ("first.csv", "wrist", WRIST_MODEL),
    ("first", "full", ["--tta", "hflip"]),
])
def test_region_is_cut_resized_and_pasted_back(tmp_path, data, first, model, extra):
    predict(data, tmp_path / "out", "--ckpt", str(data / f"{model}.pt"), "--crop-from", str(data / first),
            *extra)
    classes = WRIST if model == "wrist" else CLASSES
    for name, box in REGIONS.items():
        store = ProbabilityStore(tmp_path / "out" / model / f"{name[:-4]}.npz")
        assert store.classes == list(classes) and store.shape == SHAPE
        assert store.meta["region"] == {"box": list(box), "crop_classes_found": name != "empty.png"}
        expected = oracle(gray(data, name), box, len(classes))
        assert np.abs(store.to_array() - expected).max() <= STEP, name


def test_whole_frame_images_are_listed_and_resume_follows_the_region(tmp_path, data):
    args = ["--ckpt", str(data / "wrist.pt"), *WRIST_MODEL, "--crop-from", str(data / "first")]
    shown = predict(data, tmp_path / "out", *args, quiet=False)
    assert ("1 image(s) without crop classes in --crop-from, predicted on the whole frame:\n"
            "  empty.png\n") in shown
    store = tmp_path / "out" / "wrist" / "hand_R.npz"
    before = store.read_bytes()
    assert "5 resumed" in predict(data, tmp_path / "out", *args, "--resume", quiet=False)
    assert store.read_bytes() == before
    shown = predict(data, tmp_path / "out", *args, "--resume", "--crop-margin", "0.25", quiet=False)
    assert "1 resumed" in shown and "4 store(s) found but redone (another region: 4)" in shown
    assert ProbabilityStore(store).meta["region"]["box"] == [32, 60, 68, 96]


def test_partial_class_stores_fuse_with_a_full_store(tmp_path, data):
    predict(data, tmp_path / "full", "--ckpt", str(data / "full.pt"))
    predict(data, tmp_path / "region", "--ckpt", str(data / "wrist.pt"), *WRIST_MODEL,
            "--crop-from", str(data / "first.csv"))
    fused = tmp_path / "fused.csv"
    stores = [str(tmp_path / "full" / "full"), str(tmp_path / "region" / "wrist")]
    result = CliRunner().invoke(cli, ["fuse", *stores, "-o", str(fused), "--weights", "1,3", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = read_submission(fused, SHAPE)
    for name in MASKS:
        full = load_probabilities(tmp_path / "full" / "full" / f"{name[:-4]}.npz").astype(np.float64)
        region = load_probabilities(tmp_path / "region" / "wrist" / f"{name[:-4]}.npz").astype(np.float64)
        for c, class_name in enumerate(CLASSES):
            mean = full[c] if class_name not in WRIST else (full[c] + 3 * region[WRIST.index(class_name)]) / 4
            differ = decode(rows[(name, class_name)], SHAPE).astype(bool) != (mean > 0.5)
            assert not differ[np.abs(mean - 0.5) > 1e-6].any(), (name, class_name)


def test_bad_region_options(tmp_path, data):
    runner = CliRunner()
    base = ["predict", "--images", str(data / "images"), "-o", str(tmp_path / "o"), "--quiet",
            "--ckpt", str(data / "wrist.pt")]
    wrist = [*WRIST_MODEL, "--crop-from", str(data / "first.csv")]
    result = runner.invoke(cli, [*base, *wrist, "--csv", str(tmp_path / "s.csv")])
    assert result.exit_code == 1 and "--csv needs all 29 classes but the model gives 8" in result.output
    result = runner.invoke(cli, [*base, *WRIST_MODEL, "--crop-classes", "Lunate"])
    assert result.exit_code == 2 and "need --crop-from" in result.output
    result = runner.invoke(cli, [*base, *wrist, "--crop-classes", "Lunat"])
    assert result.exit_code == 1 and "unknown class 'Lunat'" in result.output
    result = runner.invoke(cli, [*base, "--crop-from", str(data / "first.csv")])
    assert result.exit_code == 1 and "gives 8 channels, expected 29; name its classes" in result.output
    partial = tmp_path / "partial.csv"
    write_submission(partial, {("hand_R.png", "Lunate"): ""})
    result = runner.invoke(cli, [*base, *WRIST_MODEL, "--crop-from", str(partial)])
    assert result.exit_code == 1 and "no prediction of 4 image(s)" in result.output
    assert not (tmp_path / "o").exists()

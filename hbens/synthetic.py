"""Synthetic hands: bone-like polygons, their annotation JSONs and noisy model submissions.

Used by the tests, the benchmarks and ``make demo``; nothing here reads real data.
:func:`write_dataset` writes a competition-like data set of the hand phantoms of
:mod:`hbens.phantoms`; :func:`synth_dataset` is ``hbens synth``: the same into a folder that is
new, empty, or (with ``overwrite``) holds only a data set written before.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.outputs import atomic_open
from hbens.phantoms import hand_phantom, render_hand
from hbens.rle import runs_to_string
from hbens.runs import Runs, box_to_runs
from hbens.submission import write_submission


def ellipse_points(center: tuple[float, float], axes: tuple[float, float], angle: float, n: int = 48) -> np.ndarray:
    """Vertices (x, y) of a rotated ellipse, as an annotation polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], axis=1)


def hand_polygons(rng: np.random.Generator, shape: tuple[int, int] = IMAGE_SHAPE) -> dict[str, np.ndarray]:
    """One polygon per class laid out like a hand: five fingers of bones, a wrist, radius and ulna."""
    height, width = shape
    unit = min(height, width) / 2048
    polygons = {}
    finger = 0
    for ray, bones in enumerate((3, 4, 4, 4, 4)):
        x = width * (0.2 + 0.15 * ray) + rng.normal(0, 10 * unit)
        y = height * 0.55
        for _ in range(bones):
            length = rng.uniform(60, 110) * unit
            polygons[CLASSES[finger]] = ellipse_points((x, y - length), (18 * unit, length), rng.normal(0, 0.08))
            y -= 2 * length + 8 * unit
            finger += 1
    for k, name in enumerate(CLASSES[19:27]):
        cx = width * (0.35 + 0.08 * (k % 4)) + rng.normal(0, 5 * unit)
        cy = height * (0.62 + 0.07 * (k // 4))
        polygons[name] = ellipse_points((cx, cy), (rng.uniform(30, 50) * unit, rng.uniform(30, 45) * unit), rng.uniform(0, np.pi))
    polygons["Radius"] = ellipse_points((width * 0.42, height * 0.85), (70 * unit, 260 * unit), 0.05)
    polygons["Ulna"] = ellipse_points((width * 0.62, height * 0.86), (50 * unit, 250 * unit), -0.05)
    return polygons


def polygon_box(points: np.ndarray, shape: tuple[int, int], margin: int = 0) -> tuple[int, int, int, int]:
    """Bounding box ``(top, left, bottom, right)`` of a polygon, grown by ``margin`` and clipped."""
    top = max(int(np.floor(points[:, 1].min())) - margin, 0)
    left = max(int(np.floor(points[:, 0].min())) - margin, 0)
    bottom = min(int(np.ceil(points[:, 1].max())) + 1 + margin, shape[0])
    right = min(int(np.ceil(points[:, 0].max())) + 1 + margin, shape[1])
    return top, left, bottom, right


def predicted_runs(
    points: np.ndarray, rng: np.random.Generator, shape: tuple[int, int] = IMAGE_SHAPE, noise: float = 3.0
) -> Runs:
    """A model's imperfect mask of a polygon: jittered outline, sometimes an island or a hole."""
    jittered = points + rng.normal(0, noise, points.shape)
    top, left, bottom, right = polygon_box(jittered, shape, margin=40)
    box = np.zeros((bottom - top, right - left), np.uint8)
    cv2.fillPoly(box, [np.round(jittered - [left, top]).astype(np.int32)], 1)
    if rng.random() < 0.3:
        y, x = rng.integers(0, box.shape[0] - 6), rng.integers(0, box.shape[1] - 6)
        box[y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = 1
    if rng.random() < 0.2:
        cy, cx = np.mean(jittered[:, 1]) - top, np.mean(jittered[:, 0]) - left
        box[int(cy) - 2 : int(cy) + 2, int(cx) - 2 : int(cx) + 2] = 0
    return box_to_runs(box, top, left, shape)


def random_mask(rng: np.random.Generator, shape: tuple[int, int] = IMAGE_SHAPE, n_ellipses: int | None = None) -> np.ndarray:
    """A uint8 mask of a few bone-like ellipses covering about 2-5 % of the frame."""
    height, width = shape
    mask = np.zeros(shape, np.uint8)
    n = int(rng.integers(2, 5)) if n_ellipses is None else n_ellipses
    target = rng.uniform(0.02, 0.05) * height * width / n
    for _ in range(n):
        ratio = rng.uniform(1.5, 4.0)
        minor = np.sqrt(target / (np.pi * ratio))
        center = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height)
        points = ellipse_points(center, (minor, minor * ratio), rng.uniform(0, np.pi))
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def write_annotation(path: Path, polygons: dict[str, np.ndarray]) -> None:
    """Write polygons as a competition annotation JSON (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    annotations = [{"label": name, "points": np.round(p).astype(int).tolist()} for name, p in polygons.items()]
    with atomic_open(path) as handle:
        handle.write(json.dumps({"annotations": annotations}))


def render_xray(polygons: dict[str, np.ndarray], rng: np.random.Generator, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """A uint8 X-ray-like picture of the polygons: bright, blurred bones on a dark, noisy background."""
    image = np.zeros(shape, np.float32)
    for points in polygons.values():
        cv2.fillPoly(image, [np.round(points).astype(np.int32)], 1.0)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    image = 40 + 150 * np.clip(image, 0, 1) + rng.normal(0, 8, shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_example(
    folder: Path | str,
    n_images: int = 4,
    n_models: int = 3,
    seed: int = 0,
    shape: tuple[int, int] = IMAGE_SHAPE,
    images: bool = False,
) -> tuple[Path, list[Path]]:
    """Write ground-truth JSONs and ``n_models`` noisy submissions; return the JSON folder and CSV paths.

    With ``images``, also write X-ray-like PNGs as ``images/IDxxx/NAME.png``.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    gt = folder / "outputs_json"
    rows: list[dict] = [{} for _ in range(n_models)]
    for i in range(n_images):
        image = f"image{1661319100000 + 17 * i}.png"
        polygons = hand_polygons(rng, shape)
        write_annotation(gt / f"ID{i:03d}" / image.replace(".png", ".json"), polygons)
        if images:

            (folder / "images" / f"ID{i:03d}").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "images" / f"ID{i:03d}" / image), render_xray(polygons, rng, shape))
        for model in range(n_models):
            for name, points in polygons.items():
                rows[model][(image, name)] = runs_to_string(*predicted_runs(points, rng, shape, noise=2.0 + model))
    csvs = []
    for model in range(n_models):
        path = folder / f"model{model + 1}.csv"
        write_submission(path, rows[model])
        csvs.append(path)
    return gt, csvs


def check_dataset_arguments(ids_train: int, ids_test: int, seed: int, size: int) -> None:
    """Raise HbensError, in one line, unless the counts, seed and size make a data set."""
    for name, value, low in (("ids_train", ids_train, 0), ("ids_test", ids_test, 0), ("seed", seed, 0),
                             ("size", size, 256)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise HbensError(f"{name} must be a whole number >= {low}, got {value!r}")
    if ids_train + ids_test == 0:
        raise HbensError("--train-ids and --test-ids are both 0 (ids_train, ids_test in the API); "
                         "ask for at least one ID")


def write_phantom(split: Path, number: int, hand: int, *, seed: int, size: int) -> Path:
    """Write one hand phantom as ``DCM/IDxxx/NAME.png`` and ``outputs_json/IDxxx/NAME.json`` under ``split``.

    Its random draws come from ``(seed, number, hand)`` alone, so an image does not change
    when other images are added.  Hand 0 of an ID is a right hand, hand 1 a left hand.
    """
    rng = np.random.default_rng([seed, number, hand])
    stem = f"image{1661320000000 + 60000 * number + 30000 * hand + int(rng.integers(20000))}"
    polygons = hand_phantom(rng, shape=(size, size), side=("right", "left")[hand])
    image = render_hand(polygons, rng, shape=(size, size))
    patient = f"ID{number:03d}"
    write_annotation(split / "outputs_json" / patient / f"{stem}.json", polygons)
    png = split / "DCM" / patient / f"{stem}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(png), image):
        raise HbensError(f"{png}: cannot write the PNG")
    return png


def write_dataset(folder: Path | str, *, ids_train: int, ids_test: int, seed: int,
                  size: int = IMAGE_SHAPE[0]) -> dict[str, list[Path]]:
    """Write hand phantoms laid out like the competition's data, to train and test models on.

    Parameters
    ----------
    folder : path
        Where ``train/`` and ``test/`` go, created if needed; nothing is written elsewhere.
    ids_train, ids_test : int, keyword-only
        Number of IDs (people) in each split; each ID gets a right and a left hand.  IDs are
        numbered from ID001 on, train first.
    seed : int, keyword-only
        Makes the data set reproducible: the same arguments write the same files.
    size : int, keyword-only
        Height and width of the images (2048 on the competition; at least 256).

    Returns
    -------
    dict
        ``{"train": [...], "test": [...]}``: the PNG paths written.  Each image
        ``SPLIT/DCM/IDxxx/NAME.png`` has its annotation in ``SPLIT/outputs_json/IDxxx/NAME.json``;
        test gets annotations too, so that predictions on it can be scored.
    """
    check_dataset_arguments(ids_train, ids_test, seed, size)
    folder = Path(folder)
    written: dict[str, list[Path]] = {"train": [], "test": []}
    numbers = {"train": range(1, ids_train + 1), "test": range(ids_train + 1, ids_train + ids_test + 1)}
    try:
        for split, ids in numbers.items():
            for number in ids:
                for hand in (0, 1):
                    written[split].append(write_phantom(folder / split, number, hand, seed=seed, size=size))
    except OSError as error:
        raise HbensError(f"{error.filename or folder}: cannot write ({error.strerror})") from None
    return written


DATASET_SPLITS = ("train", "test")
"""The folders :func:`write_dataset` writes under its folder."""

DATASET_FILE = re.compile(r"(train|test)/(DCM/ID\d{3,}/image\d+\.png|outputs_json/ID\d{3,}/image\d+\.json)")
"""Relative paths of the files :func:`write_dataset` writes (a phantom's PNG and its annotation)."""

DATASET_FOLDER = re.compile(r"(train|test)(/(DCM|outputs_json)(/ID\d{3,})?)?")
"""Relative paths of the folders :func:`write_dataset` makes."""

STAGING = re.compile(r"\.synth\.\w{8}\.tmp")
"""Names of the folders :func:`synth_dataset` writes into before moving the splits into place
(one left behind by a killed run counts as synth's own)."""


def dataset_entries(folder: Path) -> tuple[list[Path], list[Path]]:
    """The files and folders under ``folder`` that synth wrote (:data:`DATASET_FILE`, staging
    folders), and those it did not (anything else, links included; only train/ and test/ are
    looked into).

    Returns
    -------
    tuple of lists
        ``(own, foreign)``; ``own`` lists files before the folders that hold them.
    """
    own, foreign = [], []
    for path in sorted(folder.iterdir()):
        real_folder = path.is_dir() and not path.is_symlink()
        if real_folder and STAGING.fullmatch(path.name):
            own.append(path)
            continue
        if not real_folder or path.name not in DATASET_SPLITS:
            foreign.append(path)  # not looked into: synth writes nothing below it
            continue
        for entry in [path, *sorted(path.rglob("*"))]:
            relative = entry.relative_to(folder).as_posix()
            if entry.is_symlink():
                foreign.append(entry)
            elif entry.is_dir():
                (own if DATASET_FOLDER.fullmatch(relative) else foreign).append(entry)
            else:
                (own if entry.is_file() and DATASET_FILE.fullmatch(relative) else foreign).append(entry)
    return sorted(own, key=lambda entry: -len(entry.parts)), foreign


def check_synth_folder(folder: Path, overwrite: bool) -> list[Path]:
    """What :func:`synth_dataset` will remove from ``folder`` (its own earlier outputs); HbensError
    in one line when ``folder`` is not empty and ``overwrite`` is not given, or when it holds
    anything synth did not write."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return []
    own, foreign = dataset_entries(folder)
    if foreign:
        first = foreign[0].relative_to(folder)
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise HbensError(f"{folder}: holds {first}{more}, which synth did not write; choose a new or empty "
                         "folder (--overwrite replaces only synth's own train/ and test/)")
    if not overwrite:
        raise HbensError(f"{folder}: is not empty (a data set written before); pass --overwrite to replace it, "
                         "or choose another folder")
    return own


def remove_own(entries: list[Path]) -> None:
    """Remove synth's earlier outputs listed by :func:`dataset_entries` (files, then emptied folders)."""
    for entry in entries:
        if STAGING.fullmatch(entry.name):
            shutil.rmtree(entry)
        elif entry.is_dir():
            entry.rmdir()
        else:
            entry.unlink()


def synth_dataset(folder: Path | str, *, ids_train: int, ids_test: int, seed: int, size: int = IMAGE_SHAPE[0],
                  overwrite: bool = False) -> dict[str, list[Path]]:
    """``hbens synth``: :func:`write_dataset` into ``folder`` whole, or not at all.

    ``folder`` must not exist, be empty, or with ``overwrite`` hold only what synth wrote there
    before (:func:`dataset_entries`), which is replaced, so that images of two runs never mix.
    Anything else in it is refused (:func:`check_synth_folder`), never removed.  The phantoms
    are written into a staging folder inside ``folder`` first and moved into place once all are
    written: a run that fails or is stopped leaves the folder as it found it.

    Returns
    -------
    dict
        ``{"train": [...], "test": [...]}``: the PNG paths written (see :func:`write_dataset`).
    """
    check_dataset_arguments(ids_train, ids_test, seed, size)
    folder = Path(folder)
    earlier = check_synth_folder(folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth.", suffix=".tmp", dir=folder))
    try:
        written = write_dataset(staging, ids_train=ids_train, ids_test=ids_test, seed=seed, size=size)
        remove_own(earlier)
        for split in DATASET_SPLITS:
            if (staging / split).exists():
                (staging / split).rename(folder / split)
    except OSError as error:
        raise HbensError(f"{error.filename or folder}: cannot write ({error.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {split: [folder / path.relative_to(staging) for path in paths] for split, paths in written.items()}

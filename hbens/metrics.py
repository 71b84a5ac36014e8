"""Dice, the competition's metric, computed on run-length masks.

Dice = 2|A∩B| / (|A| + |B|), and 1 when both masks are empty; the score of a submission
is the mean over images of each class, then the mean over classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numba import njit

from hbens.annotations import GroundTruth
from hbens.classes import CLASSES, class_thresholds, read_class_values
from hbens.errors import HbensError
from hbens.frames import check_dice, csv_frame
from hbens.maps.folders import framed, open_map_folder
from hbens.maps.probabilities import crop_runs
from hbens.maps.saved_arrays import ArrayFormat
from hbens.outputs import atomic_open, atomic_path
from hbens.rle import string_to_runs
from hbens.runs import EMPTY_RUNS
from hbens.submission import scan_submission


@njit(cache=True, nogil=True)
def intersection_size(a_starts, a_lengths, b_starts, b_lengths):
    """Number of pixels covered by both of two sorted, non-overlapping run lists."""
    i = 0
    j = 0
    total = 0
    while i < a_starts.size and j < b_starts.size:
        a_end = a_starts[i] + a_lengths[i]
        b_end = b_starts[j] + b_lengths[j]
        low = max(a_starts[i], b_starts[j])
        high = min(a_end, b_end)
        if high > low:
            total += high - low
        if a_end <= b_end:
            i += 1
        else:
            j += 1
    return total


def dice_runs(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Dice of two masks given as ``(starts, lengths)`` runs; 1.0 when both are empty."""
    total = int(a[1].sum()) + int(b[1].sum())
    if total == 0:
        return 1.0
    return 2.0 * intersection_size(a[0], a[1], b[0], b[1]) / total


def dice_masks(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks of the same shape; 1.0 when both are empty."""
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


@dataclass
class DiceTable:
    """Dice of each (image, class): ``values[i, c]`` for ``images[i]`` and ``classes[c]``."""

    images: list[str]
    classes: tuple[str, ...]
    values: np.ndarray

    @property
    def per_class(self) -> np.ndarray:
        """Mean Dice of each class over images."""
        return self.values.mean(axis=0)

    @property
    def mean(self) -> float:
        """The competition's score: mean over classes of the per-class means."""
        return float(self.per_class.mean())


def empty_table(images: list[str], classes: tuple[str, ...] = CLASSES) -> DiceTable:
    """A table to fill, one row per image."""
    return DiceTable(list(images), tuple(classes), np.zeros((len(images), len(classes))))


def score_submission(prediction: str, ground_truth: str, missing: str = "error", *,
                     shape: tuple[int, int] | None = None) -> DiceTable:
    """Dice of each (image, class) of a submission against annotation JSONs or a ground-truth CSV.

    Images are those of the ground truth.  A prediction row that is absent is an error, or an
    empty mask with ``missing="empty"``.  ``shape`` is the frame, the images' size (annotation
    polygons are filled at it); None: the competition's 2048x2048.  Runs or annotations that look
    drawn for another size, or a Dice of 0 everywhere, give a :class:`~hbens.frames.FrameWarning`.
    """
    shape = csv_frame(shape)
    truth = GroundTruth(ground_truth, shape)
    index = scan_submission(prediction, shape)
    absent = index.missing(truth.images)
    if absent and missing != "empty":
        shown = ", ".join(f"({image}, {name})" for image, name in absent[:3])
        raise HbensError(
            f"{prediction}: {len(absent)} (image, class) row(s) of the ground truth are missing, e.g. {shown}; "
            "pass --missing empty to score them as empty masks"
        )
    table = empty_table(truth.images)
    predicted = False
    with index.open() as handle:
        for i, (image, truth_runs) in enumerate(truth):
            for c, name in enumerate(CLASSES):
                key = (image, name)
                runs = string_to_runs(index.read_rle(key, handle) if key in index.rows else "", shape)
                predicted = predicted or runs[0].size > 0
                table.values[i, c] = dice_runs(runs, truth_runs[name])
    check_dice(table.values, predicted, shape)
    return table


def score_maps(
    folder: str,
    ground_truth: str,
    *,
    thresholds: dict[str, float] | None = None,
    threshold: float = 0.5,
    array_format=None,
    missing: str = "error",
    shape: tuple[int, int] | None = None,
) -> DiceTable:
    """Dice of each (image, class) of a folder of probability maps (hbens stores or saved arrays)
    thresholded at ``threshold`` (or per class ``thresholds``), against the ground truth.

    A class the maps do not have, or an image they lack with ``missing="empty"``, scores as an
    empty mask.  The ground truth is read in the frame (annotation polygons are filled at its
    size): ``shape``, else the stores', else the saved arrays' (the largest; smaller ones are
    enlarged to it), see :mod:`hbens.frames`.  A Dice of 0 everywhere gives a
    :class:`~hbens.frames.FrameWarning`.
    """
    fmt = array_format if shape is None else replace(array_format or ArrayFormat(), size=tuple(shape))
    frame, (maps,) = framed([open_map_folder(folder, fmt)], shape)
    truth = GroundTruth(ground_truth, frame)
    absent = [image for image in truth.images if image not in maps.files]
    if absent and missing != "empty":
        raise HbensError(f"{folder}: no maps for {len(absent)} image(s) of the ground truth, e.g. "
                         f"{', '.join(absent[:3])}; pass --missing empty to score them as empty masks")
    limits = class_thresholds(threshold, thresholds)
    table = empty_table(truth.images)
    predicted = False
    for i, (image, truth_runs) in enumerate(truth):
        read = maps.files[image].read() if image in maps.files else None
        if read is not None and tuple(read.shape) != truth.shape:
            raise HbensError(f"{read.path}: maps of {read.shape[0]}x{read.shape[1]}, but the other maps of "
                             f"{folder} are {truth.shape[0]}x{truth.shape[1]}; score maps of one size")
        for c, name in enumerate(CLASSES):
            crop = read.crop(name) if read is not None else None
            runs = crop_runs(crop, read.shape, limits[name]) if crop is not None else EMPTY_RUNS
            predicted = predicted or runs[0].size > 0
            table.values[i, c] = dice_runs(runs, truth_runs[name])
    check_dice(table.values, predicted, frame)
    return table


def write_scores(path: str, table: DiceTable, inputs: tuple[str, ...] = ()) -> None:
    """Write per-class Dice as ``class,dice`` rows (the format ``hbens fuse --scores`` reads)."""
    import pandas as pd

    rows = pd.DataFrame({"class": table.classes, "dice": table.per_class})
    with atomic_open(path, inputs) as handle:
        rows.to_csv(handle, index=False, float_format="%.6f", lineterminator="\n")


def read_scores(path: str) -> dict[str, float]:
    """Per-class Dice from a ``class,dice`` CSV (as written by :func:`write_scores`)."""
    return read_class_values(path, "dice", "hbens score --out")


PLOT_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", "": "png"}
"""Chart formats by file suffix (no suffix: PNG)."""


def plot_format(path: str) -> str:
    """The chart format of ``path`` by its suffix; HbensError for a suffix no writer here honours."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise HbensError(f"--plot {path}: cannot write {suffix} charts; use .png, .pdf or .svg")
    return PLOT_FORMATS[suffix]


def plot_scores(path: str, table: DiceTable, inputs: tuple[str, ...] = ()) -> None:
    """Save a per-class Dice bar chart (PNG, PDF or SVG by the suffix of ``path``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chart_format = plot_format(path)
    figure, axes = plt.subplots(figsize=(12, 4))
    axes.bar(range(len(table.classes)), table.per_class, color="steelblue")
    axes.axhline(table.mean, color="firebrick", linestyle="--", label=f"mean {table.mean:.4f}")
    axes.set_xticks(range(len(table.classes)), table.classes, rotation=70, fontsize=8)
    axes.set_ylim(min(0.0, float(table.per_class.min())), 1.0)
    axes.set_ylabel("Dice")
    axes.legend(loc="lower left")
    figure.tight_layout()
    with atomic_path(path, inputs) as temp:
        figure.savefig(temp, format=chart_format, dpi=120)
    plt.close(figure)

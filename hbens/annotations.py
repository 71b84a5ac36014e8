"""Ground truth: the competition's annotation JSONs (one per image) or a ground-truth CSV, as runs.

An annotation file is ``{"annotations": [{"label": "finger-1", "points": [[x, y], ...]}, ...]}``
stored as ``outputs_json/IDxxx/NAME.json`` for the image ``NAME.png``.  Each class polygon is
filled with OpenCV like the competition's baseline, on the polygon's bounding box only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from hbens.classes import CLASSES, IMAGE_SHAPE, class_index
from hbens.errors import HbensError
from hbens.outputs import PathLike
from hbens.rle import box_to_runs, string_to_runs
from hbens.submission import scan_submission

Runs = tuple[np.ndarray, np.ndarray]
EMPTY_RUNS: Runs = (np.empty(0, np.int64), np.empty(0, np.int64))


def _pixel_points(points: np.ndarray) -> np.ndarray:
    """Polygon vertices rounded to int32 pixel coordinates, as OpenCV takes them."""
    return np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 2)


def polygon_runs(points: np.ndarray, shape: tuple[int, int] = IMAGE_SHAPE) -> Runs:
    """Runs of the filled polygon ``points`` (N x 2, x then y), clipped to ``shape``."""
    import cv2

    points = _pixel_points(points)
    height, width = shape
    left = max(int(points[:, 0].min()), 0)
    top = max(int(points[:, 1].min()), 0)
    right = min(int(points[:, 0].max()) + 1, width)
    bottom = min(int(points[:, 1].max()) + 1, height)
    if right <= left or bottom <= top:
        return EMPTY_RUNS
    box = np.zeros((bottom - top, right - left), np.uint8)
    cv2.fillPoly(box, [points - np.array([left, top], np.int32)], 1)
    return box_to_runs(box, top, left, shape)


def polygon_mask(points: np.ndarray, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """The filled polygon as a full uint8 mask (reference form of :func:`polygon_runs`)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [_pixel_points(points)], 1)
    return mask


def _union(a: Runs, b: Runs) -> Runs:
    from hbens.ensemble.vote import hard_vote

    return hard_vote([a, b], min_votes=1)


def read_annotation(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE) -> dict[str, Runs]:
    """Runs of every class of one annotation JSON; absent classes are empty."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        annotations = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HbensError(f"{path}: not an annotation JSON ({error}); expected {{'annotations': [...]}}") from None
    runs = {name: EMPTY_RUNS for name in CLASSES}
    for number, annotation in enumerate(annotations, start=1):
        try:
            name = annotation["label"]
            class_index(name)
            points = np.asarray(annotation["points"], dtype=np.float64)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
                raise ValueError("points must be a list of [x, y] pairs")
        except (KeyError, TypeError, ValueError) as error:
            message = error.args[0] if error.args else error
            raise HbensError(f"{path}: annotation {number}: {message}") from None
        polygon = polygon_runs(points, shape)
        runs[name] = polygon if runs[name][0].size == 0 else _union(runs[name], polygon)
    return runs


def annotation_masks(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """The ``(29, H, W)`` uint8 multi-label mask of one annotation JSON."""
    from hbens.rle import runs_to_mask

    return np.stack([runs_to_mask(*runs, shape) for runs in read_annotation(path, shape).values()])


class GroundTruth:
    """Per-image class runs from a folder of annotation JSONs or from a ground-truth CSV."""

    def __init__(self, source: PathLike, shape: tuple[int, int] = IMAGE_SHAPE):
        self.source = Path(source)
        self.shape = shape
        if self.source.is_dir():
            self._files = {path.stem + ".png": path for path in sorted(self.source.rglob("*.json"))}
            if not self._files:
                raise HbensError(f"{source}: no annotation *.json files found; pass the outputs_json folder")
            self._index = None
        elif self.source.is_file():
            self._files = {}
            self._index = scan_submission(self.source, shape)
        else:
            raise HbensError(f"{source}: no such file or folder; pass annotation JSONs or a ground-truth CSV")

    @property
    def images(self) -> list[str]:
        """Image names (``NAME.png``) in canonical order."""
        return sorted(self._files) if self._index is None else self._index.images

    def runs(self, image: str) -> dict[str, Runs]:
        """Runs of each class of one image (empty for classes the ground truth lacks)."""
        if self._index is None:
            return read_annotation(self._files[image], self.shape)
        result = {}
        with self._index.open() as handle:
            for name in CLASSES:
                key = (image, name)
                rle = self._index.read_rle(key, handle) if key in self._index.rows else ""
                result[name] = string_to_runs(rle, self.shape)
        return result

    def __iter__(self) -> Iterator[tuple[str, dict[str, Runs]]]:
        for image in self.images:
            yield image, self.runs(image)

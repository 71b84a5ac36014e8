"""Ground truth: the competition's annotation JSONs (one per image) or a ground-truth CSV, as runs.

An annotation file is ``{"annotations": [{"label": "finger-1", "points": [[x, y], ...]}, ...]}``
stored as ``outputs_json/IDxxx/NAME.json`` for the image ``NAME.png``.  Each class polygon is
filled with OpenCV like the competition's baseline, on the polygon's bounding box only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.frames import ADVICE, hint
from hbens.outputs import PathLike
from hbens.rle import runs_to_mask, string_to_runs
from hbens.runs import EMPTY_RUNS, Runs, box_to_runs, union_runs
from hbens.settings import BOM, binary_kind, clip, examples, open_input, read_text
from hbens.submission import scan_submission


def _pixel_points(points: np.ndarray) -> np.ndarray:
    """Polygon vertices rounded to int32 pixel coordinates, as OpenCV takes them."""
    return np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 2)


def polygon_runs(points: np.ndarray, shape: tuple[int, int] = IMAGE_SHAPE) -> Runs:
    """Runs of the filled polygon ``points`` (N x 2, x then y), clipped to ``shape``."""
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
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [_pixel_points(points)], 1)
    return mask


def _check_inside(points: np.ndarray, shape: tuple[int, int], where: str) -> None:
    """HbensError unless every point lies within the frame grown by its own size on each side: a point
    further out belongs to no image of this frame (and would overflow OpenCV's int32 coordinates)."""
    height, width = shape
    x, y = points[:, 0], points[:, 1]
    outside = points[(x < -width) | (x > 2 * width) | (y < -height) | (y > 2 * height)]
    if len(outside):
        shown = examples([f"[{x:g}, {y:g}]" for x, y in outside])
        raise HbensError(f"{where}: {len(outside)} point(s) beyond the {height}x{width} frame by more than its size: "
                         f"{shown}; are these annotations of another image size (--image-size)?")


def _annotation_points(annotation: object, path: PathLike, number: int,
                       shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[str, np.ndarray]:
    """Class name and (N, 2) finite points of one annotation, each within the frame of ``shape`` grown by
    its size (:func:`_check_inside`); HbensError naming the file, number and label."""
    where = f"{path}: annotation {number}"
    if not isinstance(annotation, dict) or "label" not in annotation or "points" not in annotation:
        raise HbensError(f"{where}: expected an object with label and points")
    name = annotation["label"]
    if not isinstance(name, str) or name not in CLASS_INDEX:
        shown = clip(repr(name), limit=40)
        raise HbensError(f"{where}: unknown class {shown}; valid classes: {examples(CLASSES)}")
    try:
        points = np.asarray(annotation["points"], dtype=np.float64)
    except (TypeError, ValueError):
        points = np.empty(0)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
        raise HbensError(f"{where} ({name}): points must be a list of [x, y] number pairs")
    bad = points[~np.isfinite(points).all(axis=1)]
    if len(bad):
        shown = examples([f"[{x:g}, {y:g}]" for x, y in bad])
        raise HbensError(f"{where} ({name}): {len(bad)} point(s) not finite: {shown}")
    _check_inside(points, shape, f"{where} ({name})")
    return name, points


def read_annotation(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE) -> dict[str, Runs]:
    """Runs of every class of one annotation JSON (UTF-8, BOM allowed); absent classes are empty."""
    text = read_text(path)
    try:
        annotations = json.loads(text)["annotations"]
        if not isinstance(annotations, list):
            raise TypeError("annotations is not a list")
    except (ValueError, KeyError, TypeError) as error:
        raise HbensError(
            f"{path}: not an annotation JSON ({clip(error)}); expected {{'annotations': [...]}}"
        ) from None
    except RecursionError:
        raise HbensError(f"{path}: nested too deeply; not an annotation JSON "
                         "(expected {'annotations': [...]})") from None
    runs = {name: EMPTY_RUNS for name in CLASSES}
    far = np.zeros(2)
    for number, annotation in enumerate(annotations, start=1):
        name, points = _annotation_points(annotation, path, number, shape)
        far = np.maximum(far, points.max(axis=0))
        polygon = polygon_runs(points, shape)
        runs[name] = polygon if runs[name][0].size == 0 else union_runs(runs[name], polygon)
    if far[0] > shape[1] or far[1] > shape[0]:
        hint(f"annotation points lie beyond the {shape[0]}x{shape[1]} frame; if the images are larger, {ADVICE}")
    return runs


def annotation_masks(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """The ``(29, H, W)`` uint8 multi-label mask of one annotation JSON."""
    return np.stack([runs_to_mask(*runs, shape) for runs in read_annotation(path, shape).values()])


def annotation_files(folder: Path) -> dict[str, Path]:
    """``{NAME.png: path}`` of the annotation JSONs below ``folder``; HbensError when two share a name.

    Two files for one image (say ``ID001/x.json`` and ``ID002/x.json``) would silently score
    against only one of them, so they are refused, naming both.
    """
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.json")):
        if path.is_dir():
            raise HbensError(f"{path}: a folder named like an annotation file; rename it or pass the folder "
                             "of annotation JSONs itself")
        if not path.is_file():
            continue  # a FIFO or socket: reading it could block forever
        image = path.stem + ".png"
        if image in files:
            both = f"{files[image]} and {path}"
            raise HbensError(f"{folder}: two annotation files for image {image}: {both}; keep one")
        files[image] = path
    if not files:
        raise HbensError(f"{folder}: no annotation *.json files found; pass the outputs_json folder")
    return files


def _looks_like_json(path: Path) -> bool:
    """Whether a text file is JSON rather than a CSV: a ``.json`` suffix, or ``{`` or ``[`` first.

    Compressed or binary files are not: the CSV reader names what they are.
    """
    with open_input(path) as handle:
        head = handle.read(4096)
    if binary_kind(head):
        return False
    return path.suffix.lower() == ".json" or head.removeprefix(BOM).lstrip()[:1] in (b"{", b"[")


class GroundTruth:
    """Per-image class runs from a folder of annotation JSONs or from a ground-truth CSV."""

    def __init__(self, source: PathLike, shape: tuple[int, int] = IMAGE_SHAPE):
        self.source = Path(source)
        self.shape = shape
        if self.source.is_dir():
            self._files = annotation_files(self.source)
            self._index = None
        elif self.source.is_file():
            if _looks_like_json(self.source):
                raise HbensError(f"{source}: a single annotation JSON; pass the folder of annotation JSONs "
                                 f"(outputs_json) or a ground-truth CSV")
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

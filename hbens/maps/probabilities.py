"""The probability store: one ``.npz`` file per image, readable with numpy alone.

Layout (format ``hbens-probabilities``, version 1)::

    meta     0-d unicode array: JSON with format, version, classes, shape (H, W), model,
             tta, precision ("uint8" or "float16"), hbens version
    boxes    (C, 4) int32: top, left, bottom, right of each class's crop (exclusive ends;
             an empty box means p <= 1/255 everywhere)
    offsets  (C + 1,) int64: where each class's crop starts in ``data``
    data     1-D uint8 (p * 255 rounded) or float16: the crops, row-major, concatenated

Each class is kept only over the padded bounding box of its pixels with p > 1/255; outside
it p is taken as 0.  Files are written to a temporary name and renamed, so a reader never
sees a partial file.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hbens import __version__
from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError
from hbens.outputs import PathLike, atomic_path
from hbens.rle import runs_to_string
from hbens.runs import EMPTY_RUNS, box_to_runs
from hbens.settings import clip, examples

FORMAT = "hbens-probabilities"
VERSION = 1
FLOOR = 1 / 255
"""Probabilities at or below this are not stored (read back as 0)."""
PROBABILITY_CLIP = 1e-6
"""Probabilities are clipped to ``[clip, 1 - clip]`` before a logit is taken of them (resizing a saved
array, the CRF's unary).  (A soft fuse in logit space clips at :data:`hbens.ensemble.rules.CLIP`,
half a uint8 step: a fused value, not a probability read back.)"""
PRECISIONS = {"uint8": np.uint8, "float16": np.float16}


@dataclass
class ClassCrop:
    """One class's probabilities over ``box = (top, left, bottom, right)``."""

    box: tuple[int, int, int, int]
    values: np.ndarray


def crop_box(probability: np.ndarray, padding: int = 4, floor: float = FLOOR) -> tuple[int, int, int, int]:
    """Padded bounding box of ``probability > floor`` in a 2-D map; ``(0, 0, 0, 0)`` when there is none."""
    above = probability > floor
    rows = np.flatnonzero(above.any(axis=1))
    if rows.size == 0:
        return 0, 0, 0, 0
    columns = np.flatnonzero(above[rows[0] : rows[-1] + 1].any(axis=0))
    height, width = probability.shape
    return (
        max(int(rows[0]) - padding, 0),
        max(int(columns[0]) - padding, 0),
        min(int(rows[-1]) + 1 + padding, height),
        min(int(columns[-1]) + 1 + padding, width),
    )


def quantize(values: np.ndarray, precision: str = "uint8") -> np.ndarray:
    """Probabilities in [0, 1] as stored: uint8 steps of 1/255 (rounded) or float16."""
    if precision == "uint8":
        return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.clip(values, 0.0, 1.0).astype(np.float16)


def tight_crop(
    probability: np.ndarray, origin: tuple[int, int], precision: str = "uint8", padding: int = 4
) -> ClassCrop:
    """The stored crop of a map whose top-left pixel sits at ``origin`` in the image: cut to the
    padded box of values above the floor, quantized; the empty crop when there are none."""
    top, left, bottom, right = crop_box(probability, padding)
    values = probability[top:bottom, left:right]
    if values.size == 0:
        return ClassCrop((0, 0, 0, 0), quantize(values, precision))
    return ClassCrop((origin[0] + top, origin[1] + left, origin[0] + bottom, origin[1] + right), quantize(values, precision))


def dequantize(values: np.ndarray) -> np.ndarray:
    """Stored values back to float32 probabilities."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / np.float32(255.0)
    return values.astype(np.float32)


def write_store(
    path: PathLike,
    crops: list[ClassCrop],
    shape: tuple[int, int],
    precision: str = "uint8",
    classes: tuple[str, ...] = CLASSES,
    **metadata: object,
) -> None:
    """Write one image's crops (already quantized) atomically."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "classes": list(classes),
        "shape": list(shape),
        "precision": precision,
        "hbens": __version__,
        **metadata,
    }
    boxes = np.array([crop.box for crop in crops], np.int32).reshape(-1, 4)
    sizes = [crop.values.size for crop in crops]
    offsets = np.zeros(len(crops) + 1, np.int64)
    offsets[1:] = np.cumsum(sizes)
    dtype = PRECISIONS[precision]
    data = np.concatenate([crop.values.reshape(-1).astype(dtype, copy=False) for crop in crops]) if crops else np.empty(0, dtype)
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            np.savez_compressed(handle, meta=np.array(json.dumps(meta)), boxes=boxes, offsets=offsets, data=data)


READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy raises on a truncated, foreign or damaged ``.npz``."""


def _damaged(path: PathLike, problem: str) -> HbensError:
    return HbensError(f"{path}: {problem}; predict it again")


def _check_meta(meta: object, path: PathLike) -> dict:
    """The store's metadata; HbensError unless format, version, classes, shape, precision and image
    name are sound."""
    if not isinstance(meta, dict):
        raise _damaged(path, "meta is not a JSON object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise HbensError(
            f"{path}: format {clip(meta.get('format'), limit=40)} v{clip(meta.get('version'), limit=20)}, "
            f"expected {FORMAT} v{VERSION}; predict it again with this hbens"
        )
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(name, str) for name in classes):
        raise _damaged(path, "meta classes is not a list of class names")
    unknown = [name for name in classes if name not in CLASS_INDEX]
    if unknown:
        raise _damaged(path, f"meta classes has unknown name(s) {examples(unknown)}")
    if len(set(classes)) != len(classes):
        repeated = sorted({name for name in classes if classes.count(name) > 1}, key=CLASS_INDEX.__getitem__)
        raise _damaged(path, f"meta classes repeats {examples(repeated)}")
    shape = meta.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(n) is int and n > 0 for n in shape)):
        raise _damaged(path, f"meta shape {clip(shape, limit=40)} is not two positive whole numbers")
    if meta.get("precision") not in PRECISIONS:
        precision = clip(meta.get("precision"), limit=40)
        raise _damaged(path, f"meta precision {precision} is not one of {', '.join(PRECISIONS)}")
    if not isinstance(meta.get("image", ""), str):
        raise _damaged(path, f"meta image {clip(meta['image'], limit=40)} is not an image file name")
    return meta


def _check_boxes(boxes: np.ndarray, meta: dict, path: PathLike) -> None:
    """Refuse boxes that are not (C, 4) integers inside the image with top <= bottom and left <= right."""
    classes, (height, width) = meta["classes"], meta["shape"]
    if boxes.shape != (len(classes), 4) or boxes.dtype.kind not in "iu":
        raise _damaged(path, f"boxes are {boxes.dtype} {boxes.shape}, expected integers ({len(classes)}, 4)")
    top, left, bottom, right = boxes.astype(np.int64).T
    rows_inside = (0 <= top) & (top <= bottom) & (bottom <= height)
    bad = np.flatnonzero(~(rows_inside & (0 <= left) & (left <= right) & (right <= width)))
    if bad.size:
        shown = [f"{classes[i]} {tuple(int(v) for v in boxes[i])}" for i in bad]
        raise _damaged(path, f"box(es) outside the {height}x{width} image or inverted: {examples(shown)}")


def _check_offsets(offsets: np.ndarray, boxes: np.ndarray, size: int, meta: dict, path: PathLike) -> None:
    """Refuse offsets unless (C + 1,) integers from 0, stepping by the box areas, ending at ``size``."""
    classes = meta["classes"]
    if offsets.shape != (len(classes) + 1,) or offsets.dtype.kind not in "iu":
        expected = f"integers ({len(classes) + 1},)"
        raise _damaged(path, f"offsets are {offsets.dtype} {offsets.shape}, expected {expected}")
    top, left, bottom, right = boxes.astype(np.int64).T
    areas = (bottom - top) * (right - left)
    bad = np.flatnonzero(np.diff(offsets.astype(np.int64)) != areas)
    if offsets[0] != 0 or bad.size:
        shown = [classes[i] for i in bad]
        where = f"start {int(offsets[0])}, classes {examples(shown) or 'none'}"
        raise _damaged(path, f"offsets do not match the box sizes ({where})")
    if offsets[-1] != size:
        raise _damaged(path, f"offsets end at {int(offsets[-1])} but data holds {size} values")


def _check_data(data: np.ndarray, meta: dict, path: PathLike) -> None:
    """Refuse data unless 1-D of the stored precision, and float16 values unless finite in [0, 1]."""
    dtype = np.dtype(PRECISIONS[meta["precision"]])
    if data.ndim != 1 or data.dtype != dtype:
        raise _damaged(path, f"data is {data.dtype} {data.shape}, expected 1-D {dtype} as meta precision")
    if dtype == np.float16:
        bad = np.flatnonzero(~((data >= 0) & (data <= 1)))
        if bad.size:
            shown = ", ".join(str(float(data[i])) for i in bad[:3])
            raise _damaged(path, f"{bad.size} data value(s) not finite in [0, 1], e.g. {shown}")


def _read_store(path: PathLike) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Metadata, boxes, offsets and data of a store, each checked; HbensError naming what is wrong."""
    try:
        archive = np.load(path, allow_pickle=False)
    except READ_ERRORS as error:
        raise _damaged(path, f"not a readable hbens probability file ({clip(error)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _damaged(path, "a single numpy array, not an hbens probability file")
    with archive:
        try:
            missing = [name for name in ("meta", "boxes", "offsets", "data") if name not in archive.files]
            if "meta" in missing:
                raise _damaged(path, "not an hbens probability file (no meta array)")
            meta_array = archive["meta"]
            if meta_array.ndim != 0 or meta_array.dtype.kind != "U":
                raise _damaged(path, "meta is not a JSON text")
            meta = _check_meta(json.loads(str(meta_array)), path)
            if missing:
                raise _damaged(path, f"lacks the array(s) {examples(missing)}")
            boxes, offsets, data = archive["boxes"], archive["offsets"], archive["data"]
        except json.JSONDecodeError:
            raise _damaged(path, "meta is not valid JSON") from None
        except READ_ERRORS as error:
            raise _damaged(path, f"not a readable hbens probability file ({clip(error)})") from None
    _check_boxes(boxes, meta, path)
    _check_offsets(offsets, boxes, data.size, meta, path)
    _check_data(data, meta, path)
    return meta, boxes, offsets, data


class ProbabilityStore:
    """Read one stored image: metadata, one class at a time, or the whole (C, H, W) float32 map.

    Opening a store checks it whole (metadata types, boxes, offsets, data type and values), so a
    damaged or foreign file is refused in one line before any work, never half used.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.meta, self.boxes, self.offsets, self._data = _read_store(path)

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.meta["shape"])

    def stored_crop(self, index: int) -> ClassCrop:
        """A class's crop as stored (uint8 or float16)."""
        top, left, bottom, right = (int(v) for v in self.boxes[index])
        values = self._data[self.offsets[index] : self.offsets[index + 1]]
        return ClassCrop((top, left, bottom, right), values.reshape(bottom - top, right - left))

    def stored_crops(self) -> list[ClassCrop]:
        """Every class's crop as stored."""
        return [self.stored_crop(i) for i in range(len(self.classes))]

    def crop(self, index: int) -> ClassCrop:
        """A class's crop, dequantized to float32."""
        stored = self.stored_crop(index)
        return ClassCrop(stored.box, dequantize(stored.values))

    def class_map(self, index: int) -> np.ndarray:
        """The full (H, W) float32 probability map of one class."""
        out = np.zeros(self.shape, np.float32)
        crop = self.crop(index)
        top, left, bottom, right = crop.box
        out[top:bottom, left:right] = crop.values
        return out

    def to_array(self) -> np.ndarray:
        """The full (C, H, W) float32 map."""
        return np.stack([self.class_map(i) for i in range(len(self.classes))])


def load_probabilities(path: PathLike) -> np.ndarray:
    """The (C, H, W) float32 probabilities of one stored image."""
    return ProbabilityStore(path).to_array()


def is_valid_store(path: PathLike) -> bool:
    """True when ``path`` is a complete, readable store of this version (for ``--resume``)."""
    try:
        ProbabilityStore(path)
    except HbensError:
        return False
    return True


def crop_runs(crop: ClassCrop, shape: tuple[int, int], threshold: float):
    """Runs, in the frame of ``shape``, of ``probability > threshold`` over a class's crop.

    The comparison is the one of every hbens output: float32 values against a float32 threshold.
    """
    if crop.values.size == 0:
        return EMPTY_RUNS
    top, left, _, _ = crop.box
    return box_to_runs(dequantize(crop.values) > np.float32(threshold), top, left, shape)


def crops_to_rles(crops: Sequence[ClassCrop], shape: tuple[int, int], thresholds: Sequence[float]) -> list[str]:
    """Submission RLE of each class's crop: probability > threshold (stored or float values)."""
    return [runs_to_string(*crop_runs(crop, shape, threshold)) for crop, threshold in zip(crops, thresholds)]

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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hbens import __version__
from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.outputs import PathLike, atomic_path

FORMAT = "hbens-probabilities"
VERSION = 1
FLOOR = 1 / 255
"""Probabilities at or below this are not stored (read back as 0)."""
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


class ProbabilityStore:
    """Read one stored image: metadata, one class at a time, or the whole (C, H, W) float32 map."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                self.meta = json.loads(str(archive["meta"]))
                if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
                    raise HbensError(
                        f"{path}: format {self.meta.get('format')} v{self.meta.get('version')}, "
                        f"expected {FORMAT} v{VERSION}; predict it again with this hbens"
                    )
                self.boxes = archive["boxes"]
                self.offsets = archive["offsets"]
                self._data = archive["data"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise HbensError(f"{path}: not a readable hbens probability file ({error}); predict it again") from None
        if self.offsets[-1] != self._data.size or len(self.boxes) != len(self.classes):
            raise HbensError(f"{path}: inconsistent sizes; the file is damaged, predict it again")

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


def crops_to_rles(crops: Sequence[ClassCrop], shape: tuple[int, int], thresholds: Sequence[float]) -> list[str]:
    """Submission RLE of each class's crop: probability > threshold (stored or float values)."""
    from hbens.rle import box_to_runs, runs_to_string

    rles = []
    for crop, threshold in zip(crops, thresholds):
        if crop.values.size == 0:
            rles.append("")
            continue
        top, left, _, _ = crop.box
        mask = dequantize(crop.values) > np.float32(threshold)
        rles.append(runs_to_string(*box_to_runs(mask, top, left, shape)))
    return rles

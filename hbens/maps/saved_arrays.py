"""What another team's saved per-image array (``.npy``, ``.npz``, ``.pt``) means, as hbens probability crops.

A peer's saved output is one file per image holding a per-class map, in one of a few layouts
(``(C, H, W)``, ``(H, W, C)``, ``(C, 1, H, W)``, ``(1, C, H, W)``) and kinds (logits,
probabilities, or probabilities times N as integers), at full or low resolution.  Each layout
and kind is a named adapter in a registry; :class:`ArrayFormat` names the ones to use where the
file cannot tell.  Every class is cut to the crop where its probability exceeds
:data:`~hbens.maps.probabilities.FLOOR` before anything is converted, so a full (29, 2048, 2048)
float map is never built: a full-size map is converted over its crop only, a low-resolution
map is resized bilinearly on logits over the crop only (:mod:`hbens.maps.upsample`).

Read directly (precision :data:`EXACT`, what ``fuse``, ``score``, ``crf``, ``tune`` and ``apply``
do), a file keeps its own precision: uint8 levels stay uint8 (``v / 255`` is what a uint8 store
holds), every other array is read as float32 probabilities, never rounded to 1/255, and only
probabilities at or below :data:`EXACT_FLOOR` are left out of the crops.  ``hbens import`` stores
an array in the precision its dtype calls for (:func:`store_precision`).

The files themselves (readers, headers, folders, one file read as an image) are
:mod:`hbens.maps.array_files`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError
from hbens.maps.probabilities import FLOOR, PRECISIONS, PROBABILITY_CLIP, ClassCrop, crop_box, tight_crop
from hbens.maps.upsample import source_box, upsample_crop
from hbens.outputs import PathLike

PADDING = 4
"""Pixels kept around each class's crop (as in ``hbens predict``)."""
PROBABILITY_SLACK = 1e-3
"""Probabilities may overshoot [0, 1] by this much (float16 rounding) and still count as probabilities."""
EXACT = "exact"
"""The precision of a saved array read directly: its own (uint8 levels as uint8, anything else float32)."""
EXACT_FLOOR = 1e-5
"""Read directly, probabilities at or below this count as 0 (outside the crops): a weighted mean of
maps moves by at most this much, and a uint16 map of p x 10000 (or a uint8 one) loses nothing."""
MESSAGE_LIMIT = 300
"""Characters of a one-line message about a file, at most."""


def fail(path: PathLike, problem: str) -> HbensError:
    """A one-line error about ``path``, shortened to :data:`MESSAGE_LIMIT` characters."""
    text = " ".join(f"{path}: {problem}".split())
    return HbensError(text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "...")


def listed(names: list[str], limit: int = 8) -> str:
    """The first ``limit`` of ``names``, quoted and comma-separated, and how many more there are."""
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Logits:
    """Values are logits: p = sigmoid(value)."""

    name = "logits"

    def check(self, path: PathLike, low: float, high: float) -> None:
        """Any finite value is a logit."""

    def floor(self, p: float = FLOOR) -> float:
        """The value at which the probability equals ``p``."""
        return math.log(p / (1 - p))

    def probabilities(self, values: np.ndarray) -> np.ndarray:
        return _sigmoid(values.astype(np.float32))

    def logits(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32)


@dataclass(frozen=True)
class Scaled:
    """Values are probabilities times ``scale`` (1 for plain probabilities): p = value / scale."""

    scale: float

    @property
    def name(self) -> str:
        return "probs" if self.scale == 1 else f"scaled:{self.scale:g}"

    def check(self, path: PathLike, low: float, high: float) -> None:
        """Refuse values that are not probabilities times the scale."""
        slack = PROBABILITY_SLACK * self.scale
        if low < -slack or high > self.scale + slack:
            raise fail(path, f"values in [{low:g}, {high:g}] are not {self.name} (0 to {self.scale:g}); "
                             "set --kind logits, probs or scaled:N")

    def floor(self, p: float = FLOOR) -> float:
        """The value at which the probability equals ``p``."""
        return p * self.scale

    def probabilities(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values.astype(np.float32) / np.float32(self.scale), 0, 1)

    def logits(self, values: np.ndarray) -> np.ndarray:
        low, high = np.float32(PROBABILITY_CLIP), np.float32(1 - PROBABILITY_CLIP)
        p = np.clip(self.probabilities(values), low, high)
        return np.log(p) - np.log1p(-p)


Kind = Logits | Scaled

KINDS: dict[str, Callable[[str], Kind]] = {
    "logits": lambda argument: Logits(),
    "probs": lambda argument: Scaled(1.0),
    "scaled": lambda argument: Scaled(float(argument)),
}
"""``--kind`` names (``scaled:N`` takes its scale after the colon) to the conversion they stand for."""

AUTO_RULES: tuple[tuple[Callable[[np.dtype, float, float], bool], str], ...] = (
    (lambda dtype, low, high:
     dtype.kind == "f" and not -PROBABILITY_SLACK <= low <= high <= 1 + PROBABILITY_SLACK,
     "logits"),
    (lambda dtype, low, high: dtype.kind in "fb", "probs"),
    (lambda dtype, low, high: dtype == np.uint8 and high <= 1, "probs"),
    (lambda dtype, low, high: dtype == np.uint8, "scaled:255"),
    (lambda dtype, low, high: dtype == np.uint16 and high > 255, "scaled:10000"),
)
"""``--kind auto``: the first rule matching (dtype, min, max) names the kind.  A uint8 map of 0 and 1
is a mask (probabilities), not probabilities times 255, which would all fall below the floor."""


def parse_kind(text: str) -> Kind:
    """A ``--kind`` value other than ``auto`` (``logits``, ``probs``, ``scaled:N``) as its conversion."""
    name, _, argument = text.partition(":")
    factory = KINDS.get(name)
    try:
        kind = factory(argument) if factory is not None and bool(argument) == (name == "scaled") else None
    except ValueError:
        kind = None
    if kind is None or (isinstance(kind, Scaled) and not (math.isfinite(kind.scale) and kind.scale > 0)):
        raise HbensError(f"--kind {text}: valid kinds are auto, logits, probs, scaled:N "
                         "(N > 0, e.g. scaled:10000)")
    return kind


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.float32(1) / (np.float32(1) + np.exp(-logits))


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class ArrayFormat:
    """How to read a folder of saved arrays where the files themselves cannot tell.

    Parameters
    ----------
    key
        The array to read from an ``.npz`` or a dict saved in a ``.pt``; None takes the only one.
        A ``.npy`` holds one array and ignores it.
    kind
        ``auto`` (from the dtype and range), ``logits``, ``probs``, or ``scaled:N`` (integer
        probabilities times N, e.g. ``scaled:10000``).
    classes
        Class names in the file's channel order (a subset of the competition's is allowed).
    drop_channel
        A channel of the file to drop (e.g. 0 for nnU-Net's background; negative counts from the
        end); the others are ``classes``.
    size
        The size (H, W) to read at (a map of another size is resized); None: the map's own size.
        Commands that read maps give the frame (see :mod:`hbens.frames`), never smaller than a map.
    """

    key: str | None = None
    kind: str = "auto"
    classes: tuple[str, ...] = CLASSES
    drop_channel: int | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.size is not None:
            object.__setattr__(self, "size", tuple(self.size))
        if self.kind != "auto":
            parse_kind(self.kind)
        unknown = [name for name in self.classes if name not in CLASS_INDEX]
        if not self.classes or unknown:
            raise HbensError(f"--classes: unknown class {listed(unknown or [''], 3)}; "
                             f"use names like {CLASSES[0]}, {CLASSES[-1]} in the file's channel order")
        if len(set(self.classes)) != len(self.classes):
            raise HbensError("--classes: a class is named twice; list each channel's class once")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise HbensError(f"--size {self.size}: give a positive height and width")
        if self.drop_channel is not None and not -self.channels <= self.drop_channel < self.channels:
            raise HbensError(f"--drop-channel {self.drop_channel}: with {len(self.classes)} classes the file "
                             f"has channels 0 to {self.channels - 1}")

    @property
    def channels(self) -> int:
        """How many channels the file's channel axis has."""
        return len(self.classes) + (self.drop_channel is not None)




# ---------------------------------------------------------------------------- layouts


LAYOUTS: dict[str, Callable[[np.ndarray, int], np.ndarray | None]] = {
    "CHW": lambda a, n: a if a.ndim == 3 and a.shape[0] == n else None,
    "HWC": lambda a, n: a.transpose(2, 0, 1) if a.ndim == 3 and a.shape[2] == n else None,
    "C1HW": lambda a, n: a[:, 0] if a.ndim == 4 and a.shape[:2] == (n, 1) else None,
    "1CHW": lambda a, n: a[0] if a.ndim == 4 and a.shape[:2] == (1, n) else None,
}
"""Layout name to an adapter: (array, channels) -> a (channels, H, W) view, or None when it does not
fit.  The first that fits wins; the channel axis is the one of length ``channels``."""


def channels_first(
    path: PathLike, array: np.ndarray, fmt: ArrayFormat
) -> tuple[str, np.ndarray, list[int]]:
    """The layout's name, the (channels, H, W) view of ``array``, and the channel index of each class."""
    for name, adapter in LAYOUTS.items():
        view = adapter(array, fmt.channels)
        if view is not None:
            break
    else:
        dropped = " plus the dropped one" if fmt.drop_channel is not None else ""
        raise fail(path, f"shape {array.shape} has no axis of {fmt.channels} channels "
                         f"({len(fmt.classes)} classes{dropped}); set --classes or --drop-channel "
                         f"(layouts: {', '.join(LAYOUTS)})")
    indices = list(range(fmt.channels))
    if fmt.drop_channel is not None:
        del indices[fmt.drop_channel]
    return name, view, indices


# ---------------------------------------------------------------------------- values


def check_numbers(path: PathLike, dtype: np.dtype) -> None:
    """Refuse an array whose values are not numbers (strings, objects, records)."""
    if dtype.kind not in "biuf":
        raise fail(path, f"holds {dtype} values, not numbers; choose another --key")


def value_range(path: PathLike, view: np.ndarray, indices: list[int]) -> tuple[float, float]:
    """Smallest and largest value of the kept channels, one channel at a time; refuse NaN and infinity."""
    check_numbers(path, view.dtype)
    if view[0].size == 0:
        raise fail(path, f"holds an empty map {view.shape}; choose another --key")
    lows, highs = zip(*((float(view[i].min()), float(view[i].max())) for i in indices))
    if not all(map(math.isfinite, lows + highs)):
        raise fail(path, "holds NaN or infinite values; save the model's outputs again")
    return min(lows), max(highs)


def resolve_kind(path: PathLike, kind: str, dtype: np.dtype, low: float, high: float) -> Kind:
    """The conversion for ``kind`` (detected from dtype and range for ``auto``), checked against the range."""
    if kind == "auto":
        kind = next((name for rule, name in AUTO_RULES if rule(dtype, low, high)), "")
        if not kind:
            raise fail(path, f"cannot tell what {dtype} values in [{low:g}, {high:g}] are; "
                             "set --kind logits, probs or scaled:N")
    resolved = parse_kind(kind)
    resolved.check(path, low, high)
    return resolved


# ---------------------------------------------------------------------------- crops


def crop_floor(precision: str) -> float:
    """The probability at or below which a class's pixels are left out of its crop: the stores'
    :data:`~hbens.maps.probabilities.FLOOR`, or :data:`EXACT_FLOOR` for float32 crops read directly."""
    return FLOOR if precision in PRECISIONS else EXACT_FLOOR


def raw_floor(kind: Kind, dtype: np.dtype, precision: str = "uint8") -> int | np.floating:
    """The file's value just below the floor of ``precision`` (:func:`crop_floor`), in its own dtype: a
    box of the raw values above it holds every pixel with p above the floor (whatever the rounding of
    the conversion), and comparing converts nothing."""
    floor = kind.floor(crop_floor(precision))
    if dtype.kind in "biu":
        return math.ceil(floor) - 1
    below = floor - 1e-4 * max(1.0, abs(floor))
    value = dtype.type(below)
    return value if value <= below else np.nextafter(value, dtype.type(-np.inf))


def class_crop(probability: np.ndarray, origin: tuple[int, int], precision: str) -> ClassCrop:
    """The crop of a float32 map whose top-left pixel sits at ``origin``: a store's (quantized to
    ``precision``, see :func:`~hbens.maps.probabilities.tight_crop`), or for ``float32`` the padded box of
    p > :data:`EXACT_FLOOR` with its values as they are."""
    if precision in PRECISIONS:
        return tight_crop(probability, origin, precision, PADDING)
    top, left, bottom, right = crop_box(probability, PADDING, EXACT_FLOOR)
    if bottom == top:
        return ClassCrop((0, 0, 0, 0), np.zeros((0, 0), np.float32))
    values = probability[top:bottom, left:right].astype(np.float32)
    return ClassCrop((origin[0] + top, origin[1] + left, origin[0] + bottom, origin[1] + right), values)


def full_size_crops(view: np.ndarray, indices: list[int], kind: Kind, precision: str) -> list[ClassCrop]:
    """Each class cut to its padded box of p above the floor (:func:`crop_floor`) on the raw values, then
    converted over that box only."""
    threshold = raw_floor(kind, view.dtype, precision)
    crops = []
    for index in indices:
        channel = view[index]
        top, left, bottom, right = crop_box(channel, PADDING, threshold)
        probability = kind.probabilities(channel[top:bottom, left:right])
        crops.append(class_crop(probability, (top, left), precision))
    return crops


def resized_crops(
    view: np.ndarray, indices: list[int], kind: Kind, size: tuple[int, int], precision: str
) -> list[ClassCrop]:
    """Each class's logits resized bilinearly (half-pixel centres) to ``size`` over its crop only, then
    turned into probabilities; a class with no value above the floor gets the empty crop."""
    threshold = raw_floor(kind, view.dtype, precision)
    crops = []
    for index in indices:
        channel = view[index]
        above = channel > threshold
        box = source_box(above.any(axis=1), above.any(axis=0), size)
        if box is None:
            crops.append(class_crop(np.zeros((0, 0), np.float32), (0, 0), precision))
            continue
        probability = _sigmoid(upsample_crop(kind.logits(channel), size, box))
        crops.append(class_crop(probability, box[:2], precision))
    return crops


def image_size(shape: tuple[int, int], size: tuple[int, int] | None) -> tuple[int, int]:
    """The size a map of ``shape`` is read at: ``size`` (it is resized to it), else its own (commands that
    read maps choose ``size``, the frame, by :mod:`hbens.frames`)."""
    return tuple(shape) if size is None else tuple(size)


# ---------------------------------------------------------------------------- precision


AUTO = "auto"
"""The precision of ``hbens import`` by default: the one the source's dtype calls for (:func:`store_precision`)."""


def store_precision(dtype: np.dtype) -> str:
    """The store precision that keeps a saved array of ``dtype`` best: ``uint8`` for uint8 and bool
    arrays (probabilities times 255, or masks), ``float16`` for any other (uint16 p x 10000, floats)."""
    return "uint8" if np.dtype(dtype) in (np.dtype(np.uint8), np.dtype(bool)) else "float16"


def exact_precision(dtype: np.dtype, kind: Kind, resized: bool) -> str:
    """The crops' precision when a saved array is read directly (:data:`EXACT`): ``uint8`` when that
    holds its values exactly (uint8 levels or masks at their own size), else ``float32``."""
    levels = isinstance(kind, Scaled) and kind.scale in (1, 255)
    return "uint8" if store_precision(dtype) == "uint8" and levels and not resized else "float32"

"""Arrays that other teams saved per image (``.npy``, ``.npz``, ``.pt``) read as hbens probability crops.

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
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError
from hbens.outputs import PathLike
from hbens.maps.upsample import source_box, upsample_crop
from hbens.maps.probabilities import FLOOR, FORMAT, PRECISIONS, ClassCrop, crop_box, tight_crop

PADDING = 4
"""Pixels kept around each class's crop (as in ``hbens predict``)."""
PROBABILITY_CLIP = 1e-6
"""Probabilities are clipped to [clip, 1 - clip] before taking their logit for resizing."""
PROBABILITY_SLACK = 1e-3
"""Probabilities may overshoot [0, 1] by this much (float16 rounding) and still count as probabilities."""
EXACT = "exact"
"""The precision of a saved array read directly: its own (uint8 levels as uint8, anything else float32)."""
EXACT_FLOOR = 1e-5
"""Read directly, probabilities at or below this count as 0 (outside the crops): a weighted mean of
maps moves by at most this much, and a uint16 map of p x 10000 (or a uint8 one) loses nothing."""
MESSAGE_LIMIT = 300


def _fail(path: PathLike, problem: str) -> HbensError:
    """A one-line error about ``path``, shortened to :data:`MESSAGE_LIMIT` characters."""
    text = " ".join(f"{path}: {problem}".split())
    return HbensError(text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "...")


def _listed(names: list[str], limit: int = 8) -> str:
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
            raise _fail(path, f"values in [{low:g}, {high:g}] are not {self.name} (0 to {self.scale:g}); "
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
            raise HbensError(f"--classes: unknown class {_listed(unknown or [''], 3)}; "
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


# ---------------------------------------------------------------------------- files


def _pick(path: Path, names: list[str], key: str | None) -> str:
    """The array to read: ``key``, or the only one."""
    if key is not None and key not in names:
        raise _fail(path, f"no array {key!r}; it holds {_listed(names)}; choose one with --key")
    if key is None and len(names) != 1:
        found = f"arrays {_listed(names)}" if names else "no arrays"
        raise _fail(path, f"holds {found}; choose one with --key")
    return key if key is not None else names[0]


def _read_npy(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    except (OSError, ValueError, EOFError) as error:
        raise _fail(path, f"not a readable .npy ({error}); save it with np.save") from None


def _read_npz(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            name = _pick(path, list(archive.files), key)
            return archive[name], name
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _fail(path, f"not a readable .npz ({error}); save it with np.savez or choose another --key"
                    ) from None


def _read_torch(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if zipfile.is_zipfile(path):
            raise _fail(path, "holds pickled Python objects, not loaded for safety; "
                              "torch.save a tensor or a dict of tensors instead") from None
        raise _fail(path, f"not a readable torch.save file ({str(error).splitlines()[0]})") from None
    except (OSError, RuntimeError, EOFError) as error:
        raise _fail(path, f"not a readable torch.save file ({error})") from None
    if isinstance(loaded, torch.Tensor):
        tensor, name = loaded, None
    elif isinstance(loaded, dict):
        tensors = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        name = _pick(path, list(tensors), key)
        tensor = tensors[name]
    else:
        raise _fail(path, f"holds a {type(loaded).__name__}; torch.save a tensor or a dict of tensors")
    tensor = tensor.detach()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy(), name


READERS: dict[str, Callable[[Path, str | None], tuple[np.ndarray, str | None]]] = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".pt": _read_torch,
    ".pth": _read_torch,
}
"""File suffix to its reader: (path, key) -> (array, key read or None)."""


HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
"""``.npy`` format versions whose header gives shape and dtype without reading the data."""

Header = tuple[tuple[int, ...], np.dtype]


def _npy_header(handle) -> Header | None:
    """Shape and dtype from an open ``.npy`` stream's header; None for a format version not listed."""
    reader = HEADER_READERS.get(np.lib.format.read_magic(handle))
    if reader is None:
        return None
    shape, _, dtype = reader(handle)
    return shape, dtype


def _probe_npy(path: Path, key: str | None) -> Header | None:
    try:
        with open(path, "rb") as handle:
            return _npy_header(handle)
    except (OSError, ValueError, EOFError) as error:
        raise _fail(path, f"not a readable .npy ({error}); save it with np.save") from None


def _probe_npz(path: Path, key: str | None) -> Header | None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".npy")]
            name = _pick(path, [member[:-4] for member in members], key)
            with archive.open(f"{name}.npy") as handle:
                return _npy_header(handle)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _fail(path, f"not a readable .npz ({error}); save it with np.savez or choose another --key"
                    ) from None


PROBES: dict[str, Callable[[Path, str | None], Header | None]] = {".npy": _probe_npy, ".npz": _probe_npz}
"""File suffix to a reader of the chosen array's header: (path, key) -> (shape, dtype); torch files have
none (only loading them tells)."""


def load_array(path: PathLike, *, key: str | None = None) -> tuple[np.ndarray, str | None]:
    """The one array that ``path`` holds (or its array ``key``) and the key it was read from.

    ``.npy`` is memory-mapped, ``.npz`` read with ``allow_pickle=False``, ``.pt``/``.pth`` with
    ``torch.load(weights_only=True)`` so that no file can run code.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise _fail(path, f"not a saved array; expected one of {', '.join(READERS)}")
    if not path.is_file():
        raise _fail(path, "no such file; check the path")
    return reader(path, key)


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
        raise _fail(path, f"shape {array.shape} has no axis of {fmt.channels} channels "
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
        raise _fail(path, f"holds {dtype} values, not numbers; choose another --key")


def value_range(path: PathLike, view: np.ndarray, indices: list[int]) -> tuple[float, float]:
    """Smallest and largest value of the kept channels, one channel at a time; refuse NaN and infinity."""
    check_numbers(path, view.dtype)
    if view[0].size == 0:
        raise _fail(path, f"holds an empty map {view.shape}; choose another --key")
    lows, highs = zip(*((float(view[i].min()), float(view[i].max())) for i in indices))
    if not all(map(math.isfinite, lows + highs)):
        raise _fail(path, "holds NaN or infinite values; save the model's outputs again")
    return min(lows), max(highs)


def resolve_kind(path: PathLike, kind: str, dtype: np.dtype, low: float, high: float) -> Kind:
    """The conversion for ``kind`` (detected from dtype and range for ``auto``), checked against the range."""
    if kind == "auto":
        kind = next((name for rule, name in AUTO_RULES if rule(dtype, low, high)), "")
        if not kind:
            raise _fail(path, f"cannot tell what {dtype} values in [{low:g}, {high:g}] are; "
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


# ---------------------------------------------------------------------------- images


@dataclass
class SavedImage:
    """One image's saved array as hbens crops (full-image coordinates), with where it came from and
    the store precision its dtype calls for (:func:`store_precision`)."""

    name: str
    shape: tuple[int, int]
    classes: tuple[str, ...]
    crops: list[ClassCrop]
    source: str
    store_precision: str = "uint8"


def image_name(path: PathLike) -> str:
    """The image a saved array belongs to: its stem plus ``.png`` (a stem ending in ``.png`` is kept)."""
    stem = Path(path).stem
    return stem if stem.lower().endswith(".png") else f"{stem}.png"


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


def _check_precision(precision: str) -> None:
    allowed = (*PRECISIONS, AUTO, EXACT)
    if precision not in allowed:
        raise HbensError(f"--precision {precision}: valid precisions are {', '.join(allowed)}")


def read_saved_image(
    path: PathLike, fmt: ArrayFormat = ArrayFormat(), *, precision: str = "uint8"
) -> SavedImage:
    """Read one saved array as per-class probability crops in full-image coordinates.

    Module-level and picklable, so that it can run on Dask workers.

    Parameters
    ----------
    path
        A ``.npy``, ``.npz``, ``.pt`` or ``.pth`` file holding one image's per-class map.
    fmt
        What the file cannot tell: its key, kind, classes, a channel to drop, the image size.
    precision
        The store's precision, ``uint8`` (steps of 1/255) or ``float16``, or :data:`AUTO` for the one
        the file's dtype calls for (:func:`store_precision`); or :data:`EXACT` (reading directly):
        the file's own (:func:`exact_precision`), uint8 or float32 crops never rounded.

    Returns
    -------
    SavedImage
        The image name (file stem + ``.png``), size, classes, quantized crops, and ``source``:
        file[key], dtype[shape], layout, kind, and any dropped channel or resize.

    Raises
    ------
    HbensError
        One line naming the file and the option that resolves the problem, for any bad input.
    """
    _check_precision(precision)
    path = Path(path)
    array, key = load_array(path, key=fmt.key)
    layout, view, indices = channels_first(path, array, fmt)
    low, high = value_range(path, view, indices)
    kind = resolve_kind(path, fmt.kind, view.dtype, low, high)
    own = view.shape[1:]
    size = image_size(own, fmt.size)
    if precision == EXACT:
        precision = exact_precision(view.dtype, kind, size != own)
    elif precision == AUTO:
        precision = store_precision(view.dtype)
    if size == own:
        crops = full_size_crops(view, indices, kind, precision)
    else:
        crops = resized_crops(view, indices, kind, size, precision)
    source = " ".join(
        [path.name + (f"[{key}]" if key is not None else ""), f"{array.dtype}{list(array.shape)}", layout,
         kind.name]
        + ([f"drop:{fmt.drop_channel}"] if fmt.drop_channel is not None else [])
        + ([f"resized:{own[0]}x{own[1]}->{size[0]}x{size[1]}"] if size != own else [])
    )
    return SavedImage(image_name(path), size, tuple(fmt.classes), crops, source, store_precision(array.dtype))


def probe_saved_array(path: PathLike, fmt: ArrayFormat = ArrayFormat()) -> tuple[int, int] | None:
    """The image size ``path`` would be read at, from its header alone, after the checks that need no values.

    The checks are those of :func:`read_saved_image` on the array to read (``--key``), its dtype and
    its layout; values (NaN, kind) are checked when the file is read.

    Returns
    -------
    tuple of int or None
        (H, W); None when only loading the file tells (``.pt``/``.pth``, rare ``.npy`` versions).

    Raises
    ------
    HbensError
        The one line :func:`read_saved_image` would give for the same problem.
    """
    path = Path(path)
    probe = PROBES.get(path.suffix.lower())
    header = probe(path, fmt.key) if probe is not None else None
    if header is None:
        return None
    shape, dtype = header
    check_numbers(path, dtype)
    _, view, _ = channels_first(path, np.broadcast_to(np.zeros((), dtype), shape), fmt)
    return image_size(view.shape[1:], fmt.size)


def check_saved_arrays(paths: Sequence[PathLike], fmt: ArrayFormat = ArrayFormat()) -> None:
    """Refuse, before any work, files that cannot be read with ``fmt`` (from their headers, see
    :func:`probe_saved_array`) or that hold maps of different image sizes."""
    first: tuple[Path, tuple[int, int]] | None = None
    for path in map(Path, paths):
        size = probe_saved_array(path, fmt)
        if size is None:
            continue
        if first is None:
            first = path, size
        elif size != first[1]:
            raise _fail(path, f"maps of a {size[0]}x{size[1]} image, but {first[0].name} of a "
                              f"{first[1][0]}x{first[1][1]} one; keep one image size per folder or give the frame (--image-size)")


# ---------------------------------------------------------------------------- folders


def is_hbens_store(path: PathLike) -> bool:
    """True when ``path`` is an ``.npz`` whose ``meta`` says it is an hbens probability store."""
    if Path(path).suffix.lower() != ".npz":
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return "meta" in archive.files and json.loads(str(archive["meta"])).get("format") == FORMAT
    except (OSError, ValueError, EOFError, AttributeError, zipfile.BadZipFile):
        return False


def map_files(paths: Iterable[Path]) -> list[Path]:
    """The regular files among ``paths`` (named like maps), sorted by name: FIFOs, sockets and devices are
    skipped (opening one could block forever); a folder named like a map is refused in one line."""
    files = []
    for path in paths:
        if path.is_dir():
            raise HbensError(f"{path}: a folder named like a probability map ({path.suffix}); rename it or "
                             "move it out of the map folder")
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.name)


def _array_files(folder: Path) -> list[Path]:
    return map_files(p for p in folder.rglob("*") if p.suffix.lower() in READERS and not p.name.startswith("."))


def find_saved_arrays(folder: PathLike) -> list[Path]:
    """The saved arrays under ``folder`` (recursively; hbens stores left out), sorted by name.

    Raises HbensError when the folder is missing or two files would import to the same image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HbensError(f"{folder}: no such folder; pass the folder of saved .npy/.npz/.pt files")
    paths = [path for path in _array_files(folder) if not is_hbens_store(path)]
    seen: dict[str, Path] = {}
    for path in paths:
        name = image_name(path)
        if name in seen:
            raise _fail(path, f"also image {name} (as {seen[name]}); keep one file per image")
        seen[name] = path
    return paths


def is_saved_array_folder(folder: PathLike) -> bool:
    """True when ``folder`` holds saved arrays (``.npy``, ``.npz``, ``.pt``, ``.pth``) and no hbens store."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    paths = _array_files(folder)
    return bool(paths) and not any(is_hbens_store(path) for path in paths)

"""Saved arrays as files: ``.npy``, ``.npz`` and ``.pt``/``.pth`` read, probed and found in folders.

Each suffix has a reader (:data:`READERS`: the one array a file holds, or its ``--key``) and,
where the format allows, a probe of that array's header (:data:`PROBES`: its shape and dtype,
without reading the data); no reader runs code from a file.  :func:`read_saved_image` reads one
file as an image's probability crops (what its values mean, its layout and its crops are
:mod:`hbens.maps.saved_arrays`'s), :func:`check_saved_arrays` checks files from their headers
before any work, and :func:`find_saved_arrays` lists a folder's saved arrays, hbens stores left out.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from hbens.errors import HbensError
from hbens.maps.probabilities import FORMAT, PRECISIONS, ClassCrop
from hbens.maps.saved_arrays import (
    AUTO,
    EXACT,
    ArrayFormat,
    channels_first,
    check_numbers,
    exact_precision,
    fail,
    full_size_crops,
    image_size,
    listed,
    resized_crops,
    resolve_kind,
    store_precision,
    value_range,
)
from hbens.outputs import PathLike


def _pick(path: Path, names: list[str], key: str | None) -> str:
    """The array to read: ``key``, or the only one."""
    if key is not None and key not in names:
        raise fail(path, f"no array {key!r}; it holds {listed(names)}; choose one with --key")
    if key is None and len(names) != 1:
        found = f"arrays {listed(names)}" if names else "no arrays"
        raise fail(path, f"holds {found}; choose one with --key")
    return key if key is not None else names[0]


def _read_npy(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None
    except (OSError, ValueError, EOFError) as error:
        raise fail(path, f"not a readable .npy ({error}); save it with np.save") from None


def _read_npz(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            name = _pick(path, list(archive.files), key)
            return archive[name], name
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise fail(path, f"not a readable .npz ({error}); save it with np.savez or choose another --key"
                    ) from None


def _read_torch(path: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if zipfile.is_zipfile(path):
            raise fail(path, "holds pickled Python objects, not loaded for safety; "
                             "torch.save a tensor or a dict of tensors instead") from None
        raise fail(path, f"not a readable torch.save file ({str(error).splitlines()[0]})") from None
    except (OSError, RuntimeError, EOFError) as error:
        raise fail(path, f"not a readable torch.save file ({error})") from None
    if isinstance(loaded, torch.Tensor):
        tensor, name = loaded, None
    elif isinstance(loaded, dict):
        tensors = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        name = _pick(path, list(tensors), key)
        tensor = tensors[name]
    else:
        raise fail(path, f"holds a {type(loaded).__name__}; torch.save a tensor or a dict of tensors")
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
        raise fail(path, f"not a readable .npy ({error}); save it with np.save") from None


def _probe_npz(path: Path, key: str | None) -> Header | None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".npy")]
            name = _pick(path, [member[:-4] for member in members], key)
            with archive.open(f"{name}.npy") as handle:
                return _npy_header(handle)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise fail(path, f"not a readable .npz ({error}); save it with np.savez or choose another --key"
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
        raise fail(path, f"not a saved array; expected one of {', '.join(READERS)}")
    if not path.is_file():
        raise fail(path, "no such file; check the path")
    return reader(path, key)


# ---------------------------------------------------------------------------- images


@dataclass
class SavedImage:
    """One image's saved array as hbens crops (full-image coordinates), with where it came from and
    the store precision its dtype calls for (:func:`~hbens.maps.saved_arrays.store_precision`)."""

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
        The store's precision, ``uint8`` (steps of 1/255) or ``float16``, or ``auto`` for the one
        the file's dtype calls for (:func:`~hbens.maps.saved_arrays.store_precision`); or ``exact``
        (reading directly): the file's own (:func:`~hbens.maps.saved_arrays.exact_precision`), uint8
        or float32 crops never rounded.

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
            raise fail(path, f"maps of a {size[0]}x{size[1]} image, but {first[0].name} of a "
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
            raise fail(path, f"also image {name} (as {seen[name]}); keep one file per image")
        seen[name] = path
    return paths


def is_saved_array_folder(folder: PathLike) -> bool:
    """True when ``folder`` holds saved arrays (``.npy``, ``.npz``, ``.pt``, ``.pth``) and no hbens store."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    paths = _array_files(folder)
    return bool(paths) and not any(is_hbens_store(path) for path in paths)

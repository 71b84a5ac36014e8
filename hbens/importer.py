"""``hbens import``: a folder of another pipeline's saved arrays converted to hbens probability stores.

Each file is one task of :mod:`hbens.pipeline` (:func:`import_task` wraps
:func:`import_image`), so ``--workers`` and ``--scheduler`` apply and memory
holds one image's arrays per worker.  A store records what it was made from
(:func:`source_record`: the source file's size and modification time, the
array options and the precision); ``--resume`` keeps a store only when that record is unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hbens.errors import HbensError
from hbens.execution import Execution, path_field
from hbens.maps.array_files import (
    check_saved_arrays,
    find_saved_arrays,
    image_name,
    probe_saved_array,
    read_saved_image,
)
from hbens.maps.probabilities import PRECISIONS, ProbabilityStore, write_store
from hbens.maps.saved_arrays import AUTO, ArrayFormat
from hbens.outputs import PathLike, refuse_input
from hbens.paths import output_folders
from hbens.pipeline import ImageOutput, RunSummary, run_images, sum_fields
from hbens.resume import stale_reason


@dataclass(frozen=True)
class ImportTotals:
    """What an import did (adds up over images): images imported and resumed, stores found but redone
    (and why), bytes read from the saved arrays and written as stores (imported images only), and
    how many stores came from each kind of source (see :func:`source_kind`)."""

    imported: int = 0
    resumed: int = 0
    redone: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    source_bytes: int = 0
    store_bytes: int = 0
    sources: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: ImportTotals) -> ImportTotals:
        return sum_fields(self, other)


@dataclass(frozen=True, kw_only=True)
class ImportItem:
    """One file of ``hbens import``: the saved array, the store folder and how to read and store it."""

    source: str = path_field()
    output: str = path_field()
    format: ArrayFormat
    precision: str = AUTO
    resume: bool = False


def source_record(path: PathLike, fmt: ArrayFormat, precision: str) -> dict[str, object]:
    """What a store imported from ``path`` depends on, as JSON stores it: the file's size and
    modification time (ns), the :class:`ArrayFormat` and the precision (``--resume`` compares it)."""
    status = Path(path).stat()
    record = {"bytes": status.st_size, "mtime_ns": status.st_mtime_ns, "format": asdict(fmt),
              "precision": precision}
    return json.loads(json.dumps(record))


@dataclass
class ImportStats:
    """What importing one file wrote."""

    name: str
    store: Path
    source: str
    source_bytes: int
    store_bytes: int
    seconds: float


def store_path(path: PathLike, output_folder: PathLike) -> Path:
    """Where the store of a saved array goes: ``output_folder/<image stem>.npz``."""
    return Path(output_folder) / f"{Path(image_name(path)).stem}.npz"


def import_image(
    path: PathLike, output_folder: PathLike, fmt: ArrayFormat = ArrayFormat(), *, precision: str = AUTO
) -> ImportStats:
    """Read one saved array and write it as an hbens probability store ``output_folder/<stem>.npz``,
    in ``precision`` (``uint8``, ``float16``, or :data:`AUTO`: the one the file's dtype calls for).

    The store's metadata records ``image``, ``source`` (see :func:`read_saved_image`) and ``made``
    (see :func:`source_record`).

    Returns
    -------
    ImportStats
        The image name, the store's path, the source string, both file sizes and the seconds taken.

    Raises
    ------
    HbensError
        As :func:`read_saved_image`, or when the store would replace the input; nothing is written.
    """
    started = time.perf_counter()
    if precision not in (*PRECISIONS, AUTO):
        raise HbensError(f"--precision {precision}: valid store precisions are {', '.join((*PRECISIONS, AUTO))}")
    path = Path(path)
    out = store_path(path, output_folder)
    refuse_input(out, [path])
    made = source_record(path, fmt, precision)
    image = read_saved_image(path, fmt, precision=precision)
    stored = image.store_precision if precision == AUTO else precision
    write_store(out, image.crops, image.shape, stored, image.classes, image=image.name,
                source=image.source, made=made)
    return ImportStats(image.name, out, image.source, path.stat().st_size, out.stat().st_size,
                       time.perf_counter() - started)


def source_kind(source: str, path: PathLike) -> str:
    """A store's ``source`` without the file's name, e.g. ``.npz[output] uint16[29, 2048, 2048] CHW scaled:10000``."""
    name = Path(path).name
    return Path(name).suffix + source[len(name):] if source.startswith(name) else source


RECORD_CHECKS = ((("bytes", "mtime_ns"), "another source file"), ("format", None), ("precision", "another --precision"))
"""What makes an imported store stale, in order (see :func:`hbens.resume.stale_reason`)."""


def _existing_store(path: Path) -> dict | None:
    """The metadata of the valid store at ``path``; None when it is damaged or incomplete."""
    try:
        return ProbabilityStore(path).meta
    except HbensError:
        return None


def import_task(item: ImportItem) -> ImageOutput:
    """The per-image task of ``hbens import``: writes one store (or, with ``resume``, keeps a valid
    store made from the same file and settings) and returns an :class:`ImportTotals`."""
    path = Path(item.source)
    store = store_path(path, item.output)
    reason = None
    if item.resume and store.exists():
        meta = _existing_store(store)
        reason = "incomplete or damaged" if meta is None else stale_reason(
            meta.get("made"), source_record(path, item.format, item.precision), checks=RECORD_CHECKS,
            unrecorded="not imported by hbens import")
        if reason is None and meta.get("shape") != list(probe_saved_array(path, item.format) or meta.get("shape")):
            reason = "another frame (stores made before imports kept the arrays' own size)"
        if reason is None:
            kind = source_kind(str(meta.get("source", "")), path)
            return ImageOutput(image_name(path), [], ImportTotals(resumed=1, sources={kind: 1}))
    stats = import_image(path, item.output, item.format, precision=item.precision)
    totals = ImportTotals(imported=1, redone=int(reason is not None), reasons={reason: 1} if reason else {},
                          source_bytes=stats.source_bytes, store_bytes=stats.store_bytes,
                          sources={source_kind(stats.source, path): 1})
    return ImageOutput(stats.name, [], totals)


def import_folder(
    source: PathLike,
    output: PathLike,
    fmt: ArrayFormat = ArrayFormat(),
    *,
    precision: str = AUTO,
    resume: bool = False,
    execution: Execution | None = None,
) -> RunSummary:
    """Convert every saved array under ``source`` (``.npy``, ``.npz``, ``.pt``, ``.pth``, recursively)
    into an hbens store ``output/<stem>.npz``, one image per task.

    Parameters
    ----------
    source
        The folder of saved arrays (hbens stores in it are left out).
    output
        The store folder, created when missing.
    fmt
        How to read the files (key, kind, classes, dropped channel, image size).
    precision
        ``uint8`` (steps of 1/255), ``float16``, or ``auto``: the one each file's dtype calls for
        (:func:`~hbens.maps.saved_arrays.store_precision`: uint8 for uint8 and bool arrays, float16 for
        any other).
    resume
        Keep the stores already in ``output`` that were made from the same file (size and
        modification time) with the same ``fmt`` and ``precision``; redo the others.
    execution
        Workers and scheduler.

    Returns
    -------
    RunSummary
        Its ``stats`` is an :class:`ImportTotals`.

    Raises
    ------
    HbensError
        Before anything is written, for a missing or empty folder, two files of one image, or a
        file whose header shows that it cannot be read with ``fmt`` (see
        :func:`~hbens.maps.array_files.check_saved_arrays`); for a file whose values are bad (NaN,
        not of the kind), when its task runs (stores finished before stay, for ``resume``).
    """
    paths = find_saved_arrays(source)
    if not paths:
        raise HbensError(f"{source}: no saved arrays (.npy, .npz, .pt, .pth); pass the folder your inference "
                         "wrote (a folder of hbens stores needs no import)")
    check_saved_arrays(paths, fmt)
    paths.sort(key=image_name)
    items = [ImportItem(source=str(path), output=str(output), format=fmt, precision=precision, resume=resume)
             for path in paths]
    with output_folders([output]):
        summary = run_images(import_task, items, execution or Execution(), names=[image_name(p) for p in paths],
                             inputs=[source], desc="import")
    summary.stats = summary.stats or ImportTotals()
    return summary


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def describe_import(summary: RunSummary, output: PathLike) -> str:
    """One paragraph on what an import did: images imported and resumed, bytes in and out, and the
    kinds of source the stores came from."""
    stats = summary.stats
    text = f"imported {stats.imported} image(s) in {summary.seconds:.1f} s into {output}, {stats.resumed} resumed"
    if stats.imported:
        share = f" ({100 * stats.store_bytes / stats.source_bytes:.1f} % of their size)" if stats.source_bytes else ""
        text += (f"; read {_megabytes(stats.source_bytes)} of saved arrays, wrote {_megabytes(stats.store_bytes)} "
                 f"of stores{share}")
    if stats.redone:
        why = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.reasons.items()))
        text += f"; {stats.redone} store(s) found but redone ({why})"
    if stats.sources:
        kinds = sorted(stats.sources.items(), key=lambda pair: (-pair[1], pair[0]))
        text += "\nfrom " + "; ".join(f"{kind} ({count})" for kind, count in kinds)
    return text


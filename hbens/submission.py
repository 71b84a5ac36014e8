"""Submission CSVs (``image_name,class,rle``): a strict streaming reader and an atomic, canonical writer.

Rows are keyed by ``(image_name, class)``, never by position.  Reading a file builds a
:class:`SubmissionIndex` of byte offsets, so a row's RLE is read only when needed and
memory does not grow with the size of the masks.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from hbens.classes import CLASS_INDEX, CLASSES, IMAGE_SHAPE, canonical_key
from hbens.errors import HbensError, located
from hbens.frames import check_extent
from hbens.outputs import PathLike, atomic_open
from hbens.rle import RLEError, string_to_runs
from hbens.settings import ADVICE, BOM, binary_kind, clip, examples, open_input

HEADER = ("image_name", "class", "rle")

MAX_LINE = 64 * 2**20
"""Longest line read (bytes).  The longest valid row of a 2048 x 2048 mask (every other pixel set)
is about 21 MB; the cap keeps ``/dev/zero`` or a huge binary from exhausting memory."""

Key = tuple[str, str]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission file, at a line (None for the whole file)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return located(self.path, self.line, self.message)


@dataclass
class SubmissionIndex:
    """Where each ``(image_name, class)`` row of a submission lies in its file."""

    path: Path
    rows: dict[Key, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    columns: tuple[int, int, int] = (0, 1, 2)
    n_fields: int = 3
    extent: int = 0
    """The end of the last run of any row, in pixels of the frame (0 when every mask is empty)."""

    @property
    def images(self) -> list[str]:
        """Image names in canonical (sorted) order."""
        return sorted({image for image, _ in self.rows})

    @property
    def classes(self) -> list[str]:
        """Classes present in the file, in canonical order."""
        return sorted({name for _, name in self.rows}, key=CLASS_INDEX.__getitem__)

    def missing(self, images: Iterable[str] | None = None, classes: Sequence[str] = CLASSES) -> list[Key]:
        """Pairs of ``images`` (default: the file's) x ``classes`` that have no row, canonical order."""
        images = self.images if images is None else sorted(images)
        return [(image, name) for image in images for name in classes if (image, name) not in self.rows]

    def read_rle(self, key: Key, handle: IO[bytes]) -> str:
        """The RLE string of a row, read from an open binary ``handle`` of this file."""
        offset, _ = self.rows[key]
        handle.seek(offset)
        fields = _split(handle.readline())
        return fields[self.columns[2]] if fields is not None else ""

    def open(self) -> IO[bytes]:
        """Open the file for :meth:`read_rle`."""
        return open(self.path, "rb")


def _split(raw: bytes) -> list[str] | None:
    """Fields of one CSV line; None for a blank line."""
    text = raw.decode("utf-8").rstrip("\r\n")
    if not text.strip():
        return None
    if '"' in text:
        return next(csv.reader(io.StringIO(text)))
    return text.split(",")


def _header_columns(fields: list[str] | None) -> tuple[int, int, int] | str:
    """Column of each of :data:`HEADER` in the header row, or the problem with it (content clipped)."""
    names = [name.strip() for name in fields or []]
    missing = [name for name in HEADER if name not in names]
    if missing:
        return (
            f"header {clip(','.join(names)) or '(empty)'} lacks column(s) {', '.join(missing)}; "
            f"expected {','.join(HEADER)}"
        )
    return tuple(names.index(name) for name in HEADER)  # type: ignore[return-value]


def _lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Lines of a binary file, the first without a byte order mark; None for one over :data:`MAX_LINE`.

    Reading stops there: such a line cannot be a row, and reading on could take all memory.
    """
    first = True
    while raw := handle.readline(MAX_LINE + 1):
        if len(raw) > MAX_LINE:
            yield None
            return
        yield raw.removeprefix(BOM) if first else raw
        first = False


def scan_submission(
    path: PathLike,
    shape: tuple[int, int] = IMAGE_SHAPE,
    strict: bool = True,
    known_classes: Sequence[str] = CLASSES,
) -> SubmissionIndex:
    """Read a submission once, checking every row; return the index of its rows.

    With ``strict`` the first problem raises :class:`HbensError` (``file:line: problem``);
    otherwise every problem is collected in ``index.problems``.  Runs that all lie in the top
    rows of ``shape`` give a :class:`~hbens.frames.FrameWarning` (the images may be smaller).
    """
    index = SubmissionIndex(Path(path))
    known = set(known_classes)

    def report(line: int | None, message: str) -> None:
        problem = Problem(str(path), line, message)
        if strict:
            raise HbensError(str(problem))
        index.problems.append(problem)

    with open_input(path) as handle:
        kind = binary_kind(handle.peek(4096)[:4096])
        if kind:
            report(None, f"{kind}, not a CSV; {ADVICE.get(kind, 'give the submission CSV')}")
            return index
        offset = 0
        columns: tuple[int, int, int] | None = None
        for number, raw in enumerate(_lines(handle), start=1):
            if raw is None:
                report(number, f"line longer than {MAX_LINE / 2**20:g} MB; not a submission CSV")
                return index
            line_offset, offset = offset, handle.tell()
            try:
                fields = _split(raw)
            except (UnicodeDecodeError, csv.Error) as error:
                report(number, f"unreadable line ({error}); expected UTF-8 CSV")
                continue
            if columns is None:
                found = _header_columns(fields)
                if isinstance(found, str):
                    report(number, found)
                    return index
                columns, index.columns, index.n_fields = found, found, len(fields or ())
                continue
            if fields is None:
                continue
            if len(fields) != index.n_fields:
                report(number, f"{len(fields)} fields, expected {index.n_fields} like the header")
                continue
            image, name, rle = (fields[c] for c in columns)
            if not image:
                report(number, "empty image_name")
                continue
            shown = clip(image, limit=60)
            if name not in known:
                shown_name = clip(repr(name), limit=40)
                report(number, f"unknown class {shown_name}; valid classes: {examples(known_classes)}")
                continue
            key = (image, name)
            if key in index.rows:
                report(number, f"duplicate row for ({shown}, {name}); first at line {index.rows[key][1]}")
                continue
            try:
                starts, lengths = string_to_runs(rle, shape)
            except RLEError as error:
                report(number, f"{shown} {name}: {clip(error, limit=160)}")
                continue
            if starts.size:
                index.extent = max(index.extent, int(starts[-1] + lengths[-1]))
            index.rows[key] = (line_offset, number)
        if columns is None and offset == 0:
            report(None, f"empty file; expected the header {','.join(HEADER)}")
    check_extent(path, index.extent, shape)
    return index


def read_submission(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE) -> dict[Key, str]:
    """All rows of a submission as ``{(image_name, class): rle}`` (for small files and tests)."""
    return {(image, name): rle for image, name, rle in iter_rows(scan_submission(path, shape))}


class SubmissionWriter:
    """Write rows in canonical order to a temporary file, renamed onto ``path`` on success."""

    def __init__(self, path: PathLike, inputs: Sequence[PathLike] = ()):
        self.path = path
        self.inputs = inputs
        self.rows_written = 0
        self._last: tuple[str, int] | None = None

    def __enter__(self) -> SubmissionWriter:
        self._context = atomic_open(self.path, self.inputs)
        self._handle = self._context.__enter__()
        self._handle.write(",".join(HEADER) + "\n")
        return self

    def __exit__(self, kind, error, trace) -> bool | None:
        try:
            self._handle.close()
        except OSError as closing:
            if kind is None:
                self._context.__exit__(type(closing), closing, closing.__traceback__)
                raise
        return self._context.__exit__(kind, error, trace)

    def write(self, image: str, class_name: str, rle: str) -> None:
        """Write one row; rows must come in canonical order (image name, class order)."""
        key = canonical_key(image, class_name)
        if self._last is not None and key <= self._last:
            raise ValueError(f"row ({image}, {class_name}) is out of canonical order")
        self._last = key
        if "," in image or '"' in image:
            image = '"' + image.replace('"', '""') + '"'
        self._handle.write(f"{image},{class_name},{rle}\n")
        self.rows_written += 1


def write_submission(path: PathLike, rows: dict[Key, str] | Iterable[tuple[str, str, str]], inputs: Sequence[PathLike] = ()) -> int:
    """Write ``{(image, class): rle}`` or ``(image, class, rle)`` rows, sorted canonically; return the row count."""
    items = rows.items() if isinstance(rows, dict) else (((i, c), r) for i, c, r in rows)
    ordered = sorted(items, key=lambda item: canonical_key(*item[0]))
    with SubmissionWriter(path, inputs) as writer:
        for (image, name), rle in ordered:
            writer.write(image, name, rle)
    return writer.rows_written


def iter_rows(index: SubmissionIndex) -> Iterator[tuple[str, str, str]]:
    """Stream ``(image, class, rle)`` rows of an index in canonical order."""
    with index.open() as handle:
        for key in sorted(index.rows, key=lambda k: canonical_key(*k)):
            yield key[0], key[1], index.read_rle(key, handle)


@dataclass
class CheckReport:
    """What :func:`check_submission` found: counts and every problem."""

    path: str
    rows: int
    images: int
    classes: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_submission(path: PathLike, shape: tuple[int, int] = IMAGE_SHAPE, classes: Sequence[str] = CLASSES) -> CheckReport:
    """Validate a whole submission: header, every row and RLE, and all ``classes`` for every image."""
    index = scan_submission(path, shape, strict=False)
    problems = list(index.problems)
    for image in index.images:
        absent = [name for name in classes if (image, name) not in index.rows]
        if absent:
            problems.append(Problem(str(path), None, f"{image}: missing {len(absent)} class(es): {', '.join(absent)}"))
    return CheckReport(str(path), len(index.rows), len(index.images), len(index.classes), problems)

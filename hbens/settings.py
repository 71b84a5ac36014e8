"""Side files (settings YAML/JSON, small CSVs) read as UTF-8 text, checked against a typed schema.

Every problem is one short line naming the file and, where there is one, the key: error text
never echoes more than a few values or ~80 characters of file content.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from hbens.errors import HbensError
from hbens.outputs import PathLike

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark that Windows editors put at the start of a file."""

SIDE_FILE_LIMIT = 64 * 2**20
"""Largest side file read (bytes): a settings file or annotation is far smaller; this stops ``/dev/zero``."""

SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\x93NUMPY", "a numpy array"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)

ADVICE = {
    "gzip-compressed": "decompress it first (gunzip)",
    "a zip archive": "extract the file from it first",
    "UTF-16 text": "save it as UTF-8",
}
"""What to do with a file of a kind that :func:`binary_kind` recognises, where there is a fix."""

Allowed = type | None | list
Schema = Mapping[str, Allowed | tuple[Allowed, ...]]
"""Key -> allowed type(s): ``bool``, ``int``, ``float``, ``str``, ``None`` (null) or ``[T]`` (a list of T)."""


def clip(text: object, *, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with a count of the rest.

    Error messages echo file content through this so that a huge or binary line never floods
    the terminal.
    """
    text = str(text)
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    rest = len(text) - len(cut)
    return f"{shown}... (+{rest} characters)" if rest else shown


def examples(values: Sequence[object], *, limit: int = 3) -> str:
    """At most ``limit`` values, comma-separated and clipped, then how many more there are."""
    shown = ", ".join(clip(value, limit=40) for value in values[:limit])
    rest = len(values) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def binary_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is when it is not text (``"gzip-compressed"``, ...); None for text.

    Lets a reader say "gzip-compressed" in one line instead of failing on the first odd byte.
    """
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return kind
    return "binary data" if b"\x00" in head else None


def open_input(path: PathLike):
    """Open an input file for binary reading; HbensError in one line for a pipe or a socket.

    Reading a FIFO blocks until a writer comes, and a pipe cannot be scanned twice (as the CSV
    readers do), so these are refused by name instead of hanging or failing on a seek.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise HbensError(f"{path}: cannot read ({error.strerror}); check the path") from None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise HbensError(f"{path}: a pipe or socket, not a file; save its content to a file and pass that")
    try:
        return open(path, "rb")
    except OSError as error:
        raise HbensError(f"{path}: cannot read ({error.strerror}); check the path") from None


def read_text(path: PathLike, *, limit: int = SIDE_FILE_LIMIT) -> str:
    """The content of a UTF-8 text file, with or without a byte order mark.

    Compressed or binary files, files over ``limit`` bytes and other encodings are refused in
    one line naming the file.
    """
    try:
        with open_input(path) as handle:
            head = handle.read(4096)
            kind = binary_kind(head)
            if kind:
                advice = ADVICE.get(kind, "give the text file itself")
                raise HbensError(f"{path}: {kind}, not UTF-8 text; {advice}")
            raw = head + handle.read(max(limit + 1 - len(head), 0))
    except OSError as error:
        raise HbensError(f"{path}: cannot read ({error.strerror}); check the path") from None
    if len(raw) > limit:
        raise HbensError(f"{path}: larger than {limit // 2**20} MB; not a side file")
    raw = raw.removeprefix(BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HbensError(
            f"{path}: not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8"
        ) from None


def read_settings(path: PathLike) -> object:
    """The parsed content of a ``.json`` file, or of a YAML file for any other suffix."""
    path = Path(path)
    is_json = path.suffix == ".json"
    text = read_text(path)
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        language = "JSON" if is_json else "YAML"
        raise HbensError(f"{path}: not valid {language} ({clip(first, limit=120)})") from None
    except RecursionError:
        raise HbensError(f"{path}: nested too deeply; not a settings file") from None


def read_csv_rows(path: PathLike) -> list[list[str]]:
    """Rows of a small UTF-8 CSV side file (a blank line is ``[]``, so row ``i`` is line ``i + 1``)."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        return list(reader)
    except csv.Error as error:
        raise HbensError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None


def _describe(value: object) -> str:
    """A value as an error shows it: its text and, when that could mislead, its type."""
    if isinstance(value, str):
        return f"the string {clip(repr(value), limit=40)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return clip(repr(value), limit=40)


def _expected(allowed: tuple[Allowed, ...]) -> str:
    """The allowed types in words, for an error message."""
    names = {
        bool: "true or false", int: "a whole number", float: "a finite number", str: "text", None: "null"
    }
    return " or ".join(
        f"a list of {_expected(tuple(kind))}" if isinstance(kind, list) else names[kind] for kind in allowed
    )


def _fits(value: object, allowed: Allowed) -> bool:
    """Whether ``value`` has the type ``allowed`` exactly (a bool is not a number, a string not a bool).

    A ``float`` must be finite: NaN and the infinities fail the comparison with the largest float.
    """
    if allowed is None:
        return value is None
    if isinstance(allowed, list):
        return isinstance(value, list) and all(_fits(item, allowed[0]) for item in value)
    if allowed is float:
        return type(value) in (int, float) and abs(value) <= sys.float_info.max
    return type(value) is allowed


def check_value(value: object, allowed: Allowed | tuple[Allowed, ...], *, where: str) -> object:
    """``value`` if it has one of the ``allowed`` types, floats as ``float``; else HbensError at ``where``."""
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    for kind in allowed:
        if _fits(value, kind):
            if kind is float:
                return float(value)
            if isinstance(kind, list) and kind[0] is float:
                return [float(item) for item in value]
            return value
    raise HbensError(f"{where}: expected {_expected(allowed)}, got {_describe(value)}")


def check_mapping(data: object, schema: Schema, *, where: str) -> dict[str, object]:
    """``data`` checked against ``schema``: a mapping of known keys to values of the allowed types.

    Settings files are typed strictly so that a typo never silently changes a result: the YAML
    string ``"false"`` is not a boolean, ``1.5`` not a whole number, ``.nan`` not a number, and an
    unknown key is refused with the known ones listed.  ``where`` (the file, and the section)
    starts every message.  Returns the checked values, numbers for ``float`` as ``float``.
    """
    if not isinstance(data, dict):
        raise HbensError(f"{where}: expected a mapping of {examples(list(schema))}, got {_describe(data)}")
    unknown = [key for key in data if key not in schema]
    if unknown:
        known = examples(list(schema), limit=8)
        raise HbensError(f"{where}: unknown key(s) {examples(unknown)}; known: {known}")
    return {key: check_value(value, schema[key], where=f"{where}: {key}") for key, value in data.items()}

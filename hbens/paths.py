"""The path guard of every command: no output may be an input, two outputs never share a file.

A command names each path with its option, e.g. ``("--scores", "a.csv")`` or ``("-o", "out.csv")``,
so that a refusal says which two options collide.  Paths are compared after resolving symbolic
links and ``..``, and with :func:`os.path.samefile` so that hard links are caught too.  Checks run
before any work, so a refused command has written nothing.
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from hbens.errors import HbensError
from hbens.outputs import PathLike, same_file

Named = tuple[str, PathLike | None]
"""A path and the option that gave it, e.g. ``("-o", "out.csv")``;
a None path (an option not given) is skipped."""

Written = Named | tuple[str, PathLike | None, Sequence[str]]
"""An output file: its option, its path and optionally the suffixes of its format (:data:`CSV`)."""

CSV = (".csv",)
"""Suffixes of the CSV files hbens writes (submissions, scores, reports)."""

YAML = (".yaml", ".yml")
"""Suffixes of recipes."""

HTML = (".html", ".htm")
"""Suffixes of reports."""

TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
"""Names of the temporaries of :func:`hbens.outputs.atomic_path`: ``.{name}.XXXXXXXX.tmp``."""


def _given(named: Sequence[Named]) -> list[tuple[str, Path]]:
    return [(option, Path(path)) for option, path in named if path is not None]


def _inside(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies below it (resolved paths)."""
    return inner.resolve().is_relative_to(outer.resolve()) or same_file(inner, outer)


def _check_file_output(option: str, path: Path, created: Sequence[Path] = ()) -> None:
    """Refuse an output file that is a folder, or whose folder is missing or is a file.

    A file inside one of the ``created`` output folders may name a folder that does not exist yet:
    the command creates it before writing (``predict --csv OUT/sub.csv -o OUT``).
    """
    if path.is_dir():
        raise HbensError(f"{option} {path}: is a folder; give a file path")
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise HbensError(f"{option} {path}: {folder} is a file, not a folder; choose another {option} path")
            break
    if not parent.exists() and not any(_inside(path, folder) for folder in created):
        raise HbensError(
            f"{option} {path}: folder {parent} does not exist; create it or choose another {option} path"
        )


def _check_suffix(option: str, path: Path, suffixes: Sequence[str]) -> None:
    """Refuse an output file whose suffix is not one of ``suffixes`` (the writer's format)."""
    if path.suffix.lower() not in suffixes:
        expected = " or ".join(suffixes)
        raise HbensError(f"{option} {path}: this output is written as {expected}; "
                         f"give a file name ending in {suffixes[0]}")


def _check_folder_output(option: str, path: Path) -> None:
    """Refuse an output folder that is a file or lies below a file (missing folders are created)."""
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == path else f"{folder} is a file"
                raise HbensError(f"{option} {path}: {where}, not a folder; choose another {option} folder")
            return


def _split_writes(writes: Sequence[Written]) -> tuple[list[tuple[str, Path]], dict[int, tuple[str, ...]]]:
    """The given file outputs as ``(option, path)`` pairs, and the suffixes each one must have."""
    pairs, suffixes = [], {}
    for option, path, *formats in writes:
        if path is None:
            continue
        if formats and formats[0]:
            suffixes[len(pairs)] = tuple(formats[0])
        pairs.append((option, Path(path)))
    return pairs, suffixes


def check_paths(
    reads: Sequence[Named], writes: Sequence[Written], *, folder_writes: Sequence[Named] = ()
) -> None:
    """Raise HbensError, in one line naming both options, when the outputs of a command are unsafe.

    No output may be an input, lie inside an input folder (where it could replace one of its
    files), or contain an input; two outputs never share a file; an output file has the suffix of
    its format.

    Parameters
    ----------
    reads
        Every file or folder the command reads, with its option (``("--gt", "outputs_json")``).
    writes
        Every file the command writes, with its option and optionally the suffixes of its format
        (``("-o", "out.csv", CSV)``, ``("--report", "r.csv")``); its folder must exist, unless it
        lies inside one of the ``folder_writes``, which the command creates.
    folder_writes
        Every folder the command fills (probability stores): it must not be, contain or lie inside
        an input or another output folder, and must not be a file or an output file.
    """
    reads, folders = _given(reads), _given(folder_writes)
    writes, suffixes = _split_writes(writes)
    for option, path in writes:
        _check_file_output(option, path, [folder for _, folder in folders])
    for option, path in folders:
        _check_folder_output(option, path)
    input_folders = [(option, path) for option, path in reads if path.is_dir()]
    for number, (option, path) in enumerate(writes + folders):
        for read_option, read in reads:
            if same_file(path, read):
                raise HbensError(f"{option} {path} is also the input {read_option} {read}; "
                                 f"choose another {option} path")
        for read_option, read in input_folders:
            if _inside(path, read):
                if number >= len(writes):
                    raise HbensError(f"output folder {option} {path} lies inside {read_option} {read}; "
                                     f"choose a separate {option} folder")
                raise HbensError(f"{option} {path} lies inside the input folder {read_option} {read}; "
                                 f"choose a path outside it")
        for other_option, other in (writes + folders)[:number]:
            if same_file(path, other):
                raise HbensError(f"{other_option} {other} and {option} {path} are the same path; "
                                 f"give each output its own")
    for number, (option, path) in enumerate(writes):
        if number in suffixes:
            _check_suffix(option, path, suffixes[number])
    for number, (option, path) in enumerate(folders):
        for other_option, other in reads + folders[:number]:
            if _inside(other, path):
                raise HbensError(f"output folder {option} {path} contains {other_option} {other}; "
                                 f"choose a separate {option} folder")
        for other_option, other in folders[:number]:
            if _inside(path, other):
                raise HbensError(f"output folder {option} {path} lies inside {other_option} {other}; "
                                 f"choose a separate {option} folder")


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the hidden ``.NAME.XXXXXXXX.tmp`` files that a killed run left in ``folder`` and below.

    :func:`hbens.outputs.atomic_path` removes its temporary when a block fails, but not when the
    process is killed; a resumed run calls this first so that they do not pile up.  Only names of
    that exact form are touched.  Call it before writing, with no other run writing to ``folder``.
    Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(".*.tmp")):
        if TEMPORARY.match(path.name) and not path.is_dir():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _remove_empty_tree(folder: Path) -> None:
    """Remove ``folder`` and its subfolders bottom-up, stopping at any that holds a file."""
    for current, _, _ in os.walk(folder, topdown=False):
        try:
            os.rmdir(current)
        except OSError:
            pass


def _make_folder(path: Path, option: str) -> list[Path]:
    """Create ``path`` with its missing parents; return the folders it created, outermost first."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HbensError(f"{option} {path}: a file is in the way; choose another {option} folder") from None
    except OSError as error:
        problem = f"cannot create ({error.strerror})"
        raise HbensError(f"{option} {path}: {problem}; choose another {option} folder") from None
    return missing


@contextmanager
def created_folder(path: PathLike, *, option: str = "-o") -> Iterator[Path]:
    """Create the output folder ``path`` (and missing parents) for the block; undo it if the block fails.

    When the block raises (Ctrl-C included), the folders this call created are removed again if
    they hold no file, so a failed command leaves no empty output folder behind; finished files
    are kept, and a folder that existed before is never removed.
    """
    path = Path(path)
    created = _make_folder(path, option)
    try:
        yield path
    except BaseException:
        if created:
            _remove_empty_tree(created[0])
        raise


@contextmanager
def output_folders(folders: Sequence[PathLike], *, option: str = "-o") -> Iterator[list[Path]]:
    """The store folders of a run, created for the block (see :func:`created_folder`) and cleared of
    the temporaries a killed run left (see :func:`remove_stale_temporaries`).

    When the block fails, every folder this call created that holds no file is removed again;
    finished stores stay for ``--resume``.
    """
    with ExitStack() as stack:
        made = [stack.enter_context(created_folder(folder, option=option)) for folder in folders]
        for folder in made:
            remove_stale_temporaries(folder)
        yield made

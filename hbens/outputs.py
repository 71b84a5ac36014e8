"""Atomic outputs: write to a temporary file beside the target, rename on success, never touch an input."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Sequence

from hbens.errors import HbensError

PathLike = str | os.PathLike

WRITE_ERRNOS = frozenset({errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Errors that only a write can raise (file too large, no space, quota, read-only file system)."""


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: equal once resolved, or the same inode (hard link, bind mount)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input(output: PathLike, inputs: Sequence[PathLike] = ()) -> None:
    """Raise HbensError when ``output`` names one of the ``inputs`` (see :func:`same_file`)."""
    for candidate in inputs:
        if same_file(output, candidate):
            raise HbensError(f"{output}: output would overwrite input {candidate}; choose another -o path")


@contextmanager
def atomic_path(output: PathLike, inputs: Sequence[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; rename it onto ``output`` only if the block succeeds.

    The temporary is removed whatever happens (Ctrl-C included); a failed write (full disk, file
    too large) is raised as an OSError naming ``output``, not the temporary.
    """
    out = Path(output)
    refuse_input(out, inputs)
    if not out.parent.exists():
        raise HbensError(f"{output}: folder {out.parent} does not exist; create it or choose another -o path")
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(out)) from None
    try:
        os.close(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        yield Path(temp)
        os.replace(temp, out)
    except OSError as error:
        if error.filename is None and error.errno in WRITE_ERRNOS:
            raise OSError(error.errno, error.strerror, str(out)) from None
        raise
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


@contextmanager
def atomic_open(output: PathLike, inputs: Sequence[PathLike] = (), mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``output`` when the block succeeds."""
    with atomic_path(output, inputs) as temp:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(temp, mode, **kwargs) as handle:
            yield handle

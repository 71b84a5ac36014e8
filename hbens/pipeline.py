"""One image, one task: where every per-image command is walked, ordered and written.

A command is a picklable per-image *task* (a module-level function taking one plain item:
paths, RLE strings, a settings dataclass) that returns an :class:`ImageOutput` (the image's
submission rows, if any, and a small stats object that adds up).  This module owns the rest,
once for every command: walking the items, keeping outputs in canonical order, the atomic CSV,
the progress bar, the summed stats and ``--keep-going``.  Where the tasks run (threads,
processes or a Dask cluster) is :mod:`hbens.execution`'s; a task names its files and folders
with :func:`~hbens.execution.path_field`, so that it can leave for a Dask worker.
"""

from __future__ import annotations

import os
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from tqdm import tqdm

from hbens.errors import HbensError
from hbens.execution import ClusterLost, Execution, TaskLost, open_executor
from hbens.outputs import WRITE_ERRNOS, PathLike
from hbens.submission import SubmissionWriter


class Summable(Protocol):
    """Stats of one image that add up over images (``a + b``)."""

    def __add__(self, other: Any) -> Any: ...


@dataclass
class ImageOutput:
    """What one per-image task returns: its submission rows (class order) and its stats."""

    image: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    stats: Summable | None = None


def map_images(
    task: Callable[[Any], ImageOutput],
    items: Iterable[Any],
    execution: Execution,
    *,
    names: Sequence[str],
    desc: str = "images",
    holds_gil: bool = False,
) -> Iterator[tuple[int, ImageOutput | str]]:
    """Run ``task`` on every item (``names[i]`` names item ``i``) and yield ``(index, output)`` in order.

    A failed item yields ``(index, message)`` when ``execution.keep_going``; otherwise the first
    failure raises :class:`HbensError` naming the image.  Items are drawn lazily and a few tasks
    per worker are in flight, so memory does not grow with the number of images.  ``holds_gil``:
    see :func:`~hbens.execution.open_executor`.
    """
    with open_executor(execution, holds_gil=holds_gil) as executor, tqdm(
        total=len(names), desc=desc, unit="image", disable=None if execution.progress else True, leave=False
    ) as bar:
        window = executor.in_flight_per_worker * max(1, executor.workers)
        pending: deque = deque()
        upcoming = iter(enumerate(items))
        done = 0
        for index, item in upcoming:
            pending.append((index, executor.submit(task, item)))
            if len(pending) < window:
                continue
            yield _collect(executor, *pending.popleft(), names, execution.keep_going)
            _pause_for_tests(done := done + 1)
            bar.update()
        while pending:
            yield _collect(executor, *pending.popleft(), names, execution.keep_going)
            _pause_for_tests(done := done + 1)
            bar.update()


PAUSE_ENV = "HBENS_TEST_PAUSE"
"""Test hook: when this variable names a file, a run creates it once its first image is done and
then waits (up to 60 s), so that a test can send a signal to a command that is surely at work
and not yet finished, without racing the end of the run."""


def _pause_for_tests(done: int) -> None:
    marker = os.environ.get(PAUSE_ENV)
    if marker and done == 1:
        open(marker, "a").close()
        time.sleep(60)


def _collect(executor, index: int, future, names: Sequence[str], keep_going: bool) -> tuple[int, ImageOutput | str]:
    try:
        return index, executor.result(future)
    except ClusterLost:
        raise
    except (HbensError, TaskLost) as error:
        message = f"{names[index]}: {error}"
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise
        where = f" ({error.filename})" if error.filename else ""
        message = f"{names[index]}: {type(error).__name__}: {error.strerror or error}{where}"
    except (ValueError, RuntimeError, MemoryError) as error:
        message = f"{names[index]}: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    if not keep_going:
        raise HbensError(f"{message} (--keep-going reports such images and goes on)")
    return index, message


@dataclass
class RunSummary:
    """What a pipeline run did: images done, failed (with why), summed stats, seconds, and whether
    a cleanup ran (``cleaned``: the clean options asked for one)."""

    images: int = 0
    failed: list[str] = field(default_factory=list)
    stats: Summable | None = None
    seconds: float = 0.0
    rows: int = 0
    cleaned: bool = False


def add_stats(total: Summable | None, stats: Summable | None) -> Summable | None:
    """``total + stats`` where either may be None."""
    if stats is None:
        return total
    return stats if total is None else total + stats


def run_images(
    task: Callable[[Any], ImageOutput],
    items: Iterable[Any],
    execution: Execution,
    *,
    names: Sequence[str],
    csv: PathLike | None = None,
    inputs: Sequence[PathLike] = (),
    desc: str = "images",
    on_output: Callable[[ImageOutput], None] | None = None,
    holds_gil: bool = False,
) -> RunSummary:
    """Run a per-image ``task`` over ``items`` (one per image, in canonical image order).

    Rows come back to this process and are written to ``csv`` in canonical order, atomically
    (nothing is left when the run fails); ``inputs`` are never overwritten.  ``on_output`` sees
    every successful output in order (for side files).  Stats are summed with ``+``.  A task
    that holds the GIL (``holds_gil``) runs on processes under the ``auto`` scheduler.
    """
    started = time.perf_counter()
    summary = RunSummary()
    with SubmissionWriter(csv, inputs) if csv is not None else nullcontext() as writer:
        for index, output in map_images(task, items, execution, names=names, desc=desc, holds_gil=holds_gil):
            if isinstance(output, str):
                summary.failed.append(output)
                continue
            summary.images += 1
            summary.stats = add_stats(summary.stats, output.stats)
            if writer is not None:
                for class_name, rle in output.rows:
                    writer.write(output.image, class_name, rle)
            if on_output is not None:
                on_output(output)
        if writer is not None:
            summary.rows = writer.rows_written
    summary.seconds = time.perf_counter() - started
    return summary


def sum_fields(a: Any, b: Any) -> Any:
    """A new dataclass whose numeric fields are ``a``'s plus ``b``'s (for ``__add__`` of stats)."""
    values = {}
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            values[f.name] = {k: add_stats(x.get(k), y.get(k)) for k in {**x, **y}}
        elif isinstance(x, list):
            values[f.name] = [p + q for p, q in zip(x, y)] if x and y else list(x or y)
        else:
            values[f.name] = x + y
    return type(a)(**values)

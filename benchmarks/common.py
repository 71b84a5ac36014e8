"""Helpers shared by the benchmarks: synthetic inputs and isolated, measured runs."""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _measure(target, args, queue) -> None:
    start = time.perf_counter()
    target(*args)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_process(target, *args) -> tuple[float, float]:
    """Run ``target(*args)`` in a fresh process; return its seconds and peak RSS in MB."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(target, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def first_images(path: Path, out: Path, n_images: int) -> None:
    """Copy the rows of the first ``n_images`` images of a submission (for a sampled oracle run)."""
    from hbens.submission import read_submission, write_submission

    rows = read_submission(path)
    keep = sorted({image for image, _ in rows})[:n_images]
    write_submission(out, {key: value for key, value in rows.items() if key[0] in keep})


def rows_matching_oracle(ours: Path, oracle: Path) -> int:
    """Assert that every row of the oracle's submission is identical in ours; return how many."""
    from hbens.submission import read_submission

    mine, theirs = read_submission(ours), read_submission(oracle)
    assert all(mine[key] == value for key, value in theirs.items()), "outputs differ"
    return len(theirs)


def sampled_note(n_oracle: int, n_images: int) -> str:
    """What to print after a scaled oracle time; empty when the oracle ran on every image."""
    return "" if n_oracle == n_images else f" (ran {n_oracle} images, scaled)"

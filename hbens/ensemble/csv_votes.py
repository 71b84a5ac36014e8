"""The fast path of :func:`hbens.ensemble.fuse.fuse`: hard rules on submission CSVs alone, voted on their text.

Inputs are aligned by ``(image_name, class)`` and streamed one image at a time (peak memory does
not grow with the number of images); each image is a task of :mod:`hbens.pipeline`, which carries
only its RLE strings to the worker, and each class is voted by a kernel that reads the RLE text
(:func:`~hbens.ensemble.vote.vote_strings`), never a 2048x2048 array.  The rows equal those of
:func:`~hbens.ensemble.combine.vote_class` on the CSVs as 0/1 maps.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.ensemble.rules import HardRule, Rule
from hbens.ensemble.vote import vote_strings
from hbens.errors import HbensError
from hbens.execution import Execution
from hbens.frames import csv_frame
from hbens.outputs import PathLike
from hbens.pipeline import ImageOutput, RunSummary, run_images
from hbens.postproc.clean import CleanTotals, Cleanup, clean_rows
from hbens.submission import SubmissionIndex, scan_submission


@dataclass(frozen=True)
class VoteStats:
    """Rows that differ from each input, and what the cleanup changed (adds up over images)."""

    changed: tuple[int, ...] = ()
    clean: CleanTotals = field(default_factory=CleanTotals)

    def __add__(self, other: VoteStats) -> VoteStats:
        changed = tuple(a + b for a, b in zip(self.changed, other.changed)) if self.changed else other.changed
        return VoteStats(changed, self.clean + other.clean)


def votes_on_text(paths: Sequence[PathLike], rules: dict[str, object], stores: PathLike | None) -> bool:
    """Whether a fuse can take this path: CSV inputs alone, hard rules that keep a 0/1 map's
    foreground (threshold below 1), and no fused stores to write."""
    return (stores is None and not any(Path(path).is_dir() for path in paths)
            and all(isinstance(rule, HardRule) and rule.threshold < 1 for rule in rules.values()))


def _aligned_images(indexes: list[SubmissionIndex], rules: dict[str, HardRule], missing: str) -> list[str]:
    """Images to fuse; raise HbensError on differing image sets or absent rows unless ``missing='empty'``."""
    image_sets = [set(index.images) for index in indexes]
    images = sorted(set().union(*image_sets))
    if missing == "empty":
        return images
    for index, own in zip(indexes, image_sets):
        lacking = [image for image in images if image not in own]
        if lacking:
            raise HbensError(
                f"{index.path}: image sets differ: lacks {len(lacking)} image(s) that other inputs have, e.g. "
                f"{', '.join(lacking[:3])}; fuse inputs of the same images or pass --missing empty"
            )
    check_rows(list(enumerate(indexes)), images, rules)
    return images


def check_rows(indexes: Sequence[tuple[int, SubmissionIndex]], images: Sequence[str],
               rules: dict[str, Rule]) -> None:
    """HbensError naming the first CSV (input number, index) that lacks an (image, class) row that a
    rule reads: a CSV's absent row is an empty mask only with ``--missing empty``."""
    for i, index in indexes:
        used = [name for name, rule in rules.items() if i in rule.members]
        absent = index.missing(images, used)
        if absent:
            shown = ", ".join(f"({image}, {name})" for image, name in absent[:3])
            raise HbensError(
                f"{index.path}: {len(absent)} (image, class) row(s) needed for the vote are missing, e.g. {shown}; "
                "pass --missing empty to treat them as empty masks"
            )


def _same_rle(canonical: str, other: str) -> bool:
    """Whether ``other`` spells the canonical RLE string, up to whitespace (split only when needed)."""
    if canonical == other:
        return True
    plain = not (other[:1] == " " or other[-1:] == " " or "  " in other or "\t" in other or "\r" in other
                 or "\n" in other)
    return not plain and canonical.split() == other.split()


@dataclass(frozen=True, kw_only=True)
class VoteItem:
    """One image of a CSV vote: each input's RLE per class and the settings (plain data, picklable)."""

    image: str
    rles: list[dict[str, str]]
    rules: dict[str, HardRule]
    cleanup: Cleanup | None = None
    shape: tuple[int, int] = IMAGE_SHAPE


def vote_task(item: VoteItem) -> ImageOutput:
    """The per-image task of a CSV vote: the voted (and cleaned) rows and the rows changed per input."""
    size = item.shape[0] * item.shape[1]
    rows = []
    for name in CLASSES:
        vote = item.rules[name].vote
        rows.append((name, vote_strings([item.rles[i].get(name, "") for i in vote.inputs], vote, size)))
    rows, clean = clean_rows(rows, item.cleanup, item.shape)
    changed = tuple(
        sum(not _same_rle(fused, own.get(name, "")) for name, fused in rows) for own in item.rles
    )
    return ImageOutput(item.image, rows, VoteStats(changed, clean))


def vote_submissions(
    paths: Sequence[PathLike],
    output: PathLike,
    rules: dict[str, HardRule],
    *,
    missing: str = "error",
    cleanup: Cleanup | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> RunSummary:
    """Fuse submission CSVs into ``output`` by the votes of ``rules`` (see :func:`votes_on_text`).

    ``shape`` is the frame (CSVs do not record it); None: 2048x2048.  The summary's ``stats`` is
    a :class:`VoteStats`.
    """
    shape = csv_frame(shape)
    indexes = [scan_submission(path, shape) for path in paths]
    images = _aligned_images(indexes, rules, missing)
    with ExitStack() as stack:
        handles = [stack.enter_context(index.open()) for index in indexes]

        def items() -> Iterator[VoteItem]:
            for image in images:
                rles = [{name: index.read_rle((image, name), handle) for name in CLASSES if (image, name) in index.rows}
                        for index, handle in zip(indexes, handles)]
                yield VoteItem(image=image, rles=rles, rules=rules, cleanup=cleanup, shape=shape)

        summary = run_images(vote_task, items(), execution or Execution(), names=images, csv=output,
                             inputs=paths, desc="fuse")
    summary.stats = summary.stats or VoteStats(tuple(0 for _ in paths))
    return summary

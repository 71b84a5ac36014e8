"""Fuse submission CSVs row by row: every (image, class) gets a vote over the inputs' run lists.

Inputs are aligned by ``(image_name, class)`` and streamed one image at a time (peak memory does
not grow with the number of images); each image is a task of :mod:`hbens.pipeline`, which carries
only its RLE strings to the worker.  No 2048x2048 array is built.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from hbens.classes import CLASS_INDEX, CLASSES, IMAGE_SHAPE
from hbens.ensemble.vote import VoteRule, vote_strings
from hbens.errors import HbensError
from hbens.frames import csv_frame
from hbens.outputs import PathLike
from hbens.pipeline import Execution, ImageOutput, RunSummary, run_images
from hbens.postproc.clean import Cleanup, CleanTotals, clean_rows
from hbens.settings import check_mapping, clip, examples, read_csv_rows, read_settings
from hbens.submission import SubmissionIndex, scan_submission


@dataclass(frozen=True)
class FuseStats:
    """Rows that differ from each input, and what the cleanup changed (adds up over images)."""

    changed: tuple[int, ...] = ()
    clean: CleanTotals = field(default_factory=CleanTotals)

    def __add__(self, other: FuseStats) -> FuseStats:
        changed = tuple(a + b for a, b in zip(self.changed, other.changed)) if self.changed else other.changed
        return FuseStats(changed, self.clean + other.clean)


def hard_rules(
    n_inputs: int,
    min_votes: int | None = None,
    weights: Sequence[float] | None = None,
    min_weight: float | None = None,
    class_weights: dict[str, Sequence[float]] | None = None,
) -> dict[str, VoteRule]:
    """The same k-of-n or weighted vote over all inputs for every class, with per-class weights."""
    everyone = range(n_inputs)
    rules = {name: VoteRule.make(everyone, min_votes, weights, min_weight) for name in CLASSES}
    for name, class_w in (class_weights or {}).items():
        rules[name] = VoteRule.make(everyone, None, class_w, min_weight)
    return rules


def parse_pick(text: str, n_inputs: int) -> tuple[str, VoteRule]:
    """Parse ``CLASS=INDEX`` or ``CLASS=I+J+K`` (majority vote of those inputs) into a rule."""
    name, _, choice = text.partition("=")
    if name not in CLASS_INDEX:
        raise HbensError(f"--pick {text}: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
    try:
        inputs = [int(part) for part in choice.split("+")]
    except ValueError:
        raise HbensError(f"--pick {text}: expected CLASS=INDEX or CLASS=I+J+K with input indices") from None
    bad = [i for i in inputs if not 0 <= i < n_inputs]
    if bad or len(set(inputs)) != len(inputs):
        raise HbensError(f"--pick {text}: indices must be distinct and in 0..{n_inputs - 1}")
    return name, VoteRule.make(inputs)


def classwise_rules(
    n_inputs: int, picks: Sequence[str] = (), scores: Sequence[dict[str, float]] | None = None
) -> dict[str, VoteRule]:
    """Per-class choice of input: from validation ``scores`` (best, ties to the earlier input) or ``picks``.

    Classes not chosen otherwise come from the first input; ``picks`` override ``scores``.
    """
    rules = {name: VoteRule.make([0]) for name in CLASSES}
    if scores is not None:
        if len(scores) != n_inputs:
            raise HbensError(f"{len(scores)} --scores files for {n_inputs} inputs; give one per input, in order")
        for name in CLASSES:
            available = [(s[name], -i) for i, s in enumerate(scores) if name in s]
            if available:
                rules[name] = VoteRule.make([-max(available)[1]])
    picked: dict[str, str] = {}
    for text in picks:
        name, rule = parse_pick(text, n_inputs)
        if name in picked:
            raise HbensError(f"--pick {picked[name]} and --pick {text} both choose {name}; give one --pick per class")
        picked[name] = text
        rules[name] = rule
    return rules


def _csv_class_weights(path: PathLike) -> list[tuple[str, str, list[float]]]:
    """``(where, class, weights)`` of the rows ``class,w1,w2,...`` of a CSV (an optional ``class,...``
    header and blank lines skipped); each weight a finite number."""
    numbered = []
    for line, row in enumerate(read_csv_rows(path), start=1):
        if not row or (line == 1 and row[0].strip() == "class"):
            continue
        where = f"{path}:{line}"
        try:
            values = [float(w) for w in row[1:]]
        except ValueError:
            raise HbensError(f"{where}: weights of {clip(row[0], limit=40)} must be numbers, got "
                             f"{examples(row[1:])}") from None
        if not all(math.isfinite(w) for w in values):
            name = clip(row[0], limit=40)
            raise HbensError(f"{where}: weights of {name} must be finite, got {examples(values)}")
        numbered.append((where, row[0], values))
    return numbered


def read_class_weights(path: PathLike, n_inputs: int) -> dict[str, list[float]]:
    """Per-class weights from JSON (``{"Pisiform": [1, 2, 1]}``) or CSV rows ``class,w1,w2,...``.

    Names must be classes and weights lists of ``n_inputs`` finite numbers > 0; every problem is
    one line naming the file, and the line or key.
    """
    if str(path).endswith(".json"):
        data = check_mapping(read_settings(path), {name: [float] for name in CLASSES}, where=str(path))
        numbered = [(f"{path}: {name}", name, weights) for name, weights in data.items()]
    else:
        numbered = _csv_class_weights(path)
    result = {}
    for where, name, values in numbered:
        if name not in CLASS_INDEX:
            raise HbensError(f"{where}: unknown class {clip(repr(name), limit=40)}; valid classes: "
                             f"{examples(CLASSES)}")
        if name in result:
            raise HbensError(f"{where}: {name} is given twice; give one row per class")
        if len(values) != n_inputs:
            raise HbensError(f"{where}: {len(values)} weights for {name}, expected one per input ({n_inputs})")
        if not all(w > 0 for w in values):
            raise HbensError(f"{where}: weights of {name} must be > 0, got {examples(values)}")
        result[name] = values
    return result


def _aligned_images(indexes: list[SubmissionIndex], rules: dict[str, VoteRule], missing: str) -> list[str]:
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
    for i, index in enumerate(indexes):
        used = [name for name, rule in rules.items() if i in rule.inputs]
        absent = index.missing(images, used)
        if absent:
            shown = ", ".join(f"({image}, {name})" for image, name in absent[:3])
            raise HbensError(
                f"{index.path}: {len(absent)} (image, class) row(s) needed for the vote are missing, e.g. {shown}; "
                "pass --missing empty to treat them as empty masks"
            )
    return images


def _same_rle(canonical: str, other: str) -> bool:
    """Whether ``other`` spells the canonical RLE string, up to whitespace (split only when needed)."""
    if canonical == other:
        return True
    plain = not (other[:1] == " " or other[-1:] == " " or "  " in other or "\t" in other or "\r" in other
                 or "\n" in other)
    return not plain and canonical.split() == other.split()


@dataclass(frozen=True, kw_only=True)
class FuseItem:
    """One image of a CSV fuse: each input's RLE per class and the settings (plain data, picklable)."""

    image: str
    rles: list[dict[str, str]]
    rules: dict[str, VoteRule]
    cleanup: Cleanup | None = None
    shape: tuple[int, int] = IMAGE_SHAPE


def fuse_image(item: FuseItem) -> ImageOutput:
    """The per-image task of a CSV fuse: the voted (and cleaned) rows and the rows changed per input."""
    size = item.shape[0] * item.shape[1]
    rows = []
    for name in CLASSES:
        rule = item.rules[name]
        rows.append((name, vote_strings([item.rles[i].get(name, "") for i in rule.inputs], rule, size)))
    rows, clean = clean_rows(rows, item.cleanup, item.shape)
    changed = tuple(
        sum(not _same_rle(fused, own.get(name, "")) for name, fused in rows) for own in item.rles
    )
    return ImageOutput(item.image, rows, FuseStats(changed, clean))


def fuse_csvs(
    paths: Sequence[PathLike],
    output: PathLike,
    rules: dict[str, VoteRule] | None = None,
    *,
    missing: str = "error",
    cleanup: Cleanup | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> RunSummary:
    """Fuse submission CSVs into ``output`` with one :class:`VoteRule` per class (default: majority).

    ``cleanup`` cleans each fused row.  ``shape`` is the frame (CSVs do not record it); None:
    2048x2048.  The summary's ``stats`` is a :class:`FuseStats`.
    """
    if missing not in ("error", "empty"):
        raise HbensError(f"missing must be 'error' or 'empty', got {missing!r}")
    rules = rules or hard_rules(len(paths))
    for name, rule in rules.items():
        if max(rule.inputs) >= len(paths):
            raise HbensError(f"the rule for {name} uses input {max(rule.inputs)} but there are {len(paths)} inputs")
    shape = csv_frame(shape)
    indexes = [scan_submission(path, shape) for path in paths]
    images = _aligned_images(indexes, rules, missing)
    with ExitStack() as stack:
        handles = [stack.enter_context(index.open()) for index in indexes]

        def items() -> Iterator[FuseItem]:
            for image in images:
                rles = [{name: index.read_rle((image, name), handle) for name in CLASSES if (image, name) in index.rows}
                        for index, handle in zip(indexes, handles)]
                yield FuseItem(image=image, rles=rles, rules=rules, cleanup=cleanup, shape=shape)

        summary = run_images(fuse_image, items(), execution or Execution(), names=images, csv=output,
                             inputs=paths, desc="fuse")
    summary.stats = summary.stats or FuseStats(tuple(0 for _ in paths))
    return summary


def describe_fuse(summary: RunSummary, output: PathLike, paths: Sequence[PathLike]) -> str:
    """One line saying what a fuse wrote and how many rows differ from each input."""
    changed = ", ".join(f"{Path(p).name}: {c}" for p, c in zip(paths, summary.stats.changed))
    return (f"wrote {output}: {summary.rows} rows from {len(paths)} inputs in {summary.seconds:.1f} s; "
            f"rows changed vs each input: {changed}")

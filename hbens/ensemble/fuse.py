"""``hbens fuse``: the one fusion engine, for submission CSVs, folders of probability maps, or both.

:func:`fuse` aligns its inputs by image name and runs one task of :mod:`hbens.pipeline` per image
(:func:`fuse_task`): each class of the image is fused by its rule (:mod:`hbens.ensemble.rules`),
a soft mean (:func:`~hbens.ensemble.combine.fuse_class`) or a vote
(:func:`~hbens.ensemble.combine.vote_class`), over the crops and runs of
:class:`~hbens.ensemble.inputs.ImageInputs`.  Hard rules on CSVs alone take a fast path inside the
engine that votes on the RLE text (:mod:`hbens.ensemble.csv_votes`), with the same rows.
``hbens apply`` and ``hbens tune`` fuse with the same :func:`fuse_image`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.ensemble.combine import fuse_class, vote_class
from hbens.ensemble.csv_votes import VoteStats, check_rows, vote_submissions, votes_on_text
from hbens.ensemble.inputs import ImageInputs
from hbens.ensemble.rules import HardRule, Rule, check_rule_inputs, hard_rules, rules_metadata
from hbens.errors import HbensError
from hbens.execution import Execution, path_field
from hbens.maps.folders import Inputs, MapFolder, open_inputs
from hbens.maps.probabilities import PRECISIONS, ClassCrop, crop_runs, tight_crop, write_store
from hbens.maps.saved_arrays import ArrayFormat
from hbens.outputs import PathLike
from hbens.paths import output_folders
from hbens.pipeline import ImageOutput, RunSummary, run_images
from hbens.postproc.clean import CleanTotals, Cleanup, clean_rows
from hbens.rle import runs_to_string
from hbens.runs import runs_bounds, runs_to_box
from hbens.submission import SubmissionIndex

MISSING = ("error", "empty")
"""What an absent image or row of an input is: an error, or the empty mask."""


@dataclass
class FuseCounts:
    """Counts of a fusion; results of several images add up with ``+``.

    ``partial_rows`` are rows fused from only some of their rule's members (the others lack the
    class); ``fused_pixels`` are the pixels of the union boxes fused in float (soft rules only).
    """

    images: int = 0
    rows: int = 0
    partial_rows: int = 0
    fused_pixels: int = 0
    foreground_pixels: int = 0

    def __add__(self, other: FuseCounts) -> FuseCounts:
        return FuseCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass
class FusedImage:
    """One fused image: ``(class, rle)`` rows in CLASSES order, fused quantized crops when kept, counts."""

    image: str
    rows: list[tuple[str, str]]
    crops: list[ClassCrop] | None = None
    stats: FuseCounts = field(default_factory=FuseCounts)
    shape: tuple[int, int] = IMAGE_SHAPE


def fuse_image(inputs: ImageInputs, rules: dict[str, Rule], *, precision: str = "uint8",
               keep_crops: bool) -> FusedImage:
    """Fuse one image: the classes of ``rules`` in CLASSES order, each by its rule.

    With ``keep_crops`` the fused probabilities (0/1 for hard rules) are also returned as crops
    quantized to ``precision``, ready for :func:`~hbens.maps.probabilities.write_store` (record the
    rules with :func:`~hbens.ensemble.rules.rules_metadata`).
    """
    if precision not in PRECISIONS:
        raise HbensError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    stores, shape = inputs.read()
    check_rule_inputs([store.classes if store is not None else None for store in stores], rules)
    stats = FuseCounts(images=1)
    rows, crops = [], []
    for name in (name for name in CLASSES if name in rules):
        rule = rules[name]
        sources = inputs.sources(stores, name, shape, rule.members)
        if isinstance(rule, HardRule):
            runs = vote_class(sources, rule, shape)
            if keep_crops:
                box = runs_bounds(runs, shape) or (0, 0, 0, 0)
                crops.append(tight_crop(runs_to_box(runs, box, shape).astype(np.float32), box[:2], precision))
        else:
            fused = fuse_class(sources, rule, shape)
            runs = crop_runs(fused, shape, rule.threshold)
            stats.fused_pixels += fused.values.size
            if keep_crops:
                crops.append(tight_crop(fused.values, fused.box[:2], precision))
        rows.append((name, runs_to_string(*runs)))
        stats.rows += 1
        stats.partial_rows += any(sources[i] is None for i in rule.members)
        stats.foreground_pixels += int(runs[1].sum())
    return FusedImage(inputs.image, rows, crops if keep_crops else None, stats, shape)


@dataclass(frozen=True)
class FuseStats:
    """What a fuse of maps did to its images: fusion counts and cleanup, adding up with ``+``."""

    fuse: FuseCounts = field(default_factory=FuseCounts)
    clean: CleanTotals = field(default_factory=CleanTotals)

    def __add__(self, other: FuseStats) -> FuseStats:
        return FuseStats(self.fuse + other.fuse, self.clean + other.clean)


@dataclass(frozen=True, kw_only=True)
class FuseItem:
    """One image of a fuse: its inputs, the rules, where the fused store goes, the cleanup."""

    inputs: ImageInputs
    rules: dict[str, Rule]
    precision: str = "uint8"
    store: str | None = path_field(None)
    metadata: dict = field(default_factory=dict)
    cleanup: Cleanup | None = None


def fuse_task(item: FuseItem) -> ImageOutput:
    """The per-image task of a fuse: the fused (cleaned) rows; writes the fused store when asked."""
    result = fuse_image(item.inputs, item.rules, precision=item.precision, keep_crops=item.store is not None)
    if item.store is not None:
        write_store(item.store, result.crops, result.shape, item.precision, tuple(name for name, _ in result.rows),
                    image=item.inputs.image, **item.metadata)
    rows, clean = clean_rows(result.rows, item.cleanup, result.shape)
    return ImageOutput(item.inputs.image, rows, FuseStats(result.stats, clean))


def aligned_images(inputs: Inputs, rules: dict[str, Rule], missing: str) -> list[str]:
    """Images of every input, or an HbensError naming an input that lacks some, or a CSV that lacks
    a row its rules read (unless missing=empty)."""
    images = inputs.images
    if missing == "error":
        inputs.check_images(images, what="the other inputs",
                            advice="fuse inputs of the same images or pass --missing empty")
        check_rows([(i, source) for i, source in enumerate(inputs.sources) if isinstance(source, SubmissionIndex)],
                   images, rules)
    return images


def fuse(
    paths: Sequence[PathLike],
    output: PathLike,
    rules: dict[str, Rule] | None = None,
    *,
    missing: str = "error",
    stores: PathLike | None = None,
    precision: str = "uint8",
    array_format: ArrayFormat | None = None,
    cleanup: Cleanup | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
    images: PathLike | None = None,
) -> RunSummary:
    """Fuse submission CSVs and folders of probability maps (hbens stores or saved arrays) into ``output``.

    ``rules`` holds one rule per class (default: a strict-majority vote of every input).  Images
    are aligned by name; an input that lacks an image (or, for a CSV, a row its vote needs) is an
    error, or empty masks with ``missing="empty"``.  ``stores`` also writes the fused
    probabilities as hbens stores (their metadata records the inputs and rules).  ``shape`` is the
    frame; None: the maps', else the X-rays' under ``images``, else 2048x2048
    (:func:`hbens.maps.folders.open_inputs`).  The summary's ``stats`` is a :class:`FuseStats`, or a
    :class:`~hbens.ensemble.csv_votes.VoteStats` (rows changed per input) on the CSV fast path.
    """
    if missing not in MISSING:
        raise HbensError(f"missing must be 'error' or 'empty', got {missing!r}")
    rules = rules or hard_rules(len(paths))
    if votes_on_text(paths, rules, stores):
        check_rule_inputs([None] * len(paths), rules)
        return vote_submissions(paths, output, rules, missing=missing, cleanup=cleanup, execution=execution,
                                shape=shape)
    inputs = open_inputs(paths, array_format=array_format, shape=shape, images=images)
    check_rule_inputs([source.first_maps.classes if isinstance(source, MapFolder) else None
                       for source in inputs.sources], rules)
    if precision not in PRECISIONS:
        raise HbensError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    names = aligned_images(inputs, rules, missing)
    metadata = {"inputs": [str(p) for p in paths], "rules": rules_metadata(rules)}
    with inputs.reader() as read, output_folders([stores] if stores is not None else [], option="--stores"):

        def items():
            for name in names:
                maps, rles = read(name)
                store = str(Path(stores) / f"{Path(name).stem}.npz") if stores is not None else None
                yield FuseItem(inputs=ImageInputs(image=name, maps=maps, rles=rles, shape=inputs.shape), rules=rules,
                               precision=precision, store=store, metadata=metadata, cleanup=cleanup)

        summary = run_images(fuse_task, items(), execution or Execution(), names=names, csv=output,
                             inputs=paths, desc="fuse")
    summary.stats = summary.stats or FuseStats()
    return summary


def describe_fuse(summary: RunSummary, output: PathLike, paths: Sequence[PathLike]) -> str:
    """One line saying what a fuse wrote: rows changed vs each input (CSV votes), else the fused pixels."""
    if isinstance(summary.stats, VoteStats):
        changed = ", ".join(f"{Path(p).name}: {c}" for p, c in zip(paths, summary.stats.changed))
        return (f"wrote {output}: {summary.rows} rows from {len(paths)} inputs in {summary.seconds:.1f} s; "
                f"rows changed vs each input: {changed}")
    fuse = summary.stats.fuse
    partial = f", {fuse.partial_rows} row(s) from only the inputs that have the class" if fuse.partial_rows else ""
    return (f"wrote {output}: {summary.rows} rows from {len(paths)} inputs in {summary.seconds:.1f} s "
            f"({fuse.fused_pixels / max(fuse.images, 1) / 1e6:.2f} Mpixel fused per image{partial})")

"""Soft ensembles: per class, the weighted mean of the inputs' probabilities (or logits), thresholded.

An input of an image is a probability store (see :mod:`hbens.probabilities`) or the rows of a
submission CSV, which count as 0/1 probability maps.  A class is fused only over the bounding box of
the union of its members' crops (for a CSV, the box of its runs): outside every crop each member's
probability is 0, so the fused value is 0 there (the clipping floor in logit space, which never
exceeds an allowed threshold).  No 2048x2048 array is built.

Exactness: inside that box the weighted sum is accumulated in float64 from exactly the float32
values a store reads back (:func:`~hbens.probabilities.dequantize`), or a saved array read directly
holds (float32, never rounded to 1/255; probabilities at or below
:data:`~hbens.saved_arrays.EXACT_FLOOR` count as 0), with weights normalised to sum to 1, so it
equals a float64 mean of the full maps up to float64 rounding (and that floor).  The fused crop is
handed back as float32 (what a store holds) and thresholded as every hbens output is, float32 values
against the float32 threshold (:func:`hbens.probabilities.crop_runs`; ``hbens tune`` counts on it);
each float32 rounding moves a value by at most 2**-25, so a pixel can differ from a float64
computation only where its fused value lies within 6e-8 of the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES, IMAGE_SHAPE
from hbens.ensemble.fuse import classwise_rules, hard_rules
from hbens.ensemble.vote import VoteRule, hard_vote
from hbens.errors import HbensError
from hbens.maps import ImageMaps, Inputs, MapFile, MapFolder, open_inputs
from hbens.outputs import PathLike
from hbens.pipeline import Execution, ImageOutput, RunSummary, path_field
from hbens.postproc.clean import Cleanup, CleanTotals, clean_rows
from hbens.saved_arrays import ArrayFormat
from hbens.probabilities import PRECISIONS, ClassCrop, dequantize, tight_crop, write_store
from hbens.probabilities import crop_runs as probability_runs
from hbens.rle import runs_to_string, string_to_runs
from hbens.runs import EMPTY_RUNS, Runs, runs_bounds, runs_to_box

SPACES = ("prob", "logit")
CLIP = 1 / 510
"""Probabilities are clipped to ``[CLIP, 1 - CLIP]`` before taking logits (half a uint8 step)."""

_UINT8_LEVELS = dequantize(np.arange(256, dtype=np.uint8)).astype(np.float64)
_BINARY_LEVELS = np.array([0.0, 1.0])

Source = ClassCrop | Runs
"""One input's map of one class: a store's crop (uint8 p*255, float16 or float32) or a CSV's runs."""


@dataclass(frozen=True, kw_only=True)
class SoftRule:
    """A weighted mean of the probabilities (``space="prob"``) or logits (``"logit"``) of ``members``.

    A pixel is foreground when the mean is strictly greater than ``threshold`` (or ``logit(threshold)``).
    Members that lack the class are left out and the weights of the others renormalised.  In logit
    space the threshold must be at least :data:`CLIP`: below it every pixel of the frame would be
    foreground.
    """

    members: tuple[int, ...]
    weights: tuple[float, ...]
    space: str = "prob"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(int(m) for m in self.members))
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        object.__setattr__(self, "threshold", float(self.threshold))
        members, weights = self.members, self.weights
        if not members or min(members) < 0 or len(set(members)) != len(members):
            raise HbensError(f"a soft rule needs distinct input indices >= 0, got {list(members)}")
        if len(weights) != len(members):
            raise HbensError(f"{len(weights)} weights for {len(members)} inputs; give one weight per input")
        if not all(w > 0 and np.isfinite(w) for w in weights):
            raise HbensError(f"weights must be positive numbers, got {','.join(map(str, weights))}")
        if self.space not in SPACES:
            raise HbensError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if not 0 <= self.threshold <= 1:
            raise HbensError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.space == "logit" and self.threshold < CLIP:
            raise HbensError(f"in logit space the threshold must be >= 1/510 (the clipping floor), got {self.threshold}")


@dataclass(frozen=True, kw_only=True)
class HardRule:
    """Threshold each member at ``threshold`` (``p > threshold``), then ``vote`` on the masks' runs.

    Members that lack the class are left out and the vote's threshold scaled by the share of the
    weight they keep, so the same fraction of the weight must agree.
    """

    vote: VoteRule
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", float(self.threshold))
        if not 0 <= self.threshold <= 1:
            raise HbensError(f"threshold must be in [0, 1], got {self.threshold}")

    @property
    def members(self) -> tuple[int, ...]:
        return self.vote.inputs


Rule = SoftRule | HardRule


@dataclass
class SoftFuseStats:
    """Counts of a soft fusion; results of several images add up with ``+``.

    ``partial_rows`` are rows fused from only some of their rule's members (the others lack the
    class); ``fused_pixels`` are the pixels of the union boxes fused in float (soft rules only).
    """

    images: int = 0
    rows: int = 0
    partial_rows: int = 0
    fused_pixels: int = 0
    foreground_pixels: int = 0

    def __add__(self, other: SoftFuseStats) -> SoftFuseStats:
        return SoftFuseStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass
class SoftFuseResult:
    """One fused image: ``(class, rle)`` rows in CLASSES order, fused quantized crops when kept, counts."""

    image: str
    rows: list[tuple[str, str]]
    crops: list[ClassCrop] | None = None
    stats: SoftFuseStats = field(default_factory=SoftFuseStats)
    shape: tuple[int, int] = IMAGE_SHAPE


def _class_thresholds(threshold: float, thresholds: dict[str, float] | None) -> dict[str, float]:
    """``threshold`` for every class, overridden per class; unknown class names are refused."""
    for name in thresholds or {}:
        if name not in CLASS_INDEX:
            raise HbensError(f"thresholds: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
    return {name: float((thresholds or {}).get(name, threshold)) for name in CLASSES}


def soft_rules(
    n_inputs: int,
    *,
    weights: Sequence[float] | None = None,
    class_weights: dict[str, Sequence[float]] | None = None,
    threshold: float = 0.5,
    thresholds: dict[str, float] | None = None,
    space: str = "prob",
) -> dict[str, SoftRule]:
    """The weighted mean of all inputs for every class (default: plain mean), with per-class overrides.

    ``class_weights`` replaces ``weights`` for its classes (as read by
    :func:`~hbens.ensemble.fuse.read_class_weights`); ``thresholds`` replaces ``threshold``.
    """
    if weights is not None and len(weights) != n_inputs:
        raise HbensError(f"{len(weights)} weights for {n_inputs} inputs; give one weight per input")
    for name, class_w in (class_weights or {}).items():
        if name not in CLASS_INDEX:
            raise HbensError(f"class weights: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
        if len(class_w) != n_inputs:
            raise HbensError(f"{len(class_w)} weights for {name}, expected one per input ({n_inputs})")
    cuts = _class_thresholds(threshold, thresholds)
    default = tuple(weights) if weights is not None else (1.0,) * n_inputs
    return {
        name: SoftRule(members=range(n_inputs), weights=(class_weights or {}).get(name, default), space=space,
                       threshold=cuts[name])
        for name in CLASSES
    }


def classwise_soft_rules(
    n_inputs: int,
    *,
    picks: Sequence[str] = (),
    scores: Sequence[dict[str, float]] | None = None,
    threshold: float = 0.5,
    thresholds: dict[str, float] | None = None,
    space: str = "prob",
) -> dict[str, SoftRule]:
    """Per class, one input or the plain soft mean of a subset: ``CLASS=I`` or ``CLASS=I+J`` picks,
    else the best input by validation ``scores``, else input 0 (as
    :func:`~hbens.ensemble.fuse.classwise_rules` chooses for CSVs).
    """
    cuts = _class_thresholds(threshold, thresholds)
    chosen = classwise_rules(n_inputs, picks, scores)
    return {
        name: SoftRule(members=rule.inputs, weights=(1.0,) * len(rule.inputs), space=space, threshold=cuts[name])
        for name, rule in chosen.items()
    }


def hard_store_rules(
    n_inputs: int,
    *,
    min_votes: int | None = None,
    weights: Sequence[float] | None = None,
    min_weight: float | None = None,
    class_weights: dict[str, Sequence[float]] | None = None,
    threshold: float = 0.5,
    thresholds: dict[str, float] | None = None,
) -> dict[str, HardRule]:
    """The CSV fuse's votes (:func:`~hbens.ensemble.fuse.hard_rules`) on inputs thresholded first."""
    cuts = _class_thresholds(threshold, thresholds)
    votes = hard_rules(n_inputs, min_votes, weights, min_weight, class_weights)
    return {name: HardRule(vote=vote, threshold=cuts[name]) for name, vote in votes.items()}


def rules_metadata(rules: dict[str, Rule]) -> dict[str, dict[str, object]]:
    """A JSON-able record of each class's rule, for the metadata of fused stores."""
    record = {}
    for name, rule in rules.items():
        if isinstance(rule, HardRule):
            record[name] = {"space": "hard", "members": list(rule.vote.inputs), "weights": list(rule.vote.weights),
                            "min_weight": rule.vote.threshold, "threshold": rule.threshold}
        else:
            record[name] = {"space": rule.space, "members": list(rule.members), "weights": list(rule.weights),
                            "threshold": rule.threshold}
    return record


def check_store_classes(class_lists: Sequence[Sequence[str] | None], rules: dict[str, Rule]) -> None:
    """Raise HbensError when a rule uses an input that does not exist or no member has its class.

    ``class_lists`` holds, per input, the classes of its stores (their ``meta["classes"]``), or
    None for a CSV input, which has every class.
    """
    n_inputs = len(class_lists)
    for name, rule in rules.items():
        if max(rule.members) >= n_inputs:
            raise HbensError(f"the rule for {name} uses input {max(rule.members)} but there are {n_inputs} inputs")
        if not any(class_lists[i] is None or name in class_lists[i] for i in rule.members):
            members = ", ".join(map(str, rule.members))
            raise HbensError(f"class {name}: none of its inputs ({members}) has it in its probability stores; "
                             f"add an input that predicts {name} or leave it out of the rule")


def _box(source: Source, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The box outside which the source's probability is 0 (a crop's box, the bounds of runs); None if empty."""
    if isinstance(source, ClassCrop):
        return source.box if source.values.size else None
    return runs_bounds(source, shape)


def _mapped(source: Source, box: tuple[int, int, int, int], transfer: Callable[[np.ndarray], np.ndarray],
            shape: tuple[int, int]) -> np.ndarray:
    """``transfer`` of the source's float64 probabilities over ``box`` (its :func:`_box`).

    uint8 and CSV sources go through a lookup table of their levels, so ``transfer`` runs on at
    most 256 values.
    """
    if isinstance(source, ClassCrop):
        if source.values.dtype == np.uint8:
            return transfer(_UINT8_LEVELS)[source.values]
        return transfer(source.values.astype(np.float64))
    return transfer(_BINARY_LEVELS)[runs_to_box(source, box, shape)]


def _normalised(weights: Sequence[float]) -> np.ndarray:
    """Weights scaled to sum to 1; divided by their maximum first so that large ones do not overflow."""
    scaled = np.asarray(weights, np.float64) / max(weights)
    return scaled / scaled.sum()


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, CLIP, 1 - CLIP)
    return np.log(clipped) - np.log1p(-clipped)


def _present(sources: Sequence[Source | None], members: Sequence[int]) -> list[int]:
    """Positions in ``members`` of the members that have the class (see :func:`check_store_classes`)."""
    present = [k for k, i in enumerate(members) if sources[i] is not None]
    if not present:
        raise HbensError(f"none of the inputs {', '.join(map(str, members))} of the rule has the class")
    return present


def fuse_class(sources: Sequence[Source | None], rule: SoftRule, shape: tuple[int, int]) -> ClassCrop:
    """The fused float32 probability of one class over the box of the union of its members' maps.

    ``sources`` holds one entry per input (None where the input lacks the class); only
    ``rule.members`` are read.  In logit space the fused probability is the sigmoid of the mean
    logit.  The crop is empty when every member's map is empty.
    """
    present = _present(sources, rule.members)
    weights = _normalised([rule.weights[k] for k in present])
    transfer = _logit if rule.space == "logit" else (lambda p: p)
    base = float(transfer(np.float64(0.0)))
    parts = [(sources[rule.members[k]], w) for k, w in zip(present, weights)]
    parts = [(source, w, box) for source, w in parts if (box := _box(source, shape)) is not None]
    if not parts:
        return ClassCrop((0, 0, 0, 0), np.zeros((0, 0), np.float32))
    top = min(box[0] for *_, box in parts)
    left = min(box[1] for *_, box in parts)
    bottom = max(box[2] for *_, box in parts)
    right = max(box[3] for *_, box in parts)
    total = np.full((bottom - top, right - left), base * weights.sum())
    for source, w, box in parts:
        values = _mapped(source, box, lambda p: w * (transfer(p) - base), shape)
        total[box[0] - top : box[2] - top, box[1] - left : box[3] - left] += values
    fused = 1 / (1 + np.exp(-total)) if rule.space == "logit" else total
    return ClassCrop((top, left, bottom, right), fused.astype(np.float32))


def crop_runs(crop: ClassCrop, threshold: float, shape: tuple[int, int]) -> Runs:
    """Runs of ``p > threshold`` in a crop (stored or float values), float32 against the float32
    threshold as :func:`hbens.probabilities.crop_runs` compares."""
    return probability_runs(crop, shape, threshold)


def vote_class(sources: Sequence[Source | None], rule: HardRule, shape: tuple[int, int]) -> Runs:
    """The hard vote of one class: each member's ``p > rule.threshold``, then ``rule.vote`` on runs.

    ``sources`` holds one entry per input (None where the input lacks the class).
    """
    vote = rule.vote
    present = _present(sources, vote.inputs)
    masks = []
    for k in present:
        source = sources[vote.inputs[k]]
        if isinstance(source, ClassCrop):
            masks.append(crop_runs(source, rule.threshold, shape))
        else:
            masks.append(source if rule.threshold < 1 else EMPTY_RUNS)
    weights = [vote.weights[k] for k in present]
    # Exact rational scaling, so that a tie such as 1 of 2 votes against a majority of 3 stays a tie.
    share = sum(map(Fraction, weights)) / sum(map(Fraction, vote.weights))
    return hard_vote(masks, weights=weights, min_weight=float(Fraction(vote.threshold) * share))


def _check_shapes(image: str, stores: Sequence[ImageMaps | None], shape: tuple[int, int]) -> None:
    """Raise a one-line HbensError when the stores of an image differ in shape or from ``shape``."""
    opened = [store for store in stores if store is not None]
    if len({store.shape for store in opened}) > 1:
        listed = ", ".join(f"{store.path} ({store.shape[0]}x{store.shape[1]})" for store in opened)
        raise HbensError(f"{image}: the probability stores differ in shape: {listed}; fuse stores of the same image")
    wrong = [store for store in opened if store.shape != tuple(shape)]
    if wrong:
        listed = ", ".join(str(store.path) for store in wrong)
        raise HbensError(f"{image}: {listed} hold {wrong[0].shape[0]}x{wrong[0].shape[1]} maps, "
                         f"expected {shape[0]}x{shape[1]}")


def _source(store: ImageMaps | None, rles: dict[str, str] | None, image: str, name: str,
            shape: tuple[int, int]) -> Source | None:
    """One input's map of a class: its stored crop, its parsed CSV row ("" when absent), or None."""
    if store is not None:
        return store.crop(name)
    try:
        return string_to_runs(rles.get(name, ""), shape)
    except HbensError as error:
        raise HbensError(f"{image}, {name}: {error}") from None


def fuse_stores_image(
    image: str,
    maps: Sequence[MapFile | None],
    rles: Sequence[dict[str, str] | None],
    rules: dict[str, Rule],
    *,
    shape: tuple[int, int] | None = None,
    precision: str = "uint8",
    keep_crops: bool,
) -> SoftFuseResult:
    """Fuse one image from its inputs: per input its map file (store or saved array) or that CSV's
    ``{class: rle}`` rows.

    Classes of ``rules`` are fused in CLASSES order; a CSV row that is absent is the empty mask.
    With ``keep_crops`` the fused probabilities (0/1 for hard rules) are also returned as crops
    quantized to ``precision``, ready for :func:`~hbens.probabilities.write_store` (record the rules
    with :func:`rules_metadata`).  Module-level and picklable, for process or Dask workers.
    """
    if len(maps) != len(rles) or any((p is None) == (r is None) for p, r in zip(maps, rles)):
        raise HbensError(f"{image}: give each input either a map file or CSV rows, not both or neither")
    if precision not in PRECISIONS:
        raise HbensError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    stores = [file.read() if file is not None else None for file in maps]
    if shape is None:
        shape = next((store.shape for store in stores if store is not None), IMAGE_SHAPE)
    _check_shapes(image, stores, shape)
    check_store_classes([store.classes if store is not None else None for store in stores], rules)
    stats = SoftFuseStats(images=1)
    rows, crops = [], []
    for name in (name for name in CLASSES if name in rules):
        rule = rules[name]
        sources: list[Source | None] = [None] * len(stores)
        for i in rule.members:
            sources[i] = _source(stores[i], rles[i], image, name, shape)
        if isinstance(rule, HardRule):
            runs = vote_class(sources, rule, shape)
            if keep_crops:
                box = runs_bounds(runs, shape) or (0, 0, 0, 0)
                crops.append(tight_crop(runs_to_box(runs, box, shape).astype(np.float32), box[:2], precision))
        else:
            fused = fuse_class(sources, rule, shape)
            runs = crop_runs(fused, rule.threshold, shape)
            stats.fused_pixels += fused.values.size
            if keep_crops:
                crops.append(tight_crop(fused.values, fused.box[:2], precision))
        rows.append((name, runs_to_string(*runs)))
        stats.rows += 1
        stats.partial_rows += any(sources[i] is None for i in rule.members)
        stats.foreground_pixels += int(runs[1].sum())
    return SoftFuseResult(image, rows, crops if keep_crops else None, stats, tuple(shape))


@dataclass(frozen=True)
class SoftImageStats:
    """What a soft fuse did to its images: fusion counts and cleanup, adding up with ``+``."""

    fuse: SoftFuseStats = field(default_factory=SoftFuseStats)
    clean: CleanTotals = field(default_factory=CleanTotals)

    def __add__(self, other: SoftImageStats) -> SoftImageStats:
        return SoftImageStats(self.fuse + other.fuse, self.clean + other.clean)


@dataclass(frozen=True, kw_only=True)
class SoftFuseItem:
    """One image of a soft fuse: each input's map file or CSV rows, the rules, where the fused store goes."""

    image: str
    maps: list[MapFile | None]
    rles: list[dict[str, str] | None]
    rules: dict[str, Rule]
    precision: str = "uint8"
    store: str | None = path_field(None)
    metadata: dict = field(default_factory=dict)
    cleanup: Cleanup | None = None
    shape: tuple[int, int] | None = None
    """The frame (None: the first map's)."""


def soft_fuse_image(item: SoftFuseItem) -> ImageOutput:
    """The per-image task of a soft fuse: the fused (cleaned) rows; writes the fused store when asked."""
    result = fuse_stores_image(item.image, item.maps, item.rles, item.rules, shape=item.shape,
                               precision=item.precision, keep_crops=item.store is not None)
    if item.store is not None:
        write_store(item.store, result.crops, result.shape, item.precision, tuple(name for name, _ in result.rows),
                    image=item.image, **item.metadata)
    rows, clean = clean_rows(result.rows, item.cleanup, result.shape)
    return ImageOutput(item.image, rows, SoftImageStats(result.stats, clean))


def _aligned(inputs: Inputs, missing: str) -> list[str]:
    """Images of every input, or an HbensError naming an input that lacks some (unless missing=empty)."""
    images = sorted(set().union(*(source.images for source in inputs.sources)))
    if missing == "error":
        inputs.check_images(images, what="the other inputs",
                            advice="fuse inputs of the same images or pass --missing empty")
    return images


def fuse_inputs(
    paths: Sequence[PathLike],
    output: PathLike,
    rules: dict[str, Rule],
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
    """Fuse folders of probability maps (hbens stores or saved arrays) and CSVs into ``output``.

    Images are aligned by name; each is a task of :mod:`hbens.pipeline` that reads its own maps.
    An input that lacks an image is an error, or empty masks with ``missing="empty"``.
    ``stores`` also writes the fused probabilities as hbens stores (their metadata records the
    inputs and rules).  ``shape`` is the frame; None: the maps', else the X-rays' under ``images``,
    else 2048x2048 (:func:`hbens.maps.open_inputs`).  The summary's ``stats`` is a :class:`SoftImageStats`.
    """
    from hbens.paths import output_folders
    from hbens.pipeline import run_images

    if missing not in ("error", "empty"):
        raise HbensError(f"missing must be 'error' or 'empty', got {missing!r}")
    inputs = open_inputs(paths, array_format=array_format, shape=shape, images=images)
    check_store_classes([source.first_maps.classes if isinstance(source, MapFolder) else None
                         for source in inputs.sources], rules)
    images = _aligned(inputs, missing)
    metadata = {"inputs": [str(p) for p in paths], "rules": rules_metadata(rules)}
    with inputs.reader() as read, output_folders([stores] if stores is not None else [], option="--stores"):

        def items():
            for image in images:
                maps, rles = read(image)
                store = str(Path(stores) / f"{Path(image).stem}.npz") if stores is not None else None
                yield SoftFuseItem(image=image, maps=maps, rles=rles, rules=rules, precision=precision, store=store,
                                   metadata=metadata, cleanup=cleanup, shape=inputs.shape)

        summary = run_images(soft_fuse_image, items(), execution or Execution(), names=images, csv=output,
                             inputs=paths, desc="fuse")
    summary.stats = summary.stats or SoftImageStats()
    return summary


def describe_soft_fuse(summary: RunSummary, output: PathLike, paths: Sequence[PathLike]) -> str:
    """One line saying what a soft fuse wrote."""
    fuse = summary.stats.fuse
    partial = f", {fuse.partial_rows} row(s) from only the inputs that have the class" if fuse.partial_rows else ""
    return (f"wrote {output}: {summary.rows} rows from {len(paths)} inputs in {summary.seconds:.1f} s "
            f"({fuse.fused_pixels / max(fuse.images, 1) / 1e6:.2f} Mpixel fused per image{partial})")

"""The per-image work of ``hbens tune``: Dice of every candidate on one image, small arrays back.

Three passes, each a task of :mod:`hbens.pipeline` run once per image:

* :func:`curves_task` -- for each class and each member combination of :func:`member_combos`,
  the Dice of the fused map at every threshold of :data:`~hbens.tune.histograms.GRID`.  The
  fused values are those of :func:`hbens.ensemble.combine.fuse_class` (the fuse that ``apply``
  runs), counted in exact histograms (:func:`~hbens.tune.histograms.grid_histograms`), so a
  threshold search never re-thresholds a map;
* :func:`cleanup_task` -- for given (members, weights, threshold) rules, the Dice of each
  cleanup of :data:`CLEANUPS` (:func:`hbens.postproc.clean.clean_runs` on the thresholded runs);
* :func:`crf_task` -- for given rules and cleanups, the Dice with the CRF of ``apply``
  (:func:`hbens.tune.apply.refine_class`).

Pixels whose every member is 0 fuse to 0 whatever the weights, and a pixel's fused value depends
only on its members' stored values, so :func:`fused_curves` fuses each distinct tuple of the
members' stored values once (with its count inside and outside the ground truth) instead of every
pixel: a single uint8 input has at most 255 such values, a pair at most 65025.  Values are keyed
by their bits: 8 for uint8, 16 for float16, 32 for the float32 crops of saved arrays read directly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit

from hbens.classes import CLASSES
from hbens.ensemble.combine import fuse_class
from hbens.ensemble.inputs import ImageInputs, Source, support_box
from hbens.ensemble.rules import SoftRule
from hbens.errors import HbensError
from hbens.execution import path_field
from hbens.images import read_xray
from hbens.maps.probabilities import ClassCrop, crop_runs, tight_crop
from hbens.metrics import dice_runs
from hbens.pipeline import ImageOutput
from hbens.postproc.clean import CleanConfig, clean_runs
from hbens.postproc.crf import CRFParams
from hbens.runs import Runs, box_to_runs, runs_to_box, runs_to_segments
from hbens.tune.apply import refine_class
from hbens.tune.histograms import GRID, crop_grid_histograms, grid_dice, grid_histograms

CLEANUPS: dict[str, CleanConfig] = {
    "none": CleanConfig(),
    "largest": CleanConfig(keep=1),
    "keep-2": CleanConfig(keep=2),
    **{f"min-area-{area}": CleanConfig(min_area=area) for area in (16, 64, 256, 1024)},
    "fill-holes": CleanConfig(fill_holes=True),
}
"""The cleanups ``tune`` tries, simplest first (a tie keeps the earlier one)."""

MAX_MEMBERS = 3
"""Most inputs fused for one class."""


@dataclass(frozen=True)
class Combo:
    """Inputs fused for one class, in increasing order, with integer weights of greatest divisor 1."""

    members: tuple[int, ...]
    weights: tuple[int, ...]

    @property
    def rule(self) -> SoftRule:
        """The soft rule that fuses this combination (threshold 0.5, probability space)."""
        return SoftRule(members=self.members, weights=self.weights)


def canonical(members: Sequence[int], weights: Sequence[float]) -> Combo:
    """The :class:`Combo` of ``members`` with ``weights`` (integers), in any order and scale.

    Members are sorted (the fused sum is taken in member order, so one order is kept for
    bit-identical results) and the weights divided by their greatest common divisor, so
    ``(2, 0)`` with ``(2, 2)`` is ``(0, 2)`` with ``(1, 1)``.

    Example
    -------
    >>> canonical((2, 0), (3, 1))
    Combo(members=(0, 2), weights=(1, 3))
    """
    if len(members) != len(weights) or not members:
        raise ValueError(f"expected one weight per member, got {members} and {weights}")
    if any(float(w) != int(w) or w < 1 for w in weights):
        raise ValueError(f"weights must be integers >= 1, got {weights}")
    pairs = sorted(zip(members, (int(w) for w in weights)))
    divisor = math.gcd(*(w for _, w in pairs))
    return Combo(tuple(m for m, _ in pairs), tuple(w // divisor for _, w in pairs))


def member_combos(
    n_inputs: int, *, weight_grid: Sequence[int] = (1, 2, 3), max_members: int = MAX_MEMBERS
) -> tuple[Combo, ...]:
    """Every combination of up to ``max_members`` inputs with weights from ``weight_grid``, each once.

    Equivalent weight vectors (``(2, 2)`` and ``(1, 1)``) give one :class:`Combo`.  Singles come
    first, then pairs, then triples.

    Example
    -------
    >>> len(member_combos(3)), [combo.weights for combo in member_combos(2)]
    (49, [(1,), (1,), (1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)])
    """
    combos: dict[Combo, None] = {}
    for size in range(1, min(max_members, n_inputs) + 1):
        for members in itertools.combinations(range(n_inputs), size):
            for weights in itertools.product(weight_grid, repeat=size):
                combos.setdefault(canonical(members, weights), None)
    return tuple(combos)


@dataclass(frozen=True, kw_only=True)
class TuningImage(ImageInputs):
    """One tuning image: its inputs (as ``fuse`` and ``apply`` read them), the ground truth's runs per
    class and the X-ray (for the CRF pass)."""

    truth: dict[str, Runs]
    xray: str | None = path_field(None)


KEY_BITS = {np.dtype(np.uint8): 8, np.dtype(np.float16): 16, np.dtype(np.float32): 32}
"""Bits of a crop's values as keys: uint8 as they are, floats by their bits (unsigned integers of their size)."""


def _key_dtype(sources: Sequence[Source | None]) -> np.dtype:
    """The unsigned integers that hold every source's keys: uint16, or uint32 with a float32 crop."""
    wide = any(isinstance(source, ClassCrop) and source.values.dtype == np.float32 for source in sources)
    return np.dtype(np.uint32 if wide else np.uint16)


def _level_keys(source: Source, box: tuple[int, int, int, int], shape: tuple[int, int],
                dtype: np.dtype = np.dtype(np.uint16)) -> tuple[np.ndarray, int]:
    """The source's stored values over ``box`` as ``dtype`` (floats by their bits), and how many bits they take."""
    if not isinstance(source, ClassCrop):
        return runs_to_box(source, box, shape).reshape(-1).astype(dtype), 1
    if source.values.dtype not in KEY_BITS:
        raise HbensError(f"stored crops must be uint8, float16 or float32, got {source.values.dtype}")
    keys = np.zeros((box[2] - box[0], box[3] - box[1]), dtype)
    if source.values.size:
        top, left, bottom, right = source.box
        values = source.values
        if values.dtype.kind == "f":
            values = values.view(f"u{values.dtype.itemsize}")
        keys[top - box[0] : bottom - box[0], left - box[1] : right - box[1]] = values
    return keys.reshape(-1), KEY_BITS[source.values.dtype]


COUNTED_BITS = 18
"""Keys of at most this many bits are counted in a table (``np.bincount``) rather than sorted."""


@njit(cache=True, nogil=True)
def _packed_keys(levels, members, widths, truth):
    """Per pixel where some member is not 0: the members' levels and the truth bit packed in an int64."""
    keys = np.empty(truth.size, np.int64)
    m = 0
    for p in range(truth.size):
        key = 0
        nonzero = False
        for c in range(members.size):
            value = levels[members[c], p]
            nonzero |= value != 0
            key = (key << widths[c]) | value
        if nonzero:
            keys[m] = (key << 1) | truth[p]
            m += 1
    return keys[:m]


def _distinct(levels: np.ndarray, members: Sequence[int], bits: Sequence[int],
              truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of (the members' levels, truth) among pixels where some member is not 0, with counts.

    Each row is packed into one integer key (at most 63 bits); short keys are counted in a table,
    longer ones sorted.
    """
    widths = [*(bits[i] for i in members), 1]
    key = _packed_keys(levels, np.asarray(members, np.int64), np.asarray(widths, np.int64), truth)
    if sum(widths) <= COUNTED_BITS:
        table = np.bincount(key, minlength=1 << sum(widths))
        unique = np.flatnonzero(table)
        counts = table[unique]
    else:
        key.sort()
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        unique, counts = key[starts], np.diff(np.append(starts, key.size))
    rows = np.empty((unique.size, len(widths)), levels.dtype)
    for k in range(len(widths) - 1, -1, -1):
        rows[:, k] = unique & ((1 << widths[k]) - 1)
        unique = unique >> widths[k]
    return rows, counts


def _as_source(keys: np.ndarray, original: Source) -> Source:
    """Stored values (as decoded by :func:`_level_keys`) laid out as a one-row crop or runs."""
    n = keys.size
    if not isinstance(original, ClassCrop):
        return box_to_runs(keys.reshape(1, n).astype(np.uint8), 0, 0, (1, n))
    dtype = original.values.dtype
    values = keys.astype(dtype) if dtype == np.uint8 else keys.astype(f"u{dtype.itemsize}").view(dtype)
    return ClassCrop((0, 0, 1, n), values.reshape(1, n))


def _distinct_histograms(
    sources: Sequence[Source | None],
    members: tuple[int, ...],
    rules: Sequence[SoftRule],
    levels: np.ndarray,
    bits: Sequence[int],
    truth_box: np.ndarray,
    truth_total: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grid histograms of rules with the same members, fusing each distinct tuple of their values once."""
    rows, counts = _distinct(levels, members, bits, truth_box)
    n = rows.shape[0]
    inside = counts * (rows[:, -1] == 1)
    outside = counts - inside
    laid_out: list[Source | None] = [None] * len(sources)
    for column, i in enumerate(members):
        laid_out[i] = _as_source(np.ascontiguousarray(rows[:, column]), sources[i])
    counted = []
    for rule in rules:
        values = np.zeros(n, np.float32)
        if n:
            fused = fuse_class(laid_out, rule, (1, n))
            values[fused.box[1] : fused.box[3]] = fused.values.reshape(-1)
        counted.append(grid_histograms(values, inside, outside, truth_elsewhere=truth_total - int(inside.sum())))
    return counted


def crop_histograms(crop: ClassCrop, truth: Runs, *, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Grid histograms (:func:`~hbens.tune.histograms.grid_histograms`) of a float32 crop's pixels.

    ``grid_dice`` of them is the Dice of ``crop > t`` against ``truth`` for every threshold of
    GRID (pixels outside the crop are never foreground): the threshold search of one fused crop,
    in one pass over it.
    """
    values = crop.values if crop.values.size else np.zeros((0, 0), np.float32)
    return crop_grid_histograms(values, crop.box[:2], runs_to_segments(truth, shape), truth_total=int(truth[1].sum()))


def fused_curves(
    sources: Sequence[Source | None],
    truth: Runs,
    *,
    rules: Sequence[SoftRule],
    shape: tuple[int, int],
) -> np.ndarray:
    """Per rule, the Dice of ``fuse_class(sources, rule) > t`` against ``truth`` for every ``t`` of GRID.

    Equal to thresholding the fused crop of :func:`hbens.ensemble.combine.fuse_class` at each
    threshold and scoring it with :func:`hbens.metrics.dice_runs`, to the last bit: the values of
    ``fuse_class`` itself are counted in :func:`~hbens.tune.histograms.grid_histograms`.  For a set
    of members whose distinct value tuples can be counted in a small table (singles and pairs of
    uint8 maps), or that several rules share, each distinct tuple is fused once (laid out as a
    one-row crop; pixels 0 in every member fuse to 0 and are never foreground); otherwise the
    class's crop is fused and counted pixel by pixel.

    Parameters
    ----------
    sources : sequence of ClassCrop, Runs or None
        Each input's map of the class (None: the input lacks it).
    truth : Runs
        The class's ground truth in the frame of ``shape``.
    rules : sequence of SoftRule
        The fusions to score (probability space only; their thresholds are not used).
    shape : (int, int)
        The image's frame.

    Returns
    -------
    (len(rules), len(GRID)) float64 array
        NaN for a rule none of whose members has the class.
    """
    if any(rule.space != "prob" for rule in rules):
        raise ValueError("fused_curves scores probability-space rules only (0 everywhere fuses to 0)")
    truth_total = int(truth[1].sum())
    inputs = [i for i, source in enumerate(sources) if source is not None]
    boxes = [box for box in (support_box(sources[i], shape) for i in inputs) if box is not None]
    if boxes:
        union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        dtype = _key_dtype(sources)
        levels = np.zeros((len(sources), (union[2] - union[0]) * (union[3] - union[1])), dtype)
        bits = [0] * len(sources)
        for i in inputs:
            levels[i], bits[i] = _level_keys(sources[i], union, shape, dtype)
        truth_box = runs_to_box(truth, union, shape).reshape(-1)
    groups: dict[tuple[int, ...], list[int]] = {}
    for r, rule in enumerate(rules):
        subset = tuple(i for i in rule.members if sources[i] is not None)
        if subset:
            groups.setdefault(subset, []).append(r)
    histograms = np.zeros((2, len(rules), GRID.size + 1), np.int64)
    scored = np.zeros(len(rules), bool)
    for subset, indices in groups.items():
        width = 1 + sum(bits[i] for i in subset) if boxes else 0
        if boxes and (width <= COUNTED_BITS or len(indices) > 1 and width <= 63):
            counted = _distinct_histograms(sources, subset, [rules[r] for r in indices], levels, bits, truth_box,
                                           truth_total)
        else:
            counted = [crop_histograms(fuse_class(sources, rules[r], shape), truth, shape=shape) for r in indices]
        for r, pair in zip(indices, counted):
            histograms[:, r] = pair
            scored[r] = True
    curves = grid_dice(histograms[0], histograms[1])
    curves[~scored] = np.nan
    return curves


@dataclass(frozen=True, kw_only=True)
class CurvesItem:
    """Pass 1 of one image: the fusions to score at every threshold."""

    inputs: TuningImage
    rules: tuple[SoftRule, ...]


def curves_task(item: CurvesItem) -> ImageOutput:
    """Pass 1: ``stats`` is a ``(classes, rules, len(GRID))`` float64 array of :func:`fused_curves`."""
    inputs = item.inputs
    stores, shape = inputs.read()
    curves = np.stack([fused_curves(inputs.sources(stores, name, shape), inputs.truth[name], rules=item.rules,
                                    shape=shape) for name in CLASSES])
    return ImageOutput(inputs.image, stats=curves)


@dataclass(frozen=True, kw_only=True)
class CleanupItem:
    """Pass 2 of one image: per class, the rules whose thresholded masks are cleaned each way."""

    inputs: TuningImage
    rules: dict[str, tuple[SoftRule, ...]]
    options: tuple[CleanConfig, ...]


def cleanup_task(item: CleanupItem) -> ImageOutput:
    """Pass 2: ``stats`` maps each class to a ``(rules, options)`` array of Dice after each cleanup."""
    inputs = item.inputs
    stores, shape = inputs.read()
    dice = {}
    for name, rules in item.rules.items():
        sources = inputs.sources(stores, name, shape)
        table = np.empty((len(rules), len(item.options)))
        for r, rule in enumerate(rules):
            runs = crop_runs(fuse_class(sources, rule, shape), shape, rule.threshold)
            for o, config in enumerate(item.options):
                table[r, o] = dice_runs(clean_runs(runs, config, shape)[0], inputs.truth[name])
        dice[name] = table
    return ImageOutput(inputs.image, stats=dice)


@dataclass(frozen=True, kw_only=True)
class CRFCandidatesItem:
    """Pass 3 of one image: per class, the (rule, cleanup) pairs to score with the CRF."""

    inputs: TuningImage
    candidates: dict[str, tuple[tuple[SoftRule, CleanConfig], ...]]
    params: CRFParams
    precision: str = "uint8"


def crf_task(item: CRFCandidatesItem) -> ImageOutput:
    """Pass 3: ``stats`` maps each class to the Dice of each candidate refined by the CRF of ``apply``."""
    inputs = item.inputs
    if inputs.xray is None:
        raise HbensError(f"{inputs.image}: the CRF needs its X-ray; pass --images")
    stores, shape = inputs.read()
    xray = read_xray(inputs.xray)
    dice = {}
    for name, candidates in item.candidates.items():
        sources = inputs.sources(stores, name, shape)
        scores = np.empty(len(candidates))
        for k, (rule, config) in enumerate(candidates):
            fused = fuse_class(sources, rule, shape)
            stored = tight_crop(fused.values, fused.box[:2], item.precision)
            refined = refine_class(stored, name, xray, item.params, image=inputs.image, shape=shape,
                                   precision=item.precision)
            runs = crop_runs(refined, shape, rule.threshold)
            scores[k] = dice_runs(clean_runs(runs, config, shape)[0], inputs.truth[name])
        dice[name] = scores
    return ImageOutput(inputs.image, stats=dice)

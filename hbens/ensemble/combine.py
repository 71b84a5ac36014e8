"""One class of one image fused from its sources: :func:`fuse_class` (a soft mean) or :func:`vote_class`.

A class is fused only over the bounding box of the union of its members' crops (for a CSV, the
box of its runs): outside every crop each member's probability is 0, so the fused value is 0
there (the clipping floor in logit space, which never exceeds an allowed threshold).  No
2048x2048 array is built.

Exactness: inside that box the weighted sum is accumulated in float64 from exactly the float32
values a store reads back (:func:`~hbens.maps.probabilities.dequantize`), or a saved array read directly
holds (float32, never rounded to 1/255; probabilities at or below
:data:`~hbens.maps.saved_arrays.EXACT_FLOOR` count as 0), with weights normalised to sum to 1, so it
equals a float64 mean of the full maps up to float64 rounding (and that floor).  The fused crop is
handed back as float32 (what a store holds) and thresholded as every hbens output is, float32 values
against the float32 threshold (:func:`hbens.maps.probabilities.crop_runs`; ``hbens tune`` counts on it);
each float32 rounding moves a value by at most 2**-25, so a pixel can differ from a float64
computation only where its fused value lies within 6e-8 of the threshold.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from hbens.ensemble.inputs import Source, support_box
from hbens.ensemble.rules import CLIP, HardRule, SoftRule
from hbens.ensemble.vote import hard_vote
from hbens.errors import HbensError
from hbens.maps.probabilities import ClassCrop, crop_runs, dequantize
from hbens.runs import EMPTY_RUNS, Box, Runs, runs_to_box

_UINT8_LEVELS = dequantize(np.arange(256, dtype=np.uint8)).astype(np.float64)
_BINARY_LEVELS = np.array([0.0, 1.0])


def _mapped(source: Source, box: Box, transfer: Callable[[np.ndarray], np.ndarray],
            shape: tuple[int, int]) -> np.ndarray:
    """``transfer`` of the source's float64 probabilities over ``box`` (its :func:`support_box`).

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
    """Positions in ``members`` of the members that have the class (see
    :func:`~hbens.ensemble.rules.check_rule_inputs`)."""
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
    parts = [(source, w, box) for source, w in parts if (box := support_box(source, shape)) is not None]
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
            masks.append(crop_runs(source, shape, rule.threshold))
        else:
            masks.append(source if rule.threshold < 1 else EMPTY_RUNS)
    weights = [vote.weights[k] for k in present]
    # Exact rational scaling, so that a tie such as 1 of 2 votes against a majority of 3 stays a tie.
    share = sum(map(Fraction, weights)) / sum(map(Fraction, vote.weights))
    return hard_vote(masks, weights=weights, min_weight=float(Fraction(vote.threshold) * share))

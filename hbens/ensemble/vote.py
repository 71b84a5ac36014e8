"""k-of-n and weighted votes over run-length masks, as a sweep over their sorted run boundaries.

The cost grows with the number of runs, not with the 4 million pixels of a frame.  A pixel is
foreground when the sum of the weights of the inputs that mark it, added in input order, is
strictly greater than a threshold; a k-of-n vote is weights 1 and threshold k - 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit

from hbens.errors import HbensError
from hbens.rle import format_runs_ascii, parse_runs_ascii, string_to_runs
from hbens.runs import Runs
from hbens.settings import examples


@njit(cache=True, nogil=True)
def _sweep(starts, lengths, offsets, weights, threshold):
    n = offsets.size - 1
    cursor = offsets[:-1].copy()
    active = np.zeros(n, np.bool_)
    # Every fused run starts where an input run starts, so there are at most as many.
    out_starts = np.empty(starts.size, np.int64)
    out_lengths = np.empty(starts.size, np.int64)
    count = 0
    in_run = False
    run_start = 0
    big = np.iinfo(np.int64).max
    while True:
        position = big
        for i in range(n):
            if cursor[i] < offsets[i + 1]:
                k = cursor[i]
                event = starts[k] + lengths[k] if active[i] else starts[k]
                position = min(position, event)
        if position == big:
            break
        for i in range(n):
            if active[i] and starts[cursor[i]] + lengths[cursor[i]] == position:
                active[i] = False
                cursor[i] += 1
            if not active[i] and cursor[i] < offsets[i + 1] and starts[cursor[i]] == position:
                active[i] = True
        coverage = 0.0
        for i in range(n):
            if active[i]:
                coverage += weights[i]
        foreground = coverage > threshold
        if foreground and not in_run:
            run_start = position
            in_run = True
        elif in_run and not foreground:
            out_starts[count] = run_start
            out_lengths[count] = position - run_start
            count += 1
            in_run = False
    return out_starts[:count].copy(), out_lengths[:count].copy()


@njit(cache=True, nogil=True)
def _vote_ascii(texts, text_offsets, weights, threshold, size):
    """Parse n concatenated RLE strings, vote, and format; error code and input index on failure."""
    n = text_offsets.size - 1
    run_offsets = np.zeros(n + 1, np.int64)
    parsed_starts = []
    parsed_lengths = []
    for i in range(n):
        starts, lengths, code, _ = parse_runs_ascii(texts[text_offsets[i] : text_offsets[i + 1]], size)
        if code != 0:
            return np.empty(0, np.uint8), i
        parsed_starts.append(starts)
        parsed_lengths.append(lengths)
        run_offsets[i + 1] = run_offsets[i] + starts.size
    all_starts = np.empty(run_offsets[n], np.int64)
    all_lengths = np.empty(run_offsets[n], np.int64)
    for i in range(n):
        all_starts[run_offsets[i] : run_offsets[i + 1]] = parsed_starts[i]
        all_lengths[run_offsets[i] : run_offsets[i + 1]] = parsed_lengths[i]
    starts, lengths = _sweep(all_starts, all_lengths, run_offsets, weights, threshold)
    return format_runs_ascii(starts, lengths), -1


@dataclass(frozen=True)
class VoteRule:
    """Which inputs vote for a class, with what weights, and the threshold the sum must exceed."""

    inputs: tuple[int, ...]
    weights: tuple[float, ...]
    threshold: float

    @classmethod
    def make(
        cls,
        inputs: Sequence[int],
        min_votes: int | None = None,
        weights: Sequence[float] | None = None,
        min_weight: float | None = None,
    ) -> VoteRule:
        """A k-of-n vote (default: strict majority) or, with ``weights``, a weighted vote.

        Weighted: foreground where the weights of the marking inputs sum to more than
        ``min_weight`` (default half of the total weight), which must be below the total.  Weights
        whose sum would overflow (``1e308,1e308``) are scaled by a power of two first, which keeps
        every sum and comparison exact.
        """
        inputs = tuple(inputs)
        n = len(inputs)
        if n == 0:
            raise HbensError("a vote needs at least one input")
        if weights is None:
            if min_weight is not None:
                raise HbensError("--min-weight needs --weights")
            votes = n // 2 + 1 if min_votes is None else min_votes
            if not 1 <= votes <= n:
                raise HbensError(f"--min-votes {votes} is outside 1..{n} for {n} inputs")
            return cls(inputs, (1.0,) * n, votes - 0.5)
        if min_votes is not None:
            raise HbensError("give either --min-votes or --weights, not both")
        weights = tuple(float(w) for w in weights)
        if len(weights) != n:
            raise HbensError(f"{len(weights)} weights for {n} inputs; give one weight per input")
        if not all(w > 0 and np.isfinite(w) for w in weights):
            raise HbensError(f"weights must be positive numbers, got {examples(weights)}")
        exponent = 0 if math.isfinite(sum(weights)) else math.frexp(max(weights))[1]
        scaled = tuple(math.ldexp(w, -exponent) for w in weights)
        total = sum(scaled)
        threshold = total / 2 if min_weight is None else math.ldexp(float(min_weight), -exponent)
        if not 0 <= threshold < total:
            raise HbensError(f"--min-weight {min_weight} must be >= 0 and below the total weight "
                             f"{sum(weights):g}, or no pixel is ever foreground")
        return cls(inputs, scaled, threshold)


def hard_vote(
    run_lists: Sequence[Runs],
    min_votes: int | None = None,
    weights: Sequence[float] | None = None,
    min_weight: float | None = None,
) -> Runs:
    """Fuse run lists: k-of-n (default strict majority) or weighted vote; see :class:`VoteRule`."""
    rule = VoteRule.make(range(len(run_lists)), min_votes, weights, min_weight)
    offsets = np.zeros(len(run_lists) + 1, np.int64)
    offsets[1:] = np.cumsum([starts.size for starts, _ in run_lists])
    starts = np.concatenate([np.asarray(run_starts, np.int64) for run_starts, _ in run_lists]) if run_lists else np.empty(0, np.int64)
    lengths = np.concatenate([np.asarray(run_lengths, np.int64) for _, run_lengths in run_lists]) if run_lists else np.empty(0, np.int64)
    return _sweep(starts, lengths, offsets, np.asarray(rule.weights), rule.threshold)


def vote_strings(rles: Sequence[str], rule: VoteRule, size: int = 2048 * 2048) -> str:
    """Fuse the RLE strings of ``rule.inputs`` (``rles`` holds one string per input of the rule)."""
    encoded = [(rle or "").encode("ascii") for rle in rles]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    texts = np.frombuffer(b"".join(encoded), np.uint8) if offsets[-1] else np.empty(0, np.uint8)
    out, failed = _vote_ascii(texts, offsets, np.asarray(rule.weights, np.float64), rule.threshold, size)
    if failed >= 0:
        string_to_runs(rles[failed], (1, size))
    return out.tobytes().decode("ascii")

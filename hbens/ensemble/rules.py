"""The rule of each class of a fuse: which inputs, with what weights, averaged or voted, and the threshold.

One model for every ensemble, whatever its inputs: a :class:`SoftRule` averages its members'
probabilities (or logits) and thresholds the mean; a :class:`HardRule` thresholds each member and
votes on the masks.  A submission CSV is an input whose probabilities are 0 or 1.  The builders
(:func:`hard_rules`, :func:`soft_rules`, :func:`classwise_rules`) make the 29 rules of a
``--strategy``; :func:`hbens.ensemble.fuse.fuse` runs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES, class_thresholds
from hbens.ensemble.vote import VoteRule
from hbens.errors import HbensError
from hbens.outputs import PathLike
from hbens.settings import check_mapping, clip, examples, read_csv_rows, read_settings

SPACES = ("prob", "logit")
CLIP = 1 / 510
"""Probabilities are clipped to ``[CLIP, 1 - CLIP]`` before taking logits (half a uint8 step)."""


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


def check_class_weights(class_weights: Mapping[str, Sequence[float]], n_inputs: int) -> dict[str, list[float]]:
    """Per-class weights checked: known classes, ``n_inputs`` finite weights > 0 each.

    Examples
    --------
    >>> check_class_weights({"Ulna": [2, 1]}, 2)
    {'Ulna': [2.0, 1.0]}
    """
    for name, weights in class_weights.items():
        if name not in CLASS_INDEX:
            raise HbensError(f"class weights: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
        if len(weights) != n_inputs or not all(w > 0 and math.isfinite(w) for w in weights):
            raise HbensError(f"class weights of {name}: {list(weights)}; give {n_inputs} weights > 0, one per input")
    return {name: [float(w) for w in weights] for name, weights in class_weights.items()}


def hard_rules(
    n_inputs: int,
    *,
    min_votes: int | None = None,
    weights: Sequence[float] | None = None,
    min_weight: float | None = None,
    class_weights: dict[str, Sequence[float]] | None = None,
    threshold: float = 0.5,
    thresholds: dict[str, float] | None = None,
) -> dict[str, HardRule]:
    """The same k-of-n (default: strict majority) or weighted vote over all inputs for every class.

    ``class_weights`` replaces ``weights`` for its classes (:func:`read_class_weights`); each
    input is thresholded at ``threshold`` (per class: ``thresholds``) before the vote.

    Examples
    --------
    >>> rules = hard_rules(3, weights=[2, 1, 1])
    >>> rules["Ulna"].vote.weights, rules["Ulna"].vote.threshold
    ((2.0, 1.0, 1.0), 2.0)
    """
    cuts = class_thresholds(threshold, thresholds)
    everyone = range(n_inputs)
    votes = {name: VoteRule.make(everyone, min_votes, weights, min_weight) for name in CLASSES}
    for name, class_w in check_class_weights(class_weights or {}, n_inputs).items():
        votes[name] = VoteRule.make(everyone, None, class_w, min_weight)
    return {name: HardRule(vote=vote, threshold=cuts[name]) for name, vote in votes.items()}


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

    ``class_weights`` replaces ``weights`` for its classes (as read by :func:`read_class_weights`);
    ``thresholds`` replaces ``threshold``.

    Examples
    --------
    >>> soft_rules(2, thresholds={"Ulna": 0.3})["Ulna"]
    SoftRule(members=(0, 1), weights=(1.0, 1.0), space='prob', threshold=0.3)
    """
    if weights is not None and len(weights) != n_inputs:
        raise HbensError(f"{len(weights)} weights for {n_inputs} inputs; give one weight per input")
    class_weights = check_class_weights(class_weights or {}, n_inputs)
    cuts = class_thresholds(threshold, thresholds)
    default = tuple(weights) if weights is not None else (1.0,) * n_inputs
    return {
        name: SoftRule(members=range(n_inputs), weights=class_weights.get(name, default), space=space,
                       threshold=cuts[name])
        for name in CLASSES
    }


def parse_pick(text: str, n_inputs: int) -> tuple[str, tuple[int, ...]]:
    """Parse ``CLASS=INDEX`` or ``CLASS=I+J+K`` into the class and its inputs.

    Examples
    --------
    >>> parse_pick("Pisiform=0+2", 3)
    ('Pisiform', (0, 2))
    """
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
    return name, tuple(inputs)


def class_picks(n_inputs: int, picks: Sequence[str] = (),
                scores: Sequence[dict[str, float]] | None = None) -> dict[str, tuple[int, ...]]:
    """The inputs of each class: from validation ``scores`` (best, ties to the earlier input) or ``picks``.

    Classes not chosen otherwise come from the first input; ``picks`` override ``scores``.
    """
    chosen = {name: (0,) for name in CLASSES}
    if scores is not None:
        if len(scores) != n_inputs:
            raise HbensError(f"{len(scores)} --scores files for {n_inputs} inputs; give one per input, in order")
        for name in CLASSES:
            available = [(s[name], -i) for i, s in enumerate(scores) if name in s]
            if available:
                chosen[name] = (-max(available)[1],)
    picked: dict[str, str] = {}
    for text in picks:
        name, inputs = parse_pick(text, n_inputs)
        if name in picked:
            raise HbensError(f"--pick {picked[name]} and --pick {text} both choose {name}; give one --pick per class")
        picked[name] = text
        chosen[name] = inputs
    return chosen


def classwise_rules(
    n_inputs: int,
    *,
    picks: Sequence[str] = (),
    scores: Sequence[dict[str, float]] | None = None,
    threshold: float = 0.5,
    thresholds: dict[str, float] | None = None,
    space: str = "prob",
    vote: bool = False,
) -> dict[str, Rule]:
    """Per class, one input or several (:func:`class_picks`): their plain soft mean, or with ``vote``
    their strict-majority vote (what submissions alone, 0/1 maps, are fused by).

    Examples
    --------
    >>> rules = classwise_rules(3, picks=["Ulna=1+2"], vote=True)
    >>> rules["Ulna"].members, rules["Radius"].members
    ((1, 2), (0,))
    """
    cuts = class_thresholds(threshold, thresholds)
    chosen = class_picks(n_inputs, picks, scores)
    if vote:
        return {name: HardRule(vote=VoteRule.make(inputs), threshold=cuts[name]) for name, inputs in chosen.items()}
    return {name: SoftRule(members=inputs, weights=(1.0,) * len(inputs), space=space, threshold=cuts[name])
            for name, inputs in chosen.items()}


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


def check_rule_inputs(class_lists: Sequence[Sequence[str] | None], rules: dict[str, Rule]) -> None:
    """Raise HbensError when a rule uses an input that does not exist or no member has its class.

    ``class_lists`` holds, per input, the classes of its maps (a store's ``meta["classes"]``), or
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


STRATEGIES = {"hard": hard_rules, "soft": soft_rules, "classwise": classwise_rules}
"""The rule builders of ``hbens fuse --strategy``, by name."""

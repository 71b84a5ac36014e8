"""``hbens tune``: per class, the members, weights, threshold, cleanup and CRF that hold out of fold.

The work is split in passes over the images (tasks of :mod:`hbens.pipeline`, see
:mod:`hbens.tune.evaluate`) and searches on the client, which only ever read the small
per-image Dice tables the passes return:

1. every member combination's Dice at every threshold (pass 1), then, per class, the
   ``members`` step (greedy forward selection, :func:`~hbens.tune.search.greedy_members`) and the
   ``thresholds`` step (coarse then fine, :func:`~hbens.tune.search.coarse_to_fine_threshold`);
2. the Dice of each cleanup of :data:`~hbens.tune.evaluate.CLEANUPS` for the rules those steps
   chose on each fold and on all images (pass 2), then the ``clean`` step;
3. with X-rays, the Dice with the CRF for the rules and cleanups chosen so far (pass 3), then the
   ``crf`` step.

Each step is made on top of the steps before it and guarded
(:func:`~hbens.tune.search.guarded_choice`): it is fitted on the other folds and scored on each
held-out fold, and a class takes it only when its out-of-fold Dice beats that of the class's
setting so far (at first the baseline: the best single input at 0.5, no cleanup).  The recipe
holds the accepted steps refitted on all images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import numpy as np

from hbens.annotations import GroundTruth
from hbens.classes import CLASSES
from hbens.ensemble.rules import SoftRule
from hbens.errors import HbensError
from hbens.execution import Execution
from hbens.frames import check_dice
from hbens.images import find_xrays
from hbens.maps.folders import Inputs, open_inputs
from hbens.maps.saved_arrays import ArrayFormat
from hbens.outputs import PathLike
from hbens.pipeline import ImageOutput, map_images
from hbens.postproc.crf import CRFParams, frame_params
from hbens.tune.evaluate import (
    CLEANUPS,
    MAX_MEMBERS,
    CleanupItem,
    Combo,
    CRFCandidatesItem,
    CurvesItem,
    TuningImage,
    canonical,
    cleanup_task,
    crf_task,
    curves_task,
    member_combos,
)
from hbens.tune.histograms import GRID
from hbens.tune.recipe import ClassRecipe, ClassScores, Recipe, RecipeInput, recipe_inputs, write_recipe
from hbens.tune.search import (
    GuardResult,
    best_candidate,
    coarse_to_fine_threshold,
    greedy_members,
    guarded_choice,
    kfold_indices,
)

if TYPE_CHECKING:
    pass

WEIGHT_GRID = (1, 2, 3)
"""Weights tried for each input added to a class's fusion."""

_COLUMNS = {round(float(t), 10): j for j, t in enumerate(GRID)}


@dataclass(frozen=True)
class Choice:
    """One class's setting: the fused inputs and weights, the threshold, the cleanup, the CRF."""

    combo: Combo
    threshold: float = 0.5
    cleanup: str = "none"
    crf: bool = False

    def describe(self, names: Sequence[str]) -> str:
        """``a+b 2:1 > 0.45, largest, CRF``: the setting in a few words."""
        members = "+".join(names[i] for i in self.combo.members)
        weights = f" {':'.join(map(str, self.combo.weights))}" if len(self.combo.members) > 1 else ""
        extra = ([self.cleanup] if self.cleanup != "none" else []) + (["CRF"] if self.crf else [])
        return f"{members}{weights} > {self.threshold:g}" + "".join(f", {item}" for item in extra)


def column(threshold: float) -> int:
    """The column of ``threshold`` in pass 1's curves (a threshold of :data:`~hbens.tune.histograms.GRID`)."""
    return _COLUMNS[round(float(threshold), 10)]


class ClassTables:
    """Per-image Dice of one class's candidates, filled pass by pass.

    ``curves[i, k, j]``: image ``i``, combination ``combos[k]``, threshold ``GRID[j]`` (pass 1);
    ``cleaned[(combo, threshold)][i, o]``: after cleanup ``o`` of :data:`CLEANUPS` (pass 2);
    ``refined[(combo, threshold, cleanup)][i]``: with the CRF (pass 3).
    """

    def __init__(self, curves: np.ndarray, combos: Sequence[Combo]):
        self.curves = curves
        self.index = {combo: k for k, combo in enumerate(combos)}
        self.valid = ~np.isnan(curves).any(axis=(0, 2))
        self.cleaned: dict[tuple[Combo, float], np.ndarray] = {}
        self.refined: dict[tuple[Combo, float, str], np.ndarray] = {}

    def score(self, choice: Choice, images: np.ndarray) -> np.ndarray:
        """Per-image Dice of ``choice`` on ``images`` (from the latest pass that scored it)."""
        if choice.crf:
            return self.refined[(choice.combo, choice.threshold, choice.cleanup)][images]
        if choice.cleanup != "none":
            options = list(CLEANUPS)
            return self.cleaned[(choice.combo, choice.threshold)][images, options.index(choice.cleanup)]
        return self.curves[images, self.index[choice.combo], column(choice.threshold)]


def _baseline(tables: ClassTables, train: np.ndarray) -> Choice:
    """The best single input at 0.5 on ``train`` (ties: the earlier input)."""
    singles = [combo for combo in tables.index if len(combo.members) == 1 and tables.valid[tables.index[combo]]]
    dice = np.stack([tables.score(Choice(combo), train) for combo in singles], axis=1)
    return Choice(singles[best_candidate(dice)])


def _fit_members(tables: ClassTables, previous: Choice, train: np.ndarray) -> Choice:
    """Greedy forward selection of members and weights at the current threshold."""
    n_inputs = max(max(combo.members) for combo in tables.index) + 1
    at = column(previous.threshold)

    def objective(members: tuple[int, ...], weights: tuple[float, ...]) -> float:
        k = tables.index.get(canonical(members, weights))
        if k is None or not tables.valid[k]:
            return -np.inf
        return float(tables.curves[train, k, at].mean())

    chosen = greedy_members(objective, n_inputs, weight_grid=WEIGHT_GRID, max_members=MAX_MEMBERS)
    return replace(previous, combo=canonical(chosen.members, chosen.weights))


def _fit_threshold(tables: ClassTables, previous: Choice, train: np.ndarray) -> Choice:
    """The threshold of the chosen fusion, 0.05..0.95 then 0.01 steps."""
    curves = tables.curves[train, tables.index[previous.combo]]
    return replace(previous, threshold=coarse_to_fine_threshold(curves, thresholds=GRID))


def _fit_cleanup(tables: ClassTables, previous: Choice, train: np.ndarray) -> Choice:
    """The cleanup of :data:`CLEANUPS` with the best Dice (ties: the simpler)."""
    dice = tables.cleaned[(previous.combo, previous.threshold)][train]
    return replace(previous, cleanup=list(CLEANUPS)[best_candidate(dice)])


def _fit_crf(tables: ClassTables, previous: Choice, train: np.ndarray) -> Choice:
    """The CRF, when it beats the setting without it."""
    refined = replace(previous, crf=True)
    dice = np.stack([tables.score(previous, train), tables.score(refined, train)], axis=1)
    return refined if best_candidate(dice) == 1 else previous


def parse_steps(text: str) -> tuple[str, ...]:
    """The steps of a ``--try`` list (comma-separated names of :data:`STEPS`), in :data:`STEPS` order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STEPS]
    if unknown or not names:
        raise HbensError(f"--try {text}: expected names among {', '.join(STEPS)}, comma-separated")
    return tuple(name for name in STEPS if name in names)


@dataclass
class ClassTuning:
    """The tuning of one class: the steps it took, its guarded results and its per-image Dice."""

    name: str
    tables: ClassTables
    baseline: np.ndarray
    held_out: np.ndarray
    taken: list[str] = field(default_factory=list)
    results: dict[str, GuardResult] = field(default_factory=dict)

    def fit(self, train: np.ndarray, steps: Sequence[str] | None = None) -> Choice:
        """The setting made on ``train`` by the baseline and then ``steps`` (default: those taken)."""
        choice = _baseline(self.tables, train)
        for step in self.taken if steps is None else steps:
            choice = STEPS[step].fit(self.tables, choice, train)
        return choice

    def guard(self, step: str, folds: Sequence[np.ndarray]) -> None:
        """Try ``step`` on top of the steps taken; take it when it beats them out of fold."""
        steps = [*self.taken, step]
        result = guarded_choice(self.held_out, lambda train: self.fit(train, steps),
                                lambda choice, images: self.tables.score(choice, images), folds)
        self.results[step] = result
        if result.accepted:
            self.taken.append(step)
            self.held_out = result.held_out


@dataclass
class TuneResult:
    """What ``tune`` found: the recipe, each class's tuning, the images, the time of each pass."""

    recipe: Recipe
    classes: list[ClassTuning]
    images: list[str]
    seconds: dict[str, float]
    failed: list[str] = field(default_factory=list)

    @property
    def choices(self) -> dict[str, Choice]:
        """Each class's setting refitted on all images (what the recipe holds)."""
        everyone = np.arange(len(self.images))
        return {entry.name: entry.fit(everyone) for entry in self.classes}


def _pass(task: Callable[[object], ImageOutput], items: Iterable[object], names: Sequence[str],
          execution: Execution, desc: str, *, keep: Callable[[int, object], None],
          holds_gil: bool = False) -> list[str]:
    """Run one pass, handing each image's stats to ``keep(index, stats)``; the failures (with --keep-going)."""
    failed = []
    for index, output in map_images(task, items, execution, names=names, desc=desc, holds_gil=holds_gil):
        if isinstance(output, str):
            failed.append(output)
        else:
            keep(index, output.stats)
    return failed


@dataclass
class _Run:
    """What the passes of one ``tune`` run share: inputs, images and their truth and X-rays, settings."""

    inputs: Inputs
    images: list[str]
    truths: list[dict]
    xrays: dict[str, str]
    execution: Execution
    crf_params: CRFParams

    def image_inputs(self) -> Iterable[TuningImage]:
        with self.inputs.reader() as read:
            for name, truth in zip(self.images, self.truths):
                maps, rles = read(name)
                yield TuningImage(image=name, maps=maps, rles=rles, truth=truth, shape=self.inputs.shape,
                                  xray=self.xrays.get(name))

    def run(self, task, make_item: Callable[[TuningImage], object], desc: str, *,
            holds_gil: bool = False) -> list[object]:
        stats: list[object] = [None] * len(self.images)
        failed = _pass(task, (make_item(item) for item in self.image_inputs()), self.images, self.execution, desc,
                       keep=stats.__setitem__, holds_gil=holds_gil)
        if failed:
            raise HbensError(f"tune needs every image in every pass; {len(failed)} failed: {failed[0]}")
        return stats


def _score_cleanups(run: _Run, classes: list[ClassTuning], trains: list[np.ndarray]) -> None:
    """Pass 2: each cleanup's Dice for the rules each class would have on each fold and on all images."""
    rules = {entry.name: dict.fromkeys((c.combo, c.threshold) for c in (entry.fit(t) for t in trains))
             for entry in classes}
    options = tuple(CLEANUPS.values())
    item_rules = {name: tuple(replace(combo.rule, threshold=t) for combo, t in keys) for name, keys in rules.items()}
    stats = run.run(cleanup_task, lambda inputs: CleanupItem(inputs=inputs, rules=item_rules, options=options),
                    "tune: cleanup")
    for entry in classes:
        for k, key in enumerate(rules[entry.name]):
            entry.tables.cleaned[key] = np.stack([image[entry.name][k] for image in stats])


def _score_crf(run: _Run, classes: list[ClassTuning], trains: list[np.ndarray]) -> None:
    """Pass 3: the Dice with the CRF of the settings each class would have on each fold and on all images."""
    keys = {entry.name: dict.fromkeys((c.combo, c.threshold, c.cleanup) for c in (entry.fit(t) for t in trains))
            for entry in classes}
    candidates = {name: tuple((replace(combo.rule, threshold=t), CLEANUPS[cleanup]) for combo, t, cleanup in found)
                  for name, found in keys.items()}
    stats = run.run(crf_task, lambda inputs: CRFCandidatesItem(inputs=inputs, candidates=candidates,
                                                                     params=run.crf_params),
                    "tune: crf", holds_gil=True)
    for entry in classes:
        for k, key in enumerate(keys[entry.name]):
            entry.tables.refined[key] = np.array([image[entry.name][k] for image in stats])


@dataclass(frozen=True)
class Step:
    """One tuning step: its fit, and the pass that scores its candidates first (None: pass 1 did)."""

    fit: Callable[[ClassTables, Choice, np.ndarray], Choice]
    scores: Callable[[_Run, list[ClassTuning], list[np.ndarray]], None] | None = None


STEPS: dict[str, Step] = {
    "members": Step(_fit_members),
    "thresholds": Step(_fit_threshold),
    "clean": Step(_fit_cleanup, scores=_score_cleanups),
    "crf": Step(_fit_crf, scores=_score_crf),
}
"""The steps of ``--try``, in the order they are made."""


def _score_curves(run: _Run, rules: tuple[SoftRule, ...]) -> tuple[_Run, np.ndarray, list[str]]:
    """Pass 1: every rule's Dice at every threshold of GRID, ``(classes, images, rules, GRID)``; images
    that fail (with ``keep_going``) are left out of the run returned."""
    names = run.images
    curves = np.full((len(CLASSES), len(names), len(rules), GRID.size), np.nan)
    done = np.zeros(len(names), bool)

    def keep(index: int, stats: np.ndarray) -> None:
        curves[:, index] = stats
        done[index] = True

    failed = _pass(curves_task, (CurvesItem(inputs=item, rules=rules) for item in run.image_inputs()), names,
                   run.execution, "tune: thresholds", keep=keep)
    if failed:
        kept = np.flatnonzero(done)
        run = replace(run, images=[names[i] for i in kept], truths=[run.truths[i] for i in kept])
        curves = curves[:, kept]
    return run, curves, failed


def _steps(steps: Sequence[str], *, crf: bool) -> list[str]:
    """The steps to take, in the order of :data:`STEPS`; ``crf`` only with X-rays (``crf``)."""
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        raise HbensError(f"unknown tuning step {unknown[0]!r}; known steps: {', '.join(STEPS)}")
    return [step for step in STEPS if step in steps and (step != "crf" or crf)]


def _take_steps(run: _Run, classes: list[ClassTuning], steps: Sequence[str],
                fold_sets: list[np.ndarray]) -> dict[str, float]:
    """Each step after the first pass: its scores pass (when it has one), then each class's guard
    on the folds; returns the seconds of each pass."""
    everyone = np.arange(len(run.images))
    trains = [np.setdiff1d(everyone, fold) for fold in fold_sets] + [everyone]
    seconds = {}
    for step in steps:
        if STEPS[step].scores is not None:
            begun = time.perf_counter()
            STEPS[step].scores(run, classes, trains)
            seconds[f"pass {step}"] = time.perf_counter() - begun
        for entry in classes:
            entry.guard(step, fold_sets)
    return seconds


def tune_inputs(
    paths: Sequence[PathLike],
    ground_truth: PathLike,
    output: PathLike,
    *,
    folds: int = 5,
    steps: Sequence[str] = tuple(STEPS),
    images: PathLike | None = None,
    seed: int = 0,
    crf_params: CRFParams | Mapping[str, float] | None = None,
    array_format: ArrayFormat | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> TuneResult:
    """Tune a per-class recipe on validation predictions and write it to ``output``.

    Parameters
    ----------
    paths : sequence of paths
        Validation predictions of the images of ``ground_truth``: folders of probability maps
        (hbens stores or saved arrays) and/or submission CSVs (0/1 maps).
    ground_truth : path
        Annotation JSONs (a folder) or a ground-truth CSV, as for ``hbens score``.
    output : path
        The recipe YAML written (:func:`hbens.tune.recipe.write_recipe`).
    folds : int
        Folds of the guard (:func:`~hbens.tune.search.kfold_indices`).
    steps : sequence of str
        Steps of :data:`STEPS` to try; ``crf`` needs ``images`` (without them it is skipped).
    images : path, optional
        The X-rays of the images (searched recursively), for the CRF.
    seed : int
        Seed of the folds.
    crf_params : CRFParams or mapping, optional
        The CRF tried (and written for the classes that take it); a mapping gives some settings and
        the others are ``hbens crf``'s defaults for the frame (:func:`hbens.postproc.crf.frame_params`).
    array_format, execution, shape
        How to read saved arrays, where the per-image passes run, and the frame: as for
        :func:`hbens.tune.apply.apply_recipe`.

    Returns
    -------
    TuneResult
        The recipe written and each class's tuning (see :func:`hbens.tune.report.describe_tuning`).
    """
    execution = execution or Execution()
    steps = _steps(steps, crf=images is not None)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    inputs = open_inputs(paths, array_format=array_format, shape=shape, images=images)
    crf_params = frame_params(inputs.shape, crf_params)
    truth = GroundTruth(ground_truth, inputs.shape)
    names = truth.images
    if not names:
        raise HbensError(f"{ground_truth}: no images in the ground truth")
    inputs.check_images(names, what=f"the ground truth {ground_truth}")
    kfold_indices(len(names), folds, seed=seed)
    truths = [truth.runs(name) for name in names]
    xrays = find_xrays(images, names, whose=" of the ground truth", split="validation") if "crf" in steps else {}
    combos = member_combos(len(paths), weight_grid=WEIGHT_GRID)
    rules = tuple(combo.rule for combo in combos)
    run, curves, failed = _score_curves(_Run(inputs, names, truths, xrays, execution, crf_params), rules)
    seconds["pass 1 (members and thresholds)"] = time.perf_counter() - started
    classes = _classes(curves, combos, paths)
    check_dice([entry.baseline for entry in classes], True, inputs.shape, "every baseline Dice")
    seconds.update(_take_steps(run, classes, steps, kfold_indices(len(run.images), folds, seed=seed)))
    recipe = _recipe(recipe_inputs(inputs), classes, np.arange(len(run.images)), crf_params)
    write_recipe(output, recipe, inputs=[*paths, ground_truth])
    seconds["total"] = time.perf_counter() - started
    return TuneResult(recipe, classes, run.images, seconds, failed)


def _classes(curves: np.ndarray, combos: Sequence[Combo], paths: Sequence[PathLike]) -> list[ClassTuning]:
    """Each class's tables and baseline; HbensError for a class that no input has."""
    everyone = np.arange(curves.shape[1])
    classes = []
    for c, name in enumerate(CLASSES):
        tables = ClassTables(curves[c], combos)
        if not any(tables.valid[tables.index[combo]] for combo in combos if len(combo.members) == 1):
            raise HbensError(f"class {name}: none of the inputs ({', '.join(map(str, paths))}) has it in every "
                             "image; tune inputs that predict every class")
        baseline = tables.score(_baseline(tables, everyone), everyone)
        classes.append(ClassTuning(name, tables, baseline, baseline))
    return classes


def _recipe(inputs: tuple[RecipeInput, ...], classes: list[ClassTuning], everyone: np.ndarray,
            crf_params: CRFParams) -> Recipe:
    """The recipe of the accepted steps refitted on all images, with each class's scores."""
    entries = {}
    for entry in classes:
        choice = entry.fit(everyone)
        scores = ClassScores(float(entry.baseline.mean()), float(entry.tables.score(choice, everyone).mean()),
                             float(entry.held_out.mean()))
        entries[entry.name] = ClassRecipe(members=choice.combo.members, weights=choice.combo.weights, space="prob",
                                          threshold=choice.threshold, cleanup=CLEANUPS[choice.cleanup],
                                          crf=crf_params if choice.crf else None, scores=scores)
    return Recipe(inputs, entries)

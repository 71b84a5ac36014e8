"""The demo's stages after the models: the hard, class-wise and soft fuses, the cleanup and the CRF of
the soft fuse, and the recipe tuned on the validation images; :data:`STEPS` lists every step in order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from hbens.classes import CLASSES
from hbens.demo.models import predict_models, train_models, write_data
from hbens.demo.plan import DemoRun, rows_changed
from hbens.ensemble import classwise_rules, fuse, hard_rules, soft_rules
from hbens.postproc import CleanConfig, clean_csv
from hbens.postproc.crf import crf_folder
from hbens.tune import apply_recipe, tune_inputs


def _changed_vs_models(run: DemoRun, csv: Path) -> str:
    """How many rows of ``csv`` differ from each model's test CSV, as a stage's ``changes``."""
    counts = ", ".join(f"{name} {rows_changed(run.submissions[name], csv, shape=run.shape)}"
                       for name in run.plan.models)
    return f"rows changed vs each model: {counts}"


def hard_fuse(run: DemoRun) -> None:
    """Majority vote of the models' test CSVs, on runs."""
    started = time.perf_counter()
    csvs = [run.submissions[name] for name in run.plan.models]
    output = run.csv("test", "hard")
    fuse(csvs, output, hard_rules(len(csvs)), shape=run.shape)
    votes = len(csvs) // 2 + 1
    run.add_stage("hard", "ensemble",
                  f"hard vote: a pixel is bone when {votes} of {len(csvs)} models mark it", output,
                  changes=_changed_vs_models(run, output), started=started)


def classwise_fuse(run: DemoRun) -> None:
    """Per class, the model with the best validation Dice."""
    started = time.perf_counter()
    scores = [dict(zip(CLASSES, run.score(run.csv("val", name), "val").per_class))
              for name in run.plan.models]
    rules = classwise_rules(len(scores), scores=scores, vote=True)
    output = run.csv("test", "classwise")
    fuse([run.submissions[name] for name in run.plan.models], output, rules, shape=run.shape)
    chosen = [run.plan.models[rule.members[0]] for rule in rules.values()]
    picked = ", ".join(f"{name} {chosen.count(name)}" for name in run.plan.models)
    run.add_stage("classwise", "ensemble", "per class, the model with the best validation Dice", output,
                  changes=f"classes taken from each model: {picked}; {_changed_vs_models(run, output)}",
                  started=started)


def soft_fuse(run: DemoRun) -> None:
    """Mean of the models' probability stores, thresholded at 0.5; writes the fused stores."""
    started = time.perf_counter()
    folders = run.model_stores("test")
    output = run.csv("test", "soft")
    fuse(folders, output, soft_rules(len(folders)), stores=run.fused_stores("soft"))
    run.add_stage("soft", "ensemble", f"mean of the {len(folders)} models' probabilities, threshold 0.5",
                  output, changes=_changed_vs_models(run, output), started=started)


def clean_soft(run: DemoRun) -> None:
    """Keep each bone's largest component and fill its holes, on the soft fuse."""
    started = time.perf_counter()
    source = run.submissions["soft"]
    output = run.csv("test", "soft+clean")
    summary = clean_csv(source, output, {name: CleanConfig(keep=1, fill_holes=True) for name in CLASSES},
                        shape=run.shape)
    total = summary.stats.total
    run.add_stage("soft+clean", "post", "soft, each bone's largest component kept, holes filled", output,
                  started=started,
                  changes=(f"{total.components_removed} components ({total.pixels_removed} px) removed, "
                           f"{total.holes_filled} holes ({total.pixels_added} px) filled; "
                           f"rows changed: {rows_changed(source, output, shape=run.shape)}"))


def crf_soft(run: DemoRun) -> None:
    """Dense CRF of the soft fuse's stores against the X-rays."""
    started = time.perf_counter()
    output = run.csv("test", "soft+crf")
    params = run.crf_params
    crf_folder(run.fused_stores("soft"), run.images("test"), run.fused_stores("soft+crf"), params, csv=output)
    run.add_stage("soft+crf", "post", f"soft stores refined by a dense CRF on the X-ray (bilateral sxy "
                  f"{params.bilateral_sxy:g}, {params.iterations} iterations), threshold 0.5", output,
                  started=started,
                  changes=f"rows changed: {rows_changed(run.submissions['soft'], output, shape=run.shape)}")


def tune_recipe(run: DemoRun) -> None:
    """Tune a per-class recipe (members, threshold, cleanup, CRF) on the validation images."""
    started = time.perf_counter()
    images = 2 * run.plan.ids["val"]
    result = tune_inputs(run.model_stores("val"), run.truth("val"), run.folder / "recipe.yaml",
                         folds=min(5, images), images=run.images("val"), seed=run.seed,
                         crf_params=run.crf_params)
    run.recipe = result.recipe
    run.log(f"tuned recipe.yaml on {images} validation images in {time.perf_counter() - started:.0f} s")


def apply_tuned(run: DemoRun) -> None:
    """Apply the tuned recipe to the models' test stores."""
    started = time.perf_counter()
    output = run.csv("test", "tuned")
    apply_recipe(run.folder / "recipe.yaml", run.model_stores("test"), output,
                 stores=run.fused_stores("tuned"), images=run.images("test"))
    entries = list(run.recipe.classes.values())
    thresholds = [entry.threshold for entry in entries]
    run.add_stage("tuned", "ensemble", "the recipe tuned on the validation images (per class: members, "
                  "weights, threshold, cleanup, CRF; each choice kept only if it helps out of fold), applied",
                  output,
                  started=started,
                  changes=(f"recipe: {sum(len(e.members) > 1 for e in entries)} classes fuse several models; "
                           f"thresholds {min(thresholds):.2f}-{max(thresholds):.2f}; "
                           f"{sum(e.cleanup.active for e in entries)} cleaned; "
                           f"{sum(e.crf is not None for e in entries)} with CRF; "
                           f"{_changed_vs_models(run, output)}"))


STEPS: dict[str, Callable[[DemoRun], None]] = {
    "data": write_data,
    "train": train_models,
    "predict": predict_models,
    "hard": hard_fuse,
    "classwise": classwise_fuse,
    "soft": soft_fuse,
    "clean": clean_soft,
    "crf": crf_soft,
    "tune": tune_recipe,
    "apply": apply_tuned,
}
"""The demo's steps in order; each reads what earlier ones left in the :class:`DemoRun`."""

"""The embedded demo (``hbens demo``): phantoms, tiny trained models, the whole pipeline, a report.

It writes a small set of hand phantoms (:func:`hbens.synthetic.write_dataset`), trains tiny
segmentation-models-pytorch models of different architectures on the CPU (nothing is
downloaded), saves each in another checkpoint format, then runs the real pipeline through the
library: prediction with TTA into probability stores, hard, class-wise and soft fuses, cleaning
and CRF of the soft fuse, and a recipe tuned on the validation images and applied to the test
images; every stage is scored against the test images' ground truth.  It prints one table and
writes ``report.html``.

The run is a list of steps (:data:`STEPS`, name -> function of a :class:`DemoRun`); a step
that scores a submission adds a :class:`hbens.report.Stage`.  The folder holds a marker
(:data:`MARKER`) from the first step on, which says when the demo finished: a demo stopped
before that is started again from scratch in its folder (:func:`prepare_folder`).

This package is the demo's door: :func:`run_demo` and the public names of its modules are imported
from here.  The modules are :mod:`~hbens.demo.plan` (the sizes, the models, the run record, the marker),
:mod:`~hbens.demo.models` (phantoms, training, checkpoints, predictions), :mod:`~hbens.demo.stages`
(ensembles, post-processing, tuning; :data:`STEPS`) and :mod:`~hbens.demo.report` (the pictures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hbens.demo.models import (
    SAVERS,
    build_model,
    predict_models,
    save_smp_folder,
    save_state_dict,
    save_torchscript,
    train_model,
    train_models,
    training_arrays,
    write_data,
)
from hbens.demo.plan import (
    MARKER,
    OUTPUTS,
    PLANS,
    PROGRESS_LINES,
    SPLITS,
    TINY_MODELS,
    DemoPlan,
    DemoRun,
    DemoStopped,
    TinyModel,
    demo_state,
    is_demo_output,
    prepare_folder,
    rows_changed,
    write_marker,
)
from hbens.demo.report import figures, write_truth_csv
from hbens.demo.stages import (
    STEPS,
    apply_tuned,
    classwise_fuse,
    clean_soft,
    crf_soft,
    hard_fuse,
    soft_fuse,
    tune_recipe,
)
from hbens.report import Stage, build_report, stage_lines, write_report

__all__ = [
    "MARKER", "OUTPUTS", "PLANS", "PROGRESS_LINES", "SAVERS", "SPLITS", "STEPS", "TINY_MODELS",
    "DemoPlan", "DemoResult", "DemoRun", "DemoStopped", "TinyModel",
    "apply_tuned", "build_model", "classwise_fuse", "clean_soft", "crf_soft", "demo_state", "figures",
    "hard_fuse", "is_demo_output", "predict_models", "prepare_folder", "rows_changed", "run_demo",
    "save_smp_folder", "save_state_dict", "save_torchscript", "soft_fuse", "train_model", "train_models",
    "training_arrays", "tune_recipe", "write_data", "write_marker", "write_truth_csv",
]


@dataclass(frozen=True)
class DemoResult:
    """What a demo run left: its stages, the printed table, the report and the seconds of each step."""

    stages: list[Stage]
    lines: list[str]
    report: Path
    seconds: dict[str, float]


def run_demo(folder: Path | str, *, quick: bool = False, seed: int = 0,
             log: Callable[[str], None] = lambda text: None,
             progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the whole demo into ``folder`` and write ``folder/report.html``.

    Parameters
    ----------
    folder : path
        Output folder; it must not exist, be empty, or hold an unfinished demo, which starts
        again from scratch (:func:`prepare_folder`).
    quick : bool, keyword-only
        The smaller plan (:data:`PLANS` ``quick``): fewer, smaller images and shorter training.
    seed : int, keyword-only
        Seed of the phantoms, the weights and the training draws.
    log : callable, keyword-only
        Receives one line per step as it ends.
    progress : callable, optional, keyword-only
        Receives progress lines during the longer steps (each training's step and loss).

    Returns
    -------
    DemoResult
        The scored stages, the table's lines (stage, mean Dice, three worst classes) and the report.
    """
    folder = Path(folder)
    if prepare_folder(folder, quick=quick, seed=seed):
        log(f"{folder}: removed the outputs of a demo stopped before its end; starting again")
    import torch

    plan = PLANS["quick" if quick else "default"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run = DemoRun(folder=folder, plan=plan, seed=seed, log=log, progress=progress)
    try:
        for name, step in STEPS.items():
            started = time.perf_counter()
            step(run)
            run.seconds[name] = time.perf_counter() - started
            log(f"[{name}] {run.seconds[name]:.1f} s")
    finally:
        torch.set_num_threads(threads)
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in run.seconds.items())
    notes = [f"{2 * plan.ids['train']} training, {2 * plan.ids['val']} validation and {2 * plan.ids['test']} "
             f"test phantoms of {plan.size}x{plan.size}; models trained from scratch for {plan.steps} steps "
             f"of {plan.batch} images at {plan.model_size}x{plan.model_size} on the CPU; the whole run took "
             f"{sum(run.seconds.values()):.0f} s ({steps}).",
             "soft+clean and soft+crf apply one setting to every class; the tuned recipe keeps a cleanup or "
             "the CRF only for the classes where it helps on validation images held out of the choice."]
    page = build_report(title="hbens demo: tiny models, their ensembles and post-processing",
                        stages=run.stages, figures=figures(run), recipe=run.recipe, notes=notes)
    report = folder / "report.html"
    write_report(report, page)
    write_marker(folder, "finished", quick=quick, seed=seed)
    return DemoResult(run.stages, stage_lines(run.stages), report, run.seconds)

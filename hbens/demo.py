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
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.predictors.checkpoints import JIT_DEPRECATED
from hbens.report import Figure, Stage

if TYPE_CHECKING:
    from hbens.tune.recipe import Recipe

SPLITS = ("train", "val", "test")
MARKER = ".hbens-demo.json"
"""The demo's marker in its folder: ``{"demo": "running" | "finished", "quick": ..., "seed": ...}``."""
OUTPUTS = ("data", "checkpoints", "stores", "submissions", "recipe.yaml", "report.html", MARKER)
"""Everything the demo writes in its folder (with the temporaries of its atomic writes)."""
PROGRESS_LINES = 8
"""Progress lines per model during training (when a progress callback is given)."""


class DemoStopped(Exception):
    """Training was told to stop (the demo is being interrupted)."""


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How big a demo is: images, model resolution, training length, TTA.

    Parameters
    ----------
    size : int
        Side of the phantoms (pixels).
    model_size : int
        Side the models see (images are resized to it; logits are upsampled back).
    ids : dict
        IDs (two hands each) per split: ``train`` to train on, ``val`` to choose on, ``test`` to score.
    steps : int
        Optimizer steps per model.
    batch : int
        Images per step.
    models : tuple of str
        Keys of :data:`TINY_MODELS`.
    tta : str
        Test-time augmentation of the predictions (``hbens predict --tta``).
    """

    size: int
    model_size: int
    ids: dict[str, int]
    steps: int
    batch: int
    models: tuple[str, ...]
    tta: str = "hflip"


PLANS: dict[str, DemoPlan] = {
    "default": DemoPlan(size=384, model_size=192, ids={"train": 12, "val": 4, "test": 3}, steps=160, batch=4,
                        models=("unet", "deeplab", "fpn")),
    "quick": DemoPlan(size=256, model_size=128, ids={"train": 8, "val": 2, "test": 2}, steps=100, batch=4,
                      models=("unet", "deeplab", "fpn")),
}
"""The demo's sizes: ``default`` and ``--quick``."""


@dataclass(frozen=True, kw_only=True)
class TinyModel:
    """A small segmentation-models-pytorch architecture and the checkpoint format it is saved in."""

    arch: str
    encoder: str
    kwargs: dict[str, Any]
    checkpoint: str


TINY_MODELS: dict[str, TinyModel] = {
    "unet": TinyModel(arch="Unet", encoder="tu-mobilenetv3_small_050",
                      kwargs={"decoder_channels": [64, 32, 24, 16, 16]}, checkpoint="state-dict"),
    "fpn": TinyModel(arch="FPN", encoder="tu-mobilenetv3_small_050",
                     kwargs={"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32},
                     checkpoint="smp-folder"),
    "deeplab": TinyModel(arch="DeepLabV3Plus", encoder="tu-mobilenetv3_small_050",
                         kwargs={"decoder_channels": 64}, checkpoint="torchscript"),
}
"""The demo's models, by name; every one is built with ``encoder_weights=None``."""


def save_state_dict(module, *, model: TinyModel, folder: Path, name: str, example) -> Path:
    """A ``.pt`` state dict with the architecture in a YAML beside it."""
    import torch
    import yaml

    path = folder / f"{name}.pt"
    torch.save(module.state_dict(), path)
    config = {"arch": model.arch, "encoder": model.encoder, "in_channels": 3, "classes": len(CLASSES),
              "kwargs": model.kwargs}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def save_smp_folder(module, *, model: TinyModel, folder: Path, name: str, example) -> Path:
    """A segmentation-models-pytorch ``save_pretrained`` folder (config.json, model.safetensors)."""
    path = folder / name
    module.save_pretrained(str(path))
    return path


def save_torchscript(module, *, model: TinyModel, folder: Path, name: str, example) -> Path:
    """A traced TorchScript file."""
    import torch

    path = folder / f"{name}.ts"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", JIT_DEPRECATED, FutureWarning)
        torch.jit.trace(module, example).save(str(path))
    return path


SAVERS: dict[str, Callable[..., Path]] = {
    "state-dict": save_state_dict,
    "smp-folder": save_smp_folder,
    "torchscript": save_torchscript,
}
"""Checkpoint writers by format name (the loaders' names in :data:`hbens.predictors.LOADERS`); each
takes the trained module, its :class:`TinyModel`, the folder, the name and an example input."""


@dataclass
class DemoRun:
    """The state of a demo as its steps run: where things are and the stages scored so far."""

    folder: Path
    plan: DemoPlan
    seed: int
    log: Callable[[str], None]
    progress: Callable[[str], None] | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    submissions: dict[str, Path] = field(default_factory=dict)
    recipe: Recipe | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.plan.size, self.plan.size

    @property
    def crf_params(self):
        """``hbens crf``'s defaults for the phantoms' frame (what ``hbens crf`` and ``hbens tune`` use)."""
        from hbens.postproc.crf import frame_params

        return frame_params(self.shape)

    def model_stores(self, split: str) -> list[Path]:
        """The store folder of each model's predictions of a split, in the plan's order."""
        return [self.folder / "stores" / split / name for name in self.plan.models]

    def fused_stores(self, stage: str) -> Path:
        """The store folder of a stage's fused (or refined) test probabilities."""
        return self.folder / "stores" / "test-fused" / stage

    def split(self, name: str) -> Path:
        return self.folder / "data" / name

    def images(self, name: str) -> Path:
        return self.split(name) / "DCM"

    def truth(self, name: str) -> Path:
        return self.split(name) / "outputs_json"

    def csv(self, split: str, name: str) -> Path:
        path = self.folder / "submissions" / split / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def score(self, csv: Path, split: str = "test"):
        from hbens.metrics import score_submission

        return score_submission(str(csv), str(self.truth(split)), shape=self.shape)

    def add_stage(self, name: str, kind: str, description: str, csv: Path, *, changes: str,
                  started: float) -> None:
        """Score ``csv`` on the test images and record it as a stage."""
        self.submissions[name] = csv
        self.stages.append(Stage(name=name, kind=kind, description=description, table=self.score(csv),
                                 changes=changes, seconds=time.perf_counter() - started))


def rows_changed(before: Path, after: Path, *, shape: tuple[int, int]) -> int:
    """Rows (image, class) whose mask differs between two submissions of images of size ``shape``."""
    from hbens.submission import read_submission

    old, new = read_submission(before, shape), read_submission(after, shape)
    return sum(old.get(key, "").split() != rle.split() for key, rle in new.items())


def write_data(run: DemoRun) -> None:
    """Phantoms: train and test by :func:`~hbens.synthetic.write_dataset`, validation IDs after them."""
    from hbens.synthetic import write_dataset, write_phantom

    ids = run.plan.ids
    write_dataset(run.folder / "data", ids_train=ids["train"], ids_test=ids["test"], seed=run.seed,
                  size=run.plan.size)
    first = ids["train"] + ids["test"] + 1
    for number in range(first, first + ids["val"]):
        for hand in (0, 1):
            write_phantom(run.split("val"), number, hand, seed=run.seed, size=run.plan.size)
    counts = ", ".join(f"{2 * ids[s]} {s}" for s in SPLITS)
    run.log(f"phantoms: {counts} images of {run.plan.size}x{run.plan.size}")


def training_arrays(split: Path, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, size, size) float32 in [0, 1] and masks (N, 29, size, size) uint8 of a split."""
    import cv2

    from hbens.annotations import annotation_masks
    from hbens.images import find_images, read_gray

    images, masks = [], []
    for path in find_images(split / "DCM"):
        image = read_gray(path)
        mask = annotation_masks(split / "outputs_json" / path.parent.name / f"{path.stem}.json", image.shape)
        if image.shape != (size, size):
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            mask = np.stack([cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
                             for m in mask]) > 0.5
            mask = mask.astype(np.uint8)
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def build_model(model: TinyModel, *, seed: int):
    """The untrained module of ``model``, its weights drawn from ``seed`` (``encoder_weights=None``)."""
    import segmentation_models_pytorch as smp
    import torch

    torch.manual_seed(seed)
    return smp.create_model(model.arch, encoder_name=model.encoder, encoder_weights=None, in_channels=3,
                            classes=len(CLASSES), **model.kwargs)


def train_model(module, images: np.ndarray, masks: np.ndarray, *, steps: int, batch: int, seed: int,
                stop: threading.Event | None = None, progress: Callable[[int, float], None] | None = None):
    """Train ``module`` on the CPU with BCE + Dice loss; return it in eval mode.

    Parameters
    ----------
    module : torch.nn.Module
        A model of (N, 3, H, W) images to (N, 29, H, W) logits, e.g. from :func:`build_model`.
    images : ndarray
        (N, H, W) float32 in [0, 1], fed as three equal channels (as ``hbens predict`` does).
    masks : ndarray
        (N, 29, H, W) uint8 targets.
    steps, batch, seed : int, keyword-only
        Optimizer steps (AdamW, one-cycle learning rate), images per step (drawn with
        replacement, half of them mirrored) and the seed of the draws.  The draws use their own
        generator, so models trained at the same time in threads stay reproducible.
    stop : threading.Event, optional, keyword-only
        Checked before each step: once set, :class:`DemoStopped` is raised (within a step).
    progress : callable, optional, keyword-only
        Called with the step number and its loss every ``steps / PROGRESS_LINES`` steps.

    Raises
    ------
    DemoStopped
        When ``stop`` is set before the last step.
    """
    import torch

    layout = torch.channels_last
    module = module.to(memory_format=layout).train()
    x_all = torch.from_numpy(images)[:, None].expand(-1, 3, -1, -1).contiguous(memory_format=layout)
    y_all = torch.from_numpy(masks).contiguous(memory_format=layout)
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.01, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=steps, pct_start=0.15)
    draws = torch.Generator().manual_seed(seed)
    every = max(1, steps // PROGRESS_LINES)
    for step in range(1, steps + 1):
        if stop is not None and stop.is_set():
            raise DemoStopped(f"stopped before step {step} of {steps}")
        pick = torch.randint(len(x_all), (batch,), generator=draws)
        flip = (torch.rand(batch, generator=draws) < 0.5)[:, None, None, None]
        x, y = x_all[pick], y_all[pick].float()
        x, y = torch.where(flip, x.flip(-1), x), torch.where(flip, y.flip(-1), y)
        logits = module(x)
        p = logits.sigmoid()
        dice = (2 * (p * y).sum((2, 3)) + 1) / (p.sum((2, 3)) + y.sum((2, 3)) + 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 1 - dice.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None and (step % every == 0 or step == steps):
            progress(step, loss.item())
    return module.eval().to(memory_format=torch.contiguous_format)


def train_models(run: DemoRun) -> None:
    """Train every model of the plan, one per core at a time, and save each in its checkpoint format.

    Each model trains on one thread: on two cores, two single-threaded trainings run several
    times faster than one after the other on two threads (small kernels spend their time
    waiting for each other, the more so on a busy machine).  When this thread is interrupted
    (Ctrl-C), the trainings stop at their next step before the interruption goes on; with
    ``run.progress``, each training reports its step and loss :data:`PROGRESS_LINES` times.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from hbens.pipeline import cores

    images, masks = training_arrays(run.split("train"), size=run.plan.model_size)
    folder = run.folder / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, run.plan.model_size, run.plan.model_size)
    seeds = {name: run.seed + number for number, name in enumerate(run.plan.models)}
    modules = {name: build_model(TINY_MODELS[name], seed=seed) for name, seed in seeds.items()}

    stop = threading.Event()

    def train(name: str):
        started = time.perf_counter()
        report = None
        if run.progress is not None:
            def report(step: int, loss: float) -> None:
                run.progress(f"training {name}: step {step}/{run.plan.steps}, loss {loss:.3f}, "
                             f"{time.perf_counter() - started:.0f} s")
        module = train_model(modules[name], images, masks, steps=run.plan.steps, batch=run.plan.batch,
                             seed=seeds[name], stop=stop, progress=report)
        return module, time.perf_counter() - started

    pool = ThreadPoolExecutor(min(cores(), len(modules)))
    try:
        futures = {name: pool.submit(train, name) for name in modules}
        trained = {name: future.result() for name, future in futures.items()}
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for name, (module, seconds) in trained.items():
        model = TINY_MODELS[name]
        run.checkpoints[name] = SAVERS[model.checkpoint](module, model=model, folder=folder, name=name,
                                                         example=example)
        saved = run.checkpoints[name].relative_to(run.folder)
        run.log(f"trained {name} ({model.arch}, {model.encoder}) for {run.plan.steps} steps in "
                f"{seconds:.0f} s; saved as {model.checkpoint}: {saved}")


def predict_models(run: DemoRun) -> None:
    """Each model predicts the validation and test images with TTA into stores and a CSV."""
    from hbens.pipeline import Execution
    from hbens.predictors import ModelSource, PredictOptions, predict_folder

    options = PredictOptions(size=run.plan.model_size, tta=run.plan.tta)
    for name, checkpoint in run.checkpoints.items():
        started = time.perf_counter()
        source = ModelSource(checkpoint=str(checkpoint))
        summaries = [predict_folder([source], run.images(split), run.folder / "stores" / split, options,
                                    csv=run.csv(split, name), execution=Execution())
                     for split in ("val", "test")]
        model = TINY_MODELS[name]
        counts = " + ".join(str(summary.images) for summary in summaries)
        stored = sum(summary.stats.store_bytes for summary in summaries)
        run.add_stage(name, "model", f"{model.arch} ({model.encoder}) from its {model.checkpoint} "
                      f"checkpoint, TTA {run.plan.tta}, threshold 0.5", run.csv("test", name),
                      started=started,
                      changes=f"predicted {counts} validation + test images, stores of {stored / 1e6:.2f} MB")


def _changed_vs_models(run: DemoRun, csv: Path) -> str:
    counts = ", ".join(f"{name} {rows_changed(run.submissions[name], csv, shape=run.shape)}"
                       for name in run.plan.models)
    return f"rows changed vs each model: {counts}"


def hard_fuse(run: DemoRun) -> None:
    """Majority vote of the models' test CSVs, on runs."""
    from hbens.ensemble import fuse, hard_rules

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
    from hbens.ensemble import classwise_rules, fuse

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
    from hbens.ensemble import fuse, soft_rules

    started = time.perf_counter()
    folders = run.model_stores("test")
    output = run.csv("test", "soft")
    fuse(folders, output, soft_rules(len(folders)), stores=run.fused_stores("soft"))
    run.add_stage("soft", "ensemble", f"mean of the {len(folders)} models' probabilities, threshold 0.5",
                  output, changes=_changed_vs_models(run, output), started=started)


def clean_soft(run: DemoRun) -> None:
    """Keep each bone's largest component and fill its holes, on the soft fuse."""
    from hbens.postproc import CleanConfig, clean_csv

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
    from hbens.postproc.crf import crf_folder

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
    from hbens.tune import tune_inputs

    started = time.perf_counter()
    images = 2 * run.plan.ids["val"]
    result = tune_inputs(run.model_stores("val"), run.truth("val"), run.folder / "recipe.yaml",
                         folds=min(5, images), images=run.images("val"), seed=run.seed,
                         crf_params=run.crf_params)
    run.recipe = result.recipe
    run.log(f"tuned recipe.yaml on {images} validation images in {time.perf_counter() - started:.0f} s")


def apply_tuned(run: DemoRun) -> None:
    """Apply the tuned recipe to the models' test stores."""
    from hbens.tune import apply_recipe

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


def figures(run: DemoRun) -> list[Figure]:
    """Pictures of the first test image, cut to the hand: the truth, the best single model and the
    best stage over the X-ray, and where the best stage disagrees with the truth and with that model."""
    from hbens.images import find_images, read_xray
    from hbens.pictures import (COMPARE_COLORS, class_colors, compare_masks, compare_overlay, image_rows,
                                overlay, png_bytes)

    path = find_images(run.images("test"))[0]
    xray = read_xray(path)
    truth = run.csv("test", "truth")
    write_truth_csv(run.truth("test"), truth, shape=run.shape)
    best_model = max((s for s in run.stages if s.kind == "model"), key=lambda s: s.table.mean).name
    best = max((s for s in run.stages if s.kind != "model"), key=lambda s: s.table.mean).name
    sources = {"truth": truth, best_model: run.submissions[best_model], best: run.submissions[best]}
    rows = {name: image_rows(csv, path.name, shape=run.shape)[1] for name, csv in sources.items()}
    comparisons = {(first, second): compare_masks(rows[first], rows[second], shape=run.shape)
                   for first, second in ((best, "truth"), (best, best_model))}
    ys, xs = np.nonzero(comparisons[best, "truth"].both | comparisons[best, "truth"].second)
    margin = run.plan.size // 32
    window = (slice(max(ys.min() - margin, 0), ys.max() + margin + 1),
              slice(max(xs.min() - margin, 0), xs.max() + margin + 1))

    def png(picture: np.ndarray) -> bytes:
        return png_bytes(picture[window], width=2 * (window[1].stop - window[1].start))

    classes = dict(zip(CLASSES, map(tuple, class_colors())))
    titles = {"truth": "ground truth", best_model: f"best single model, {best_model}",
              best: f"best stage, {best}"}
    pictures = [Figure(caption=f"{title}: {path.name}", png=png(overlay(rows[name], xray, run.shape)),
                       legend=classes if name == "truth" else {}) for name, title in titles.items()]
    for (first, second), comparison in comparisons.items():
        legend = {label.replace("the first", first).replace("the second", second): color
                  for label, color in COMPARE_COLORS.items()}
        pictures.append(Figure(caption=f"{first} against {second}", legend=legend,
                               png=png(compare_overlay(comparison, xray))))
    return pictures


def write_truth_csv(truth: Path, output: Path, *, shape: tuple[int, int]) -> None:
    """The annotation JSONs of a folder as a submission CSV (to draw them like a submission)."""
    from hbens.annotations import GroundTruth
    from hbens.rle import runs_to_string
    from hbens.submission import write_submission

    write_submission(output, {(image, name): runs_to_string(*runs[name])
                              for image, runs in GroundTruth(truth, shape) for name in CLASSES})


def demo_state(folder: Path) -> str | None:
    """What the marker in ``folder`` says (``running`` or ``finished``); None without a readable one."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        state = json.loads(marker.read_text(encoding="utf-8")).get("demo")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return state if state in ("running", "finished") else None


def write_marker(folder: Path, state: str, *, quick: bool, seed: int) -> None:
    """Write the demo's marker (:data:`MARKER`) in ``folder``."""
    (folder / MARKER).write_text(json.dumps({"demo": state, "quick": quick, "seed": seed}) + "\n",
                                 encoding="utf-8")


def is_demo_output(entry: Path) -> bool:
    """Whether an entry of a demo's folder is one the demo writes (:data:`OUTPUTS`, temporaries);
    links never are."""
    from hbens.paths import TEMPORARY

    return not entry.is_symlink() and (entry.name in OUTPUTS or bool(TEMPORARY.fullmatch(entry.name)))


def prepare_folder(folder: Path, *, quick: bool, seed: int) -> bool:
    """Make ``folder`` ready for a demo and mark it running; True when a stopped demo was cleared first.

    ``folder`` may not exist, be empty, or hold an unfinished demo (its marker says ``running``)
    and nothing else: the demo's own outputs (:data:`OUTPUTS`) are then removed, so that it starts
    again from scratch.  A finished demo, a folder without the marker or with other entries
    beside an unfinished demo are refused (HbensError), and nothing is removed.
    """
    if folder.exists() and not folder.is_dir():
        raise HbensError(f"{folder}: exists and is not a folder; choose another -o")
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if entries:
        state = demo_state(folder)
        if state is None:
            raise HbensError(f"{folder}: exists and is not an empty folder; remove it or choose another -o")
        if state == "finished":
            raise HbensError(f"{folder}: holds a finished demo (report.html); remove it or choose another -o")
        foreign = [entry.name for entry in entries if not is_demo_output(entry)]
        if foreign:
            raise HbensError(f"{folder}: holds an unfinished demo and {foreign[0]}, which the demo did not write; "
                             "move it away to start the demo again there, or choose another -o")
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, "running", quick=quick, seed=seed)
    return bool(entries)


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

    from hbens.report import build_report, stage_lines, write_report

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

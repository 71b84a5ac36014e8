"""The demo's models: the phantoms they learn from, their training on the CPU, the checkpoint of each
in another format (:data:`SAVERS`) and their predictions with TTA into stores and CSVs."""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import yaml

from hbens import execution  # by module: execution.cores is looked up when the trainings start
from hbens.annotations import annotation_masks
from hbens.classes import CLASSES
from hbens.demo.plan import PROGRESS_LINES, SPLITS, TINY_MODELS, DemoRun, DemoStopped, TinyModel
from hbens.images import find_images, read_gray
from hbens.predictors import ModelSource, PredictOptions, predict_folder
from hbens.predictors.checkpoints import JIT_DEPRECATED
from hbens.synthetic import write_dataset, write_phantom


def save_state_dict(module, *, model: TinyModel, folder: Path, name: str, example) -> Path:
    """A ``.pt`` state dict with the architecture in a YAML beside it."""
    import torch

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


def write_data(run: DemoRun) -> None:
    """Phantoms: train and test by :func:`~hbens.synthetic.write_dataset`, validation IDs after them."""
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
    import torch

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

    pool = ThreadPoolExecutor(min(execution.cores(), len(modules)))
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
    options = PredictOptions(size=run.plan.model_size, tta=run.plan.tta)
    for name, checkpoint in run.checkpoints.items():
        started = time.perf_counter()
        source = ModelSource(checkpoint=str(checkpoint))
        summaries = [predict_folder([source], run.images(split), run.folder / "stores" / split, options,
                                    csv=run.csv(split, name), execution=execution.Execution())
                     for split in ("val", "test")]
        model = TINY_MODELS[name]
        counts = " + ".join(str(summary.images) for summary in summaries)
        stored = sum(summary.stats.store_bytes for summary in summaries)
        run.add_stage(name, "model", f"{model.arch} ({model.encoder}) from its {model.checkpoint} "
                      f"checkpoint, TTA {run.plan.tta}, threshold 0.5", run.csv("test", name),
                      started=started,
                      changes=f"predicted {counts} validation + test images, stores of {stored / 1e6:.2f} MB")

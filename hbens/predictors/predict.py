"""Checkpoints to per-class probability stores (and optionally a submission), image by image.

Images are read and stores written on background threads so that the model never waits.  The
model sees the image resized to ``size`` (or tiled by a sliding window), with TTA; its logits
are upsampled to the original size only over each class's crop, turned into probabilities,
averaged over models for an ensemble, and quantized into the store.  A submission row is the
stored probability thresholded, so that ``--csv`` equals thresholding the store later.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.probabilities import (
    FLOOR,
    ClassCrop,
    ProbabilityStore,
    crops_to_rles,
    is_valid_store,
    tight_crop,
    write_store,
)
from hbens.predictors.images import find_images, parse_normalize, read_gray, to_input
from hbens.predictors.model import InferenceModel
from hbens.predictors.tta import parse_tta, predict_tta
from hbens.predictors.upsample import source_box, upsample_crop
from hbens.predictors.window import predict_windows

FLOOR_LOGIT = float(np.log(FLOOR / (1 - FLOOR)))


@dataclass
class PredictOptions:
    """How to turn an image into logits."""

    size: int | None = None
    window: int | None = None
    overlap: float = 0.5
    blend: str = "gaussian"
    tta: str = "none"
    merge: str = "mean"
    normalize: str = "none"
    batch_size: int = 1
    precision: str = "uint8"
    padding: int = 4

    def __post_init__(self) -> None:
        if self.size is not None and (self.size <= 0 or self.size % 32):
            raise HbensError(f"--size {self.size}: must be a positive multiple of 32")
        if self.window is not None and self.window <= 0:
            raise HbensError(f"--window {self.window}: must be positive")
        if self.precision not in ("uint8", "float16"):
            raise HbensError(f"--precision {self.precision}: valid precisions are uint8, float16")
        if self.batch_size < 1:
            raise HbensError(f"--batch-size {self.batch_size}: must be >= 1")


class Predictor:
    """One model with its pre-processing, sliding window and TTA: images -> low-resolution logits."""

    def __init__(self, model: InferenceModel, options: PredictOptions):
        self.model = model
        self.options = options
        self.normalize = parse_normalize(options.normalize)
        self.transforms = parse_tta(options.tta)

    def _forward(self, batch):
        return predict_tta(self.model, batch, self.transforms, self.options.merge)

    def logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(C, h, w) float32 logits of each image, at the model's working resolution."""
        import torch
        import torch.nn.functional as F

        size = self.options.size
        if size is not None:
            images = [F.interpolate(torch.from_numpy(image)[None, None], size=(size, size), mode="bilinear",
                                    align_corners=False)[0, 0].numpy() for image in images]
        tensors = [torch.from_numpy(to_input(image, self.model.in_channels, self.normalize))[None] for image in images]
        if self.options.window is not None:
            return [
                predict_windows(self._forward, t, self.options.window, self.options.overlap,
                                self.options.blend, self.options.batch_size)[0].numpy()
                for t in tensors
            ]
        if len(tensors) == 1:
            return [self._forward(tensors[0])[0].numpy()]
        if len({t.shape for t in tensors}) == 1:
            return list(self._forward(torch.cat(tensors)).numpy())
        return [self._forward(t)[0].numpy() for t in tensors]


def probability_crops(
    logit_sets: Sequence[np.ndarray], weights: Sequence[float], shape: tuple[int, int], options: PredictOptions
) -> list[ClassCrop]:
    """Quantized per-class crops of the weighted mean of the models' sigmoid probabilities."""
    crops = []
    total = float(sum(weights))
    above = [logits > FLOOR_LOGIT for logits in logit_sets]
    flags = [(a.any(axis=2), a.any(axis=1)) for a in above]
    for c in range(logit_sets[0].shape[0]):
        boxes = [source_box(rows[c], columns[c], shape) for rows, columns in flags]
        boxes = [b for b in boxes if b is not None]
        if not boxes:
            crops.append(tight_crop(np.zeros((0, 0), np.float32), (0, 0), options.precision))
            continue
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        probability = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
        for logits, weight in zip(logit_sets, weights):
            probability += np.float32(weight / total) / (1 + np.exp(-upsample_crop(logits[c], shape, box)))
        crops.append(tight_crop(probability, box[:2], options.precision, options.padding))
    return crops


@dataclass
class PredictSummary:
    """Counts and timings of a prediction run."""

    images: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    forward_seconds: float = 0.0
    store_bytes: int = 0

    def __str__(self) -> str:
        share = 100 * (1 - self.forward_seconds / self.seconds) if self.seconds else 0.0
        text = (f"predicted {self.images} image(s) in {self.seconds:.1f} s ({share:.0f} % outside forward passes), "
                f"{self.skipped} resumed, stores {self.store_bytes / 1e6:.1f} MB")
        if self.failed:
            text += f"; {len(self.failed)} failed (no store, no rows):\n  " + "\n  ".join(self.failed)
        return text


def _prefetch(paths: Sequence[Path], pool: ThreadPoolExecutor, depth: int) -> Iterator[tuple[Path, Future]]:
    """Yield (path, future image) with up to ``depth`` reads running ahead."""
    pending: list[tuple[Path, Future]] = []
    for path in paths:
        pending.append((path, pool.submit(read_gray, path)))
        if len(pending) > depth:
            yield pending.pop(0)
    yield from pending


def output_groups(
    names: Sequence[str], ensemble: str | None, weights: Sequence[float] | None, with_csv: bool
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Which models go into which store folder (each its own, or all into ``ensemble``), and their weights."""
    if ensemble not in (None, "mean"):
        raise HbensError(f"--ensemble {ensemble}: the only ensemble is mean")
    weights = list(weights) if weights is not None else [1.0] * len(names)
    if len(weights) != len(names) or any(w <= 0 for w in weights):
        raise HbensError(f"--weights: give one positive weight per checkpoint ({len(names)})")
    if with_csv and len(names) > 1 and ensemble is None:
        raise HbensError("--csv with several checkpoints needs --ensemble mean (one submission from all of them)")
    groups = {"ensemble": list(names)} if ensemble else {name: [name] for name in names}
    return groups, dict(zip(names, weights))


def predict_folder(
    predictors: dict[str, Predictor],
    images: str | Path,
    output: str | Path,
    options: PredictOptions,
    ensemble: str | None = None,
    weights: Sequence[float] | None = None,
    csv: str | Path | None = None,
    thresholds: Sequence[float] | None = None,
    resume: bool = False,
    keep_going: bool = False,
    post: Callable[[str, str], str] | None = None,
    progress: bool = False,
) -> PredictSummary:
    """Predict every PNG under ``images`` into probability stores under ``output``.

    Each predictor writes ``output/<name>/<image stem>.npz``; with ``ensemble="mean"`` their
    probabilities are averaged (``weights``) into ``output/ensemble``.  ``csv`` also writes a
    submission thresholded at ``thresholds`` (one per class), cleaned by ``post`` when given.
    """
    from tqdm import tqdm

    from hbens.submission import SubmissionWriter

    started = time.perf_counter()
    names = list(predictors)
    groups, weight_of = output_groups(names, ensemble, weights, csv is not None)
    thresholds = list(thresholds) if thresholds is not None else [0.5] * len(CLASSES)
    folders = {group: Path(output) / group for group in groups}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    paths = find_images(images)
    summary = PredictSummary()
    writer = SubmissionWriter(csv, [images]) if csv is not None else None

    def store_path(group: str, path: Path) -> Path:
        return folders[group] / f"{path.stem}.npz"

    def write_rows(submission: SubmissionWriter, path: Path, crops: list[ClassCrop], shape: tuple[int, int]) -> None:
        for name, rle in zip(CLASSES, crops_to_rles(crops, shape, thresholds)):
            submission.write(path.name, name, post(name, rle) if post is not None else rle)

    todo = []
    for path in paths:
        if resume and all(is_valid_store(store_path(g, path)) for g in groups):
            summary.skipped += 1
            todo.append((path, False))
        else:
            todo.append((path, True))

    def predict_batch(batch: list[Path], images_: list[np.ndarray]) -> dict[Path, tuple[list[ClassCrop], tuple]]:
        logits = {name: predictors[name].logits(images_) for name in names}
        results = {}
        for k, (path, image) in enumerate(zip(batch, images_)):
            for group, members in groups.items():
                crops = probability_crops([logits[m][k] for m in members], [weight_of[m] for m in members],
                                          image.shape, options)
                meta = {"model": group if ensemble is None else members, "image": path.name,
                        "tta": options.tta, "size": options.size, "window": options.window}
                writes.append(writers.submit(write_store, store_path(group, path), crops, image.shape,
                                             options.precision, **meta))
                results.setdefault(path, (crops, image.shape))
        return results

    with ExitStack() as stack:
        readers = stack.enter_context(ThreadPoolExecutor(2))
        writers = stack.enter_context(ThreadPoolExecutor(1))
        submission = stack.enter_context(writer) if writer is not None else None
        writes: list[Future] = []
        pending = _prefetch([p for p, fresh in todo if fresh], readers, depth=2 * options.batch_size)
        bar = stack.enter_context(tqdm(total=len(todo), desc="predict", unit="image", disable=None if progress else True))
        for first in range(0, len(todo), options.batch_size):
            chunk = todo[first : first + options.batch_size]
            loaded: list[Path] = []
            images_: list[np.ndarray] = []
            for path, fresh in chunk:
                if fresh:
                    _, future = next(pending)
                    try:
                        images_.append(future.result())
                        loaded.append(path)
                    except HbensError as error:
                        if not keep_going:
                            raise
                        summary.failed.append(str(error))
            try:
                results = predict_batch(loaded, images_) if loaded else {}
            except HbensError as error:
                if not keep_going:
                    raise HbensError(f"{', '.join(p.name for p in loaded)}: {error}") from None
                summary.failed.append(f"{', '.join(str(p) for p in loaded)}: {error}")
                results = {}
            summary.images += len(results)
            for path, fresh in chunk:
                if submission is None:
                    continue
                if not fresh:
                    store = ProbabilityStore(store_path(next(iter(groups)), path))
                    results[path] = (store.stored_crops(), store.shape)
                if path in results:
                    write_rows(submission, path, *results[path])
            bar.update(len(chunk))
        for done in writes:
            done.result()
    summary.seconds = time.perf_counter() - started
    summary.forward_seconds = sum(p.model.forward_seconds for p in predictors.values())
    summary.store_bytes = sum(f.stat().st_size for folder in folders.values() for f in folder.glob("*.npz"))
    return summary

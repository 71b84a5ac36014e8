"""Checkpoints to per-class probability stores (and optionally a submission), image by image.

Each image is a task of :mod:`hbens.pipeline` (:func:`predict_image`); a worker loads each model
once and reuses it for every image it gets.  The model sees the image resized to ``size`` (or tiled by a sliding window), with TTA; its logits
are upsampled to the original size only over each class's crop, turned into probabilities,
averaged over models for an ensemble, and quantized into the store.  A submission row is the
stored probability thresholded, so that ``--csv`` equals thresholding the store later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

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
from hbens.images import find_images, parse_normalize, read_gray, to_input
from hbens.pipeline import Execution, ImageOutput, RunSummary
from hbens.postproc.clean import Cleanup, CleanTotals, clean_rows
from hbens.predictors.checkpoints import ModelSpec, load_model
from hbens.predictors.model import InferenceModel, parse_channels
from hbens.predictors.tta import MERGES, parse_tta, predict_tta, tta_steps
from hbens.predictors.upsample import source_box, upsample_crop
from hbens.predictors.window import BLENDS, predict_windows

FLOOR_LOGIT = float(np.log(FLOOR / (1 - FLOOR)))


@dataclass(frozen=True, kw_only=True)
class PredictOptions:
    """How to turn an image into logits (every field changes the numbers, so resume compares them)."""

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
        if not 0 <= self.overlap < 1:
            raise HbensError(f"--overlap {self.overlap}: must be in [0, 1)")
        if self.blend not in BLENDS:
            raise HbensError(f"--blend {self.blend}: valid blends are {', '.join(BLENDS)}")
        if self.merge not in MERGES:
            raise HbensError(f"--merge {self.merge}: valid merges are {', '.join(MERGES)}")
        tta_steps(self.tta)
        parse_normalize(self.normalize)


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


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where a model comes from and how to run it: plain data, so that a worker can load it itself."""

    checkpoint: str
    spec: ModelSpec = field(default_factory=ModelSpec)
    allow_pickle: bool = False
    format: str | None = None
    device: str = "cpu"
    channels: str | None = None


_PREDICTORS: dict[str, Predictor] = {}
_LOADING = threading.Lock()


def load_predictor(source: ModelSource, options: PredictOptions) -> Predictor:
    """The predictor of ``source``, loaded once per process (and reused by every image of a worker)."""
    key = repr((source, options))
    with _LOADING:
        if key not in _PREDICTORS:
            loaded = load_model(source.checkpoint, source.spec, source.allow_pickle, source.format)
            _PREDICTORS[key] = Predictor(InferenceModel(loaded, source.device, parse_channels(source.channels)), options)
        return _PREDICTORS[key]


@dataclass(frozen=True)
class PredictStats:
    """Images predicted and resumed, seconds in forward passes, bytes of stores written (adds up)."""

    predicted: int = 0
    resumed: int = 0
    forward_seconds: float = 0.0
    store_bytes: int = 0
    clean: CleanTotals = field(default_factory=CleanTotals)

    def __add__(self, other: PredictStats) -> PredictStats:
        return PredictStats(self.predicted + other.predicted, self.resumed + other.resumed,
                            self.forward_seconds + other.forward_seconds, self.store_bytes + other.store_bytes,
                            self.clean + other.clean)


@dataclass(frozen=True, kw_only=True)
class PredictItem:
    """One image of ``hbens predict``: its path, the models, the store folders and the settings."""

    image: str
    sources: dict[str, ModelSource]
    weights: dict[str, float]
    groups: dict[str, list[str]]
    folders: dict[str, str]
    options: PredictOptions
    thresholds: tuple[float, ...]
    rows: bool = False
    resume: bool = False
    cleanup: Cleanup | None = None


def _store_paths(item: PredictItem) -> dict[str, Path]:
    stem = Path(item.image).stem
    return {group: Path(folder) / f"{stem}.npz" for group, folder in item.folders.items()}


def predict_image(item: PredictItem) -> ImageOutput:
    """The per-image task of ``hbens predict``: writes one store per output group, returns the rows
    of the first group (when ``rows``) and what it did."""
    name = Path(item.image).name
    paths = _store_paths(item)
    first = next(iter(item.groups))
    if item.resume and all(is_valid_store(path) for path in paths.values()):
        rows = []
        if item.rows:
            store = ProbabilityStore(paths[first])
            rows = list(zip(store.classes, crops_to_rles(store.stored_crops(), store.shape, item.thresholds)))
        rows, clean = clean_rows(rows, item.cleanup)
        return ImageOutput(name, rows, PredictStats(resumed=1, clean=clean))
    image = read_gray(item.image)
    predictors = {model: load_predictor(source, item.options) for model, source in item.sources.items()}
    started = time.perf_counter()
    logits = {model: predictor.logits([image])[0] for model, predictor in predictors.items()}
    forward = time.perf_counter() - started
    written, rows = 0, []
    for group, members in item.groups.items():
        crops = probability_crops([logits[m] for m in members], [item.weights[m] for m in members],
                                  image.shape, item.options)
        meta = {"model": group if len(members) == 1 and members[0] == group else members, "image": name,
                "tta": item.options.tta, "size": item.options.size, "window": item.options.window}
        write_store(paths[group], crops, image.shape, item.options.precision, **meta)
        written += paths[group].stat().st_size
        if item.rows and group == first:
            rows = list(zip(CLASSES, crops_to_rles(crops, image.shape, item.thresholds)))
    rows, clean = clean_rows(rows, item.cleanup, image.shape)
    return ImageOutput(name, rows, PredictStats(predicted=1, forward_seconds=forward, store_bytes=written, clean=clean))


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
    sources: Sequence[ModelSource],
    images: str | Path,
    output: str | Path,
    options: PredictOptions,
    *,
    ensemble: str | None = None,
    weights: Sequence[float] | None = None,
    csv: str | Path | None = None,
    thresholds: Sequence[float] | None = None,
    resume: bool = False,
    cleanup: Cleanup | None = None,
    execution: Execution | None = None,
) -> RunSummary:
    """Predict every PNG under ``images`` into probability stores under ``output``.

    Each model writes ``output/<name>/<image stem>.npz``; with ``ensemble="mean"`` their
    probabilities are averaged (``weights``) into ``output/ensemble``.  ``csv`` also writes a
    submission thresholded at ``thresholds`` (one per class), cleaned by ``cleanup``.  Models are
    loaded here first (so that a bad checkpoint fails before any image) and once per worker.
    The summary's ``stats`` is a :class:`PredictStats`.
    """
    from hbens.pipeline import run_images

    named = {}
    for source in sources:
        model_name = load_predictor(source, options).model.loaded.name
        if model_name in named:
            raise HbensError(f"two checkpoints are named {model_name}; rename one")
        named[model_name] = source
    groups, weight_of = output_groups(list(named), ensemble, weights, csv is not None)
    folders = {group: Path(output) / group for group in groups}
    paths = find_images(images)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    thresholds = tuple(thresholds) if thresholds is not None else (0.5,) * len(CLASSES)
    items = [PredictItem(image=str(path), sources=named, weights=weight_of, groups=groups,
                         folders={g: str(f) for g, f in folders.items()}, options=options, thresholds=thresholds,
                         rows=csv is not None, resume=resume, cleanup=cleanup) for path in paths]
    summary = run_images(predict_image, items, execution or Execution(workers=1), names=[p.name for p in paths],
                         csv=csv, inputs=[images, *(s.checkpoint for s in sources)], desc="predict")
    summary.stats = summary.stats or PredictStats()
    return summary


def describe_predict(summary: RunSummary) -> str:
    """One paragraph on what a prediction run did."""
    stats = summary.stats
    share = 100 * (1 - stats.forward_seconds / summary.seconds) if summary.seconds else 0.0
    text = (f"predicted {stats.predicted} image(s) in {summary.seconds:.1f} s ({share:.0f} % outside forward passes), "
            f"{stats.resumed} resumed, stores {stats.store_bytes / 1e6:.1f} MB")
    if summary.failed:
        text += f"; {len(summary.failed)} failed (no store, no rows):\n  " + "\n  ".join(summary.failed)
    return text

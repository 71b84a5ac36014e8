"""Checkpoints to per-class probability stores (and optionally a submission), image by image.

Each image is a task of :mod:`hbens.pipeline` (:func:`predict_image`); a worker loads each model
once and reuses it for every image it gets.  The model sees the image resized to ``size`` (or tiled by a sliding window), with TTA; its logits
are upsampled to the original size only over each class's crop, turned into probabilities,
averaged over models for an ensemble, and quantized into the store.  A submission row is the
stored probability thresholded, so that ``--csv`` equals thresholding the store later.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from hbens.classes import CLASSES, WRIST
from hbens.errors import HbensError
from hbens.execution import Execution, path_field
from hbens.images import find_images, parse_normalize, read_gray, to_input
from hbens.maps.probabilities import (
    FLOOR,
    ClassCrop,
    ProbabilityStore,
    crops_to_rles,
    tight_crop,
    write_store,
)
from hbens.maps.upsample import source_box, upsample_crop
from hbens.paths import output_folders
from hbens.pipeline import ImageOutput, RunSummary, run_images
from hbens.postproc.clean import CleanTotals, Cleanup, clean_rows
from hbens.predictors.checkpoints import ModelSpec, checkpoint_hash, load_model
from hbens.predictors.model import InferenceModel, parse_channels
from hbens.predictors.region import Region, cut_region, image_regions, paste_crops, region_meta
from hbens.predictors.tta import MERGES, parse_tta, predict_tta, tta_steps
from hbens.predictors.window import BLENDS, predict_windows
from hbens.resume import stale_reason

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
    """Quantized per-class crops of the weighted mean of the models' sigmoid probabilities.

    Weights are divided by the largest before they are summed, so that no scale overflows.
    """
    crops = []
    largest = max(weights)
    shares = [weight / largest for weight in weights]
    total = sum(shares)
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
        for logits, share in zip(logit_sets, shares):
            probability += np.float32(share / total) / (1 + np.exp(-upsample_crop(logits[c], shape, box)))
        crops.append(tight_crop(probability, box[:2], options.precision, options.padding))
    return crops


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where a model comes from and how to run it: plain data, so that a worker can load it itself."""

    checkpoint: str = path_field()
    spec: ModelSpec = field(default_factory=ModelSpec)
    allow_pickle: bool = False
    format: str | None = None
    device: str = "cpu"
    channels: str | None = None
    classes: tuple[str, ...] = CLASSES


_PREDICTORS: dict[str, Predictor] = {}
_LOADING = threading.Lock()


def load_predictor(source: ModelSource, options: PredictOptions) -> Predictor:
    """The predictor of ``source``, loaded once per process (and reused by every image of a worker)."""
    key = repr((source, options))
    with _LOADING:
        if key not in _PREDICTORS:
            loaded = load_model(source.checkpoint, source.spec, source.allow_pickle, source.format)
            _PREDICTORS[key] = Predictor(InferenceModel(loaded, source.device, parse_channels(source.channels),
                                                         outputs=len(source.classes)), options)
        return _PREDICTORS[key]


@dataclass(frozen=True)
class PredictStats:
    """Images predicted and resumed, stores redone (and why), seconds in forward passes, bytes of
    stores written (adds up).

    A store is *redone* when ``--resume`` found it but could not reuse it: damaged, or made from
    another image, other checkpoints or other options; ``reasons`` counts each why.
    ``forward_seconds`` adds up the forward passes of every worker; ``worker_seconds`` splits it by
    worker (:func:`worker_name`), since workers run side by side.
    """

    predicted: int = 0
    resumed: int = 0
    forward_seconds: float = 0.0
    store_bytes: int = 0
    clean: CleanTotals = field(default_factory=CleanTotals)
    redone: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    whole_frame: tuple[str, ...] = ()
    worker_seconds: dict[str, float] = field(default_factory=dict)

    def __add__(self, other: PredictStats) -> PredictStats:
        workers = dict(self.worker_seconds)
        for worker, seconds in other.worker_seconds.items():
            workers[worker] = workers.get(worker, 0.0) + seconds
        return PredictStats(self.predicted + other.predicted, self.resumed + other.resumed,
                            self.forward_seconds + other.forward_seconds, self.store_bytes + other.store_bytes,
                            self.clean + other.clean, self.redone + other.redone,
                            dict(Counter(self.reasons) + Counter(other.reasons)),
                            self.whole_frame + other.whole_frame, workers)

    @property
    def forward_per_worker(self) -> float:
        """Mean seconds of forward passes of the workers that ran any (each at most the run's time)."""
        return self.forward_seconds / max(1, len(self.worker_seconds))


def worker_name() -> str:
    """Who runs this task: host, process and thread (each worker of a run is one of them)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass(frozen=True, kw_only=True)
class PredictItem:
    """One image of ``hbens predict``: its path, the models, the store folders and the settings."""

    image: str = path_field()
    sources: dict[str, ModelSource]
    weights: dict[str, float]
    groups: dict[str, list[str]]
    folders: dict[str, str] = path_field()
    options: PredictOptions
    thresholds: tuple[float, ...]
    rows: bool = False
    resume: bool = False
    cleanup: Cleanup | None = None
    region: Region | None = None


def _store_paths(item: PredictItem) -> dict[str, Path]:
    stem = Path(item.image).stem
    return {group: Path(folder) / f"{stem}.npz" for group, folder in item.folders.items()}


def image_record(path: str | Path) -> dict[str, object]:
    """What identifies an image: its size in bytes and the blake2b (128 bits) of its bytes."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "blake2b": hashlib.blake2b(data, digest_size=16).hexdigest()}


def made_by(item: PredictItem, group: str, image: dict[str, object]) -> dict[str, object]:
    """Everything that sets the numbers of ``group``'s store of ``item``, as JSON stores it.

    The image's content, each member's checkpoint hash, architecture, format and channels, the
    members' weights (relative to the largest) and every :class:`PredictOptions` field;
    ``--resume`` reuses a store only when its record equals this.
    """
    members = item.groups[group]
    models = [{"name": member, "checkpoint": checkpoint_hash(item.sources[member].checkpoint),
               "spec": asdict(item.sources[member].spec), "format": item.sources[member].format,
               "channels": item.sources[member].channels, "classes": list(item.sources[member].classes)}
              for member in members]
    largest = max(item.weights[member] for member in members)
    record = {"image": image, "models": models, "options": asdict(item.options),
              "weights": [item.weights[member] / largest for member in members],
              "region": list(item.region.box) if item.region is not None else None}
    return json.loads(json.dumps(record))


RECORD_CHECKS = (("image", "another image"), ("models", "other checkpoints"), ("weights", "other --weights"),
                 ("region", "another region"), ("options", None))
"""Why a store is redone, by the part of its record that differs (options name their flag)."""


def reuse_problem(path: Path, made: dict[str, object]) -> str | None:
    """Why the store at ``path`` cannot be reused as the store ``made`` describes; None when it can."""
    try:
        store = ProbabilityStore(path)
    except HbensError:
        return "incomplete or damaged"
    return stale_reason(store.meta.get("made"), made, checks=RECORD_CHECKS, unrecorded="no record of what made it")


def predict_image(item: PredictItem) -> ImageOutput:
    """The per-image task of ``hbens predict``: writes one store per output group, returns the rows
    of the first group (when ``rows``) and what it did.

    With ``resume``, the image's stores are reused when every one exists and was made by the same
    image, checkpoints and options (:func:`made_by`); otherwise all are recomputed, and those found
    are counted as redone, with why.
    """
    name = Path(item.image).name
    paths = _store_paths(item)
    first = next(iter(item.groups))
    image_id = image_record(item.image)
    made = {group: made_by(item, group, image_id) for group in item.groups}
    problems = {}
    if item.resume:
        problems = {group: reuse_problem(path, made[group]) for group, path in paths.items() if path.exists()}
    if item.resume and len(problems) == len(paths) and not any(problems.values()):
        rows, clean = [], CleanTotals()
        if item.rows:
            store = ProbabilityStore(paths[first])
            rles = crops_to_rles(store.stored_crops(), store.shape, item.thresholds)
            rows, clean = clean_rows(list(zip(store.classes, rles)), item.cleanup, store.shape)
        return ImageOutput(name, rows, PredictStats(resumed=1, clean=clean))
    reasons = Counter(problem for problem in problems.values() if problem)
    image = read_gray(item.image)
    view = image if item.region is None else cut_region(image, item.region, name=name)
    predictors = {model: load_predictor(source, item.options) for model, source in item.sources.items()}
    started = time.perf_counter()
    logits = {model: predictor.logits([view])[0] for model, predictor in predictors.items()}
    forward = time.perf_counter() - started
    written, rows = 0, []
    for group, members in item.groups.items():
        crops = probability_crops([logits[m] for m in members], [item.weights[m] for m in members],
                                  view.shape, item.options)
        meta = {"model": group if len(members) == 1 and members[0] == group else members, "image": name,
                "tta": item.options.tta, "size": item.options.size, "window": item.options.window,
                "made": made[group]}
        if item.region is not None:
            crops = paste_crops(crops, origin=item.region.box[:2])
            meta["region"] = region_meta(item.region)
        classes = item.sources[members[0]].classes
        write_store(paths[group], crops, image.shape, item.options.precision, classes, **meta)
        written += paths[group].stat().st_size
        if item.rows and group == first:
            rows = list(zip(CLASSES, crops_to_rles(crops, image.shape, item.thresholds)))
    rows, clean = clean_rows(rows, item.cleanup, image.shape)
    stats = PredictStats(predicted=1, forward_seconds=forward, store_bytes=written, clean=clean,
                         redone=sum(reasons.values()), reasons=dict(reasons),
                         worker_seconds={worker_name(): forward})
    return ImageOutput(name, rows, stats)


def output_groups(
    names: Sequence[str], ensemble: str | None, weights: Sequence[float] | None, with_csv: bool
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Which models go into which store folder (each its own, or all into ``ensemble``), and their weights."""
    if ensemble not in (None, "mean"):
        raise HbensError(f"--ensemble {ensemble}: the only ensemble is mean")
    weights = list(weights) if weights is not None else [1.0] * len(names)
    if len(weights) != len(names) or not all(math.isfinite(w) and w > 0 for w in weights):
        raise HbensError(f"--weights: give one finite weight > 0 per checkpoint ({len(names)})")
    if with_csv and len(names) > 1 and ensemble is None:
        raise HbensError("--csv with several checkpoints needs --ensemble mean (one submission from all of them)")
    groups = {"ensemble": list(names)} if ensemble else {name: [name] for name in names}
    return groups, dict(zip(names, weights))


def check_model_classes(sources: Sequence[ModelSource], *, with_csv: bool) -> None:
    """HbensError when the models give different classes, or when a submission is asked of models
    without all 29 (their stores hold only their classes)."""
    classes = {source.classes for source in sources}
    if len(classes) > 1:
        raise HbensError("the checkpoints give different classes; predict them in separate runs")
    (found,) = classes
    if with_csv and found != CLASSES:
        raise HbensError(f"--csv needs all {len(CLASSES)} classes but the model gives {len(found)} "
                         "(--model-classes); drop --csv and fuse its stores with a whole-image model's (hbens fuse)")


def default_predict_workers(devices: Iterable[str]) -> int | None:
    """Workers ``predict`` uses unless told: when every model runs on the CPU, a thread per core,
    each with its share of torch's threads (1.26x one worker that uses every core, on this
    project's machine); with a GPU, one (threads would share its memory)."""
    return None if all(device == "cpu" for device in devices) else 1


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
    crop_from: str | Path | None = None,
    crop_classes: Sequence[str] = WRIST,
    crop_margin: float = 0.15,
) -> RunSummary:
    """Predict every PNG under ``images`` into probability stores under ``output``.

    Each model writes ``output/<name>/<image stem>.npz``; with ``ensemble="mean"`` their
    probabilities are averaged (``weights``) into ``output/ensemble``.  ``csv`` also writes a
    submission thresholded at ``thresholds`` (one per class), cleaned by ``cleanup``.  Models are
    loaded here first (so that a bad checkpoint fails before any image) and once per worker.
    The summary's ``stats`` is a :class:`PredictStats`.

    With ``crop_from`` (a first-stage submission CSV or folder of maps), the models run on each
    image's region around ``crop_classes`` (see :func:`~hbens.predictors.region.image_regions`),
    computed here; images where it has none of them are predicted whole and listed in
    ``stats.whole_frame``.
    """
    named = {}
    for source in sources:
        model_name = load_predictor(source, options).model.loaded.name
        if model_name in named:
            raise HbensError(f"two checkpoints are named {model_name}; rename one")
        named[model_name] = source
    groups, weight_of = output_groups(list(named), ensemble, weights, csv is not None)
    check_model_classes(sources, with_csv=csv is not None)
    folders = {group: Path(output) / group for group in groups}
    paths = find_images(images)
    regions = image_regions(crop_from, paths, classes=crop_classes, margin=crop_margin) if crop_from else {}
    thresholds = tuple(thresholds) if thresholds is not None else (0.5,) * len(CLASSES)
    items = [PredictItem(image=str(path), sources=named, weights=weight_of, groups=groups,
                         folders={g: str(f) for g, f in folders.items()}, options=options, thresholds=thresholds,
                         rows=csv is not None, resume=resume, cleanup=cleanup, region=regions.get(path.name))
             for path in paths]
    with output_folders(list(folders.values())):
        execution = execution or Execution(workers=default_predict_workers(s.device for s in sources))
        summary = run_images(predict_image, items, execution, names=[p.name for p in paths],
                             csv=csv, desc="predict",
                             inputs=[images, *(s.checkpoint for s in sources), *([crop_from] if crop_from else [])])
    whole_frame = tuple(name for name, region in regions.items() if not region.found)
    summary.stats = replace(summary.stats or PredictStats(), whole_frame=whole_frame)
    return summary


def forward_share(stats: PredictStats, seconds: float) -> str:
    """The forward passes' part of a run of ``seconds``: the share of the time outside them (0-100 %),
    and with several workers, the forward seconds of each on average."""
    outside = min(100.0, max(0.0, 100 * (1 - stats.forward_per_worker / seconds))) if seconds > 0 else 0.0
    workers = len(stats.worker_seconds)
    if workers < 2:
        return f"{outside:.0f} % outside forward passes"
    return (f"{outside:.0f} % outside forward passes; {workers} workers, {stats.forward_per_worker:.1f} s "
            "of forward passes each")


def describe_predict(summary: RunSummary) -> str:
    """One paragraph on what a prediction run did."""
    stats = summary.stats
    text = (f"predicted {stats.predicted} image(s) in {summary.seconds:.1f} s "
            f"({forward_share(stats, summary.seconds)}), {stats.resumed} resumed, "
            f"stores {stats.store_bytes / 1e6:.1f} MB")
    if stats.redone:
        why = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.reasons.items()))
        text += f"; {stats.redone} store(s) found but redone ({why})"
    if stats.whole_frame:
        text += (f"; {len(stats.whole_frame)} image(s) without crop classes in --crop-from, predicted on the whole "
                 "frame:\n  " + "\n  ".join(stats.whole_frame))
    if summary.failed:
        text += f"; {len(summary.failed)} failed (no store, no rows):\n  " + "\n  ".join(summary.failed)
    return text

"""Probability maps made: :func:`predict` from checkpoints, :func:`import_arrays` from saved arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from hbens.api import options
from hbens.api.options import PerClass, Shape
from hbens.classes import CLASSES, WRIST, parse_class_list
from hbens.errors import UsageError
from hbens.importer import import_folder
from hbens.outputs import PathLike
from hbens.paths import CSV, check_paths
from hbens.pipeline import RunSummary
from hbens.predictors import ModelSource, ModelSpec, PredictOptions, predict_folder
from hbens.predictors.checkpoints import checkpoint_files
from hbens.predictors.model import parse_channels, resolve_device
from hbens.predictors.predict import default_predict_workers


def import_arrays(src: PathLike, output: PathLike, *, size: int | None = None, precision: str = "auto",
                  resume: bool = False, shape: Shape = None, key: str | None = None, kind: str = "auto",
                  array_classes: PathLike | Sequence[str] | None = None, drop_channel: int | None = None,
                  workers: int | None = None, scheduler: str = "auto", keep_going: bool = False,
                  progress: bool = False) -> RunSummary:
    """Convert another pipeline's saved arrays to hbens probability stores, as ``hbens import``.

    Parameters
    ----------
    src : path
        The folder of saved arrays (``.npy``, ``.npz``, ``.pt``/``.pth`` per image, searched recursively).
    output : path
        The folder of the stores (``NAME.npz`` for ``NAME.npy``...).
    size : int, optional
        Stores of N x N images (the same as ``shape=N``); default: each map's own size, or ``shape``.
    precision : {"auto", "uint8", "fp16"}
        Stored probabilities: steps of 1/255 or float16; auto: uint8 for uint8 or bool arrays.
    resume : bool
        Keep the stores made from the same file with the same options.
    shape, key, kind, array_classes, drop_channel, workers, scheduler, keep_going
        See the module's notes.

    Returns
    -------
    RunSummary
        ``images``, ``seconds``, ``failed`` and ``stats``: an :class:`~hbens.importer.ImportTotals`.

    Examples
    --------
    >>> import tempfile, numpy as np, hbens.api as hb
    >>> folder = tempfile.mkdtemp()
    >>> probabilities = np.random.default_rng(0).random((29, 64, 64), dtype=np.float32)
    >>> np.save(f"{folder}/image1.npy", probabilities)
    >>> summary = hb.import_arrays(folder, f"{folder}-stores", kind="probs")
    >>> summary.stats.imported
    1
    """
    frame = options.as_frame(shape)
    if size is not None and frame is not None and frame != (size, size):
        raise UsageError(f"--size {size} and --image-size {frame[0]}x{frame[1]} disagree; give one")
    check_paths([("SRC", src), ("--classes", options.file_of(array_classes))], [], folder_writes=[("-o", output)])
    fmt = replace(options.make_array_format(key, kind, array_classes, drop_channel),
                  size=frame or ((size, size) if size else None))
    return import_folder(src, output, fmt, precision=options.precision_name(precision), resume=resume,
                         execution=options.make_execution(workers, scheduler, keep_going, progress))


def model_sources(checkpoints: Sequence[str], *, spec: ModelSpec, format: str | None, allow_pickle: bool,
                  channels: str | None, model_classes: str | None, device: str) -> list[ModelSource]:
    """The checkpoints as models to load: ``spec`` for bare state dicts, the output ``channels`` and
    classes, and the device (``auto`` resolved once, for every model)."""
    parse_channels(channels)
    names = parse_class_list(model_classes, option="--model-classes") if model_classes else CLASSES
    runs_on = resolve_device(device)
    return [ModelSource(checkpoint=str(Path(path).resolve()), spec=spec, allow_pickle=allow_pickle, format=format,
                        device=runs_on, channels=channels, classes=names) for path in checkpoints]


def predict(checkpoints: Sequence[PathLike], images: PathLike, output: PathLike, *, arch: str | None = None,
            encoder: str | None = None, in_channels: int = 3, classes: int = 29, format: str | None = None,
            allow_pickle: bool = False, channels: str | None = None, size: int | None = None,
            window: int | None = None, overlap: float = 0.5, blend: str = "gaussian", tta: str = "none",
            merge: str = "mean", normalize: str = "none", ensemble: str | None = None,
            weights: Sequence[float] | None = None, csv: PathLike | None = None, threshold: float = 0.5,
            thresholds: PerClass = None, precision: str = "uint8", device: str = "auto", batch_size: int = 1,
            resume: bool = False, crop_from: PathLike | None = None, crop_classes: str | None = None,
            crop_margin: float | None = None, model_classes: str | None = None, min_area: int = 0,
            keep: int | None = None, largest: bool = False, fill_holes: bool = False, connectivity: int = 8,
            clean_classes: Sequence[str] | str | None = None, clean_config: PathLike | None = None,
            report: PathLike | None = None, workers: int | None = None, scheduler: str = "auto",
            keep_going: bool = False, progress: bool = False) -> RunSummary:
    """Predict per-class probabilities of every PNG under ``images`` with each checkpoint, as
    ``hbens predict`` (its options, by the same names: see ``hbens predict --help``).

    Parameters
    ----------
    checkpoints : sequence of paths
        Checkpoint files or ``save_pretrained`` folders.
    images : path
        The folder of PNG images (searched recursively).
    output : path
        The folder of the probability stores (one subfolder per model, or ``ensemble``).
    arch, encoder, in_channels, classes, format, allow_pickle, channels
        How to load bare state dicts (segmentation-models-pytorch names), a forced format, whether
        pickled code may load (only for files you trust), and ``START:STOP`` output channels.
    size, window, overlap, blend, tta, merge, normalize, batch_size, precision, device
        How each image becomes probabilities (``--size`` ... ``--device``).
    ensemble, weights
        ``"mean"``: average the checkpoints (with ``weights``) into one store.
    csv, threshold, thresholds
        Also write a submission thresholded at ``threshold`` (per class: ``thresholds``).
    resume : bool
        Skip images whose stores exist and are valid.
    crop_from, crop_classes, crop_margin, model_classes
        A region model: run on each image's region around ``crop_classes`` (comma-separated) in
        this first-stage prediction; ``model_classes``: the model's classes when fewer than 29.
    min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config, report, workers,
    scheduler, keep_going
        See the module's notes; the cleanup applies to the ``csv`` rows.

    Returns
    -------
    RunSummary
        ``images``, ``seconds``, ``failed`` and ``stats``: a :class:`~hbens.predictors.PredictStats`.

    Examples
    --------
    The run needs a checkpoint and torch (seconds to load), so it is not run here:
    >>> import hbens.api as hb
    >>> summary = hb.predict(["unet.pt"], "test/DCM", "probs", csv="unet.csv")  # doctest: +SKIP
    >>> summary.failed  # doctest: +SKIP
    []
    """
    checkpoints = options.path_list(checkpoints)
    if weights is not None and len(weights) != len(checkpoints):
        raise UsageError(f"{len(weights)} weights for {len(checkpoints)} checkpoints; give one per --ckpt",
                         "--weights")
    if crop_from is None and (crop_classes is not None or crop_margin is not None):
        raise UsageError("--crop-classes and --crop-margin need --crop-from")
    around = parse_class_list(crop_classes, option="--crop-classes") if crop_classes else WRIST
    options.refuse_repeated("--ckpt", checkpoints)
    models = [("--ckpt", file) for path in checkpoints for file in [path, *checkpoint_files(path)]]
    check_paths([*models, ("--images", images), ("--thresholds", options.file_of(thresholds)),
                 ("--crop-from", crop_from), ("--clean-config", clean_config)],
                [("--csv", csv, CSV), ("--report", report, CSV)], folder_writes=[("-o", output)])
    sources = model_sources(checkpoints, spec=ModelSpec(arch, encoder, in_channels, classes), format=format,
                            allow_pickle=allow_pickle, channels=channels, model_classes=model_classes, device=device)
    settings = PredictOptions(size=size, window=window, overlap=overlap, blend=blend, tta=tta, merge=merge,
                             normalize=normalize, batch_size=batch_size, precision=options.precision_name(precision))
    cleanup = options.make_cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    execution = options.make_execution(workers, scheduler, keep_going, progress,
                                       default_predict_workers([sources[0].device]))
    summary = predict_folder(sources, images, output, settings, ensemble=ensemble, weights=weights, csv=csv,
                             thresholds=options.threshold_list(threshold, thresholds), resume=resume,
                             cleanup=cleanup, execution=execution, crop_from=crop_from, crop_classes=around,
                             crop_margin=0.15 if crop_margin is None else crop_margin)
    options.report_cleanup(summary, cleanup, report)
    return summary

"""Dense CRF refinement of stored probabilities (pydensecrf), one class crop at a time.

Each class is refined on its stored bounding box grown by a margin, as a two-label CRF
(background, bone) whose unary term is the probability and whose pairwise terms are a
Gaussian smoothness kernel and a bilateral kernel on the X-ray's intensities.  Cost follows
the bones' crops, not the 2048x2048 frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hbens.annotations import GroundTruth
from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError
from hbens.execution import Execution, path_field
from hbens.frames import check_dice, scaled
from hbens.images import find_images, read_xray
from hbens.maps.folders import ImageMaps, MapFile, framed, open_map_folder
from hbens.maps.probabilities import (
    PRECISIONS,
    PROBABILITY_CLIP,
    ClassCrop,
    crop_runs,
    crops_to_rles,
    dequantize,
    tight_crop,
    write_store,
)
from hbens.maps.saved_arrays import ArrayFormat
from hbens.metrics import dice_runs
from hbens.outputs import PathLike
from hbens.paths import output_folders
from hbens.pipeline import ImageOutput, RunSummary, run_images, sum_fields
from hbens.postproc.clean import CleanTotals, Cleanup, clean_rows
from hbens.runs import Runs
from hbens.settings import examples

STORE_KEYS = ("format", "version", "classes", "shape", "precision", "hbens")
"""Metadata a refined store writes anew; the rest of its input's metadata is kept."""


@dataclass(frozen=True, kw_only=True)
class CRFParams:
    """Dense CRF settings (pydensecrf's names); ``margin`` grows each class crop, in pixels.

    The bilateral kernel reaches well beyond ``bilateral_sxy`` pixels: with the defaults, a margin
    of 16 agrees with a full-frame CRF to a mean Dice of 0.993, 64 to 0.9994 (``benchmarks/crf.py``).
    """

    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 50.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    margin: int = 64

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise HbensError(f"--iterations {self.iterations}: must be >= 1")
        if self.margin < 0:
            raise HbensError(f"--margin {self.margin}: must be >= 0")
        for name in ("gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb", "bilateral_compat"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise HbensError(f"--{name.replace('_', '-')} {value}: must be a finite number > 0")


PIXEL_SETTINGS = ("gaussian_sxy", "bilateral_sxy", "margin")
"""The settings in pixels: their defaults are :class:`CRFParams`'s at 2048 pixels, scaled to the frame's side."""

WEIGHT_SETTINGS = ("gaussian_compat", "bilateral_compat")
"""The kernels' weights: their defaults are :class:`CRFParams`'s at 2048 pixels, scaled to the frame's area.
pydensecrf normalises each kernel, so a pixel's pairwise energy does not shrink with the kernel while its
unary term stands for (2048 / side)² times the area; at 384 pixels the weights of 2048 lower the mean
Dice of demo-like maps by 0.08 to 0.17 with the widths scaled, by 0.04 at most with the weights too."""


def frame_params(shape: tuple[int, int], params: CRFParams | Mapping[str, float] | None = None) -> CRFParams:
    """The CRF settings of a frame: ``params`` when a :class:`CRFParams`; else those a mapping gives (None
    values are not given) and, for the others, :class:`CRFParams`'s defaults with the widths and the
    margin (:data:`PIXEL_SETTINGS`) scaled from 2048 pixels to the frame's longer side
    (:func:`hbens.frames.scaled`) and the weights (:data:`WEIGHT_SETTINGS`) by its square, so that
    2048x2048 keeps them as they are.

    Example
    -------
    >>> frame_params((384, 384)).bilateral_sxy
    9.375
    """
    if isinstance(params, CRFParams):
        return params
    defaults = CRFParams()
    values = {name: scaled(getattr(defaults, name), shape) for name in PIXEL_SETTINGS}
    values.update({name: scaled(scaled(getattr(defaults, name), shape), shape) for name in WEIGHT_SETTINGS})
    values["margin"] = max(1, round(values["margin"]))
    values.update({name: value for name, value in (params or {}).items() if value is not None})
    return CRFParams(**values)


def check_refine_inputs(probability: np.ndarray, image: np.ndarray) -> None:
    """Raise HbensError unless ``probability`` is a non-empty 2-D map of finite values in [0, 1] and
    ``image`` a uint8 map of its shape: pydensecrf ends the process on anything else."""
    if probability.ndim != 2 or probability.size == 0:
        raise HbensError(f"CRF: probabilities must be a non-empty 2-D map, got shape {probability.shape}")
    if image.dtype != np.uint8 or image.shape != probability.shape:
        expected = f"uint8 of shape {probability.shape}"
        raise HbensError(f"CRF: the image must be {expected}, got {image.dtype} {image.shape}")
    inside = (probability >= 0) & (probability <= 1)
    if not inside.all():
        shown = examples([float(value) for value in probability[~inside][:3]])
        raise HbensError(f"CRF: {int((~inside).sum())} probabilities are not finite in [0, 1], e.g. {shown}")


def refine(probability: np.ndarray, image: np.ndarray, params: CRFParams = CRFParams(), *,
           origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Refined bone probability of a 2-D ``probability`` map over its uint8 grayscale ``image``
    (both checked first by :func:`check_refine_inputs`).

    ``origin`` is the (row, column) of the map's top-left pixel in the whole image.  The kernels'
    position features are the whole image's coordinates (what ``DenseCRF2D.addPairwiseGaussian``
    and ``addPairwiseBilateral`` compute for the whole frame), so a crop lands on the same
    permutohedral lattice points as in a full-frame CRF: the lattice is not translation invariant,
    and local coordinates alone would move the result by more than the pixels beyond the crop do.
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    check_refine_inputs(probability, image)
    height, width = probability.shape
    p = np.clip(probability.astype(np.float32), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    rows, columns = np.mgrid[origin[0] : origin[0] + height, origin[1] : origin[1] + width].astype(np.float32)
    position = np.stack([columns.ravel(), rows.ravel()])
    crf.addPairwiseEnergy(position / np.float32(params.gaussian_sxy), compat=params.gaussian_compat)
    gray = image.ravel().astype(np.float32) / np.float32(params.bilateral_srgb)
    bilateral = np.vstack([position / np.float32(params.bilateral_sxy), gray, gray, gray])
    crf.addPairwiseEnergy(bilateral, compat=params.bilateral_compat)
    return np.asarray(crf.inference(params.iterations), np.float32).reshape(2, height, width)[1]


def stored_precision(maps: ImageMaps) -> str:
    """The precision (``uint8`` or ``float16``) of an image's stored crops; for the float32 crops of a
    saved array read directly, the one its import would choose (``meta["precision"]``)."""
    dtypes = {crop.values.dtype for crop in maps.crops}
    if dtypes <= {np.dtype(np.float32)} and maps.meta.get("precision") in PRECISIONS:
        return maps.meta["precision"]
    names = [name for name, dtype in PRECISIONS.items() if dtypes == {np.dtype(dtype)}]
    if not names:
        raise HbensError(f"{maps.path}: crops of {', '.join(sorted(map(str, dtypes)))}, expected one of "
                         f"{', '.join(PRECISIONS)}")
    return names[0]


def refine_store(maps: ImageMaps, image: np.ndarray, params: CRFParams = CRFParams(), *,
                 precision: str | None = None) -> list[ClassCrop]:
    """Refined crops of every class of one image's maps, quantized to ``precision`` (default: the maps' own).

    Parameters
    ----------
    maps
        The image's classes, shape and stored crops (an hbens store or a saved array, see
        :meth:`hbens.maps.folders.MapFile.read`); its ``path`` names it in errors.
    image
        The X-ray, uint8, of the maps' shape.
    params
        The CRF settings; each class is refined over its crop grown by ``params.margin``, with the
        kernels' positions in the whole image's coordinates (see :func:`refine`).
    precision
        ``uint8`` or ``float16``; default: the precision of the maps' crops.

    Returns
    -------
    list of ClassCrop
        One crop per class of ``maps``, in its order; an empty class stays empty.
    """
    if image.shape != tuple(maps.shape):
        raise HbensError(f"{maps.path}: image is {image.shape[1]}x{image.shape[0]}, the store "
                         f"{maps.shape[1]}x{maps.shape[0]}; pass the images these probabilities came from")
    precision = precision or stored_precision(maps)
    height, width = maps.shape
    crops = []
    for stored in maps.crops:
        crop = ClassCrop(stored.box, dequantize(stored.values))
        top, left, bottom, right = crop.box
        if crop.values.size == 0:
            crops.append(tight_crop(crop.values, (0, 0), precision))
            continue
        m = params.margin
        box = (max(top - m, 0), max(left - m, 0), min(bottom + m, height), min(right + m, width))
        probability = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
        probability[top - box[0] : bottom - box[0], left - box[1] : right - box[1]] = crop.values
        refined = refine(probability, image[box[0] : box[2], box[1] : box[3]], params, origin=box[:2])
        crops.append(tight_crop(refined, box[:2], precision))
    return crops


@dataclass(frozen=True)
class ImageTruth:
    """One image's ground truth for ``hbens crf --gt``: each class's runs in a frame of ``shape``."""

    shape: tuple[int, int]
    runs: dict[str, Runs]


@dataclass(frozen=True)
class CRFStats:
    """What ``hbens crf`` did (adds up over images): the cleanup counts and, with ground truth, per class
    in :data:`~hbens.classes.CLASSES` order the sum of Dice before and after refinement and the number
    of images scored (images whose maps have the class); both thresholded, before cleanup."""

    clean: CleanTotals = field(default_factory=CleanTotals)
    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    scored: list[int] = field(default_factory=list)

    def __add__(self, other: CRFStats) -> CRFStats:
        return sum_fields(self, other)


@dataclass(frozen=True, kw_only=True)
class CRFItem:
    """One image of ``hbens crf``: where its maps, X-ray and refined store are, and the settings.

    ``store`` is an hbens store, or a saved array read with ``format`` (at the X-ray's size unless
    ``format.size`` says otherwise); ``truth``, when given, scores the image's classes before and after
    refinement.
    """

    store: str = path_field()
    image: str = path_field()
    output: str = path_field()
    params: CRFParams
    thresholds: tuple[float, ...]
    cleanup: Cleanup | None = None
    format: ArrayFormat | None = None
    truth: ImageTruth | None = None


def dice_before_after(maps: ImageMaps, refined: Sequence[ClassCrop], thresholds: Sequence[float],
                      truth: ImageTruth) -> CRFStats:
    """Dice of each class of ``maps`` against ``truth``, thresholded before and after refinement."""
    if tuple(truth.shape) != tuple(maps.shape):
        raise HbensError(f"{maps.path}: maps are {maps.shape[1]}x{maps.shape[0]}, the ground truth "
                         f"{truth.shape[1]}x{truth.shape[0]}; pass the ground truth of these images")
    before, after, scored = [0.0] * len(CLASSES), [0.0] * len(CLASSES), [0] * len(CLASSES)
    for name, stored, crop, threshold in zip(maps.classes, maps.crops, refined, thresholds):
        index = CLASS_INDEX[name]
        before[index] = dice_runs(crop_runs(stored, maps.shape, threshold), truth.runs[name])
        after[index] = dice_runs(crop_runs(crop, maps.shape, threshold), truth.runs[name])
        scored[index] = 1
    return CRFStats(before=before, after=after, scored=scored)


def refine_image(item: CRFItem) -> ImageOutput:
    """The per-image task of ``hbens crf``: writes the refined store, returns its thresholded rows and
    a :class:`CRFStats` (with per-class Dice when ``item.truth`` is given)."""
    name = Path(item.image).name
    image = read_xray(item.image)
    fmt = item.format
    if fmt is not None and fmt.size is None:
        fmt = replace(fmt, size=image.shape)
    maps = MapFile(item.store, fmt).read()
    precision = stored_precision(maps)
    crops = refine_store(maps, image, item.params, precision=precision)
    kept = {k: v for k, v in maps.meta.items() if k not in STORE_KEYS}
    write_store(item.output, crops, maps.shape, precision, tuple(maps.classes), **kept, crf=asdict(item.params))
    thresholds = [item.thresholds[CLASS_INDEX[c]] for c in maps.classes]
    rows, clean = clean_rows(list(zip(maps.classes, crops_to_rles(crops, maps.shape, thresholds))),
                             item.cleanup, maps.shape)
    dice = dice_before_after(maps, crops, thresholds, item.truth) if item.truth is not None else CRFStats()
    return ImageOutput(name, rows, CRFStats(clean, dice.before, dice.after, dice.scored))


def crf_folder(
    stores: PathLike,
    images: PathLike,
    output: PathLike,
    params: CRFParams | Mapping[str, float] | None = None,
    *,
    csv: PathLike | None = None,
    thresholds: Sequence[float] | None = None,
    cleanup: Cleanup | None = None,
    array_format: ArrayFormat | None = None,
    ground_truth: PathLike | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> RunSummary:
    """Refine every image of the map folder ``stores`` against its X-ray under ``images`` into ``output``.

    Parameters
    ----------
    stores
        A folder of hbens stores or of another pipeline's saved arrays (read with ``array_format``,
        see :func:`hbens.maps.folders.open_map_folder`); ``NAME.npz`` (or ``NAME.npy``...) holds ``NAME.png``.
    images
        The folder of the X-rays (searched recursively).
    output
        Folder of the refined stores, ``NAME.npz`` each.
    params
        The CRF settings; a mapping (or None) gives some and the others are the defaults for the
        frame (:func:`frame_params`).
    csv
        Also write the refined probabilities thresholded at ``thresholds`` (one per class of
        CLASSES) as a submission, cleaned by ``cleanup``.
    ground_truth
        Annotation JSONs or a ground-truth CSV of the same images: the summary's stats then hold
        each class's Dice before and after refinement (see :func:`describe_dice`).
    shape
        The frame; default: the stores', else the X-rays' (:mod:`hbens.frames`).  Saved arrays
        smaller than it are enlarged to it.

    Returns
    -------
    RunSummary
        Its ``stats`` is a :class:`CRFStats`.
    """
    output = Path(output)
    if output.resolve() == Path(stores).resolve():
        raise HbensError(f"{output}: output would overwrite the input stores; choose another -o folder")
    fmt = array_format if shape is None else replace(array_format or ArrayFormat(), size=tuple(shape))
    frame, (folder,) = framed([open_map_folder(stores, fmt)], shape, images)
    params = frame_params(frame, params)
    by_name = {path.name: path for path in find_images(images)}
    for name in folder.images:
        if name not in by_name:
            raise HbensError(f"{folder.files[name].path}: its image {name} is not under {images}; "
                             "pass the folder of the X-rays")
    truth = None if ground_truth is None else _ground_truth(ground_truth, folder.images, frame)
    thresholds = tuple(thresholds) if thresholds is not None else (0.5,) * len(CLASSES)

    def items():
        for name in folder.images:
            file = folder.files[name]
            yield CRFItem(store=file.path, image=str(by_name[name]), output=str(output / f"{Path(name).stem}.npz"),
                          params=params, thresholds=thresholds, cleanup=cleanup, format=file.format,
                          truth=None if truth is None else ImageTruth(truth.shape, truth.runs(name)))

    with output_folders([output]):
        summary = run_images(refine_image, items(), execution or Execution(), names=folder.images, csv=csv,
                             inputs=[stores, images], desc="crf", holds_gil=True)
    summary.stats = summary.stats or CRFStats()
    if truth is not None:
        check_dice([value for value, count in zip(summary.stats.before, summary.stats.scored) if count], True,
                   frame, "every Dice before refinement")
    return summary


def _ground_truth(source: PathLike, names: Sequence[str], frame: tuple[int, int]):
    """The ground truth of ``source`` in ``frame``; HbensError unless it has every image."""
    truth = GroundTruth(source, frame)
    known = set(truth.images)
    absent = [name for name in names if name not in known]
    if absent:
        raise HbensError(f"{source}: no ground truth for {len(absent)} image(s), e.g. {examples(absent)}; "
                         "pass the annotations of the refined images")
    return truth


def describe_dice(stats: CRFStats) -> str:
    """A table of each class's mean Dice before and after CRF refinement, its change, and the means.

    Classes no image has are left out; a class whose Dice the CRF lowers is marked, and the last
    line names them.
    """
    if not any(stats.scored):
        return "no image scored"
    lines = [f"{'class':<12} {'before':>7} {'after':>7} {'change':>8}"]
    befores, afters, lowered = [], [], []
    for name, before, after, count in zip(CLASSES, stats.before, stats.after, stats.scored):
        if not count:
            continue
        before, after = before / count, after / count
        befores.append(before)
        afters.append(after)
        mark = "  lower" if after < before else ""
        lowered += [name] if after < before else []
        lines.append(f"{name:<12} {before:7.4f} {after:7.4f} {after - before:+8.4f}{mark}")
    before, after = float(np.mean(befores)), float(np.mean(afters))
    images = max(stats.scored)
    lines.append(f"{'mean':<12} {before:7.4f} {after:7.4f} {after - before:+8.4f}   ({images} images)")
    lines.append(f"CRF lowers the Dice of {len(lowered)} class(es)" + (f": {', '.join(lowered)}" if lowered else ""))
    return "\n".join(lines)

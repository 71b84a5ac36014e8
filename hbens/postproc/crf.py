"""Dense CRF refinement of stored probabilities (pydensecrf), one class crop at a time.

Each class is refined on its stored bounding box grown by a margin, as a two-label CRF
(background, bone) whose unary term is the probability and whose pairwise terms are a
Gaussian smoothness kernel and a bilateral kernel on the X-ray's intensities.  Cost follows
the bones' crops, not the 2048x2048 frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES
from hbens.errors import HbensError
from hbens.paths import output_folders
from hbens.pipeline import Execution, ImageOutput, RunSummary
from hbens.postproc.clean import Cleanup, CleanTotals, clean_rows
from hbens.probabilities import ClassCrop, ProbabilityStore, crops_to_rles, tight_crop, write_store
from hbens.settings import examples


@dataclass(frozen=True, kw_only=True)
class CRFParams:
    """Dense CRF settings (pydensecrf's names); ``margin`` grows each class crop, in pixels."""

    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 50.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    margin: int = 16

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise HbensError(f"--iterations {self.iterations}: must be >= 1")
        if self.margin < 0:
            raise HbensError(f"--margin {self.margin}: must be >= 0")
        for name in ("gaussian_sxy", "gaussian_compat", "bilateral_sxy", "bilateral_srgb", "bilateral_compat"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise HbensError(f"--{name.replace('_', '-')} {value}: must be a finite number > 0")


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


def refine(probability: np.ndarray, image: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Refined bone probability of a 2-D ``probability`` map over its uint8 grayscale ``image``
    (both checked first by :func:`check_refine_inputs`)."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    check_refine_inputs(probability, image)
    height, width = probability.shape
    p = np.clip(probability.astype(np.float32), 1e-6, 1 - 1e-6)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    rgb = np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb,
                             compat=params.bilateral_compat)
    return np.asarray(crf.inference(params.iterations), np.float32).reshape(2, height, width)[1]


def refine_store(store: ProbabilityStore, image: np.ndarray, params: CRFParams = CRFParams(),
                 precision: str | None = None) -> list[ClassCrop]:
    """Quantized, refined crops of every class of one stored image (``image``: uint8, its original size)."""
    if image.shape != store.shape:
        raise HbensError(f"{store.path}: image is {image.shape[1]}x{image.shape[0]}, the store "
                         f"{store.shape[1]}x{store.shape[0]}; pass the images these probabilities came from")
    precision = precision or store.meta["precision"]
    height, width = store.shape
    crops = []
    for index in range(len(store.classes)):
        crop = store.crop(index)
        top, left, bottom, right = crop.box
        if crop.values.size == 0:
            crops.append(tight_crop(crop.values, (0, 0), precision))
            continue
        m = params.margin
        box = (max(top - m, 0), max(left - m, 0), min(bottom + m, height), min(right + m, width))
        probability = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
        probability[top - box[0] : bottom - box[0], left - box[1] : right - box[1]] = crop.values
        refined = refine(probability, image[box[0] : box[2], box[1] : box[3]], params)
        crops.append(tight_crop(refined, box[:2], precision))
    return crops


@dataclass(frozen=True, kw_only=True)
class CRFItem:
    """One image of ``hbens crf``: where its store, X-ray and refined store are, and the settings."""

    store: str
    image: str
    output: str
    params: CRFParams
    thresholds: tuple[float, ...]
    cleanup: Cleanup | None = None


def refine_image(item: CRFItem) -> ImageOutput:
    """The per-image task of ``hbens crf``: writes the refined store, returns its thresholded rows."""
    from hbens.images import read_gray

    store = ProbabilityStore(item.store)
    name = store.meta.get("image", Path(item.store).stem + ".png")
    image = np.round(read_gray(item.image) * 255).astype(np.uint8)
    crops = refine_store(store, image, item.params)
    kept = {k: v for k, v in store.meta.items() if k not in ("format", "version", "classes", "shape", "precision", "hbens")}
    write_store(item.output, crops, store.shape, store.meta["precision"], tuple(store.classes),
                **kept, crf=asdict(item.params))
    thresholds = [item.thresholds[CLASS_INDEX[c]] for c in store.classes]
    rows, clean = clean_rows(list(zip(store.classes, crops_to_rles(crops, store.shape, thresholds))),
                             item.cleanup, store.shape)
    return ImageOutput(name, rows, clean)


def crf_folder(
    stores: str | Path,
    images: str | Path,
    output: str | Path,
    params: CRFParams = CRFParams(),
    *,
    csv: str | Path | None = None,
    thresholds: Sequence[float] | None = None,
    cleanup: Cleanup | None = None,
    execution: Execution | None = None,
) -> RunSummary:
    """Refine every store ``stores/*.npz`` against its image under ``images`` into ``output``.

    ``csv`` also writes the refined probabilities thresholded as a submission (cleaned by
    ``cleanup``).  The summary's ``stats`` is a :class:`CleanTotals`.
    """
    from hbens.images import find_images
    from hbens.pipeline import run_images

    paths = sorted(Path(stores).glob("*.npz"))
    if not paths:
        raise HbensError(f"{stores}: no probability stores (*.npz); pass a folder written by hbens predict")
    by_name = {path.name: path for path in find_images(images)}
    output = Path(output)
    if output.resolve() == Path(stores).resolve():
        raise HbensError(f"{output}: output would overwrite the input stores; choose another -o folder")
    names = [ProbabilityStore(path).meta.get("image", path.stem + ".png") for path in paths]
    for path, name in zip(paths, names):
        if name not in by_name:
            raise HbensError(f"{path}: its image {name} is not under {images}; pass the folder of the X-rays")
    order = sorted(range(len(paths)), key=names.__getitem__)
    thresholds = tuple(thresholds) if thresholds is not None else (0.5,) * len(CLASSES)
    items = [CRFItem(store=str(paths[i]), image=str(by_name[names[i]]), output=str(output / paths[i].name),
                     params=params, thresholds=thresholds, cleanup=cleanup) for i in order]
    with output_folders([output]):
        summary = run_images(refine_image, items, execution or Execution(), names=[names[i] for i in order],
                             csv=csv, inputs=[stores, images], desc="crf")
    summary.stats = summary.stats or CleanTotals()
    return summary

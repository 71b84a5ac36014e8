"""Dense CRF refinement of stored probabilities (pydensecrf), one class crop at a time.

Each class is refined on its stored bounding box grown by a margin, as a two-label CRF
(background, bone) whose unary term is the probability and whose pairwise terms are a
Gaussian smoothness kernel and a bilateral kernel on the X-ray's intensities.  Cost follows
the bones' crops, not the 2048x2048 frame.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.probabilities import ClassCrop, ProbabilityStore, crops_to_rles, tight_crop, write_store


@dataclass(frozen=True)
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


def refine(probability: np.ndarray, image: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Refined bone probability of a 2-D ``probability`` map over its uint8 grayscale ``image``."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

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


@dataclass
class CRFSummary:
    """What a CRF run did."""

    images: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"refined {self.images} image(s) in {self.seconds:.1f} s into {', '.join(self.outputs)}"


def crf_folder(
    stores: str | Path,
    images: str | Path,
    output: str | Path,
    params: CRFParams = CRFParams(),
    csv: str | Path | None = None,
    thresholds: Sequence[float] | None = None,
    post: Callable[[str, str], str] | None = None,
    progress: bool = False,
) -> CRFSummary:
    """Refine every store ``stores/*.npz`` against its image under ``images`` into ``output``.

    ``csv`` also writes the refined probabilities thresholded as a submission.
    """
    from tqdm import tqdm

    from hbens.predictors.images import find_images, read_gray
    from hbens.submission import SubmissionWriter

    started = time.perf_counter()
    paths = sorted(Path(stores).glob("*.npz"))
    if not paths:
        raise HbensError(f"{stores}: no probability stores (*.npz); pass a folder written by hbens predict")
    by_name = {path.name: path for path in find_images(images)}
    output = Path(output)
    if output.resolve() == Path(stores).resolve():
        raise HbensError(f"{output}: output would overwrite the input stores; choose another -o folder")
    output.mkdir(parents=True, exist_ok=True)
    thresholds = list(thresholds) if thresholds is not None else [0.5] * len(CLASSES)
    summary = CRFSummary(outputs=[str(output)] + ([str(csv)] if csv else []))
    opened = [(ProbabilityStore(path), path) for path in paths]
    opened.sort(key=lambda item: item[0].meta.get("image", item[1].stem))
    writer = SubmissionWriter(csv) if csv is not None else None
    with writer if writer is not None else nullcontext() as submission:
        for store, path in tqdm(opened, desc="crf", unit="image", disable=None if progress else True):
            name = store.meta.get("image", path.stem + ".png")
            if name not in by_name:
                raise HbensError(f"{path}: its image {name} is not under {images}")
            image = np.round(read_gray(by_name[name]) * 255).astype(np.uint8)
            crops = refine_store(store, image, params)
            meta = {k: v for k, v in store.meta.items() if k not in ("format", "version", "classes", "shape", "precision", "hbens")}
            write_store(output / path.name, crops, store.shape, store.meta["precision"], tuple(store.classes),
                        **meta, crf=params.__dict__)
            if submission is not None:
                for class_name, rle in zip(store.classes, crops_to_rles(crops, store.shape, thresholds)):
                    submission.write(name, class_name, post(class_name, rle) if post is not None else rle)
            summary.images += 1
    summary.seconds = time.perf_counter() - started
    return summary


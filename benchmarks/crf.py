"""The crop-based dense CRF of ``hbens crf`` against a full-frame CRF of the same classes.

hbens refines each class over its stored crop grown by ``--margin`` pixels
(:func:`hbens.postproc.crf.refine_store`); the reference refines each class on the whole 2048x2048
frame with pydensecrf's own ``DenseCRF2D`` kernels (``addPairwiseGaussian``,
``addPairwiseBilateral``; the stored map placed in a zero frame, same settings).  Both run in this
process on one core, on the same maps and X-ray.

Inputs: per image, the 29 binary masks of a real model (../shared/realdata/masks, cycled over
models and images) when present, else a synthetic hand phantom; each mask is blurred into a soft
probability map as a network gives it (sigmoid of 20 * (blurred mask - 0.5)) and stored as hbens
does (uint8 crops of p > 1/255).  The X-ray is rendered from the same masks: bones brighter than
soft tissue, denser where they overlap, with a cortical rim, texture, blur and noise.

Prints, per image and in total: seconds of the crop-based CRF of 29 classes (best of ``--rounds``),
seconds of the full-frame CRF (best of ``--reference-rounds``; about 20 s per class), their ratio
(goal >= 10x), the Dice between the two results thresholded at 0.5 (goal >= 0.999; the mean over
classes and the classes below it), the share of the frame the crops cover, and the seconds per
image of hbens (goal <= 10 s on one core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MASKS = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "masks"


def mask_files(n: int) -> list[Path | None]:
    """``n`` mask files: image i from model i (cycled), or None for a synthetic phantom."""
    models = sorted(path for path in MASKS.iterdir() if path.is_dir()) if MASKS.is_dir() else []
    files = [sorted(model.glob("*.npz")) for model in models]
    files = [found for found in files if found]
    if not files:
        return [None] * n
    return [files[i % len(files)][i % len(files[i % len(files)])] for i in range(n)]


def load_masks(path: Path | None, seed: int) -> np.ndarray:
    """(29, 2048, 2048) uint8 masks: a real model's, or those of a synthetic hand phantom."""
    if path is not None:
        with np.load(path) as archive:
            return archive["mask"]
    from hbens.annotations import polygon_mask
    from hbens.classes import CLASSES, IMAGE_SHAPE
    from hbens.phantoms import hand_phantom

    polygons = hand_phantom(np.random.default_rng(seed))
    return np.stack([polygon_mask(polygons[name], IMAGE_SHAPE) for name in CLASSES]).astype(np.uint8)


def soft_maps(masks: np.ndarray):
    """The masks as a network's stored probabilities: blurred, sigmoid, cut to hbens crops (uint8)."""
    import cv2

    from hbens.classes import CLASSES
    from hbens.maps.folders import ImageMaps
    from hbens.maps.probabilities import crop_box, tight_crop

    crops = []
    for mask in masks:
        top, left, bottom, right = crop_box(mask.astype(np.float32), padding=32, floor=0.5)
        window = mask[top:bottom, left:right].astype(np.float32)
        logits = 20 * (cv2.GaussianBlur(window, (0, 0), 3.0) - 0.5)
        crops.append(tight_crop(1 / (1 + np.exp(-logits)), (top, left), "uint8"))
    return ImageMaps(list(CLASSES), masks.shape[1:], crops, "benchmark")


def xray(masks: np.ndarray, seed: int) -> np.ndarray:
    """A uint8 X-ray-like picture of the masks (as :func:`hbens.phantoms.render_hand` draws a phantom)."""
    import cv2

    rng = np.random.default_rng(seed)
    height, width = masks.shape[1:]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))
    bone = np.zeros((height, width), np.float32)
    for mask in masks:
        bone += mask + 0.6 * (mask - cv2.erode(mask, kernel))
    union = (masks.max(axis=0) * 255).astype(np.uint8)
    tissue = cv2.GaussianBlur(cv2.dilate(union, np.ones((61, 61), np.uint8)).astype(np.float32) / 255, (0, 0), 12)
    texture = cv2.resize(rng.standard_normal((48, 48)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    image = bone * (55 + 4.4 * texture) + 42 * tissue + 14 + np.linspace(0, 6, height, dtype=np.float32)[:, None]
    image = cv2.GaussianBlur(image, (0, 0), 1.5) + rng.standard_normal((height, width), dtype=np.float32) * 3
    return np.clip(image, 0, 255).astype(np.uint8)


def pydensecrf_frame(probability: np.ndarray, rgb: np.ndarray, params) -> np.ndarray:
    """A two-label dense CRF of the whole frame as pydensecrf's README writes it."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    height, width = probability.shape
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=rgb,
                             compat=params.bilateral_compat)
    return np.asarray(crf.inference(params.iterations), np.float32).reshape(2, height, width)[1]


def full_frame(maps, image: np.ndarray, params) -> list:
    """The reference: each class refined on the whole frame, stored as hbens stores it."""
    from hbens.maps.probabilities import dequantize, tight_crop

    rgb = np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    crops = []
    for crop in maps.crops:
        if crop.values.size == 0:
            crops.append(crop)
            continue
        frame = np.zeros(maps.shape, np.float32)
        top, left, bottom, right = crop.box
        frame[top:bottom, left:right] = dequantize(crop.values)
        crops.append(tight_crop(pydensecrf_frame(frame, rgb, params), (0, 0), "uint8"))
    return crops


def refined_share(maps, margin: int) -> float:
    """Pixels the crop-based CRF refines (all classes' crops grown by the margin), as a share of one frame."""
    height, width = maps.shape
    area = 0
    for crop in maps.crops:
        if crop.values.size:
            top, left, bottom, right = crop.box
            area += (min(bottom + margin, height) - max(top - margin, 0)) * (min(right + margin, width) - max(left - margin, 0))
    return area / (height * width)


def best_of(rounds: int, function, *args):
    """The result of ``function(*args)`` and its best time over ``rounds`` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def dice_between(ours: list, theirs: list, shape: tuple[int, int]) -> np.ndarray:
    """Dice of each class between two sets of crops thresholded at 0.5 (1 when both are empty)."""
    from hbens.metrics import dice_runs
    from hbens.maps.probabilities import crop_runs

    return np.array([dice_runs(crop_runs(a, shape, 0.5), crop_runs(b, shape, 0.5)) for a, b in zip(ours, theirs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2, help="images of 29 classes")
    parser.add_argument("--rounds", type=int, default=3, help="best of N for the crop-based CRF")
    parser.add_argument("--reference-rounds", type=int, default=1, help="best of N for the full-frame CRF")
    parser.add_argument("--margin", type=int, help="hbens crf --margin [default: its default]")
    args = parser.parse_args()

    from hbens.postproc.crf import CRFParams, refine_store

    params = CRFParams() if args.margin is None else CRFParams(margin=args.margin)
    sources = mask_files(args.images)
    origin = "real masks of " + ", ".join(sorted({p.parent.name for p in sources})) if sources[0] else "phantoms"
    print(f"{args.images} image(s) of 29 classes at 2048x2048 from {origin}, blurred; {params}; "
          f"crop-based best of {args.rounds}, full-frame best of {args.reference_rounds}; one core "
          f"(OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); a shared machine, timings vary", flush=True)
    print(f"{'image':<44} {'hbens s':>8} {'full s':>8} {'ratio':>7} {'Dice min':>9} {'mean':>9} {'refined':>8}")
    total_ours = total_full = 0.0
    dices = []
    for number, source in enumerate(sources):
        masks = load_masks(source, number)
        maps = soft_maps(masks)
        image = xray(masks, number)
        del masks
        ours, seconds = best_of(args.rounds, refine_store, maps, image, params)
        theirs, reference = best_of(args.reference_rounds, full_frame, maps, image, params)
        dice = dice_between(ours, theirs, maps.shape)
        name = f"{source.parent.name}/{source.stem}" if source else f"phantom {number}"
        print(f"{name[:44]:<44} {seconds:8.2f} {reference:8.1f} {reference / seconds:6.1f}x {dice.min():9.5f} "
              f"{dice.mean():9.5f} {refined_share(maps, params.margin):7.1%}", flush=True)
        below = [f"{maps.classes[i]} {dice[i]:.5f}" for i in np.flatnonzero(dice < 0.999)]
        if below:
            print(f"  below 0.999: {', '.join(below)}")
        total_ours += seconds
        total_full += reference
        dices.append(dice)
    every = np.concatenate(dices)
    ratio = total_full / total_ours
    per_image = total_ours / args.images
    print(f"{'total':<44} {total_ours:8.2f} {total_full:8.1f} {ratio:6.1f}x {every.min():9.5f} {every.mean():9.5f}")
    print(f"time ratio {ratio:.1f}x (goal >= 10x); Dice between the results: mean {every.mean():.5f} over "
          f"{every.size} (image, class) pairs, {int((every >= 0.999).sum())} of them >= 0.999, min {every.min():.5f} "
          f"(goal >= 0.999); {per_image:.2f} s per image of 29 classes on one core (goal <= 10 s)")


if __name__ == "__main__":
    main()

"""Tune 3 inputs over 160 validation images of 29 classes; the threshold search against re-thresholding.

The inputs are realistic sparse stores (as ``benchmarks/soft_fuse.py`` makes them): per class a
model's mask, Gaussian-blurred and kept over its padded box.  The masks are the five real models'
masks of ``../shared/realdata/masks`` when present, otherwise synthetic hands of
:mod:`hbens.synthetic`: model 0 is the ground truth, models 1-3 are the inputs (blurred with
sigma 1.5, 2.5 and 2.0; input 2's probabilities scaled by 0.7, an under-confident model).  Each
of ``--variants`` variants shifts one base image and all its masks by a random offset; the 160
images cycle through the variants (the same store under several image names).

Measured, in this order:

1. ``hbens tune`` (library call, ``--workers`` threads, members, thresholds and cleanup; no CRF):
   total time (goal: under 10 minutes on 2 cores);
2. the threshold search alone on ``--search-images`` images: for each (image, class) and each of
   the 3 single inputs and their mean, the Dice of every threshold 0.05..0.95 (0.01 steps) of the
   fused crop (:func:`hbens.ensemble.combine.fuse_class`), from hbens' exact histogram (one pass) and
   by brute force (threshold and score 91 times); the two must agree to the last bit (goal: at
   least 50x faster).  Also end to end, fusing included: pass 1's
   :func:`hbens.tune.evaluate.fused_curves` against fusing each rule and thresholding 91 times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import in_process  # noqa: F401  (puts the repository on sys.path)

from hbens.tune.histograms import level_of

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "masks"
SIGMAS = (1.5, 2.5, 2.0)
SCALES = (1.0, 0.7, 1.0)
SHIFT = 48
THRESHOLDS = np.round(np.arange(5, 96) * 0.01, 10)
LEVELS = np.array([level_of(float(t)) for t in THRESHOLDS])
"""Per threshold, the stored value ``v`` for which ``stored > v`` is ``stored / 255 > t``."""


def base_masks() -> tuple[list[list[list[tuple[np.ndarray, np.ndarray]]]], str]:
    """Per base image, per model (ground truth first), the 29 class masks as runs."""
    from hbens.classes import CLASSES
    from hbens.rle import mask_to_runs

    if REALDATA.is_dir():
        models = sorted(p for p in REALDATA.iterdir() if p.is_dir())[:4]
        images = sorted(p.name for p in models[0].glob("*.npz"))
        bases = []
        for name in images:
            per_model = []
            for model in models:
                with np.load(model / name) as archive:
                    masks = archive["mask"]
                per_model.append([mask_to_runs(masks[k]) for k in range(len(CLASSES))])
            bases.append(per_model)
        return bases, f"real masks of 4 models ({', '.join(m.name for m in models)})"
    from hbens.synthetic import hand_polygons, predicted_runs

    rng = np.random.default_rng(0)
    bases = []
    for _ in range(2):
        polygons = hand_polygons(rng)
        bases.append([[predicted_runs(polygons[name], rng, noise=1.0 + 2 * m) for name in CLASSES] for m in range(4)])
    return bases, "synthetic hands (hbens.synthetic)"


def shifted(runs, dy: int, dx: int, shape):
    """The mask moved by ``(dy, dx)`` pixels, cut at the frame."""
    from hbens.runs import runs_to_segments, segments_to_runs

    rows, begins, ends = runs_to_segments(runs, shape)
    rows, begins, ends = rows + dy, np.clip(begins + dx, 0, shape[1]), np.clip(ends + dx, 0, shape[1])
    keep = (rows >= 0) & (rows < shape[0]) & (ends > begins)
    return segments_to_runs((rows[keep], begins[keep], ends[keep]), shape)


def soft_store(path: Path, class_runs, sigma: float, scale: float, image: str) -> None:
    """The store of Gaussian-blurred masks times ``scale``, each kept over its padded box."""
    import cv2

    from hbens.classes import IMAGE_SHAPE
    from hbens.maps.probabilities import tight_crop, write_store
    from hbens.runs import runs_bounds, runs_to_box

    margin = int(np.ceil(4 * sigma))
    crops = []
    for runs in class_runs:
        bounds = runs_bounds(runs, IMAGE_SHAPE)
        if bounds is None:
            crops.append(tight_crop(np.zeros((0, 0), np.float32), (0, 0)))
            continue
        top, left, bottom, right = bounds
        box = (max(top - margin, 0), max(left - margin, 0), min(bottom + margin, 2048), min(right + margin, 2048))
        blurred = cv2.GaussianBlur(runs_to_box(runs, box).astype(np.float32), (0, 0), sigma) * scale
        crops.append(tight_crop(blurred, box[:2]))
    write_store(path, crops, IMAGE_SHAPE, image=image)


def write_data(folder: Path, n_images: int, n_variants: int) -> str:
    """Ground-truth CSV and three store folders of ``n_images`` images; returns what the masks are."""
    from hbens.classes import CLASSES, IMAGE_SHAPE
    from hbens.rle import runs_to_string
    from hbens.submission import write_submission

    bases, source = base_masks()
    rng = np.random.default_rng(1)
    variants = []
    for v in range(n_variants):
        dy, dx = (int(s) for s in rng.integers(-SHIFT, SHIFT + 1, 2))
        masks = [[shifted(runs, dy, dx, IMAGE_SHAPE) for runs in model] for model in bases[v % len(bases)]]
        stem = f"variant{v}"
        for i in range(3):
            (folder / f"in{i}").mkdir(exist_ok=True)
            soft_store(folder / f"in{i}" / f"{stem}.npz", masks[i + 1], SIGMAS[i], SCALES[i], f"{stem}.png")
        variants.append([runs_to_string(*runs) for runs in masks[0]])
    rows = {}
    for j in range(n_images):
        image = f"image{j:04d}.png"
        for i in range(3):
            os.link(folder / f"in{i}" / f"variant{j % n_variants}.npz", folder / f"in{i}" / f"image{j:04d}.npz")
        rows.update({(image, name): rle for name, rle in zip(CLASSES, variants[j % n_variants])})
    for i in range(3):
        for v in range(n_variants):
            (folder / f"in{i}" / f"variant{v}.npz").unlink()
    write_submission(folder / "gt.csv", rows)
    return source


def run_tune(folder: Path, workers: int) -> dict:
    from hbens.execution import Execution
    from hbens.tune import tune_inputs
    from hbens.tune.tuning import describe_tuning

    started, cpu = time.perf_counter(), _cpu_seconds()
    result = tune_inputs([folder / f"in{i}" for i in range(3)], folder / "gt.csv", folder / "recipe.yaml",
                         steps=("members", "thresholds", "clean"), execution=Execution(workers=workers))
    total, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    print(describe_tuning(result).splitlines()[-1])
    return {"total": total, **result.seconds, "CPU time (all threads)": cpu}


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def class_inputs(folder: Path, n_images: int):
    """Per (image, class): the three inputs' crops, the truth runs and the frame."""
    from hbens.annotations import GroundTruth
    from hbens.classes import CLASSES
    from hbens.maps.folders import open_map_folder

    folders = [open_map_folder(folder / f"in{i}") for i in range(3)]
    truth = GroundTruth(folder / "gt.csv")
    for image in truth.images[:n_images]:
        stores = [f.files[image].read() for f in folders]
        runs = truth.runs(image)
        for name in CLASSES:
            yield [store.crop(name) for store in stores], runs[name], stores[0].shape


def stored_search(crop, truth, shape) -> list[float]:
    """Dice of ``stored / 255 > t`` for the 91 thresholds from one 256-bin histogram of the stored crop."""
    from hbens.runs import runs_to_segments
    from hbens.tune.histograms import dice_curve, stored_crop_histograms

    values = crop.values if crop.values.size else np.zeros((0, 0), np.uint8)
    counted = stored_crop_histograms(values, crop.box[:2], runs_to_segments(truth, shape),
                                     truth_total=int(truth[1].sum()))
    return dice_curve(*counted)[LEVELS].tolist()


def fused_search(crop, truth, shape) -> list[float]:
    """Dice of ``fused > t`` for the 91 thresholds from one grid histogram of the fused crop."""
    from hbens.tune.evaluate import crop_histograms
    from hbens.tune.histograms import GRID, grid_dice

    return grid_dice(*crop_histograms(crop, truth, shape=shape))[np.searchsorted(GRID, THRESHOLDS)].tolist()


def brute_search(crop, truth, shape) -> list[float]:
    """Dice of ``crop > t`` for the 91 thresholds, thresholding and scoring each (as every hbens output)."""
    from hbens.metrics import dice_runs
    from hbens.maps.probabilities import crop_runs

    return [dice_runs(crop_runs(crop, shape, float(t)), truth) for t in THRESHOLDS]


def compare_searches(cases) -> dict[str, float]:
    """CPU seconds of each way to get the Dice of the 91 thresholds, interleaved case by case (on a
    shared machine wall time depends on the other jobs, the CPU time of this one-thread process
    much less); AssertionError unless they agree to the last bit.

    ``stored``: each single input's stored uint8 crop (one 256-bin histogram against 91
    thresholdings); ``fused``: the mean of the three inputs, fused once
    (:func:`hbens.ensemble.combine.fuse_class`; grid histogram against 91 thresholdings);
    ``end to end``: pass 1's :func:`hbens.tune.evaluate.fused_curves` of the three singles and the
    mean against fusing each and thresholding it 91 times.
    """
    from hbens.ensemble.combine import fuse_class
    from hbens.ensemble.rules import SoftRule
    from hbens.tune.evaluate import fused_curves
    from hbens.tune.histograms import GRID

    rules = [SoftRule(members=(i,), weights=(1,)) for i in range(3)]
    rules.append(SoftRule(members=(0, 1, 2), weights=(1, 1, 1)))
    columns = np.searchsorted(GRID, THRESHOLDS)
    seconds: dict[str, float] = {}

    def timed(name, work):
        started = time.process_time()
        result = work()
        seconds[name] = seconds.get(name, 0.0) + time.process_time() - started
        return result

    for sources, truth, shape in cases:
        for crop in sources:
            ours = timed("stored: histogram", lambda: stored_search(crop, truth, shape))
            theirs = timed("stored: brute force", lambda: brute_search(crop, truth, shape))
            assert ours == theirs, "stored histogram Dice differ from brute force"
        fused = timed("fused: fuse", lambda: fuse_class(sources, rules[3], shape))
        ours = timed("fused: histogram", lambda: fused_search(fused, truth, shape))
        theirs = timed("fused: brute force", lambda: brute_search(fused, truth, shape))
        assert ours == theirs, "fused histogram Dice differ from brute force"
        curves = timed("end to end: fused_curves", lambda: fused_curves(sources, truth, rules=rules, shape=shape))
        brute = timed("end to end: brute force", lambda: [brute_search(fuse_class(sources, rule, shape), truth, shape)
                                                         for rule in rules])
        assert curves[:, columns].tolist() == brute, "fused_curves differ from brute force"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--variants", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--search-images", type=int, default=8)
    parser.add_argument("--keep", type=Path,
                        help="Write the data here and keep it (default: a temporary folder); data already there "
                             "is used as it is.")
    parser.add_argument("--search-only", action="store_true", help="Skip the tune run.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp()) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if not (folder / "gt.csv").exists():
            started = time.perf_counter()
            source = write_data(folder, args.images, args.variants)
            print(f"data: {args.images} images ({args.variants} distinct) x 3 stores of {source}; "
                  f"written in {time.perf_counter() - started:.0f} s")
        if not args.search_only:
            times = run_tune(folder, args.workers)
            print(f"hbens tune, 3 inputs x {args.images} images x 29 classes, {args.workers} worker threads, "
                  f"{os.cpu_count()} CPUs (shared machine):")
            for name, seconds in times.items():
                print(f"  {name:<34} {seconds:7.1f} s")
            print(f"  goal: total under 600 s on 2 cores -> {'met' if times['total'] < 600 else 'NOT met'}")
        cases = list(class_inputs(folder, args.search_images))
        compare_searches(cases[:29])  # compiles the kernels
        seconds = compare_searches(cases)
        print(f"threshold search, {len(cases)} (image, class), {THRESHOLDS.size} thresholds 0.05..0.95, one thread "
              "(CPU time), Dice identical to the last bit:")
        for name, value in seconds.items():
            print(f"  {name:<26} {value:7.2f} s")
        for kind, ours in (("stored", "histogram"), ("fused", "histogram"), ("end to end", "fused_curves")):
            print(f"  speed-up, {kind}: {seconds[f'{kind}: brute force'] / seconds[f'{kind}: {ours}']:.1f}x")
        print("  goal: the histogram of stored uint8 maps >= 50x the 91 thresholdings")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

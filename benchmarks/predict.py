"""A naive prediction loop vs `hbens predict --csv`, same model and TTA, on the CPU, in one run;
and `predict --workers 1` against the default workers, in wall and CPU time.

The model is a randomly initialised smp Unet (ResNet-34 encoder, the forward cost of a real
one) traced to TorchScript, whose logits are offset by a synthetic hand so that its masks are
bone-like (sparse), as a trained model's are.  The naive loop is what teams write: read, resize,
forward each TTA view, average, upsample all 29 channels to 2048x2048, sigmoid, threshold,
numpy RLE.  Prints both times, the ratio, hbens's share of time outside forward passes, and the
store size against float32 maps.

The workers part (``--part workers``, about a minute) predicts the demo's phantoms of 384x384
with the demo's FPN (``tu-mobilenetv3_small_050``, untrained: the forward cost is the same) and
``--window 192``, each setting in a fresh process after a warm-up image: ``--workers 1``, the
default workers, and ``--workers 1`` with GNU OpenMP's default spinning waits (what every run
did before hbens asked for passive waits, see :func:`hbens.predictors.model.wait_passively`).
It prints the wall and CPU (user + sys) seconds of each and the CPU ratios.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_model(path: Path, size: int) -> None:
    import segmentation_models_pytorch as smp
    import torch

    from hbens.classes import CLASSES
    from hbens.synthetic import hand_polygons
    from hbens.annotations import polygon_mask

    polygons = hand_polygons(np.random.default_rng(1), (size, size))
    hand = np.stack([polygon_mask(polygons[name], (size, size)) for name in CLASSES]).astype(np.float32)

    class BoneLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = smp.create_model("Unet", encoder_name="resnet34", encoder_weights=None, classes=29)
            self.register_buffer("hand", torch.from_numpy(hand * 20 - 12)[None])

        def forward(self, x):
            return 0.05 * self.unet(x) + self.hand

    model = BoneLike().eval()
    torch.jit.trace(model, torch.rand(1, 3, size, size)).save(str(path))


def make_images(folder: Path, n: int) -> list[Path]:
    import cv2

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sub = folder / f"ID{i:03d}"
        sub.mkdir(parents=True)
        image = (rng.random((2048, 2048)) * 60 + 80).astype(np.uint8)
        paths.append(sub / f"image{1661319100000 + i}.png")
        cv2.imwrite(str(paths[-1]), image)
    return paths


def naive(model_path: Path, images: list[Path], out: Path, size: int) -> float:
    import cv2
    import torch
    import torch.nn.functional as F

    from hbens.classes import CLASSES
    from tests.oracles import encode_reference

    start = time.perf_counter()
    model = torch.jit.load(str(model_path)).eval()
    rows = []
    for path in sorted(images, key=lambda p: p.name):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        x = torch.from_numpy(cv2.resize(image, (size, size)))[None, None].repeat(1, 3, 1, 1)
        with torch.no_grad():
            logits = (model(x) + model(x.flip(-1)).flip(-1)) / 2
            probabilities = torch.sigmoid(F.interpolate(logits, size=(2048, 2048), mode="bilinear"))[0]
        masks = (probabilities > 0.5).numpy()
        rows += [(path.name, name, encode_reference(mask)) for name, mask in zip(CLASSES, masks)]
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "class", "rle"])
        writer.writerows(rows)
    return time.perf_counter() - start


def hbens_predict(model_path: Path, folder: Path, out_dir: Path, out_csv: Path, size: int):
    from hbens.predictors import ModelSource, PredictOptions, predict_folder

    start = time.perf_counter()
    options = PredictOptions(size=size, tta="hflip")
    summary = predict_folder([ModelSource(checkpoint=str(model_path))], folder, out_dir, options, csv=out_csv)
    return time.perf_counter() - start, summary.stats


SPINNING = {"GOMP_SPINCOUNT": "300000"}
"""GNU OpenMP's default spin before an idle thread sleeps (used when no wait policy is set), made explicit
so that hbens leaves it alone."""


def workers_data(folder: Path, n_ids: int) -> tuple[Path, Path, Path]:
    """The demo's FPN as a save_pretrained folder, ``n_ids`` IDs of 384-pixel phantoms, one warm-up image."""
    import shutil

    from hbens.demo import TINY_MODELS, build_model
    from hbens.synthetic import write_dataset

    model = folder / "fpn"
    build_model(TINY_MODELS["fpn"], seed=0).eval().save_pretrained(str(model))
    written = write_dataset(folder / "phantoms", ids_train=1, ids_test=n_ids, seed=0, size=384)
    warm = folder / "warm"
    warm.mkdir()
    shutil.copy(written["train"][0], warm)
    return model, folder / "phantoms" / "test" / "DCM", warm


def timed_predict(model: str, images: str, warm: str, out: str, workers: int | None, environ: dict,
                  queue) -> None:
    """In a fresh process (environment changed first, before torch loads): predict the warm-up image,
    then every image, timed; put (wall, CPU user + sys, workers) on ``queue``."""
    os.environ.pop("OMP_WAIT_POLICY", None)
    os.environ.update(environ)
    from hbens.execution import Execution
    from hbens.predictors import ModelSource, PredictOptions, predict_folder
    from hbens.predictors.predict import default_predict_workers

    options = PredictOptions(window=192)
    execution = Execution(workers=workers if workers is not None else default_predict_workers(["cpu"]))
    source = ModelSource(checkpoint=model)
    predict_folder([source], warm, out + "-warm", options, execution=execution)
    before, started = os.times(), time.perf_counter()
    predict_folder([source], images, out, options, execution=execution)
    wall, after = time.perf_counter() - started, os.times()
    queue.put((wall, after.user - before.user + after.system - before.system, execution.n_workers))


def compare_workers(folder: Path, n_ids: int) -> None:
    """``--workers 1`` vs the default workers (and vs one spinning worker), wall and CPU, printed."""
    model, images, warm = workers_data(folder, n_ids)
    context = multiprocessing.get_context("spawn")
    settings = {"--workers 1": (1, {}), "default": (None, {}), "--workers 1, OpenMP spinning": (1, SPINNING)}
    results = {}
    for number, (name, (workers, environ)) in enumerate(settings.items()):
        queue = context.Queue()
        arguments = (str(model), str(images), str(warm), str(folder / f"out{number}"), workers, environ, queue)
        process = context.Process(target=timed_predict, args=arguments)
        process.start()
        results[name] = queue.get()
        process.join()
    n_images = len(list(images.rglob("*.png")))
    print(f"predict, {n_images} phantoms of 384x384, the demo's FPN (tu-mobilenetv3_small_050), "
          f"--window 192, CPU ({os.cpu_count()} cores), each in a fresh process after a warm-up image")
    for name, (wall, cpu, workers) in results.items():
        print(f"  {name + f' ({workers} worker(s))':44s} wall {wall:6.2f} s   CPU (user+sys) {cpu:6.2f} s")
    default = results["default"][1]
    print(f"CPU of --workers 1 / default: {results['--workers 1'][1] / default:.2f}; "
          f"of one spinning worker / default: {results['--workers 1, OpenMP spinning'][1] / default:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--part", choices=("all", "naive", "workers"), default="all",
                        help="naive: the naive loop vs hbens; workers: --workers 1 vs the default")
    parser.add_argument("--worker-ids", type=int, default=3,
                        help="IDs (two phantoms each) of the workers part")
    args = parser.parse_args()
    if args.part in ("all", "workers"):
        with tempfile.TemporaryDirectory() as tmp:
            compare_workers(Path(tmp), args.worker_ids)
    if args.part in ("all", "naive"):
        naive_part(args)


def naive_part(args: argparse.Namespace) -> None:
    from hbens.metrics import dice_runs
    from hbens.rle import string_to_runs
    from hbens.submission import read_submission

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = tmp / "model.pt"
        build_model(model_path, args.size)
        images = make_images(tmp / "images", args.images)
        warm = make_images(tmp / "warm", 1)
        naive_cold = naive(model_path, warm, tmp / "naive-warm.csv", args.size)
        hb_cold, _ = hbens_predict(model_path, tmp / "warm", tmp / "warm-stores", tmp / "warm.csv", args.size)
        naive_time = naive(model_path, images, tmp / "naive.csv", args.size)
        hb_time, stats = hbens_predict(model_path, tmp / "images", tmp / "stores", tmp / "hbens.csv",
                                       args.size)
        ours, theirs = read_submission(tmp / "hbens.csv"), read_submission(tmp / "naive.csv")
        dice = np.mean([dice_runs(string_to_runs(ours[k]), string_to_runs(theirs[k])) for k in theirs])
        full_maps = args.images * 29 * 2048 * 2048 * 4
        outside = hb_time - stats.forward_per_worker
        print(f"{args.images} images of 2048x2048, Unet-ResNet34 at {args.size}, TTA hflip, CPU")
        print(f"first image of a process (numba kernels, TorchScript warm-up): naive {naive_cold:.1f} s, "
              f"hbens {hb_cold:.1f} s; the timings below come after it, model loading included")
        print(f"naive loop:      {naive_time:7.1f} s")
        print(f"hbens predict:   {hb_time:7.1f} s   {naive_time / hb_time:.2f}x faster; "
              f"forward passes {stats.forward_per_worker:.1f} s per worker ({len(stats.worker_seconds)}), "
              f"outside them {outside:.1f} s ({100 * outside / hb_time:.1f} % of the total)")
        print(f"store: {stats.store_bytes / args.images / 1e6:.2f} MB per image vs "
              f"{full_maps / args.images / 1e6:.0f} MB "
              f"of float32 maps (1/{full_maps / stats.store_bytes:.0f})")
        print(f"mean Dice between the two submissions: {dice:.5f} (uint8 store vs float threshold)")


if __name__ == "__main__":
    main()

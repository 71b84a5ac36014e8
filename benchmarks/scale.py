"""One vs two workers for fuse, crf and predict on the default scheduler, threads or processes, and Dask.

Every run goes through :func:`hbens.pipeline.run_images`, as the commands do.  The default
(``auto``) runs fuse and predict on threads and crf, whose pydensecrf holds the GIL, on
processes once there are two workers; crf is also timed on threads, fuse and predict on
processes.  Dask clusters are started by this script as ``--scheduler local`` starts them, on
127.0.0.1 and before the timed runs (their start-up is printed apart), and stopped when it ends.
A worker gets ``cores // workers`` threads, so one worker already uses both cores of this
machine for predict (torch) and fuse (numba): the speed-up of two workers over one is printed
against that, and against one worker held to one thread.  Each time is the best of ``--repeat``
runs, process start-up included.  Outputs of every executor are compared with the first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hbens.execution import Execution  # noqa: E402
from hbens.pipeline import ImageOutput, run_images  # noqa: E402


def noop(item: int) -> ImageOutput:
    """A task that does nothing: what is left of its time is the executor's overhead."""
    return ImageOutput(f"image{item}.png", [], 1)


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def fuse_job(paths, folder):
    from hbens.ensemble import fuse

    def run(execution: Execution, name: str) -> Path:
        out = folder / f"fuse-{name}.csv"
        fuse(paths, out, execution=execution)
        return out

    return run


def crf_job(folder: Path, n_images: int, size: int):
    import cv2

    from hbens.annotations import polygon_mask
    from hbens.classes import CLASSES
    from hbens.postproc.crf import CRFParams, crf_folder
    from hbens.maps.probabilities import tight_crop, write_store
    from hbens.synthetic import hand_polygons, render_xray

    rng = np.random.default_rng(0)
    stores, images = folder / "stores", folder / "images"
    stores.mkdir()
    images.mkdir()
    for i in range(n_images):
        polygons = hand_polygons(rng, (size, size))
        cv2.imwrite(str(images / f"image{i}.png"), render_xray(polygons, rng, (size, size)))
        crops = []
        for name in CLASSES:
            mask = polygon_mask(polygons[name], (size, size)).astype(np.float32)
            blurred = cv2.GaussianBlur(mask, (0, 0), 4)
            crops.append(tight_crop(blurred, (0, 0)))
        write_store(stores / f"image{i}.npz", crops, (size, size), image=f"image{i}.png")

    def run(execution: Execution, name: str) -> Path:
        out = folder / f"crf-{name}.csv"
        crf_folder(stores, images, folder / f"crf-{name}", CRFParams(iterations=3), csv=out, execution=execution)
        return out

    return run


def predict_job(folder: Path, n_images: int, size: int):
    """``predict`` of a bone-like TorchScript Unet-ResNet34 at 256 px with TTA (benchmarks/predict.py's model)."""
    import cv2

    from hbens.predictors import ModelSource, PredictOptions, predict_folder
    from predict import build_model

    build_model(folder / "model.pt", 256)
    images = folder / "predict-images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(n_images):
        cv2.imwrite(str(images / f"image{i}.png"), (rng.random((size, size)) * 60 + 80).astype(np.uint8))
    source = ModelSource(checkpoint=str(folder / "model.pt"))

    def run(execution: Execution, name: str) -> Path:
        out = folder / f"predict-{name}.csv"
        predict_folder([source], images, folder / f"predict-{name}", PredictOptions(size=256, tta="hflip"),
                       csv=out, execution=execution)
        return out

    return run


def limited_threads(threads: int):
    """Run the next calls of this process with numba and torch held to ``threads`` threads."""
    import numba

    numba.set_num_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fuse-images", type=int, default=48)
    parser.add_argument("--crf-images", type=int, default=16)
    parser.add_argument("--predict-images", type=int, default=16)
    parser.add_argument("--overhead-images", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from hbens.execution import cores, local_cluster
    from hbens.synthetic import write_example

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, csvs = write_example(folder / "example", args.fuse_images, 5)
        jobs = {  # name: (run, images, whether its task holds the GIL)
            "fuse": (fuse_job(csvs, folder), args.fuse_images, False),
            "crf": (crf_job(folder, args.crf_images, 1024), args.crf_images, True),
            "predict": (predict_job(folder, args.predict_images, 1024), args.predict_images, False),
        }
        started = time.perf_counter()
        clusters = {n: local_cluster(n) for n in (1, 2)}
        print(f"{cores()} cores; two Dask LocalClusters (1 and 2 workers) started in "
              f"{time.perf_counter() - started:.1f} s (not in the times below)")
        try:
            names = [str(i) for i in range(args.overhead_images)]
            items = list(range(args.overhead_images))
            threads = best_of(args.repeat, lambda: run_images(noop, items, Execution(workers=1), names=names))
            dask = best_of(args.repeat, lambda: run_images(
                noop, items, Execution(scheduler=clusters[1].scheduler_address), names=names))
            print(f"per-image overhead of Dask over a thread: {1000 * (dask - threads) / len(items):.2f} ms "
                  f"({len(items)} empty tasks: thread {threads:.2f} s, Dask {dask:.2f} s; goal < 10 ms)")
            for job, (run, n_images, holds_gil) in jobs.items():
                run(Execution(workers=1), "warm")
                other = "threads" if holds_gil else "processes"
                executions = {
                    "default": lambda n: Execution(workers=n),
                    other: lambda n: Execution(scheduler=other, workers=n),
                    "dask": lambda n: Execution(scheduler=clusters[n].scheduler_address),
                }
                reference = None
                for kind, make in executions.items():
                    times = {n: best_of(args.repeat, lambda: run(make(n), f"{kind}{n}")) for n in (1, 2)}
                    for n in (1, 2):
                        output = (folder / f"{job}-{kind}{n}.csv").read_bytes()
                        reference = reference or output
                        assert output == reference, f"{job} {kind}{n}: output differs"
                    if kind == "default":
                        kind = f"default ({Execution(workers=2).resolved(holds_gil=holds_gil).scheduler})"
                    line = (f"{job:8} {kind:21} 1 worker {times[1]:6.2f} s  2 workers {times[2]:6.2f} s  "
                            f"speed-up {times[1] / times[2]:4.2f}x  ({1000 * times[2] / n_images:.0f} ms/image)")
                    if kind.startswith("default"):
                        limited_threads(1)
                        single = best_of(args.repeat, lambda: run(Execution(workers=1), "single"))
                        limited_threads(cores())
                        line += f"; 1 worker on 1 thread {single:6.2f} s -> 2 workers {single / times[2]:4.2f}x"
                    print(line, flush=True)
        finally:
            for cluster in clusters.values():
                cluster.close()


if __name__ == "__main__":
    main()

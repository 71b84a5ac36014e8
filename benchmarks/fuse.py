"""Fuse 5 full submissions (288 images x 29 classes): hbens on runs vs the mask-level oracle.

The oracle is what teams write: decode each input row to a 2048x2048 mask, sum, threshold,
encode with numpy, streaming row by row.  Each side runs in its own process so that its peak
memory (max RSS) is its own.  ``--oracle-images`` limits the oracle to the first images; its
time is then scaled to all images (rows cost the same on average), and outputs are compared
on the rows it did.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_inputs(folder: Path, n_images: int, n_models: int) -> list[Path]:
    from hbens.classes import CLASSES
    from hbens.rle import runs_to_string
    from hbens.submission import write_submission
    from hbens.synthetic import hand_polygons, predicted_runs

    rng = np.random.default_rng(0)
    rows: list[dict] = [{} for _ in range(n_models)]
    for i in range(n_images):
        polygons = hand_polygons(rng)
        for model in range(n_models):
            for name in CLASSES:
                runs = predicted_runs(polygons[name], rng, noise=2.0 + model)
                rows[model][(f"image{1661319100000 + 17 * i}.png", name)] = runs_to_string(*runs)
    paths = []
    for model in range(n_models):
        paths.append(folder / f"model{model}.csv")
        write_submission(paths[-1], rows[model])
    return paths


def run_hbens(paths, out, queue) -> None:
    from hbens.ensemble import fuse_csvs

    fuse_csvs(paths[:1], out.with_suffix(".warm"))  # load the numba cache outside the timing
    start = time.perf_counter()
    fuse_csvs(paths, out)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_oracle(paths, out, n_images, queue) -> None:
    from hbens.classes import IMAGE_SHAPE
    from hbens.submission import iter_rows, scan_submission, write_submission
    from tests.oracles import vote_reference

    start = time.perf_counter()
    streams = [iter_rows(scan_submission(p)) for p in paths]
    images, fused = set(), {}
    for rows in zip(*streams):
        image, name = rows[0][:2]
        images.add(image)
        if len(images) > n_images:
            break
        fused[(image, name)] = vote_reference([r[2] for r in rows], IMAGE_SHAPE, [1.0] * len(paths), len(paths) // 2 + 0.5)
    write_submission(out, fused)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_process(target, *args):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=288)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--oracle-images", type=int, default=288)
    args = parser.parse_args()
    from hbens.submission import read_submission

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paths = make_inputs(folder, args.images, args.models)
        rows = args.images * 29
        size = sum(p.stat().st_size for p in paths) / 1e6
        hb_time, hb_mem = in_process(run_hbens, paths, folder / "hbens.csv")
        n_oracle = min(args.oracle_images, args.images)
        or_time, or_mem = in_process(run_oracle, paths, folder / "oracle.csv", n_oracle)
        or_full = or_time * args.images / n_oracle
        ours, theirs = read_submission(folder / "hbens.csv"), read_submission(folder / "oracle.csv")
        assert all(ours[key] == value for key, value in theirs.items()), "outputs differ"
        print(f"{args.models} inputs x {rows} rows ({args.images} images, {size:.0f} MB of CSV), majority vote")
        scaled = "" if n_oracle == args.images else f" (ran {n_oracle} images, scaled)"
        print(f"mask-level oracle: {or_full:8.1f} s{scaled}   peak RSS {or_mem:7.0f} MB")
        print(f"hbens fuse:        {hb_time:8.1f} s   peak RSS {hb_mem:7.0f} MB")
        print(f"speed-up: {or_full / hb_time:.1f}x; outputs identical on {len(theirs)} rows")


if __name__ == "__main__":
    main()

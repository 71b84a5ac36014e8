"""Fuse 5 full submissions (288 images x 29 classes): hbens on runs vs the mask-level oracle.

The oracle is what teams write: decode each input row to a 2048x2048 mask, sum, threshold and
encode with numpy, streaming row by row.  Each side runs in its own process, so its peak memory
(max RSS, imports included) is its own.  ``--oracle-images`` runs the oracle on the first images
only and scales its time to all of them; outputs are compared on the rows it did.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import first_images, in_process, rows_matching_oracle, sampled_note


def run_hbens(paths, out) -> None:
    from hbens.ensemble import fuse

    fuse(paths, out)


def run_oracle(paths, out) -> None:
    from hbens.classes import IMAGE_SHAPE
    from hbens.submission import iter_rows, scan_submission, write_submission
    from tests.oracles import vote_reference

    streams = [iter_rows(scan_submission(p)) for p in paths]
    fused = {}
    for rows in zip(*streams):
        texts = [row[2] for row in rows]
        fused[rows[0][:2]] = vote_reference(texts, IMAGE_SHAPE, [1.0] * len(paths), len(paths) // 2 + 0.5)
    write_submission(out, fused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=288)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--oracle-images", type=int, default=288)
    args = parser.parse_args()
    from hbens.synthetic import write_example

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        _, paths = write_example(folder, args.images, args.models)
        n_oracle = min(args.oracle_images, args.images)
        sampled = [folder / f"sample{i}.csv" for i in range(len(paths))]
        for path, sample in zip(paths, sampled):
            first_images(path, sample, n_oracle)
        in_process(run_hbens, paths[:2], folder / "warm.csv")  # fills the numba cache
        hb_time, hb_mem = in_process(run_hbens, paths, folder / "hbens.csv")
        or_time, or_mem = in_process(run_oracle, sampled, folder / "oracle.csv")
        or_full = or_time * args.images / n_oracle
        compared = rows_matching_oracle(folder / "hbens.csv", folder / "oracle.csv")
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{args.models} inputs x {args.images * 29} rows ({args.images} images, {size:.0f} MB of CSV), majority")
        scaled = sampled_note(n_oracle, args.images)
        print(f"mask-level oracle: {or_full:8.1f} s{scaled}   peak RSS {or_mem:6.0f} MB")
        print(f"hbens fuse:        {hb_time:8.1f} s   peak RSS {hb_mem:6.0f} MB (process total, imports included)")
        print(f"speed-up: {or_full / hb_time:.1f}x; outputs identical on {compared} rows")


if __name__ == "__main__":
    main()

"""`--largest --fill-holes` over a full submission (288 images x 29 classes): hbens vs scipy labelling.

The oracle decodes each row to a 2048x2048 mask, labels it with scipy.ndimage, keeps the largest
component, fills holes with binary_fill_holes and encodes.  ``--oracle-images`` runs it on the first
images only and scales its time; outputs are compared on the rows it did.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import first_images, in_process, rows_matching_oracle, sampled_note


def run_hbens(path, out) -> None:
    from hbens.postproc import CleanConfig, RowCleaner, clean_configs, clean_csv

    clean_csv(str(path), str(out), RowCleaner(clean_configs(CleanConfig(keep=1, fill_holes=True))))


def run_oracle(path, out) -> None:
    from hbens.submission import iter_rows, scan_submission, write_submission
    from tests.oracles import clean_reference, decode_reference, encode_reference

    rows = {}
    for image, name, text in iter_rows(scan_submission(path)):
        mask = decode_reference(text, (2048, 2048))
        rows[(image, name)] = encode_reference(clean_reference(mask, keep=1, fill=True))
    write_submission(out, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=288)
    parser.add_argument("--oracle-images", type=int, default=288)
    args = parser.parse_args()
    from hbens.synthetic import write_example

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        _, (path,) = write_example(folder, args.images, 1)
        n_oracle = min(args.oracle_images, args.images)
        sample = folder / "sample.csv"
        first_images(path, sample, n_oracle)
        in_process(run_hbens, sample, folder / "warm.csv")  # fills the numba cache
        hb_time, _ = in_process(run_hbens, path, folder / "hbens.csv")
        or_time, _ = in_process(run_oracle, sample, folder / "oracle.csv")
        or_full = or_time * args.images / n_oracle
        compared = rows_matching_oracle(folder / "hbens.csv", folder / "oracle.csv")
        print(f"--largest --fill-holes on {args.images * 29} rows ({args.images} images)")
        scaled = sampled_note(n_oracle, args.images)
        print(f"scipy labelling oracle: {or_full:8.1f} s{scaled}")
        print(f"hbens clean:            {hb_time:8.1f} s")
        print(f"speed-up: {or_full / hb_time:.1f}x; outputs identical on {compared} rows")


if __name__ == "__main__":
    main()

"""Encode and decode 8352 realistic 2048x2048 masks: numpy reference vs hbens, in one run.

The masks cycle through a pool of distinct bone-like masks (2-5 % foreground), large enough
that they do not fit in the CPU caches.  Prints times, ratios and the implied GB/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hbens import rle  # noqa: E402
from hbens.synthetic import random_mask  # noqa: E402
from tests.oracles import decode_reference, encode_reference  # noqa: E402


def timed(function, items):
    start = time.perf_counter()
    out = [function(item) for item in items]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8352, help="masks to encode and decode")
    parser.add_argument("--pool", type=int, default=96, help="distinct masks (4 MB each)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool = np.stack([random_mask(rng) for _ in range(args.pool)])
    masks = [pool[i % args.pool] for i in range(args.n)]
    gigabytes = args.n * pool[0].nbytes / 1e9
    rle.encode(pool[0]), rle.decode(rle.encode(pool[0]))  # compile / load the numba cache

    read_time, _ = timed(lambda m: m.reshape(-1).view(np.uint64).max(), masks)
    ref_encode, ref_texts = timed(encode_reference, masks)
    hb_encode, hb_texts = timed(rle.encode, masks)
    start = time.perf_counter()
    par_texts = rle.encode_many(masks)
    hb_encode_many = time.perf_counter() - start
    assert hb_texts == ref_texts == par_texts, "outputs differ"

    for text, mask in zip(ref_texts[: args.pool], pool):
        assert np.array_equal(rle.decode(text), mask) and np.array_equal(decode_reference(text, mask.shape), mask)
    # Each decoded mask is dropped before the next, as a streaming consumer would do.  The two
    # decoders and the floor of any decoder (making a zeroed 2048x2048 array) interleave mask by
    # mask, in an order that rotates, so that all three see the same states of the allocator and
    # the caches.
    decoders = {
        "reference": lambda text: decode_reference(text, rle.IMAGE_SHAPE),
        "hbens": rle.decode,
        "zeros": lambda text: np.zeros(rle.IMAGE_SHAPE, np.uint8),
    }
    names = list(decoders)
    seconds = dict.fromkeys(names, 0.0)
    for index, text in enumerate(ref_texts):
        for name in names[index % 3 :] + names[: index % 3]:
            start = time.perf_counter()
            decoders[name](text)
            seconds[name] += time.perf_counter() - start
    ref_decode, hb_decode, zeros_time = seconds["reference"], seconds["hbens"], seconds["zeros"]

    print(f"{args.n} masks of 2048x2048 ({gigabytes:.1f} GB), pool of {args.pool}, mean foreground "
          f"{pool.mean() * 100:.1f} %")
    print(f"read once (uint64 max):   {read_time:8.2f} s  {gigabytes / read_time:6.2f} GB/s")
    print(f"encode numpy reference:   {ref_encode:8.2f} s  {gigabytes / ref_encode:6.2f} GB/s")
    print(f"encode hbens:             {hb_encode:8.2f} s  {gigabytes / hb_encode:6.2f} GB/s  "
          f"{ref_encode / hb_encode:6.1f}x reference, {hb_encode / read_time:4.2f}x read time")
    print(f"encode_many:              {hb_encode_many:8.2f} s  {gigabytes / hb_encode_many:6.2f} GB/s  "
          f"{ref_encode / hb_encode_many:6.1f}x reference, {hb_encode_many / read_time:4.2f}x read time")
    print(f"zeroed 2048x2048 arrays:  {zeros_time:8.2f} s")
    print(f"decode numpy reference:   {ref_decode:8.2f} s  {ref_decode / zeros_time:6.1f}x zeroed arrays")
    print(f"decode hbens:             {hb_decode:8.2f} s  {ref_decode / hb_decode:6.1f}x reference, "
          f"{hb_decode / zeros_time:4.2f}x zeroed arrays")
    print("outputs identical: yes")


if __name__ == "__main__":
    main()

"""Encode and decode 2048x2048 masks: numpy reference vs hbens, in one run, best of a few rounds.

The masks are the real model outputs in ../shared/realdata (290 masks) when it is there, else a pool
of synthetic bone-like masks (2-5 % foreground); they are cycled through up to ``--masks``, and the
pool is large enough not to fit in the CPU caches.  Decoding is timed in two allocation patterns:
each mask dropped right after decoding (a streaming consumer: the allocator recycles its memory) and
masks kept in a list (a caller that collects them: each new mask lands in fresh pages).  Prints
times, ratios and the implied GB/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hbens import rle  # noqa: E402
from hbens.synthetic import random_mask  # noqa: E402
from tests.oracles import decode_reference, encode_reference  # noqa: E402

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def real_masks(folder: Path) -> np.ndarray:
    """Every class mask of every ``masks/<model>/<image>.npz`` under ``folder``, stacked."""
    return np.concatenate([np.load(path)["mask"] for path in sorted((folder / "masks").glob("*/*.npz"))])


def mask_pool(n_synthetic: int, synthetic: bool) -> tuple[np.ndarray, str]:
    """The distinct masks to cycle through and where they come from: real ones when present."""
    if not synthetic and REALDATA.is_dir():
        return real_masks(REALDATA), f"real model masks from {REALDATA}"
    rng = np.random.default_rng(0)
    return np.stack([random_mask(rng) for _ in range(n_synthetic)]), "synthetic masks"


def timed(function: Callable, items: list) -> tuple[float, list]:
    start = time.perf_counter()
    out = [function(item) for item in items]
    return time.perf_counter() - start, out


def encode_round(masks: list[np.ndarray]) -> tuple[dict[str, float], list[str]]:
    """Seconds to read the masks once, encode them with the reference, hbens and encode_many.

    Asserts that the three encoders agree; returns the times and the strings.
    """
    seconds = {}
    seconds["read"], _ = timed(lambda m: m.reshape(-1).view(np.uint64).max(), masks)
    seconds["reference"], ref_texts = timed(encode_reference, masks)
    seconds["hbens"], hb_texts = timed(rle.encode, masks)
    start = time.perf_counter()
    many_texts = rle.encode_many(masks)
    seconds["encode_many"] = time.perf_counter() - start
    assert hb_texts == ref_texts == many_texts, "outputs differ"
    return seconds, ref_texts


DECODERS: dict[str, Callable[[str], np.ndarray]] = {
    "reference": lambda text: decode_reference(text, rle.IMAGE_SHAPE),
    "hbens": rle.decode,
    "zeros": lambda text: np.zeros(rle.IMAGE_SHAPE, np.uint8),
}


def decode_round(texts: list[str], keep: bool) -> dict[str, float]:
    """Seconds each decoder (and ``np.zeros`` alone, the floor) takes over ``texts``.

    The decoders interleave mask by mask in an order that rotates, so that all of them see the same
    states of the allocator and the caches.  Each mask is dropped at once, or with ``keep``
    appended to a list of its decoder's own.
    """
    names = list(DECODERS)
    seconds = dict.fromkeys(names, 0.0)
    kept: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index, text in enumerate(texts):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            start = time.perf_counter()
            if keep:
                kept[name].append(DECODERS[name](text))
            else:
                DECODERS[name](text)
            seconds[name] += time.perf_counter() - start
    return seconds


def kept_round(texts: list[str]) -> dict[str, float]:
    """:func:`decode_round` keeping every mask, after loading the numba cache (run in a fresh process)."""
    rle.decode(texts[0])
    return decode_round(texts, keep=True)


def kept_in_fresh_process(texts: list[str]) -> dict[str, float]:
    """:func:`kept_round` in a fresh process, whose kept masks all land in fresh pages as a caller's would."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(kept_round, texts).result()


def best(rounds: list[dict[str, float]]) -> dict[str, float]:
    """The smallest time of each entry over the rounds."""
    return {key: min(round_[key] for round_ in rounds) for key in rounds[0]}


def check_decoders(texts: list[str], pool: np.ndarray) -> None:
    """Assert that hbens and the reference decode each distinct string back to its mask."""
    for text, mask in zip(texts, pool):
        assert np.array_equal(rle.decode(text), mask)
        assert np.array_equal(decode_reference(text, mask.shape), mask)


def decode_line(label: str, seconds: dict[str, float], n_masks: int) -> str:
    """One line of per-mask decode times and hbens's ratio to the reference."""
    per_mask = {name: value / n_masks * 1e3 for name, value in seconds.items()}
    ratio = seconds["reference"] / seconds["hbens"]
    return (
        f"decode, {label}: reference {per_mask['reference']:6.3f} ms/mask, "
        f"hbens {per_mask['hbens']:6.3f} ms/mask = {ratio:5.1f}x reference; "
        f"np.zeros alone {per_mask['zeros']:6.3f} ms/mask"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--masks", "--n", type=int, default=8352, help="masks to encode and decode")
    parser.add_argument("--kept", type=int, default=580, help="masks decoded and kept in a list, per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best time of each is printed")
    parser.add_argument("--pool", type=int, default=96, help="distinct synthetic masks (4 MB each)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic masks even when real ones exist")
    args = parser.parse_args()
    pool, source = mask_pool(args.pool, args.synthetic)
    masks = [pool[i % len(pool)] for i in range(args.masks)]
    gigabytes = args.masks * pool[0].nbytes / 1e9
    rle.encode(pool[0]), rle.decode(rle.encode(pool[0]))  # compile / load the numba cache

    encodes, dropped, kept = [], [], []
    for _ in range(args.rounds):
        seconds, texts = encode_round(masks)
        encodes.append(seconds)
        if len(encodes) == 1:
            check_decoders(texts[: len(pool)], pool)
        dropped.append(decode_round(texts, keep=False))
        kept.append(kept_in_fresh_process([texts[i % len(texts)] for i in range(args.kept)]))
    encode, dropped_best, kept_best = best(encodes), best(dropped), best(kept)

    print(f"{args.masks} masks of 2048x2048 ({gigabytes:.1f} GB), {len(pool)} distinct {source}, "
          f"mean foreground {pool.mean() * 100:.1f} %; best of {args.rounds} rounds")
    read, ref_encode = encode["read"], encode["reference"]
    print(f"read once (uint64 max):   {read:8.2f} s  {gigabytes / read:6.2f} GB/s")
    print(f"encode numpy reference:   {ref_encode:8.2f} s  {gigabytes / ref_encode:6.2f} GB/s")
    for name, label in [("hbens", "encode hbens:"), ("encode_many", "encode_many:")]:
        print(f"{label:25s} {encode[name]:8.2f} s  {gigabytes / encode[name]:6.2f} GB/s  "
              f"{ref_encode / encode[name]:6.1f}x reference, {encode[name] / read:4.2f}x read time")
    print(decode_line(f"{args.masks} masks, each dropped at once", dropped_best, args.masks))
    print(decode_line(f"{args.kept} masks kept in a list, fresh process", kept_best, args.kept))
    print("outputs identical: yes")


if __name__ == "__main__":
    main()

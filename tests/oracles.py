"""Plain, obviously-correct numpy references that the fast paths must match byte for byte."""

from __future__ import annotations

import numpy as np


def encode_reference(mask: np.ndarray) -> str:
    """The competition's numpy RLE encoder."""
    pixels = np.asarray(mask).flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def decode_reference(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """The competition's numpy RLE decoder."""
    s = rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(shape[0] * shape[1], dtype=np.uint8)
    for lo, hi in zip(starts, ends):
        img[lo:hi] = 1
    return img.reshape(shape)


def parse_reference(text: str, size: int) -> tuple[list[tuple[int, int]], str | None, int]:
    """Plain parser of ``start length ...``: (0-based runs, first problem or None, its token index).

    Tokens are split on space, tab, CR and LF; a token is an integer of at most 18 digits.
    """
    tokens = [token for token in text.replace("\t", " ").replace("\r", " ").replace("\n", " ").split(" ") if token]
    runs: list[tuple[int, int]] = []
    previous_end = 0
    for index in range(0, len(tokens), 2):
        pair = tokens[index : index + 2]
        for offset, token in enumerate(pair):
            if not (token.isascii() and token.isdigit() and len(token) <= 18):
                return runs, "not-integer", index + offset
        if len(pair) == 1:
            return runs, "odd", index
        start, length = int(pair[0]) - 1, int(pair[1])
        if start < 0:
            return runs, "start", index
        if length < 1:
            return runs, "length", index + 1
        if start < previous_end:
            return runs, "overlap", index
        if start + length > size:
            return runs, "past-end", index
        runs.append((start, length))
        previous_end = start + length
    return runs, None, -1


def vote_reference(rles: list[str], shape: tuple[int, int], weights: list[float], threshold: float) -> str:
    """Mask-level vote: decode, weighted sum in input order, strict threshold, encode."""
    total = np.zeros(shape, np.float64)
    for weight, rle in zip(weights, rles):
        total += weight * decode_reference(rle, shape)
    return encode_reference((total > threshold).astype(np.uint8))


def clean_reference(mask: np.ndarray, min_area: int = 0, keep: int | None = None, fill: bool = False,
                    connectivity: int = 8) -> np.ndarray:
    """Connected-component cleaning on the full mask with scipy.ndimage labels."""
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(2, 1)
    square = np.ones((3, 3), bool)
    labels, n = ndimage.label(mask, square if connectivity == 8 else cross)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    kept = areas >= min_area
    if keep is not None:
        order = sorted(range(n), key=lambda i: (-areas[i], i))
        candidates = [i for i in order if kept[i]]
        kept = np.zeros(n, bool)
        kept[candidates[:keep]] = True
    out = np.isin(labels, 1 + np.flatnonzero(kept))
    if fill:
        out = ndimage.binary_fill_holes(out, cross if connectivity == 8 else square)
    return out.astype(np.uint8)

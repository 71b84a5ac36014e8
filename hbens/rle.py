"""The competition's run-length encoding, with numba kernels.

A mask is flattened in row-major order; each run of foreground pixels is written as
``start length`` with 1-indexed starts, all separated by single spaces; an empty mask
is the empty string.  In memory, runs are two int64 arrays: 0-based ``starts`` into the
flattened mask and ``lengths``.  Every fast path here is byte-identical to the plain
numpy reference kept in the tests.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

import numpy as np
from numba import get_num_threads, njit, prange

from hbens.classes import IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.zeroed import zeroed_mask

__all__ = [
    "RLEError",
    "encode",
    "decode",
    "encode_many",
    "decode_many",
    "mask_to_runs",
    "runs_to_mask",
    "runs_to_string",
    "string_to_runs",
    "is_empty",
]

_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)

# Error codes of the parser, turned into messages by ``string_to_runs``.
_OK, _NOT_INTEGER, _ODD, _START, _LENGTH, _OVERLAP, _PAST_END = range(7)


class RLEError(HbensError):
    """An RLE string that does not describe a valid mask."""


def _flat_bytes(mask: np.ndarray) -> np.ndarray:
    """A contiguous 1-D uint8 view of a mask whose nonzero pixels are foreground."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    elif mask.dtype != np.uint8:
        mask = (mask != 0).view(np.uint8)
    return np.ascontiguousarray(mask).reshape(-1)


def _words(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-byte words and 256-byte blocks (rows of 32 words) over the longest whole prefixes of ``flat``."""
    words = flat[: flat.size // 8 * 8].view(np.uint64)
    return words, words[: words.size // 32 * 32].reshape(-1, 32)


@njit(cache=True, nogil=True)
def _has_zero_byte(word):
    return ((word - _ONES) & ~word & _HIGHS) != 0


@njit(cache=True, nogil=True)
def _skip_zero_blocks(blocks, block, limit):
    """Index of the first 256-byte block in ``[block, limit)`` that has a nonzero byte, else ``limit``."""
    n_blocks = np.uint64(min(blocks.shape[0], limit))
    b = np.uint64(block)
    while b < n_blocks:
        acc = np.uint64(0)
        for j in range(32):
            acc |= blocks[b, j]
        if acc != 0:
            break
        b += np.uint64(1)
    return np.int64(b)


@njit(cache=True, nogil=True)
def _scan_runs(flat, words, blocks, low, high, starts, lengths, count):
    """Append the runs of nonzero bytes in ``flat[low:high]`` to ``starts``/``lengths`` from ``count`` on.

    Returns ``(count, position)``; ``position < high`` when the arrays filled up before the run
    starting there.  Background is skipped by 256-byte blocks and 8-byte words, foreground by words.
    """
    n = high
    n_words = min(words.size, high >> 3)
    i = low
    while i < n:
        while i < n and (i & 7) != 0 and flat[i] == 0:
            i += 1
        if (i & 7) == 0:
            w = i >> 3
            while w < n_words and (w & 31) != 0 and words[w] == 0:
                w += 1
            if (w & 31) == 0:
                w = _skip_zero_blocks(blocks, w >> 5, high >> 8) << 5
            while w < n_words and words[w] == 0:
                w += 1
            i = w << 3
            while i < n and flat[i] == 0:
                i += 1
        if i >= n:
            break
        if count == starts.size:
            return count, i
        start = i
        i += 1
        while i < n and (i & 7) != 0 and flat[i] != 0:
            i += 1
        if i < n and (i & 7) == 0:
            w = i >> 3
            while w < n_words and not _has_zero_byte(words[w]):
                w += 1
            i = w << 3
        while i < n and flat[i] != 0:
            i += 1
        starts[count] = start
        lengths[count] = i - start
        count += 1
    return count, n


@njit(cache=True, nogil=True)
def _find_runs_serial(flat, words, blocks):
    """Runs of nonzero bytes in one thread (safe to call from Python worker threads)."""
    starts = np.empty(1024, np.int64)
    lengths = np.empty(1024, np.int64)
    count, position = _scan_runs(flat, words, blocks, 0, flat.size, starts, lengths, 0)
    while position < flat.size:
        grown_starts = np.empty(2 * starts.size, np.int64)
        grown_lengths = np.empty(2 * starts.size, np.int64)
        grown_starts[:count] = starts
        grown_lengths[:count] = lengths
        starts, lengths = grown_starts, grown_lengths
        count, position = _scan_runs(flat, words, blocks, position, flat.size, starts, lengths, count)
    return starts[:count].copy(), lengths[:count].copy()


@njit(cache=True, parallel=True)
def _find_runs(flat, words, blocks, n_chunks):
    """Runs of nonzero bytes, scanned in ``n_chunks`` 256-byte-aligned chunks in parallel, then joined.

    Chunks hold up to 4096 runs each (bone masks have a few thousand in all); a mask with more
    is scanned again by :func:`_find_runs_serial`.
    """
    n = flat.size
    step = ((n + n_chunks - 1) // n_chunks + 255) // 256 * 256
    bounds = np.minimum(np.arange(n_chunks + 1) * step, n)
    starts = np.empty((n_chunks, 4096), np.int64)
    lengths = np.empty((n_chunks, 4096), np.int64)
    counts = np.zeros(n_chunks, np.int64)
    ends = np.zeros(n_chunks, np.int64)
    for k in prange(n_chunks):
        counts[k], ends[k] = _scan_runs(flat, words, blocks, bounds[k], bounds[k + 1], starts[k], lengths[k], 0)
    for k in range(n_chunks):
        if ends[k] < bounds[k + 1]:
            return _find_runs_serial(flat, words, blocks)
    out_starts = np.empty(counts.sum(), np.int64)
    out_lengths = np.empty(counts.sum(), np.int64)
    total = 0
    for k in range(n_chunks):
        for j in range(counts[k]):
            if total > 0 and j == 0 and out_starts[total - 1] + out_lengths[total - 1] == starts[k, 0]:
                out_lengths[total - 1] += lengths[k, 0]
            else:
                out_starts[total] = starts[k, j]
                out_lengths[total] = lengths[k, j]
                total += 1
    return out_starts[:total], out_lengths[:total]


@njit(cache=True, nogil=True)
def _n_digits(value):
    digits = 1
    power = np.uint64(10)
    while value >= power and digits < 19:
        digits += 1
        power *= np.uint64(10)
    return digits


@njit(cache=True, nogil=True)
def _write_number(buffer, position, value):
    """Write the decimal digits of ``value`` (uint64) at ``position``; return the end."""
    end = position + _n_digits(value)
    ten = np.uint64(10)
    for j in range(end - 1, position - 1, -1):
        buffer[j] = np.uint8(48 + value % ten)
        value //= ten
    return end


@njit(cache=True, nogil=True)
def format_runs_ascii(starts, lengths):
    """ASCII bytes of ``start length ...`` (1-indexed starts) for 0-based runs."""
    buffer = np.empty(starts.size * 40, np.uint8)
    position = 0
    for k in range(starts.size):
        if k > 0:
            buffer[position] = 32
            position += 1
        position = _write_number(buffer, position, np.uint64(starts[k] + 1))
        buffer[position] = 32
        position = _write_number(buffer, position + 1, np.uint64(lengths[k]))
    return buffer[:position]


@njit(cache=True, nogil=True, inline="always")
def _is_space(byte):
    return byte == 32 or byte == 9 or byte == 10 or byte == 13


@njit(cache=True, nogil=True)
def _read_runs(text, size, flat, starts, lengths):
    """Parse ASCII ``start length ...`` and check each run against ``size`` pixels.

    When ``flat`` is not empty, each run is set to 1 in it as soon as it is checked and nothing
    else is written, so ``flat`` must come zeroed: a fresh ``np.zeros`` array is untouched zero
    pages, and writing only the runs faults in only the pages that they cover (about a tenth of a
    real bone mask's 4 kB pages), where writing every pixel would fault in all of them.
    Otherwise the runs are stored 0-based in ``starts`` and ``lengths`` (room for
    ``len(text) // 4 + 1`` runs).  Returns ``(error_code, value)``: the number of runs when valid,
    else the index of the bad token.  The tokenizer is written out in this one loop: numba's calls
    to tuple-returning helpers made decoding twice as slow.
    """
    fill = flat.size > 0
    n = len(text)
    i = 0
    count = 0
    previous_end = 0
    start = 0
    value = 0
    while True:
        for field in range(2):
            while i < n and _is_space(text[i]):
                i += 1
            if i == n:
                if field == 1:
                    return _ODD, 2 * count
                return _OK, count
            first = i
            value = 0
            while i < n:
                digit = np.int64(text[i]) - 48
                if digit < 0 or digit > 9:
                    break
                value = value * 10 + digit
                i += 1
            if i - first > 18 or i < n and not _is_space(text[i]):
                return _NOT_INTEGER, 2 * count + field
            if field == 0:
                start = value - 1
        length = value
        if start < 0:
            return _START, 2 * count
        if length < 1:
            return _LENGTH, 2 * count + 1
        if start < previous_end:
            return _OVERLAP, 2 * count
        if start + length > size:
            return _PAST_END, 2 * count
        if fill:
            flat[start : start + length] = 1
        else:
            starts[count] = start
            lengths[count] = length
        previous_end = start + length
        count += 1


@njit(cache=True, nogil=True)
def parse_runs_ascii(text, size):
    """Parse ASCII ``start length ...`` into 0-based runs, checking them against ``size`` pixels.

    Returns ``(starts, lengths, error_code, token_index)``; ``error_code`` is 0 when valid.
    """
    starts = np.empty(len(text) // 4 + 1, np.int64)
    lengths = np.empty(len(text) // 4 + 1, np.int64)
    code, value = _read_runs(text, size, np.empty(0, np.uint8), starts, lengths)
    if code != _OK:
        return starts[:0], lengths[:0], code, value
    return starts[:value].copy(), lengths[:value].copy(), _OK, -1


@njit(cache=True, nogil=True)
def _decode_into(text, flat):
    """Parse ASCII runs and set them in the zeroed, non-empty ``flat``; return (error_code, token)."""
    no_runs = np.empty(0, np.int64)
    code, value = _read_runs(text, flat.size, flat, no_runs, no_runs)
    return code, value if code != _OK else -1


@njit(cache=True, nogil=True)
def _fill_runs(flat, starts, lengths):
    for k in range(starts.size):
        flat[starts[k] : starts[k] + lengths[k]] = 1


def is_empty(rle: object) -> bool:
    """True for the encodings of an empty mask: empty or blank string, None, NaN."""
    if rle is None:
        return True
    if isinstance(rle, float):
        return math.isnan(rle)
    return isinstance(rle, (str, bytes)) and not rle.strip()


def _ascii(rle: object) -> bytes:
    """The ASCII bytes of an RLE string (``b""`` for None and NaN), which the kernels read directly."""
    if isinstance(rle, str):
        try:
            return rle.encode("ascii")
        except UnicodeEncodeError:
            raise RLEError("RLE contains non-ASCII characters; expected 'start length ...' integers") from None
    if isinstance(rle, bytes):
        return rle
    if is_empty(rle):
        return b""
    raise RLEError(f"RLE must be a string, got {type(rle).__name__}")


def _describe(code: int, token: int, text: bytes, size: int) -> str:
    parts = [part for part in re.split(rb"[ \t\r\n]+", text) if part]
    tokens = [part.decode("ascii", "backslashreplace") for part in parts]
    shown = repr(parts[token]).removeprefix("b") if 0 <= token < len(parts) else ""
    if code == _NOT_INTEGER:
        return f"RLE token {token + 1} ({shown}) is not a non-negative integer below 10^18"
    if code == _ODD:
        return f"RLE has an odd number of tokens ({len(tokens)}); expected 'start length' pairs"
    if code == _START:
        return f"RLE run {token // 2 + 1} starts at {tokens[token]}; starts are 1-indexed (>= 1)"
    if code == _LENGTH:
        return f"RLE run {token // 2 + 1} has length {tokens[token]}; lengths must be >= 1"
    if code == _OVERLAP:
        return f"RLE run {token // 2 + 1} (start {tokens[token]}) overlaps or precedes the previous run"
    return (
        f"RLE run {token // 2 + 1} (start {tokens[token]}, length {tokens[token + 1]}) "
        f"ends past the last pixel {size} of the frame; if the images are larger, pass --image-size"
    )


def string_to_runs(rle: object, shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Parse an RLE string into 0-based ``(starts, lengths)``; raise RLEError when invalid.

    Empty strings, None and NaN are the empty mask.  Runs must be increasing,
    non-overlapping and inside ``shape``.
    """
    text = _ascii(rle)
    size = int(np.prod(shape))
    starts, lengths, code, token = parse_runs_ascii(text, size)
    if code != _OK:
        raise RLEError(_describe(code, token, text, size))
    return starts, lengths


def runs_to_string(starts: np.ndarray, lengths: np.ndarray) -> str:
    """Write 0-based runs as the competition's RLE string."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    return format_runs_ascii(starts, lengths).tobytes().decode("ascii")


def mask_to_runs(mask: np.ndarray, parallel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """0-based ``(starts, lengths)`` of the nonzero pixels of a mask, in row-major order.

    ``parallel`` splits the scan over numba's threads; pass False when calling from
    Python worker threads (numba's default thread pool is not re-entrant).
    """
    flat = _flat_bytes(mask)
    if parallel and flat.size >= 1 << 18:
        return _find_runs(flat, *_words(flat), get_num_threads())
    return _find_runs_serial(flat, *_words(flat))


def runs_to_mask(starts: np.ndarray, lengths: np.ndarray, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """A uint8 0/1 mask of ``shape`` with the given 0-based runs set."""
    flat = zeroed_mask(int(np.prod(shape)))
    _fill_runs(flat, np.asarray(starts, np.int64), np.asarray(lengths, np.int64))
    return flat.reshape(shape)


def encode(mask: np.ndarray, parallel: bool = True) -> str:
    """Encode a 2-D mask (nonzero = foreground) as the competition's RLE string."""
    return runs_to_string(*mask_to_runs(mask, parallel))


def decode(rle: object, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """Decode an RLE string (empty, None or NaN = empty mask) into a uint8 0/1 mask.

    The mask is allocated zeroed and only its runs are written.  A caller that keeps its masks
    gets fresh zero pages from the system, in 4 kB pages (see :func:`~hbens.zeroed.zeroed_mask`),
    and faults in only those that the runs cover; one that drops each mask gets recycled memory,
    which calloc zeroes in one pass.
    """
    text = _ascii(rle)
    flat = zeroed_mask(shape[0] * shape[1])
    code, token = _decode_into(text, flat)
    if code != _OK:
        raise RLEError(_describe(code, token, text, flat.size))
    return flat.reshape(shape)


def _workers(workers: int | None) -> int:
    return workers or os.cpu_count() or 1


def encode_many(masks: Iterable[np.ndarray]) -> list[str]:
    """Encode many masks (a 3-D array or an iterable of 2-D ones), each scanned on all cores."""
    return [encode(mask) for mask in masks]


def decode_many(
    rles: Sequence[object], shape: tuple[int, int] = IMAGE_SHAPE, workers: int | None = None
) -> np.ndarray:
    """Decode many RLE strings into one ``(len(rles), *shape)`` uint8 array, in parallel.

    The array is allocated zeroed (untouched zero pages) and only the runs are written, as in
    :func:`decode`.
    """
    out = zeroed_mask((len(rles), *shape))

    def fill(index: int) -> None:
        text = _ascii(rles[index])
        code, token = _decode_into(text, out[index].reshape(-1))
        if code != _OK:
            raise RLEError(f"row {index}: {_describe(code, token, text, out[index].size)}")

    with ThreadPoolExecutor(_workers(workers)) as pool:
        list(pool.map(fill, range(len(rles))))
    return out

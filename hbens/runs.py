"""Run-length masks in memory: row segments, bounding boxes and crops.

A mask is held as :data:`Runs`, two int64 arrays of 0-based ``starts`` into the row-major
flattened frame and ``lengths`` (see :mod:`hbens.rle` for the text form).  Work that needs
rows (components, holes, boxes) uses :data:`Segments`: ``(rows, begins, ends)`` with
exclusive ends, one per stretch of a run inside one row.  Costs grow with the number of runs,
never with the frame.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hbens.classes import IMAGE_SHAPE
from hbens.rle import mask_to_runs

Runs = tuple[np.ndarray, np.ndarray]
"""0-based ``(starts, lengths)`` int64 arrays, sorted and not touching."""
Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)`` of a region of a frame, bottom and right exclusive."""
Segments = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(rows, begins, ends)`` int64 arrays of row segments in row-major order (ends exclusive)."""
EMPTY_RUNS: Runs = (np.empty(0, np.int64), np.empty(0, np.int64))


@njit(cache=True, nogil=True)
def _row_segments(starts, lengths, width):
    """Cut runs at row ends into ``(row, first column, end column)`` segments, in row-major order."""
    total = 0
    for k in range(starts.size):
        total += (starts[k] + lengths[k] - 1) // width - starts[k] // width + 1
    rows = np.empty(total, np.int64)
    begins = np.empty(total, np.int64)
    ends = np.empty(total, np.int64)
    n = 0
    for k in range(starts.size):
        position = starts[k]
        end = position + lengths[k]
        while position < end:
            row = position // width
            column = position - row * width
            piece = min(end - position, width - column)
            rows[n] = row
            begins[n] = column
            ends[n] = column + piece
            n += 1
            position += piece
    return rows, begins, ends


@njit(cache=True, nogil=True)
def _segments_to_runs(rows, begins, ends, width):
    """Runs of row-major sorted segments, joining segments that touch (also across a row end)."""
    starts = np.empty(rows.size, np.int64)
    lengths = np.empty(rows.size, np.int64)
    count = 0
    for i in range(rows.size):
        start = rows[i] * width + begins[i]
        if count > 0 and starts[count - 1] + lengths[count - 1] == start:
            lengths[count - 1] += ends[i] - begins[i]
        else:
            starts[count] = start
            lengths[count] = ends[i] - begins[i]
            count += 1
    return starts[:count].copy(), lengths[:count].copy()


@njit(cache=True, nogil=True)
def _fill_segments(crop, rows, begins, ends, top, left):
    height, width = crop.shape
    for i in range(rows.size):
        r = rows[i] - top
        if 0 <= r < height:
            c0 = max(begins[i] - left, 0)
            c1 = min(ends[i] - left, width)
            if c0 < c1:
                crop[r, c0:c1] = 1


def runs_to_segments(runs: Runs, shape: tuple[int, int] = IMAGE_SHAPE) -> Segments:
    """Row segments of a run-length mask in a frame of ``shape``.

    Example
    -------
    >>> runs_to_segments((np.array([3]), np.array([4])), (3, 5))[0]
    array([0, 1])
    """
    starts, lengths = runs
    return _row_segments(np.asarray(starts, np.int64), np.asarray(lengths, np.int64), shape[1])


def segments_to_runs(segments: Segments, shape: tuple[int, int] = IMAGE_SHAPE) -> Runs:
    """Runs of row-major sorted segments (segments that touch are joined)."""
    return _segments_to_runs(*segments, shape[1])


def box_to_runs(box: np.ndarray, top: int, left: int, shape: tuple[int, int] = IMAGE_SHAPE) -> Runs:
    """Runs, in the frame of ``shape``, of a mask crop whose top-left pixel is at ``(top, left)``."""
    rows, begins, ends = runs_to_segments(mask_to_runs(box, parallel=False), box.shape)
    return _segments_to_runs(rows + top, begins + left, ends + left, shape[1])


def runs_bounds(runs: Runs, shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive ends) of runs, or None when empty."""
    starts, lengths = runs
    if starts.size == 0:
        return None
    width = shape[1]
    ends = starts + lengths - 1
    top, bottom = int(starts[0] // width), int(ends[-1] // width) + 1
    crosses = (starts // width) != (ends // width)
    if crosses.any():
        return top, 0, bottom, width
    return top, int((starts % width).min()), bottom, int((ends % width).max()) + 1


def runs_to_box(runs: Runs, box: tuple[int, int, int, int], shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """The uint8 crop ``box = (top, left, bottom, right)`` of the mask that the runs describe."""
    top, left, bottom, right = box
    crop = np.zeros((bottom - top, right - left), np.uint8)
    _fill_segments(crop, *runs_to_segments(runs, shape), top, left)
    return crop


def union_runs(a: Runs, b: Runs) -> Runs:
    """Runs of the union of two run-length masks.

    Example
    -------
    >>> union_runs((np.array([0]), np.array([2])), (np.array([1]), np.array([3])))
    (array([0]), array([4]))
    """
    starts = np.concatenate([np.asarray(a[0], np.int64), np.asarray(b[0], np.int64)])
    if starts.size == 0:
        return EMPTY_RUNS
    ends = starts + np.concatenate([np.asarray(a[1], np.int64), np.asarray(b[1], np.int64)])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    first = np.ones(starts.size, bool)
    first[1:] = starts[1:] > reach[:-1]
    group = np.cumsum(first) - 1
    new_starts = starts[first]
    new_ends = np.zeros(new_starts.size, np.int64)
    np.maximum.at(new_ends, group, ends)
    return new_starts, new_ends - new_starts

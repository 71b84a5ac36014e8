"""Connected components of run-length masks: a union-find over row segments.

A mask's runs are cut into row segments; segments of consecutive rows that touch (sharing a
column for 4-connectivity, or a column or a corner for 8-connectivity) are joined.  Components
are numbered by their first pixel in row-major order, which also breaks ties between equal
areas.  Cost grows with the number of segments, not with the frame.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hbens.classes import IMAGE_SHAPE
from hbens.runs import Segments


@njit(cache=True, nogil=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _label_segments(rows, begins, ends, diagonal):
    """Component number of each segment (numbered by first pixel) and the area of each component."""
    n = rows.size
    parent = np.arange(n)
    reach = 1 if diagonal else 0
    previous = 0
    current = 0
    while current < n:
        row = rows[current]
        current_end = current
        while current_end < n and rows[current_end] == row:
            current_end += 1
        if previous < current and rows[current - 1] == row - 1:
            p = previous
            q = current
            while p < current and q < current_end:
                if begins[p] < ends[q] + reach and begins[q] < ends[p] + reach:
                    a = _find(parent, p)
                    b = _find(parent, q)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
                if ends[p] <= ends[q]:
                    p += 1
                else:
                    q += 1
        previous = current
        current = current_end
    labels = np.empty(n, np.int64)
    number = np.full(n, -1, np.int64)
    count = 0
    for i in range(n):
        root = _find(parent, i)
        if number[root] < 0:
            number[root] = count
            count += 1
        labels[i] = number[root]
    areas = np.zeros(count, np.int64)
    for i in range(n):
        areas[labels[i]] += ends[i] - begins[i]
    return labels, areas


@njit(cache=True, nogil=True)
def _background_segments(rows, begins, ends, width):
    """Background segments of the rows from the first to the last foreground row, and their row edges."""
    n = rows.size
    first_row = rows[0]
    last_row = rows[n - 1]
    capacity = n + (last_row - first_row + 1)
    bg_rows = np.empty(capacity, np.int64)
    bg_begins = np.empty(capacity, np.int64)
    bg_ends = np.empty(capacity, np.int64)
    count = 0
    i = 0
    for row in range(first_row, last_row + 1):
        column = 0
        while i < n and rows[i] == row:
            if begins[i] > column:
                bg_rows[count] = row
                bg_begins[count] = column
                bg_ends[count] = begins[i]
                count += 1
            column = ends[i]
            i += 1
        if column < width:
            bg_rows[count] = row
            bg_begins[count] = column
            bg_ends[count] = width
            count += 1
    return bg_rows[:count].copy(), bg_begins[:count].copy(), bg_ends[:count].copy()


def label_segments(segments: Segments, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Component of each segment, numbered by first pixel in row-major order, and component areas."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    return _label_segments(*segments, connectivity == 8)


def hole_segments(segments: Segments, shape: tuple[int, int] = IMAGE_SHAPE, connectivity: int = 8) -> Segments:
    """Background segments not connected to the image border (holes), for a foreground of ``connectivity``.

    The background takes the other connectivity: 8-connected bone, 4-connected holes.
    """
    rows = segments[0]
    empty = np.empty(0, np.int64)
    if rows.size == 0:
        return empty, empty, empty
    width = shape[1]
    bg = _background_segments(*segments, width)
    labels, _ = label_segments(bg, 12 - connectivity)
    # Rows above the first and below the last bone row are all background and reach the border
    # (or are the image's own first and last rows), so the segments of those two rows reach it too.
    touches = (bg[1] == 0) | (bg[2] == width) | (bg[0] == rows[0]) | (bg[0] == rows[-1])
    border = np.zeros(labels.max() + 1 if labels.size else 0, bool)
    border[labels[touches]] = True
    hole = ~border[labels]
    return bg[0][hole], bg[1][hole], bg[2][hole]

"""Bilinear upsampling of low-resolution logits, only over the crop that a bone covers.

Matches ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` on the full
frame, but costs the size of the crop: a full-size map per class is never built.
"""

from __future__ import annotations

import numpy as np


def _axis_weights(source: int, target: int, begin: int, end: int) -> tuple[int, int, np.ndarray]:
    """Interpolation matrix from source rows ``[low, high)`` to target rows ``[begin, end)``."""
    scale = np.float32(source) / np.float32(target)
    position = np.maximum(scale * (np.arange(begin, end, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    first = np.floor(position).astype(np.int64)
    second = np.minimum(first + 1, source - 1)
    fraction = (position - first).astype(np.float32)
    low, high = int(first.min()), int(second.max()) + 1
    matrix = np.zeros((end - begin, high - low), np.float32)
    rows = np.arange(end - begin)
    matrix[rows, first - low] += 1 - fraction
    matrix[rows, second - low] += fraction
    return low, high, matrix


def upsample_crop(logits: np.ndarray, shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """The ``box = (top, left, bottom, right)`` crop of ``logits`` (h, w) upsampled to ``shape``."""
    top, left, bottom, right = box
    if logits.shape == tuple(shape):
        return np.ascontiguousarray(logits[top:bottom, left:right], np.float32)
    y_low, y_high, ry = _axis_weights(logits.shape[0], shape[0], top, bottom)
    x_low, x_high, rx = _axis_weights(logits.shape[1], shape[1], left, right)
    return ry @ logits[y_low:y_high, x_low:x_high].astype(np.float32) @ rx.T


def source_box(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Target-frame box holding every pixel interpolated from a flagged source row and column.

    ``rows`` (h,) and ``columns`` (w,) flag the source rows and columns that hold cells of interest.
    """
    (h,), (w,) = rows.shape, columns.shape
    rows, columns = np.flatnonzero(rows), np.flatnonzero(columns)
    if rows.size == 0 or columns.size == 0:
        return None

    def span(first: int, last: int, source: int, target: int) -> tuple[int, int]:
        scale = target / source
        low = max(int(np.floor((first - 1 + 0.5) * scale - 0.5)), 0)
        return low, min(int(np.ceil((last + 1 + 0.5) * scale + 0.5)) + 1, target)

    top, bottom = span(int(rows[0]), int(rows[-1]), h, shape[0])
    left, right = span(int(columns[0]), int(columns[-1]), w, shape[1])
    return top, left, bottom, right

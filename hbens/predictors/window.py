"""Sliding-window inference: overlapping tiles blended with mean or Gaussian weights."""

from __future__ import annotations

from typing import Callable

import numpy as np

from hbens.errors import HbensError

BLENDS = ("gaussian", "mean")


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Tile starts covering ``length`` with tiles of ``window`` overlapping by ``overlap``."""
    if window >= length:
        return [0]
    stride = max(1, int(round(window * (1 - overlap))))
    starts = list(range(0, length - window, stride))
    return starts + [length - window]


def blend_weights(window: int, blend: str) -> np.ndarray:
    """(window, window) weights: ones, or a Gaussian with sigma window/8 (never zero)."""
    if blend not in BLENDS:
        raise HbensError(f"--blend {blend}: valid blends are {', '.join(BLENDS)}")
    if blend == "mean":
        return np.ones((window, window), np.float32)
    axis = np.arange(window, dtype=np.float32) - (window - 1) / 2
    g = np.exp(-(axis**2) / (2 * (window / 8) ** 2))
    weights = np.outer(g, g)
    return np.maximum(weights / weights.max(), 1e-3).astype(np.float32)


def predict_windows(
    forward: Callable, image, window: int, overlap: float = 0.5, blend: str = "gaussian", batch_size: int = 1
):
    """Logits of a (1, C, H, W) tensor predicted tile by tile; one tile when ``window`` >= the image."""
    import torch

    if not 0 <= overlap < 1:
        raise HbensError(f"--overlap {overlap}: must be in [0, 1)")
    _, _, height, width = image.shape
    wy, wx = min(window, height), min(window, width)
    tiles = [(y, x) for y in window_starts(height, wy, overlap) for x in window_starts(width, wx, overlap)]
    weights = torch.from_numpy(blend_weights(window, blend)[:wy, :wx]).to(image.device)
    total = None
    norm = torch.zeros((height, width), device=image.device)
    for first in range(0, len(tiles), batch_size):
        group = tiles[first : first + batch_size]
        logits = forward(torch.cat([image[:, :, y : y + wy, x : x + wx] for y, x in group]))
        if total is None:
            total = torch.zeros((1, logits.shape[1], height, width), device=image.device)
        for (y, x), tile in zip(group, logits):
            total[0, :, y : y + wy, x : x + wx] += tile * weights
            norm[y : y + wy, x : x + wx] += weights
    return total / norm

"""Pictures of submissions: each class's mask in its own color, over the X-ray when there is one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.rle import string_to_runs
from hbens.runs import runs_bounds, runs_to_box


def class_colors() -> np.ndarray:
    """(29, 3) uint8 colors, distinct for neighbouring classes."""
    import matplotlib

    first, second = matplotlib.colormaps["tab20"], matplotlib.colormaps["tab20b"]
    colors = [first(i) if i < 20 else second(2 * (i - 20)) for i in range(len(CLASSES))]
    return (np.array([c[:3] for c in colors]) * 255).astype(np.uint8)


def overlay(rles: dict[str, str], image: np.ndarray | None = None, shape: tuple[int, int] = IMAGE_SHAPE,
            alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 picture: each class's mask blended in its color over ``image`` (gray, uint8) or black."""
    base = np.zeros((*shape, 3), np.float32) if image is None else np.repeat(image[:, :, None], 3, 2).astype(np.float32)
    colors = class_colors().astype(np.float32)
    for index, name in enumerate(CLASSES):
        runs = string_to_runs(rles.get(name, ""), shape)
        box = runs_bounds(runs, shape)
        if box is None:
            continue
        top, left, bottom, right = box
        mask = runs_to_box(runs, box, shape).astype(bool)
        region = base[top:bottom, left:right]
        region[mask] = (1 - alpha) * region[mask] + alpha * colors[index]
    return base.clip(0, 255).astype(np.uint8)


PICTURE_SUFFIXES = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg"}
"""The encoder (OpenCV's) of each picture file suffix."""


def picture_suffix(path: str | Path) -> str:
    """The encoder suffix of an output picture; HbensError for a suffix it cannot honour."""
    suffix = Path(path).suffix.lower()
    if suffix not in PICTURE_SUFFIXES:
        raise HbensError(f"-o {path}: cannot write {suffix or 'a file without suffix'}; name it .png or .jpg")
    return PICTURE_SUFFIXES[suffix]


def save_picture(path: str | Path, picture: np.ndarray, scale: float = 0.5, legend: bool = True,
                 inputs: tuple[str, ...] = ()) -> None:
    """Save a picture (atomically) as PNG or JPEG by the suffix of ``path``, resized by ``scale``,
    with a class legend."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from hbens.outputs import atomic_path

    if not 0 < scale <= 4:
        raise HbensError(f"--scale {scale}: must be in (0, 4]")
    suffix = picture_suffix(path)
    height, width = picture.shape[:2]
    if min(height, width) * scale < 1:
        raise HbensError(f"--scale {scale}: a {width}x{height} image would be drawn smaller than a pixel; "
                         f"give at least {1 / min(height, width):.2g}")
    dpi = 100
    figure = plt.figure(figsize=(width * scale / dpi + (2.2 if legend else 0), height * scale / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, width * scale / dpi / figure.get_figwidth(), 1))
    axes.imshow(picture, interpolation="antialiased")
    axes.axis("off")
    if legend:
        handles = [Patch(color=c / 255, label=n) for c, n in zip(class_colors(), CLASSES)]
        figure.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    figure.canvas.draw()
    rendered = np.asarray(figure.canvas.buffer_rgba())[:, :, 2::-1]
    plt.close(figure)
    encoded, data = cv2.imencode(suffix, np.ascontiguousarray(rendered))
    if not encoded:
        raise HbensError(f"{path}: the picture could not be encoded as {suffix}")
    with atomic_path(path, inputs) as temp:
        temp.write_bytes(data.tobytes())

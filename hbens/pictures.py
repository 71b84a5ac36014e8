"""Pictures of submissions: each class's mask in its own color, over the X-ray when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.outputs import atomic_path
from hbens.rle import runs_to_mask, string_to_runs
from hbens.runs import runs_bounds, runs_to_box
from hbens.submission import scan_submission


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
                 inputs: tuple[str, ...] = (), *,
                 entries: dict[str, tuple[int, int, int]] | None = None) -> None:
    """Save a picture (atomically) as PNG or JPEG by the suffix of ``path``, resized by ``scale``,
    with a legend: ``entries`` (label: RGB), by default each class's color."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

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
        entries = entries or dict(zip(CLASSES, map(tuple, class_colors())))
        handles = [Patch(color=np.array(c) / 255, label=n) for n, c in entries.items()]
        figure.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
    figure.canvas.draw()
    rendered = np.asarray(figure.canvas.buffer_rgba())[:, :, 2::-1]
    plt.close(figure)
    encoded, data = cv2.imencode(suffix, np.ascontiguousarray(rendered))
    if not encoded:
        raise HbensError(f"{path}: the picture could not be encoded as {suffix}")
    with atomic_path(path, inputs) as temp:
        temp.write_bytes(data.tobytes())


COMPARE_COLORS: dict[str, tuple[int, int, int]] = {
    "in both": (40, 200, 60),
    "only in the first": (230, 40, 40),
    "only in the second": (40, 110, 255),
    "a different class in each": (220, 60, 220),
}
"""RGB colors of :func:`compare_overlay`, by what a pixel is; also the legend of ``hbens show --compare``."""


@dataclass(frozen=True)
class Comparison:
    """Where two submissions' masks of one image agree, as (H, W) bool arrays (any class)."""

    both: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @property
    def layers(self) -> dict[str, np.ndarray]:
        """Disjoint masks keyed like :data:`COMPARE_COLORS`: a pixel where the submissions
        disagree on one class and agree on none is never counted as agreement."""
        swapped = self.first & self.second
        first, second = self.first & ~swapped, self.second & ~swapped
        return {"in both": self.both & ~(first | second | swapped), "only in the first": first,
                "only in the second": second, "a different class in each": swapped}

    def counts(self) -> dict[str, int]:
        """Pixels of each layer."""
        return {name: int(mask.sum()) for name, mask in self.layers.items()}


def compare_masks(first: dict[str, str], second: dict[str, str], *, shape: tuple[int, int]) -> Comparison:
    """Compare two submissions' rows of one image, class by class.

    Parameters
    ----------
    first, second : dict
        ``{class: rle}`` of each submission; an absent class is an empty mask.
    shape : tuple of int, keyword-only
        Height and width of the image.

    Returns
    -------
    Comparison
        ``both``: pixels some class has in both; ``first`` (``second``): pixels some class has only
        in the first (second).  A pixel in ``first`` and ``second`` has a class in one submission
        and another class in the other (a swap of neighbouring bones).
    """
    both, only_first, only_second = (np.zeros(shape, bool) for _ in range(3))
    for name in CLASSES:
        a = runs_to_mask(*string_to_runs(first.get(name, ""), shape), shape).astype(bool)
        b = runs_to_mask(*string_to_runs(second.get(name, ""), shape), shape).astype(bool)
        both |= a & b
        only_first |= a & ~b
        only_second |= b & ~a
    return Comparison(both, only_first, only_second)


def compare_overlay(comparison: Comparison, image: np.ndarray | None = None, *,
                    alpha: float = 0.6) -> np.ndarray:
    """(H, W, 3) uint8 picture of a :class:`Comparison` over ``image`` (gray, uint8) or black,
    colored by :data:`COMPARE_COLORS`."""
    gray = np.zeros(comparison.both.shape, np.float32) if image is None else image.astype(np.float32)
    base = np.repeat(gray[:, :, None], 3, 2)
    for name, mask in comparison.layers.items():
        base[mask] = (1 - alpha) * base[mask] + alpha * np.array(COMPARE_COLORS[name], np.float32)
    return base.clip(0, 255).astype(np.uint8)


def image_rows(submission: str | Path, image: str | None = None,
               shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[str, dict[str, str]]:
    """One image's ``{class: rle}`` rows of a submission (checked in the frame ``shape``): ``image``, or
    the first image when None.

    Raises HbensError naming the file when it has no rows or none for ``image``.
    """
    index = scan_submission(submission, shape)
    if not index.images:
        raise HbensError(f"{submission}: no rows to draw")
    image = image or index.images[0]
    if image not in index.images:
        raise HbensError(f"{submission}: no rows for image {image}; "
                         f"it has e.g. {', '.join(index.images[:3])}")
    with index.open() as handle:
        return image, {name: index.read_rle((own, name), handle) for own, name in index.rows if own == image}


def png_bytes(picture: np.ndarray, *, width: int | None = None) -> bytes:
    """PNG bytes of an RGB (or gray) uint8 picture, resized to ``width`` pixels across when given."""
    if width is not None and width != picture.shape[1]:
        height = max(1, round(picture.shape[0] * width / picture.shape[1]))
        picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    if picture.ndim == 3:
        picture = picture[:, :, ::-1]
    encoded, data = cv2.imencode(".png", np.ascontiguousarray(picture))
    if not encoded:
        raise HbensError("the picture could not be encoded as PNG")
    return data.tobytes()

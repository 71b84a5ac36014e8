"""The frame: the image size (H, W) that RLE strings, annotations and probability maps describe.

One rule decides it for every command and library function (``shape=``):

1. the size given (``--image-size``, ``shape=``);
2. else the size hbens stores record (every store of a run must agree);
3. else the X-rays' size (``--images``);
4. else the largest size of the saved arrays (another pipeline's maps);
5. else the competition's 2048x2048.

A saved array smaller than the frame is enlarged to it (bilinearly on logits); one of the frame's
size is used as it is; one larger than the frame, a store or an X-ray of another size, is one
error naming both frames.  A CSV carries no frame: when its runs or annotations look drawn for
another size, or every Dice is 0, a :class:`FrameWarning` says so (the CLI prints it as a hint).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from hbens.classes import IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.images import find_images, image_shape

Shape = tuple[int, int]
Sized = tuple[str, Shape]
"""What has a frame, and that frame: ``("stores/a", (384, 384))``."""

REFERENCE_SIDE = IMAGE_SHAPE[0]
"""The side at which pixel settings (the CRF's kernel widths and margin) have their default values."""

SMALL_EXTENT = 4
"""A CSV whose runs all lie in the top 1/SMALL_EXTENT of the frame's rows looks drawn for smaller images."""

HINTED_ROWS = 512
"""Frames of fewer rows get no such hint (small test frames hold a few runs at the top by design)."""

ADVICE = "pass --image-size (shape= in the API) with the images' size"


class FrameWarning(UserWarning):
    """The inputs look drawn for another image size than the frame; the results may be wrong."""


def text(shape: Sequence[int]) -> str:
    """``384x384``."""
    return f"{shape[0]}x{shape[1]}"


def conflict(first: Sized, second: Sized, advice: str = "pass inputs of the same images") -> HbensError:
    """The one error of two frames in one run, naming both."""
    return HbensError(f"{first[0]} is {text(first[1])} but {second[0]} is {text(second[1])}; {advice}")


def _agreed(sized: Sequence[Sized]) -> Sized | None:
    """The first of ``sized``; HbensError when another has a different frame."""
    for other in sized[1:]:
        if tuple(other[1]) != tuple(sized[0][1]):
            raise conflict(sized[0], other)
    return sized[0] if sized else None


def _largest(saved: Sequence[Sized]) -> Sized | None:
    """The saved array that every other fits in (both sides); HbensError when none does."""
    if not saved:
        return None
    largest = max(saved, key=lambda item: item[1][0] * item[1][1])
    for other in saved:
        if other[1][0] > largest[1][0] or other[1][1] > largest[1][1]:
            raise conflict(largest, other, f"{ADVICE} (smaller maps are enlarged to it)")
    return largest


def resolve_frame(given: Shape | None = None, *, stores: Sequence[Sized] = (), images: Sized | None = None,
                  saved: Sequence[Sized] = ()) -> Shape:
    """The frame of one run, by the rule of this module; HbensError naming two frames that disagree.

    Parameters
    ----------
    given
        ``--image-size``, or None.
    stores
        ``(name, shape)`` of hbens stores (or folders of them): they record their frame.
    images
        ``(name, shape)`` of the X-rays, or None.
    saved
        ``(name, own shape)`` of saved arrays: each may be smaller than the frame, never larger.
    """
    named = ("--image-size", tuple(given)) if given is not None else None
    fixed = [item for item in (named, _agreed(list(stores)), images) if item is not None]
    _agreed(fixed)
    frame = fixed[0] if fixed else _largest(list(saved))
    if frame is None:
        return IMAGE_SHAPE
    for item in saved:
        if item[1][0] > frame[1][0] or item[1][1] > frame[1][1]:
            raise conflict(frame, item, "saved maps may be smaller than the frame (they are enlarged), never "
                                        "larger; pass maps of the same images or --image-size")
    return tuple(frame[1])


def images_frame(images) -> Sized | None:
    """``(folder, shape)`` of the first X-ray under ``images`` (its PNG header), or None without a folder."""
    if images is None:
        return None

    return str(images), image_shape(find_images(images)[0])


def csv_frame(given: Shape | None = None, images=None) -> Shape:
    """The frame of commands that read only CSVs: ``given``, else the X-rays' size, else 2048x2048."""
    return resolve_frame(given, images=images_frame(images))


def scaled(value: float, shape: Shape) -> float:
    """A pixel setting defined at :data:`REFERENCE_SIDE`, scaled to a frame by its longer side."""
    return value * max(shape) / REFERENCE_SIDE


def hint(message: str) -> None:
    """Issue a :class:`FrameWarning` (the CLI prints it as a hint on stderr)."""
    warnings.warn(message, FrameWarning, stacklevel=3)


def check_extent(path, extent: int, shape: Shape) -> None:
    """Hint when every run of the CSV ``path`` ends in the top 1/:data:`SMALL_EXTENT` of the frame's rows
    (``extent``: the end of its last run, in pixels): its images are likely smaller."""
    rows = math.ceil(extent / shape[1])
    if 0 < extent and rows * SMALL_EXTENT <= shape[0] and shape[0] >= HINTED_ROWS:
        hint(f"{path}: every run lies in the top {rows} of the {shape[0]} rows of the {text(shape)} frame; "
             f"if its images are smaller, {ADVICE}")


def check_dice(values, predicted: bool, shape: Shape, what: str = "every Dice") -> None:
    """Hint when the Dice ``values`` are all 0 although the prediction was not empty (``predicted``)."""
    if predicted and np.size(values) and not np.any(values):
        hint(f"{what} is 0 in the {text(shape)} frame; if the images are not {text(shape)}, {ADVICE}")

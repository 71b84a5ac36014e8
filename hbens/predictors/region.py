"""Region (crop) models: where a second-stage model runs on each image, and how its maps go back.

A first-stage prediction (FIRST: a submission CSV, or a folder of probability maps thresholded at
0.5) gives each image's masks of some classes (by default the eight wrist bones).  The region is
the bounding box of their union, grown by a margin, made square and clamped to the image
(:func:`region_of`).  The client computes every image's :class:`Region` (:func:`image_regions`),
so that a worker never reads FIRST: it cuts the region (:func:`cut_region`), runs the model on it,
upsamples the logits over the region only and shifts the crops into the image (:func:`paste_crops`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from hbens.errors import HbensError
from hbens.images import image_shape
from hbens.maps.folders import open_map_folder
from hbens.maps.probabilities import ClassCrop, crop_runs
from hbens.outputs import PathLike
from hbens.rle import RLEError, string_to_runs
from hbens.runs import EMPTY_RUNS, Box, Runs, runs_bounds, union_runs
from hbens.settings import examples
from hbens.submission import scan_submission

FIRST_THRESHOLD = 0.5
"""A first-stage map counts as a mask where its probability exceeds this."""


@dataclass(frozen=True)
class Region:
    """Where a region model runs on one image: ``box`` in a frame of ``shape`` (FIRST's image shape).

    ``found`` is False when FIRST had none of the crop classes and the box is the whole frame.
    """

    box: Box
    shape: tuple[int, int]
    found: bool = True


def _axis_span(begin: int, end: int, *, side: int, size: int) -> tuple[int, int]:
    """``side`` pixels centred on ``[begin, end)``, shifted inside ``[0, size)``; all of it when larger."""
    if side >= size:
        return 0, size
    start = min(max(begin - (side - (end - begin)) // 2, 0), size - side)
    return start, start + side


def square_box(bounds: Box, shape: tuple[int, int], *, margin: float) -> Box:
    """The square around ``bounds`` grown by ``margin``, clamped to a frame of ``shape``.

    Parameters
    ----------
    bounds
        The box to grow, ``(top, left, bottom, right)``.
    shape
        Height and width of the frame.
    margin
        Added on each side, as a fraction of the box's longer side.

    Returns
    -------
    Box
        A square of side ``longer + 2 * round(margin * longer)`` centred on ``bounds`` (the odd pixel
        after it) and shifted inside the frame; along an axis shorter than the side, the whole axis.
    """
    top, left, bottom, right = bounds
    longer = max(bottom - top, right - left)
    side = longer + 2 * round(margin * longer)
    top, bottom = _axis_span(top, bottom, side=side, size=shape[0])
    left, right = _axis_span(left, right, side=side, size=shape[1])
    return top, left, bottom, right


def region_of(runs_by_class: Sequence[Runs], shape: tuple[int, int], *, margin: float) -> Box | None:
    """The region around the union of some classes' masks (see :func:`square_box`).

    Parameters
    ----------
    runs_by_class
        Each class's mask as runs in a frame of ``shape``.
    shape
        Height and width of the frame.
    margin
        Added on each side, as a fraction of the union box's longer side.

    Returns
    -------
    Box or None
        None when every mask is empty.
    """
    union = EMPTY_RUNS
    for runs in runs_by_class:
        union = union_runs(union, runs)
    bounds = runs_bounds(union, shape)
    return None if bounds is None else square_box(bounds, shape, margin=margin)


def cut_region(image: np.ndarray, region: Region, *, name: str) -> np.ndarray:
    """The pixels of ``image`` inside the region (a contiguous copy).

    Raises
    ------
    HbensError
        When the image is not of the shape FIRST was made for.
    """
    if tuple(image.shape) != tuple(region.shape):
        height, width = region.shape
        raise HbensError(f"{name}: the image is {image.shape[0]}x{image.shape[1]} but --crop-from maps it at "
                         f"{height}x{width}; pass the first-stage prediction of these images")
    top, left, bottom, right = region.box
    return np.ascontiguousarray(image[top:bottom, left:right])


def paste_crops(crops: Sequence[ClassCrop], *, origin: tuple[int, int]) -> list[ClassCrop]:
    """Crops made in a region's frame, moved into the image's: boxes shifted by ``origin`` (the region's
    top-left pixel); empty crops stay empty."""
    top, left = origin
    return [ClassCrop((crop.box[0] + top, crop.box[1] + left, crop.box[2] + top, crop.box[3] + left),
                      crop.values) if crop.values.size else crop for crop in crops]


def region_meta(region: Region) -> dict[str, object]:
    """What a store records of its region: the box and whether FIRST had any crop class."""
    return {"box": list(region.box), "crop_classes_found": region.found}


def _csv_masks(first: PathLike, images: Sequence[Path], classes: Sequence[str]
               ) -> Iterator[tuple[str, tuple[int, int], list[Runs]]]:
    """Each image's name, shape (from its PNG header) and masks of ``classes`` in a submission CSV."""
    index = scan_submission(first)
    _refuse_missing(first, [path.name for path in images], set(index.images))
    with index.open() as handle:
        for path in images:
            shape = image_shape(path)
            runs = []
            for name in classes:
                if (path.name, name) not in index.rows:
                    continue
                try:
                    runs.append(string_to_runs(index.read_rle((path.name, name), handle), shape))
                except RLEError as error:
                    size = f"{shape[0]}x{shape[1]}"
                    raise HbensError(f"{first}: {path.name} {name}: {error} (the image is {size}); "
                                     "pass the first-stage prediction of these images") from None
            yield path.name, shape, runs


def _folder_masks(first: PathLike, images: Sequence[Path], classes: Sequence[str]
                  ) -> Iterator[tuple[str, tuple[int, int], list[Runs]]]:
    """Each image's name, shape and masks of ``classes`` (p > 0.5) in a folder of probability maps."""
    folder = open_map_folder(first)
    _refuse_missing(first, [path.name for path in images], set(folder.files))
    for path in images:
        maps = folder.files[path.name].read()
        crops = [crop for crop in (maps.crop(name) for name in classes) if crop is not None]
        yield path.name, maps.shape, [crop_runs(crop, maps.shape, FIRST_THRESHOLD) for crop in crops]


def _refuse_missing(first: PathLike, names: Sequence[str], known: set[str]) -> None:
    """HbensError naming the images of ``names`` that FIRST lacks."""
    missing = [name for name in names if name not in known]
    if missing:
        raise HbensError(f"--crop-from {first}: no prediction of {len(missing)} image(s) "
                         f"({examples(missing)}); pass the first-stage prediction of the same images")


def image_regions(
    first: PathLike, images: Sequence[Path], *, classes: Sequence[str], margin: float
) -> dict[str, Region]:
    """The region of every image, by image name, from a first-stage prediction.

    Parameters
    ----------
    first
        A submission CSV, or a folder of probability maps (thresholded at 0.5).
    images
        The images to predict; FIRST must have each of them.
    classes
        The crop classes, whose union the region surrounds.
    margin
        Added on each side, as a fraction of the union box's longer side.

    Returns
    -------
    dict
        A :class:`Region` per image name; the whole frame (``found=False``) where FIRST has none of
        the classes.
    """
    if margin < 0 or not np.isfinite(margin):
        raise HbensError(f"--crop-margin {margin}: must be a finite number >= 0")
    masks = _folder_masks if Path(first).is_dir() else _csv_masks
    regions = {}
    for name, shape, runs in masks(first, images, classes):
        box = region_of(runs, shape, margin=margin)
        regions[name] = Region(box, shape) if box is not None else Region((0, 0, *shape), shape, found=False)
    return regions

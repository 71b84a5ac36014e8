"""Pictures of one image's masks: :func:`show` (an RGB array) and :func:`draw` (with its legend)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hbens.api import options
from hbens.api.options import Shape
from hbens.errors import HbensError
from hbens.frames import csv_frame, resolve_frame
from hbens.images import find_images, read_xray
from hbens.outputs import PathLike
from hbens.paths import check_paths
from hbens.pictures import (
    COMPARE_COLORS,
    compare_masks,
    compare_overlay,
    image_rows,
    overlay,
    picture_suffix,
    save_picture,
)


def show(submission: PathLike, *, image: str | None = None, images: PathLike | None = None,
         compare: PathLike | None = None, shape: Shape = None, output: PathLike | None = None,
         scale: float = 0.5) -> np.ndarray:
    """A picture of one image's masks, each class in its color, as ``hbens show`` draws it.

    Parameters
    ----------
    submission : path
        The submission CSV.
    image : str, optional
        Which image (default: the first).
    images : path, optional
        The folder of the X-rays (searched recursively), to draw over the X-ray.
    compare : path, optional
        Another submission: color where the two agree (green), where only ``submission`` has a
        bone (red), only ``compare`` (blue), or each a different bone (magenta).
    shape : int or (int, int), optional
        The frame; default: the X-rays' size, else 2048x2048.
    output : path, optional
        Also save the picture, with its legend, as PNG or JPEG, resized by ``scale``.

    Returns
    -------
    ndarray
        (H, W, 3) uint8 RGB picture at the frame's size, which a notebook displays with
        ``PIL.Image.fromarray`` or ``matplotlib.pyplot.imshow``.

    Examples
    --------
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = synthetic.write_example(folder, n_images=2, shape=(128, 128), images=True)
    >>> picture = hb.show(csvs[0], images=f"{folder}/images", compare=csvs[1])
    >>> picture.shape, picture.dtype
    ((128, 128, 3), dtype('uint8'))
    """
    return draw(submission, image=image, images=images, compare=compare, shape=shape, output=output,
                scale=scale).picture


@dataclass(frozen=True)
class Drawing:
    """What :func:`draw` drew: the (H, W, 3) uint8 ``picture``, the ``image`` it shows and, with
    ``compare``, the pixels of each layer (``counts``)."""

    picture: np.ndarray
    image: str
    counts: dict[str, int] | None = None


def draw(submission: PathLike, *, image: str | None = None, images: PathLike | None = None,
         compare: PathLike | None = None, shape: Shape = None, output: PathLike | None = None,
         scale: float = 0.5) -> Drawing:
    """:func:`show`, with the name of the image drawn and the pixel counts of a comparison (what
    ``hbens show`` prints).

    Parameters
    ----------
    submission, image, images, compare, shape, output, scale
        As :func:`show`.

    Returns
    -------
    Drawing
        ``picture`` (what :func:`show` returns), ``image`` and ``counts`` (None without ``compare``).

    Examples
    --------
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> gt, csvs = synthetic.write_example(tempfile.mkdtemp(), n_images=1, shape=(64, 64))
    >>> drawing = hb.draw(csvs[0], compare=csvs[1], shape=64)
    >>> drawing.picture.shape, list(drawing.counts)
    ((64, 64, 3), ['in both', 'only in the first', 'only in the second', 'a different class in each'])
    """
    check_paths([("SUBMISSION", submission), ("--compare", compare), ("--images", images)], [("-o", output)])
    if output is not None:
        picture_suffix(output)
    frame = csv_frame(options.as_frame(shape), images)
    image, rles = image_rows(submission, image, frame)
    xray = None if images is None else xray_of(images, image, frame)
    inputs = tuple(str(path) for path in (submission, compare) if path is not None)
    counts, entries = None, None
    if compare is None:
        picture = overlay(rles, xray, frame)
    else:
        comparison = compare_masks(rles, image_rows(compare, image, frame)[1], shape=frame)
        picture, counts, entries = compare_overlay(comparison, xray), comparison.counts(), COMPARE_COLORS
    if output is not None:
        save_picture(output, picture, scale, inputs=inputs, entries=entries)
    return Drawing(picture, image, counts)


def xray_of(images: PathLike, image: str, frame: tuple[int, int]) -> np.ndarray:
    """The X-ray named ``image`` under ``images`` as uint8 gray levels, in the frame."""
    found = {path.name: path for path in find_images(images)}
    if image not in found:
        raise HbensError(f"{images}: no file named {image}")
    xray = read_xray(found[image])
    resolve_frame(frame, images=(str(found[image]), xray.shape))
    return xray

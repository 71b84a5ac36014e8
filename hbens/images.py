"""Input images: find the PNGs of a test folder, read them, and prepare model inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from hbens.errors import HbensError
from hbens.settings import examples

NORMALIZATIONS = {
    "none": ((0.0,), (1.0,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def find_images(folder: str | Path) -> list[Path]:
    """PNG files under ``folder`` (recursively), sorted by file name; names must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HbensError(f"{folder}: no such folder; pass the folder of test PNGs (e.g. test/DCM)")
    paths = sorted((p for p in folder.rglob("*") if p.suffix.lower() == ".png" and p.is_file()), key=lambda p: p.name)
    if not paths:
        raise HbensError(f"{folder}: no .png images found")
    seen: dict[str, Path] = {}
    for path in paths:
        if path.name in seen:
            raise HbensError(f"{path}: image name {path.name} also at {seen[path.name]}; submission rows need unique names")
        seen[path.name] = path
    return paths


def read_gray(path: str | Path) -> np.ndarray:
    """A grayscale image as float32 in [0, 1] (8- or 16-bit PNG); raise HbensError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise HbensError(f"{path}: unreadable image; expected a PNG")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / np.float32(scale)


def read_xray(path: str | Path) -> np.ndarray:
    """An X-ray as uint8 gray levels (:func:`read_gray` rounded to 1/255), what the CRF and the pictures use."""
    return np.round(read_gray(path) * 255).astype(np.uint8)


def find_xrays(images: str | Path, names: Sequence[str], *, whose: str = "", split: str) -> dict[str, str]:
    """The X-ray of each image (by file name, searched recursively under ``images``), for the CRF.

    Raises HbensError naming the images that have none (``whose``: e.g. " of the ground truth"),
    advising the folder of the ``split``'s PNGs.
    """
    by_name = {path.name: str(path) for path in find_images(images)}
    absent = [name for name in names if name not in by_name]
    if absent:
        raise HbensError(f"{images}: no X-ray for {len(absent)} image(s){whose}, e.g. {examples(absent)}; pass the "
                         f"folder of the {split} PNGs")
    return by_name


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_shape(path: str | Path) -> tuple[int, int]:
    """Height and width of a PNG from its header, without decoding the pixels.

    Raises
    ------
    HbensError
        When the file does not start like a PNG.
    """
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise HbensError(f"{path}: unreadable image; expected a PNG")
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def parse_normalize(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``imagenet``, ``none`` or ``MEAN,STD`` (one value each, for every channel)."""
    if text in NORMALIZATIONS:
        return NORMALIZATIONS[text]
    try:
        mean, std = (float(v) for v in text.split(","))
    except ValueError:
        raise HbensError(f"--normalize {text}: expected imagenet, none or MEAN,STD such as 0.5,0.25") from None
    if std <= 0:
        raise HbensError(f"--normalize {text}: STD must be positive")
    return (mean,), (std,)


def to_input(image: np.ndarray, channels: int, normalize: tuple[tuple[float, ...], tuple[float, ...]]) -> np.ndarray:
    """(channels, H, W) float32 model input: the gray image replicated, then normalized per channel."""
    mean, std = (np.resize(np.asarray(v, np.float32), channels)[:, None, None] for v in normalize)
    return (np.broadcast_to(image, (channels, *image.shape)) - mean) / std

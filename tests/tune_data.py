"""Small validation sets with known truth for the tests of ``tune`` and ``apply``.

Every class is a disc on a 5 x 6 grid of a 200 x 240 frame (radius and centre jittered per
image); a model is, per class, a soft disc ``confidence * sigmoid((radius + grow - d) / softness)``
around a shifted centre, with known faults: under-confidence, shifts on some classes, noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hbens.classes import CLASSES

SHAPE = (200, 240)
CELL = 40


@dataclass(frozen=True)
class Fault:
    """How a model gets one class wrong: centre shift (pixels), radius change, confidence, softness,
    and the probability of a 4 x 4 false island in the corner of the class's grid cell (0: none)."""

    shift: tuple[float, float] = (0.0, 0.0)
    grow: float = 0.0
    confidence: float = 1.0
    softness: float = 1.5
    island: float = 0.0


@dataclass
class Model:
    """Per-class faults (``default`` for the others), or pure noise (over each class's grid cell)."""

    default: Fault = field(default_factory=Fault)
    faults: dict[str, Fault] = field(default_factory=dict)
    noise: bool = False


def discs(n_images: int, seed: int = 0) -> list[dict[str, tuple[float, float, float]]]:
    """Per image, each class's disc: centre row, centre column, radius."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        layout = {}
        for k, name in enumerate(CLASSES):
            row, col = divmod(k, 6)
            layout[name] = (CELL * row + 20 + rng.uniform(-3, 3), CELL * col + 20 + rng.uniform(-3, 3),
                            rng.uniform(10, 15))
        images.append(layout)
    return images


def names(n_images: int) -> list[str]:
    return [f"image{1000 + i}.png" for i in range(n_images)]


def truth_mask(disc: tuple[float, float, float]) -> np.ndarray:
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return np.hypot(y - disc[0], x - disc[1]) <= disc[2]


def write_truth(path: Path, layouts) -> Path:
    """The ground truth as a CSV at :data:`SHAPE`."""
    from hbens.rle import encode
    from hbens.submission import write_submission

    rows = {(image, name): encode(truth_mask(disc).astype(np.uint8))
            for image, layout in zip(names(len(layouts)), layouts) for name, disc in layout.items()}
    write_submission(path, rows)
    return path


def model_map(model: Model, name: str, disc, rng: np.random.Generator) -> np.ndarray:
    """One class's probability map over the frame."""
    if model.noise:
        noise = np.zeros(SHAPE, np.float32)
        row, col = divmod(CLASSES.index(name), 6)
        noise[CELL * row : CELL * (row + 1), CELL * col : CELL * (col + 1)] = rng.uniform(0, 1, (CELL, CELL))
        return noise
    fault = model.faults.get(name, model.default)
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    d = np.hypot(y - disc[0] - fault.shift[0], x - disc[1] - fault.shift[1])
    probability = (fault.confidence / (1 + np.exp(-(disc[2] + fault.grow - d) / fault.softness))).astype(np.float32)
    if fault.island:
        row, col = divmod(CLASSES.index(name), 6)
        probability[CELL * row + 1 : CELL * row + 5, CELL * col + 1 : CELL * col + 5] = fault.island
    return probability


def write_model(folder: Path, model: Model, layouts, seed: int = 0, precision: str = "uint8") -> Path:
    """A folder of hbens stores, one per image."""
    from hbens.maps.probabilities import tight_crop, write_store

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for image, layout in zip(names(len(layouts)), layouts):
        crops = [tight_crop(model_map(model, name, layout[name], rng), (0, 0), precision) for name in CLASSES]
        write_store(folder / f"{Path(image).stem}.npz", crops, SHAPE, precision, image=image)
    return folder


def write_csv_model(path: Path, model: Model, layouts, seed: int = 0) -> Path:
    """A model's masks (its map > 0.5) as a submission CSV."""
    from hbens.rle import encode
    from hbens.submission import write_submission

    rng = np.random.default_rng(seed)
    rows = {(image, name): encode((model_map(model, name, layout[name], rng) > 0.5).astype(np.uint8))
            for image, layout in zip(names(len(layouts)), layouts) for name in CLASSES}
    write_submission(path, rows)
    return path


def write_xrays(folder: Path, layouts, seed: int = 0) -> Path:
    """X-ray-like PNGs: bright discs on a dark noisy background."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for image, layout in zip(names(len(layouts)), layouts):
        picture = np.full(SHAPE, 40.0)
        for disc in layout.values():
            picture[truth_mask(disc)] = 170
        picture = cv2.GaussianBlur(picture, (0, 0), 1.5) + rng.normal(0, 6, SHAPE)
        cv2.imwrite(str(folder / image), np.clip(picture, 0, 255).astype(np.uint8))
    return folder

"""The competition's 29 bone classes, in canonical order, and the image size."""

from __future__ import annotations

FINGERS = tuple(f"finger-{i}" for i in range(1, 20))
WRIST = ("Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform")
ARM = ("Radius", "Ulna")

CLASSES: tuple[str, ...] = FINGERS + WRIST + ARM
"""Class names in the order of the models' output channels and of submission rows."""

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

IMAGE_SHAPE: tuple[int, int] = (2048, 2048)
"""Height and width of every competition image and mask."""


def class_index(name: str) -> int:
    """Return the channel index of a class name, or raise KeyError listing the valid names."""
    try:
        return CLASS_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown class {name!r}; valid classes: {', '.join(CLASSES)}") from None


def canonical_key(image_name: str, class_name: str) -> tuple[str, int]:
    """Sort key of a submission row: image name, then canonical class order."""
    return image_name, CLASS_INDEX[class_name]

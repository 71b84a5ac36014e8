"""The competition's 29 bone classes, in canonical order, and the image size."""

from __future__ import annotations

from hbens.errors import HbensError, located

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


def read_class_values(path: str, column: str, written_by: str = "") -> dict[str, float]:
    """A ``class,<column>`` CSV of one number per class; raise HbensError naming the line on bad rows."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise HbensError(f"{path}: cannot read ({error.strerror}); check the path") from None
    if not rows or [c.strip() for c in rows[0][:2]] != ["class", column]:
        hint = f" (as written by {written_by})" if written_by else ""
        raise HbensError(located(path, 1, f"expected the header class,{column}{hint}"))
    values = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2 or row[0] not in CLASS_INDEX:
            raise HbensError(located(path, number, f"expected 'class,{column}' with a known class, got {','.join(row)!r}"))
        try:
            values[row[0]] = float(row[1])
        except ValueError:
            raise HbensError(located(path, number, f"{column} {row[1]!r} is not a number")) from None
    return values

"""The competition's 29 bone classes, in canonical order, and the image size."""

from __future__ import annotations

from typing import Mapping

from hbens.errors import HbensError, located
from hbens.settings import clip, read_csv_rows, read_text

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


def class_thresholds(threshold: float, thresholds: dict[str, float] | None = None) -> dict[str, float]:
    """``threshold`` for every class (in CLASSES order), overridden per class by ``thresholds``.

    Examples
    --------
    >>> class_thresholds(0.5, {"Ulna": 0.3})["Ulna"], class_thresholds(0.5)["Radius"]
    (0.3, 0.5)
    """
    for name in thresholds or {}:
        if name not in CLASS_INDEX:
            raise HbensError(f"thresholds: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
    return {name: float((thresholds or {}).get(name, threshold)) for name in CLASSES}


def check_class_values(values: Mapping[str, float], column: str) -> dict[str, float]:
    """``{class: number}`` of a mapping, checked as :func:`read_class_values` checks a file's rows:
    known classes, numbers in [0, 1].

    Examples
    --------
    >>> check_class_values({"Ulna": 0.4}, "threshold")
    {'Ulna': 0.4}
    """
    checked = {}
    for name, value in values.items():
        if name not in CLASS_INDEX:
            raise HbensError(f"{column}s: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
        if not 0 <= float(value) <= 1:
            raise HbensError(f"{column}s: {column} {value} of {name} is not in [0, 1]")
        checked[name] = float(value)
    return checked


def parse_class_list(text: str, *, option: str) -> tuple[str, ...]:
    """Class names of a comma-separated option value such as ``Pisiform,Lunate``, in the given order.

    Parameters
    ----------
    text
        The option's value.
    option
        The option's flag, to name in errors.

    Raises
    ------
    HbensError
        On an empty, unknown or repeated name.
    """
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in CLASS_INDEX]
    if unknown:
        raise HbensError(f"{option} {text}: unknown class {unknown[0]!r}; valid classes: {', '.join(CLASSES)}")
    repeated = sorted({name for name in names if names.count(name) > 1}, key=CLASS_INDEX.__getitem__)
    if repeated:
        raise HbensError(f"{option} {text}: {repeated[0]} is given twice; give each class once")
    return names


def canonical_key(image_name: str, class_name: str) -> tuple[str, int]:
    """Sort key of a submission row: image name, then canonical class order."""
    return image_name, CLASS_INDEX[class_name]


def read_class_values(
    path: str, column: str, written_by: str = "", *, bounds: tuple[float, float] = (0.0, 1.0)
) -> dict[str, float]:
    """A ``class,<column>`` CSV of one number per class, each finite and within ``bounds``.

    Raise HbensError naming the line on a bad row, an unknown or repeated class, or a value that is
    not a number in range (NaN included).
    """
    rows = read_csv_rows(path)
    if not rows or [c.strip() for c in rows[0][:2]] != ["class", column]:
        hint = f" (as written by {written_by})" if written_by else ""
        raise HbensError(located(path, 1, f"expected the header class,{column}{hint}"))
    low, high = bounds
    values = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2 or row[0] not in CLASS_INDEX:
            shown = clip(repr(",".join(row)), limit=60)
            problem = f"expected 'class,{column}' with a known class, got {shown}"
            raise HbensError(located(path, number, problem))
        if row[0] in values:
            raise HbensError(located(path, number, f"{row[0]} is given twice; give one row per class"))
        try:
            value = float(row[1])
        except ValueError:
            shown = clip(repr(row[1]), limit=40)
            raise HbensError(located(path, number, f"{column} {shown} is not a number")) from None
        if not low <= value <= high:
            problem = f"{column} {clip(row[1].strip(), limit=40)} of {row[0]} is not in [{low:g}, {high:g}]"
            raise HbensError(located(path, number, problem))
        values[row[0]] = value
    return values


def read_class_names(path: str) -> list[str]:
    """Class names in a file's order (one per line or comma-separated), each known and given once.

    Used for the channel order of another pipeline's saved arrays.
    """
    names = [name.strip() for line in read_text(path).splitlines() for name in line.split(",") if name.strip()]
    if not names:
        raise HbensError(f"{path}: no class names; write one class name per line, in channel order")
    unknown = [name for name in names if name not in CLASS_INDEX]
    if unknown:
        raise HbensError(f"{path}: unknown class {clip(repr(unknown[0]), limit=40)}; valid classes: "
                         f"{', '.join(CLASSES[:3])}, ... ({len(CLASSES)} in all)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HbensError(f"{path}: {repeated[0]} is listed twice; list each class once")
    return names

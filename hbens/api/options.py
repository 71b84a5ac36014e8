"""What the API functions share: argument types, usage errors, and the options turned into library settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hbens.classes import CLASSES, check_class_values, class_thresholds, read_class_names, read_class_values
from hbens.ensemble.rules import check_class_weights, read_class_weights
from hbens.errors import HbensError, UsageError
from hbens.execution import Execution
from hbens.maps.saved_arrays import ArrayFormat
from hbens.outputs import PathLike, same_file
from hbens.pipeline import RunSummary
from hbens.postproc import CleanConfig, active_cleanup, clean_configs, write_clean_report

Shape = int | tuple[int, int] | None
PerClass = PathLike | Mapping[str, float] | None
LARGEST_SIDE = 16384
"""Largest side of a frame (as ``--image-size``)."""


def as_frame(shape: Shape) -> tuple[int, int] | None:
    """``(H, W)`` of ``N`` or ``(H, W)``; None stays None (the library resolves the frame)."""
    if shape is None:
        return None
    sides = (shape, shape) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(sides) != 2 or not all(isinstance(s, (int, np.integer)) and 1 <= s <= LARGEST_SIDE for s in sides):
        raise UsageError(f"{shape!r}: expected N or (H, W), each side 1 to {LARGEST_SIDE} pixels", "--image-size")
    return int(sides[0]), int(sides[1])


def make_execution(workers: int | None, scheduler: str, keep_going: bool, progress: bool,
                   default_workers: int | None = None) -> Execution:
    """The :class:`~hbens.execution.Execution` of the arguments; a bad ``scheduler`` is a usage error."""
    try:
        return Execution(workers=workers or default_workers, scheduler=scheduler, keep_going=keep_going,
                         progress=progress)
    except HbensError as error:
        raise UsageError(str(error)) from None


def make_cleanup(min_area: int, keep: int | None, largest: bool, fill_holes: bool, connectivity: int,
                 classes: Sequence[str] | str | None, config: PathLike | None):
    """The per-class cleanup of the clean options, or None when they ask for nothing."""
    if largest and keep is not None:
        raise UsageError("give --largest or --keep, not both")
    if isinstance(classes, str):
        text, classes = classes, [name.strip() for name in classes.split(",")]
        if not all(classes):
            raise UsageError(f"class list {text!r} has an empty name; give names such as Pisiform,Ulna")
    defaults = CleanConfig(min_area, 1 if largest else keep, fill_holes, int(connectivity))
    configs = clean_configs(defaults, None if classes is None else list(classes),
                            None if config is None else str(config))
    return active_cleanup(configs) or None


def make_array_format(key: str | None, kind: str, classes: PathLike | Sequence[str] | None,
                      drop_channel: int | None) -> ArrayFormat:
    """How to read saved arrays (:class:`~hbens.maps.saved_arrays.ArrayFormat`): ``classes`` a file
    of names or a list (default: the 29 classes)."""
    if classes is None:
        names = CLASSES
    elif isinstance(classes, (str, Path)):
        names = read_class_names(str(classes))
    else:
        names = classes
    return ArrayFormat(key=key, kind=kind, classes=tuple(names), drop_channel=drop_channel)


def file_of(value: object) -> str | None:
    """The path of an argument that is a file or a value (None when it is a value)."""
    return str(value) if isinstance(value, (str, Path)) else None


def class_values(values: PerClass, column: str, written_by: str = "") -> dict[str, float] | None:
    """``{class: number}`` of a ``class,<column>`` CSV or of a mapping, checked alike."""
    if values is None or isinstance(values, (str, Path)):
        return None if values is None else read_class_values(str(values), column, written_by)
    return check_class_values(values, column)


def threshold_list(threshold: float, thresholds: PerClass) -> list[float]:
    """One threshold per class: ``threshold``, overridden per class by ``thresholds``."""
    return list(class_thresholds(threshold, class_values(thresholds, "threshold")).values())


def class_weights_of(values: PathLike | Mapping[str, Sequence[float]] | None,
                     n_inputs: int) -> dict[str, list[float]] | None:
    """Per-class weights of a CSV/JSON file (:func:`~hbens.ensemble.read_class_weights`) or of a mapping."""
    if values is None or isinstance(values, (str, Path)):
        return None if values is None else read_class_weights(values, n_inputs)
    return check_class_weights(values, n_inputs)


def refuse_repeated(option: str, paths: Sequence[str],
                    advice: str = "give each input once (to count one more, use --weights)") -> None:
    """A usage error when two of ``paths`` name one file (hard links and symbolic links included)."""
    for number, path in enumerate(paths):
        for earlier in paths[:number]:
            if same_file(earlier, path):
                raise UsageError(f"{option} {earlier} and {path} are the same file; {advice}")


def precision_name(name: str) -> str:
    return "float16" if name == "fp16" else name


def path_list(values: Sequence[PathLike] | PathLike) -> list[str]:
    """A list of paths as strings (one path alone is a list of one); none is a usage error."""
    listed = [values] if isinstance(values, (str, Path)) else list(values)
    if not listed:
        raise UsageError("give at least one input")
    return [str(path) for path in listed]


def report_cleanup(summary: RunSummary, cleanup, report: PathLike | None, inputs: Sequence[str] = ()) -> None:
    """Mark the summary ``cleaned`` when a cleanup ran, and write the per-class clean report when asked."""
    summary.cleaned = cleanup is not None
    if cleanup and report:
        write_clean_report(report, getattr(summary.stats, "clean", summary.stats), tuple(inputs))

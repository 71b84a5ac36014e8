"""Cleaning of multi-label bone masks: drop small components, keep the largest, fill holes.

Every class is a bone, channel 0 (finger-1) included: no class is treated as background.
Operations run on runs (see :mod:`hbens.postproc.components`), in this order: ``min_area``,
``keep``, ``fill_holes``.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field, fields
from itertools import groupby
from typing import Sequence

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.execution import Execution
from hbens.frames import csv_frame
from hbens.outputs import PathLike, atomic_open
from hbens.pipeline import ImageOutput, RunSummary, run_images
from hbens.postproc.components import hole_segments, label_segments
from hbens.rle import mask_to_runs, runs_to_mask, runs_to_string, string_to_runs
from hbens.runs import Runs, runs_to_segments, segments_to_runs
from hbens.settings import check_mapping, read_settings
from hbens.submission import iter_rows, scan_submission


@dataclass(frozen=True)
class CleanConfig:
    """What to do to one class's mask."""

    min_area: int = 0
    keep: int | None = None
    fill_holes: bool = False
    connectivity: int = 8

    def __post_init__(self) -> None:
        if self.connectivity not in (4, 8):
            raise HbensError(f"connectivity must be 4 or 8, got {self.connectivity}")
        if self.min_area < 0:
            raise HbensError(f"min_area must be >= 0, got {self.min_area}")
        if self.keep is not None and self.keep < 1:
            raise HbensError(f"keep must be >= 1, got {self.keep}")

    @property
    def active(self) -> bool:
        return self.min_area > 0 or self.keep is not None or self.fill_holes

    @classmethod
    def from_dict(cls, values: object, where: str = "clean settings") -> CleanConfig:
        """Build from a mapping of option names (``largest: true`` means ``keep: 1``), typed strictly
        by :data:`CLEAN_SCHEMA` (the YAML string ``"false"`` is not a boolean); ``where`` starts
        every error."""
        checked = check_mapping(values, CLEAN_SCHEMA, where=where)
        if checked.pop("largest", False):
            checked["keep"] = 1
        try:
            return cls(**checked)
        except HbensError as error:
            raise HbensError(f"{where}: {error}") from None


CLEAN_SCHEMA = {"min_area": int, "keep": (int, None), "largest": bool, "fill_holes": bool, "connectivity": int}
"""The keys of a clean settings mapping and their types (see :func:`hbens.settings.check_mapping`)."""


@dataclass(frozen=True)
class CleanStats:
    """Components and pixels removed, holes and pixels added."""

    components_removed: int = 0
    pixels_removed: int = 0
    holes_filled: int = 0
    pixels_added: int = 0

    def __add__(self, other: CleanStats) -> CleanStats:
        return CleanStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


Cleanup = dict[str, CleanConfig]
"""The row post-processing of every command: the clean settings of each class to clean.

A plain mapping, so that it travels to worker processes; classes absent are left as they are.
"""


@dataclass(frozen=True)
class CleanTotals:
    """Clean stats per class, summed over rows and images (``a + b``)."""

    per_class: dict[str, CleanStats] = field(default_factory=dict)

    def __add__(self, other: CleanTotals) -> CleanTotals:
        names = list(self.per_class) + [n for n in other.per_class if n not in self.per_class]
        return CleanTotals({n: self.per_class.get(n, CleanStats()) + other.per_class.get(n, CleanStats())
                            for n in names})

    @property
    def total(self) -> CleanStats:
        return sum(self.per_class.values(), CleanStats())

    def __str__(self) -> str:
        total = self.total
        return f"{total.components_removed} component(s) removed, {total.holes_filled} hole(s) filled"


def clean_runs(runs: Runs, config: CleanConfig, shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[Runs, CleanStats]:
    """Apply ``config`` to a run-length mask; return the new runs and what changed."""
    counts = {}
    segments = runs_to_segments(runs, shape)
    if segments[0].size == 0 or not config.active:
        return segments_to_runs(segments, shape), CleanStats()
    if config.min_area > 0 or config.keep is not None:
        labels, areas = label_segments(segments, config.connectivity)
        kept = areas >= config.min_area
        if config.keep is not None:
            order = np.lexsort((np.arange(areas.size), -areas))
            candidates = order[kept[order]]
            kept = np.zeros_like(kept)
            kept[candidates[: config.keep]] = True
        counts["components_removed"] = int((~kept).sum())
        counts["pixels_removed"] = int(areas[~kept].sum())
        mask = kept[labels]
        segments = tuple(part[mask] for part in segments)
    if config.fill_holes and segments[0].size:
        holes = hole_segments(segments, shape, config.connectivity)
        if holes[0].size:
            counts["holes_filled"] = int(label_segments(holes, 12 - config.connectivity)[1].size)
            counts["pixels_added"] = int((holes[2] - holes[1]).sum())
            merged = [np.concatenate([a, b]) for a, b in zip(segments, holes)]
            order = np.lexsort((merged[1], merged[0]))
            segments = tuple(part[order] for part in merged)
    return segments_to_runs(segments, shape), CleanStats(**counts)


def _clean_mask(mask: np.ndarray, config: CleanConfig) -> np.ndarray:
    runs, _ = clean_runs(mask_to_runs(mask, parallel=False), config, mask.shape)
    return runs_to_mask(*runs, mask.shape)


def remove_small(mask: np.ndarray, min_area: int, connectivity: int = 8) -> np.ndarray:
    """Drop the components of a 2-D mask smaller than ``min_area`` pixels."""
    return _clean_mask(mask, CleanConfig(min_area=min_area, connectivity=connectivity))


def keep_largest(mask: np.ndarray, k: int = 1, connectivity: int = 8) -> np.ndarray:
    """Keep the ``k`` largest components of a 2-D mask (ties: first pixel in row-major order)."""
    return _clean_mask(mask, CleanConfig(keep=k, connectivity=connectivity))


def fill_holes(mask: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Fill the background regions of a 2-D mask that do not reach the image border."""
    return _clean_mask(mask, CleanConfig(fill_holes=True, connectivity=connectivity))


def clean_probabilities(probability: np.ndarray, config: CleanConfig, threshold: float = 0.5) -> np.ndarray:
    """Clean a 2-D probability map so that ``result > threshold`` is the cleaned ``probability > threshold``.

    Pixels of removed components drop to 0; pixels of filled holes rise to just above ``threshold``
    when they were below it; every other probability is kept.
    """
    mask = probability > threshold
    cleaned = _clean_mask(mask, config).astype(bool)
    out = np.array(probability, dtype=np.float32, copy=True)
    out[mask & ~cleaned] = 0.0
    raised = np.nextafter(np.float32(threshold), np.float32(np.inf))
    added = cleaned & ~mask
    out[added] = np.maximum(out[added], raised)
    return out


def clean_masks(masks: np.ndarray, configs: dict[int, CleanConfig]) -> np.ndarray:
    """Clean a ``(C, H, W)`` multi-label mask, each channel with ``configs[channel]`` when present."""
    out = np.array(masks, dtype=np.uint8, copy=True)
    for channel, config in configs.items():
        out[channel] = _clean_mask(masks[channel], config)
    return out


def active_cleanup(configs: dict[str, CleanConfig]) -> Cleanup:
    """The classes of ``configs`` that ask for something (empty: nothing to clean)."""
    return {name: config for name, config in configs.items() if config.active}


def clean_rle(class_name: str, rle: str, cleanup: Cleanup, shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[str, CleanStats | None]:
    """Clean one submission row by its class's settings; ``(rle, None)`` when the class is not cleaned."""
    config = cleanup.get(class_name)
    if config is None:
        return rle, None

    runs, stats = clean_runs(string_to_runs(rle, shape), config, shape)
    return runs_to_string(*runs), stats


def clean_rows(
    rows: Sequence[tuple[str, str]], cleanup: Cleanup | None, shape: tuple[int, int] = IMAGE_SHAPE
) -> tuple[list[tuple[str, str]], CleanTotals]:
    """Clean the ``(class, rle)`` rows of one image; return the rows and what changed per class."""
    if not cleanup:
        return list(rows), CleanTotals()
    out, per_class = [], {}
    for class_name, rle in rows:
        cleaned, stats = clean_rle(class_name, rle, cleanup, shape)
        out.append((class_name, cleaned))
        if stats is not None:
            per_class[class_name] = per_class.get(class_name, CleanStats()) + stats
    return out, CleanTotals(per_class)


def write_clean_report(path: PathLike, totals: CleanTotals, inputs: Sequence[PathLike] = ()) -> None:
    """Write ``class,components_removed,pixels_removed,holes_filled,pixels_added`` per cleaned class."""
    import pandas as pd

    columns = ["class", *(f.name for f in fields(CleanStats))]
    rows = pd.DataFrame([(name, *astuple(stats)) for name, stats in totals.per_class.items()], columns=columns)
    with atomic_open(path, inputs) as handle:
        rows.to_csv(handle, index=False, lineterminator="\n")


@dataclass(frozen=True, kw_only=True)
class CleanItem:
    """One image of ``hbens clean``: its rows and the settings (plain data, picklable)."""

    image: str
    rows: list[tuple[str, str]]
    cleanup: Cleanup
    shape: tuple[int, int] = IMAGE_SHAPE


def clean_image(item: CleanItem) -> ImageOutput:
    """The per-image task of ``hbens clean``: cleaned rows and per-class stats."""
    rows, totals = clean_rows(item.rows, item.cleanup, item.shape)
    return ImageOutput(item.image, rows, totals)


def clean_configs(
    defaults: CleanConfig, classes: list[str] | None = None, config_file: str | None = None
) -> dict[str, CleanConfig]:
    """Per-class configs: ``defaults`` for ``classes`` (all when None), overridden by a YAML/JSON file.

    The file holds defaults at the top level and per-class overrides under class names::

        min_area: 400
        fill_holes: true
        Pisiform: {keep: 1}
    """
    for name in classes or ():
        if name not in CLASS_INDEX:
            raise HbensError(f"--classes: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
    chosen = set(classes) if classes else set(CLASSES)
    configs = {name: defaults for name in CLASSES if name in chosen}
    if config_file is None:
        return configs

    data = read_settings(config_file)
    if not isinstance(data, dict):
        raise HbensError(f"{config_file}: expected a mapping of options and class names")
    overrides = {k: v for k, v in data.items() if k in CLASS_INDEX}
    file_defaults = {k: v for k, v in data.items() if k not in CLASS_INDEX}
    base = {f.name: getattr(defaults, f.name) for f in fields(CleanConfig)}
    if file_defaults:
        merged = CleanConfig.from_dict({**base, **file_defaults}, str(config_file))
        configs = {name: merged for name in configs}
    for name, values in overrides.items():
        if not isinstance(values, dict):
            raise HbensError(f"{config_file}: {name} must map option names to values")
        start = {f.name: getattr(configs.get(name, defaults), f.name) for f in fields(CleanConfig)}
        configs[name] = CleanConfig.from_dict({**start, **values}, f"{config_file}: {name}")
    return configs


def clean_csv(
    path: PathLike,
    output: PathLike,
    cleanup: Cleanup,
    *,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> RunSummary:
    """Clean every row of a submission into ``output`` (canonical order, atomic).

    ``shape`` is the frame (a CSV does not record it); None: 2048x2048.  The summary's ``stats`` is
    a :class:`CleanTotals`.
    """
    shape = csv_frame(shape)
    index = scan_submission(path, shape)
    items = (
        CleanItem(image=image, rows=[(name, rle) for _, name, rle in group], cleanup=cleanup, shape=shape)
        for image, group in groupby(iter_rows(index), key=lambda row: row[0])
    )
    summary = run_images(clean_image, items, execution or Execution(), names=index.images, csv=output,
                         inputs=[path], desc="clean")
    summary.stats = summary.stats or CleanTotals()
    return summary

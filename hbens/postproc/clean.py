"""Cleaning of multi-label bone masks: drop small components, keep the largest, fill holes.

Every class is a bone, channel 0 (finger-1) included: no class is treated as background.
Operations run on runs (see :mod:`hbens.postproc.components`), in this order: ``min_area``,
``keep``, ``fill_holes``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from hbens.classes import IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.postproc.components import (
    Runs,
    hole_segments,
    label_segments,
    runs_to_segments,
    segments_to_runs,
)
from hbens.rle import mask_to_runs, runs_to_mask


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
    def from_dict(cls, values: dict, where: str = "") -> CleanConfig:
        """Build from a mapping of option names (``largest: true`` means ``keep: 1``)."""
        values = dict(values)
        if values.pop("largest", False):
            values["keep"] = 1
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise HbensError(f"{where}unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(names | {'largest'}))}")
        try:
            return cls(**values)
        except TypeError as error:
            raise HbensError(f"{where}{error}") from None


@dataclass
class CleanStats:
    """Components and pixels removed, holes and pixels added."""

    components_removed: int = 0
    pixels_removed: int = 0
    holes_filled: int = 0
    pixels_added: int = 0

    def add(self, other: CleanStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def clean_runs(runs: Runs, config: CleanConfig, shape: tuple[int, int] = IMAGE_SHAPE) -> tuple[Runs, CleanStats]:
    """Apply ``config`` to a run-length mask; return the new runs and what changed."""
    stats = CleanStats()
    segments = runs_to_segments(runs, shape)
    if segments[0].size == 0 or not config.active:
        return segments_to_runs(segments, shape), stats
    if config.min_area > 0 or config.keep is not None:
        labels, areas = label_segments(segments, config.connectivity)
        kept = areas >= config.min_area
        if config.keep is not None:
            order = np.lexsort((np.arange(areas.size), -areas))
            candidates = order[kept[order]]
            kept = np.zeros_like(kept)
            kept[candidates[: config.keep]] = True
        stats.components_removed = int((~kept).sum())
        stats.pixels_removed = int(areas[~kept].sum())
        mask = kept[labels]
        segments = tuple(part[mask] for part in segments)
    if config.fill_holes and segments[0].size:
        holes = hole_segments(segments, shape, config.connectivity)
        if holes[0].size:
            stats.holes_filled = int(label_segments(holes, 12 - config.connectivity)[1].size)
            stats.pixels_added = int((holes[2] - holes[1]).sum())
            merged = [np.concatenate([a, b]) for a, b in zip(segments, holes)]
            order = np.lexsort((merged[1], merged[0]))
            segments = tuple(part[order] for part in merged)
    return segments_to_runs(segments, shape), stats


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


class RowCleaner:
    """Clean submission rows ``(class, rle) -> rle`` by per-class configs, totalling the stats per class.

    Safe to call from several threads (the kernels release the GIL; totals are locked).
    """

    def __init__(self, configs: dict[str, CleanConfig], shape: tuple[int, int] = IMAGE_SHAPE):
        import threading

        self.configs = {name: config for name, config in configs.items() if config.active}
        self.shape = shape
        self.stats = {name: CleanStats() for name in self.configs}
        self._lock = threading.Lock()

    def __call__(self, class_name: str, rle: str) -> str:
        config = self.configs.get(class_name)
        if config is None:
            return rle
        from hbens.rle import runs_to_string, string_to_runs

        runs, stats = clean_runs(string_to_runs(rle, self.shape), config, self.shape)
        with self._lock:
            self.stats[class_name].add(stats)
        return runs_to_string(*runs)

    def write_report(self, path: str, inputs: Sequence[str] = ()) -> None:
        """Write ``class,components_removed,pixels_removed,holes_filled,pixels_added`` per cleaned class."""
        from hbens.outputs import atomic_open

        names = [f.name for f in fields(CleanStats)]
        with atomic_open(path, inputs) as handle:
            handle.write("class," + ",".join(names) + "\n")
            for name, stats in self.stats.items():
                handle.write(name + "," + ",".join(str(getattr(stats, n)) for n in names) + "\n")


def clean_configs(
    defaults: CleanConfig, classes: list[str] | None = None, config_file: str | None = None
) -> dict[str, CleanConfig]:
    """Per-class configs: ``defaults`` for ``classes`` (all when None), overridden by a YAML/JSON file.

    The file holds defaults at the top level and per-class overrides under class names::

        min_area: 400
        fill_holes: true
        Pisiform: {keep: 1}
    """
    from hbens.classes import CLASS_INDEX, CLASSES

    for name in classes or ():
        if name not in CLASS_INDEX:
            raise HbensError(f"--classes: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
    chosen = set(classes) if classes else set(CLASSES)
    configs = {name: defaults for name in CLASSES if name in chosen}
    if config_file is None:
        return configs
    from hbens.settings import read_settings

    data = read_settings(config_file)
    if not isinstance(data, dict):
        raise HbensError(f"{config_file}: expected a mapping of options and class names")
    overrides = {k: v for k, v in data.items() if k in CLASS_INDEX}
    file_defaults = {k: v for k, v in data.items() if k not in CLASS_INDEX}
    base = {f.name: getattr(defaults, f.name) for f in fields(CleanConfig)}
    if file_defaults:
        merged = CleanConfig.from_dict({**base, **file_defaults}, f"{config_file}: ")
        configs = {name: merged for name in configs}
    for name, values in overrides.items():
        if not isinstance(values, dict):
            raise HbensError(f"{config_file}: {name} must map option names to values")
        start = {f.name: getattr(configs.get(name, defaults), f.name) for f in fields(CleanConfig)}
        configs[name] = CleanConfig.from_dict({**start, **values}, f"{config_file}: {name}: ")
    return configs


def clean_csv(
    path: str, output: str, cleaner: RowCleaner, progress: bool = False, workers: int | None = None
) -> int:
    """Clean every row of a submission into ``output`` (canonical order, atomic); return the row count."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import groupby

    from tqdm import tqdm

    from hbens.submission import SubmissionWriter, iter_rows, scan_submission

    index = scan_submission(path, cleaner.shape)
    rows = iter_rows(index)
    with ThreadPoolExecutor(workers) as pool, SubmissionWriter(output, [path]) as writer:
        images = tqdm(groupby(rows, key=lambda row: row[0]), total=len(index.images), desc="clean",
                      unit="image", disable=None if progress else True, leave=False)
        for image, group in images:
            group = list(group)
            cleaned = pool.map(lambda row: cleaner(row[1], row[2]), group)
            for (_, name, _), rle in zip(group, cleaned):
                writer.write(image, name, rle)
    return writer.rows_written

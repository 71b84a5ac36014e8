"""The inputs of one image, as ``fuse``, ``tune`` and ``apply`` all read them.

Per input, an image has a map file (an hbens store or a saved array, read as per-class crops) or
the rows of a submission CSV (runs, which count as 0/1 probability maps).  One class of one
input is a :data:`Source`: a crop or runs, or None when a map input lacks the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hbens.classes import IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.maps.folders import ImageMaps, MapFile
from hbens.maps.probabilities import ClassCrop
from hbens.rle import string_to_runs
from hbens.runs import Box, Runs, runs_bounds

Source = ClassCrop | Runs
"""One input's map of one class: a store's crop (uint8 p*255, float16 or float32) or a CSV's runs."""


def support_box(source: Source, shape: tuple[int, int]) -> Box | None:
    """The box outside which the source's probability is 0 (a crop's box, the bounds of runs); None if empty."""
    if isinstance(source, ClassCrop):
        return source.box if source.values.size else None
    return runs_bounds(source, shape)


def _check_shapes(image: str, stores: Sequence[ImageMaps | None], shape: tuple[int, int]) -> None:
    """Raise a one-line HbensError when the maps of an image differ in shape or from ``shape``."""
    opened = [store for store in stores if store is not None]
    if len({store.shape for store in opened}) > 1:
        listed = ", ".join(f"{store.path} ({store.shape[0]}x{store.shape[1]})" for store in opened)
        raise HbensError(f"{image}: the probability stores differ in shape: {listed}; fuse stores of the same image")
    wrong = [store for store in opened if store.shape != tuple(shape)]
    if wrong:
        listed = ", ".join(str(store.path) for store in wrong)
        raise HbensError(f"{image}: {listed} hold {wrong[0].shape[0]}x{wrong[0].shape[1]} maps, "
                         f"expected {shape[0]}x{shape[1]}")


@dataclass(frozen=True, kw_only=True)
class ImageInputs:
    """One image's inputs: per input its map file or that CSV's ``{class: rle}`` rows (plain data,
    picklable, for process or Dask workers); ``shape`` is the frame (None: the first map's)."""

    image: str
    maps: list[MapFile | None]
    rles: list[dict[str, str] | None]
    shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if len(self.maps) != len(self.rles) or any((p is None) == (r is None) for p, r in zip(self.maps, self.rles)):
            raise HbensError(f"{self.image}: give each input either a map file or CSV rows, not both or neither")

    def read(self) -> tuple[list[ImageMaps | None], tuple[int, int]]:
        """Each input's maps (None for a CSV) and the frame, the maps checked to be of the frame."""
        stores = [file.read() if file is not None else None for file in self.maps]
        shape = self.shape
        if shape is None:
            shape = next((store.shape for store in stores if store is not None), IMAGE_SHAPE)
        _check_shapes(self.image, stores, shape)
        return stores, tuple(shape)

    def sources(self, stores: Sequence[ImageMaps | None], name: str, shape: tuple[int, int],
                members: Sequence[int] | None = None) -> list[Source | None]:
        """Each input's map of class ``name`` (only ``members`` when given; None elsewhere and where a
        map input lacks the class); a CSV row that is absent is the empty mask."""
        wanted = range(len(stores)) if members is None else members
        sources: list[Source | None] = [None] * len(stores)
        for i in wanted:
            if stores[i] is not None:
                sources[i] = stores[i].crop(name)
                continue
            try:
                sources[i] = string_to_runs(self.rles[i].get(name, ""), shape)
            except HbensError as error:
                raise HbensError(f"{self.image}, {name}: {error}") from None
        return sources

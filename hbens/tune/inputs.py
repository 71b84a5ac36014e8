"""The inputs of ``tune`` and ``apply``: folders of probability maps and submission CSVs, in order.

Both commands open their inputs here, so that a recipe's inputs are named, typed and read the
same way when it is tuned and when it is applied.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.errors import HbensError
from hbens.maps import MapFile, MapFolder, is_map_folder, open_map_folder
from hbens.outputs import PathLike
from hbens.saved_arrays import ArrayFormat
from hbens.settings import examples
from hbens.submission import SubmissionIndex, scan_submission
from hbens.tune.recipe import RecipeInput

ImageReader = Callable[[str], tuple[list[MapFile | None], list[dict[str, str] | None]]]
"""``read(image) -> (maps, rles)``: per input its map file, or that CSV's ``{class: rle}`` rows."""


@dataclass(frozen=True)
class Inputs:
    """Opened inputs: per input its map folder or CSV index, the frame of their maps and their names."""

    paths: tuple[str, ...]
    sources: tuple[MapFolder | SubmissionIndex, ...]
    shape: tuple[int, int]

    @property
    def described(self) -> tuple[RecipeInput, ...]:
        """Each input's name (its file or folder name; the path as given when two names clash) and kind."""
        names = [Path(path).name or str(path) for path in self.paths]
        if len(set(names)) < len(names):
            names = [str(path) for path in self.paths]
        return tuple(RecipeInput(name, "store" if isinstance(source, MapFolder) else "csv")
                     for name, source in zip(names, self.sources))

    def check_images(self, images: Sequence[str], *, what: str) -> None:
        """HbensError naming the first input that lacks one of ``images``."""
        for path, source in zip(self.paths, self.sources):
            held = set(source.images)
            lacking = [image for image in images if image not in held]
            if lacking:
                raise HbensError(f"{path}: lacks {len(lacking)} image(s) of {what}, e.g. {examples(lacking)}; "
                                 "pass predictions of the same images")

    @contextmanager
    def reader(self) -> Iterator[ImageReader]:
        """An :data:`ImageReader` of these inputs (the CSVs stay open until the block ends)."""
        with ExitStack() as stack:
            handles = [stack.enter_context(source.open()) if isinstance(source, SubmissionIndex) else None
                       for source in self.sources]

            def read(image: str) -> tuple[list[MapFile | None], list[dict[str, str] | None]]:
                maps, rles = [], []
                for source, handle in zip(self.sources, handles):
                    if isinstance(source, MapFolder):
                        maps.append(source.files[image])
                        rles.append(None)
                    else:
                        keys = [(image, name) for name in CLASSES if (image, name) in source.rows]
                        maps.append(None)
                        rles.append({name: source.read_rle((image, name), handle) for _, name in keys})
                return maps, rles

            yield read


def open_inputs(paths: Sequence[PathLike], *, array_format: ArrayFormat | None = None) -> Inputs:
    """Open each input: a folder of maps (hbens stores or saved arrays) or a submission CSV.

    The frame is that of the first map folder's first image (the competition's 2048x2048 when
    every input is a CSV).
    """
    if not paths:
        raise HbensError("no inputs; pass folders of probability maps and/or submission CSVs")
    folders = {i: open_map_folder(path, array_format) for i, path in enumerate(paths) if is_map_folder(path)}
    shape = IMAGE_SHAPE
    if folders:
        first = next(iter(folders.values()))
        shape = tuple(first.files[first.images[0]].read().shape)
    sources = tuple(folders[i] if i in folders else scan_submission(path, shape) for i, path in enumerate(paths))
    return Inputs(tuple(str(path) for path in paths), sources, shape)

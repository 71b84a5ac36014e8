"""Probability maps of many images, from a folder: hbens stores or another pipeline's saved arrays.

Every command that reads probabilities (``fuse``, ``crf``, ``score``, ``tune``, ``apply``) opens
its folders here, so both kinds are read alike.  A folder is indexed by image name once in the
client; a worker reads one image of it (:meth:`MapFile.read`) and gets the classes, the image
shape and the per-class crops, never a full float array: a store's as stored (uint8 p*255 or
float16), a saved array's in its own precision (uint8 levels as uint8, anything else float32:
never rounded to a store's, see :data:`hbens.maps.saved_arrays.EXACT`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.execution import path_field
from hbens.frames import images_frame, resolve_frame
from hbens.maps.array_files import (
    check_saved_arrays,
    find_saved_arrays,
    image_name,
    is_hbens_store,
    map_files,
    probe_saved_array,
    read_saved_image,
)
from hbens.maps.probabilities import ClassCrop, ProbabilityStore
from hbens.maps.saved_arrays import EXACT, ArrayFormat
from hbens.outputs import PathLike
from hbens.settings import examples
from hbens.submission import SubmissionIndex, scan_submission


@dataclass
class ImageMaps:
    """One image's probabilities: its classes, shape and per-class crops (stored values); ``meta`` is a
    store's metadata, or the image name and source of a saved array."""

    classes: list[str]
    shape: tuple[int, int]
    crops: list[ClassCrop]
    path: str
    source: str = "hbens store"
    meta: dict = field(default_factory=dict)

    def crop(self, name: str) -> ClassCrop | None:
        """The crop of class ``name``, or None when this input does not have the class."""
        return self.crops[self.classes.index(name)] if name in self.classes else None


@dataclass(frozen=True)
class MapFile:
    """One image's file in a map folder; ``format`` is None for an hbens store."""

    path: str = path_field()
    format: ArrayFormat | None = None

    def read(self) -> ImageMaps:
        """The image's maps: a store's crops as stored; a saved array's read exactly (its ``meta``
        holds the image name, the source and the store precision its dtype calls for)."""
        if self.format is None:
            store = ProbabilityStore(self.path)
            return ImageMaps(list(store.classes), tuple(store.shape), store.stored_crops(), self.path,
                             str(store.meta.get("source", "hbens store")), store.meta)
        saved = read_saved_image(self.path, self.format, precision=EXACT)
        return ImageMaps(list(saved.classes), tuple(saved.shape), saved.crops, self.path, saved.source,
                         {"image": saved.name, "source": saved.source, "precision": saved.store_precision})


@dataclass(frozen=True)
class MapFolder:
    """A folder of per-image maps, indexed by image name (``NAME.npz`` holds ``NAME.png``)."""

    path: str
    files: dict[str, MapFile]
    kind: str

    @property
    def images(self) -> list[str]:
        """Image names in canonical (sorted) order."""
        return sorted(self.files)

    @cached_property
    def first_maps(self) -> ImageMaps:
        """The maps of the first image, read once: the folder's frame and classes."""
        return self.files[self.images[0]].read()

    @property
    def is_stores(self) -> bool:
        """Whether the folder holds hbens stores (which record their frame), not saved arrays."""
        return self.kind == "hbens stores"

    @cached_property
    def frame(self) -> tuple[int, int]:
        """Its first map's own size: a store's recorded one; a saved array's (from its header when it
        tells, else from its data)."""
        first = self.files[self.images[0]]
        if first.format is None:
            return tuple(self.first_maps.shape)
        own = replace(first, format=replace(first.format, size=None))
        return tuple(probe_saved_array(own.path, own.format) or own.read().shape)

    def at(self, frame: tuple[int, int]) -> MapFolder:
        """This folder with its saved arrays read at ``frame`` (enlarged when smaller); stores as they are."""
        first = self.files[self.images[0]]
        if self.is_stores or first.format.size == tuple(frame) or (first.format.size, self.frame) == (None, frame):
            return self
        return MapFolder(self.path, {name: MapFile(file.path, replace(file.format, size=tuple(frame)))
                                     for name, file in self.files.items()}, self.kind)


def framed(folders: Sequence[MapFolder], shape: tuple[int, int] | None = None,
           images: PathLike | None = None) -> tuple[tuple[int, int], list[MapFolder]]:
    """The frame of a run that reads ``folders`` (:func:`hbens.frames.resolve_frame`: ``shape``, else the
    stores', else the X-rays' under ``images``, else the saved arrays' largest, else 2048x2048), and the
    folders with their saved arrays read at it; HbensError naming two frames that disagree."""
    frame = resolve_frame(shape, stores=[(folder.path, folder.frame) for folder in folders if folder.is_stores],
                          images=images_frame(images),
                          saved=[(folder.path, folder.frame) for folder in folders if not folder.is_stores])
    return frame, [folder.at(frame) for folder in folders]


def is_map_folder(path: PathLike) -> bool:
    """Whether ``path`` is a folder (of stores or saved arrays), as opposed to a CSV file."""
    return Path(path).is_dir()


def open_map_folder(path: PathLike, fmt: ArrayFormat | None = None) -> MapFolder:
    """Index a folder of hbens stores (``*.npz`` with hbens metadata) or of saved arrays.

    The kind is detected from the folder's first file; ``fmt`` says how to read saved arrays
    (key, kind, class order, dropped channel) and is ignored for hbens stores.  Saved arrays are
    checked from their headers first (:func:`~hbens.maps.array_files.check_saved_arrays`), so that an
    ambiguous file or a second image size is refused before any work.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise HbensError(f"{path}: not a folder; pass a folder of probability maps (or a submission CSV)")
    stores = map_files(p for p in folder.glob("*.npz") if not p.name.startswith("."))
    if stores and is_hbens_store(stores[0]):
        return MapFolder(str(folder), {image_name(p): MapFile(str(p)) for p in stores}, "hbens stores")
    files = find_saved_arrays(folder)
    if not files:
        raise HbensError(f"{path}: no probability maps (hbens *.npz stores or .npy/.npz/.pt/.pth arrays); "
                         "pass a folder written by hbens predict or by your own inference")
    check_saved_arrays(files, fmt or ArrayFormat())
    return MapFolder(str(folder), {image_name(p): MapFile(str(p), fmt or ArrayFormat()) for p in files},
                     "saved arrays")


ImageReader = Callable[[str], tuple[list[MapFile | None], list[dict[str, str] | None]]]
"""``read(image) -> (maps, rles)``: per input its map file, or that CSV's ``{class: rle}`` rows.

An input that lacks the image gives no map and no rows (``None, {}``): empty masks."""


@dataclass(frozen=True)
class Inputs:
    """Opened inputs of ``fuse``, ``tune`` and ``apply``: per input its map folder or CSV index, and
    the frame of their maps."""

    paths: tuple[str, ...]
    sources: tuple[MapFolder | SubmissionIndex, ...]
    shape: tuple[int, int]

    @property
    def images(self) -> list[str]:
        """The images of any input, sorted."""
        return sorted(set().union(*(source.images for source in self.sources)))

    def check_images(self, images: Sequence[str], *, what: str,
                     advice: str = "pass predictions of the same images") -> None:
        """HbensError naming the first input that lacks one of ``images`` (those of ``what``)."""
        for path, source in zip(self.paths, self.sources):
            held = set(source.images)
            lacking = [image for image in images if image not in held]
            if lacking:
                raise HbensError(f"{path}: lacks {len(lacking)} image(s) of {what}, e.g. {examples(lacking)}; {advice}")

    @contextmanager
    def reader(self) -> Iterator[ImageReader]:
        """An :data:`ImageReader` of these inputs (the CSVs stay open until the block ends)."""
        with ExitStack() as stack:
            handles = [stack.enter_context(source.open()) if isinstance(source, SubmissionIndex) else None
                       for source in self.sources]

            def read(image: str) -> tuple[list[MapFile | None], list[dict[str, str] | None]]:
                maps, rles = [], []
                for source, handle in zip(self.sources, handles):
                    file = source.files.get(image) if isinstance(source, MapFolder) else None
                    maps.append(file)
                    if file is not None:
                        rles.append(None)
                    elif isinstance(source, MapFolder):
                        rles.append({})
                    else:
                        keys = [(image, name) for name in CLASSES if (image, name) in source.rows]
                        rles.append({name: source.read_rle((image, name), handle) for _, name in keys})
                return maps, rles

            yield read


def open_inputs(paths: Sequence[PathLike], *, array_format: ArrayFormat | None = None,
                shape: tuple[int, int] | None = None, images: PathLike | None = None) -> Inputs:
    """Open each input: a folder of maps (hbens stores or saved arrays) or a submission CSV.

    The frame is ``shape`` when given, else that of the stores, else of the X-rays under ``images``,
    else the largest saved arrays', else 2048x2048 (:func:`framed`); saved arrays smaller than it
    are enlarged to it, and CSVs are read in it.

    Example
    -------
    >>> inputs = open_inputs(["probs/unet", "fpn.csv"])  # doctest: +SKIP
    >>> with inputs.reader() as read:  # doctest: +SKIP
    ...     maps, rles = read("image0.png")
    """
    if not paths:
        raise HbensError("no inputs; pass folders of probability maps and/or submission CSVs")
    fmt = array_format if shape is None else replace(array_format or ArrayFormat(), size=tuple(shape))
    opened = {i: open_map_folder(path, fmt) for i, path in enumerate(paths) if is_map_folder(path)}
    shape, at_frame = framed(list(opened.values()), shape, images)
    folders = dict(zip(opened, at_frame))
    sources = tuple(folders[i] if i in folders else scan_submission(path, shape) for i, path in enumerate(paths))
    return Inputs(tuple(str(path) for path in paths), sources, tuple(shape))

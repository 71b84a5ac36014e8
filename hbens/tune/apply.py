"""``hbens apply``: a tuned recipe run on test predictions, one streaming pass, one task per image.

Each image is fused class by class with the recipe's soft rules
(:func:`hbens.ensemble.fuse.fuse_image`, the fuse of ``hbens fuse``), the classes with a
CRF are refined as ``hbens crf`` refines a fused store (:func:`hbens.postproc.crf.refine_store`
on the quantized fused crop), and the rows are cleaned by the recipe's cleanup
(:func:`hbens.postproc.clean.clean_rows`).  So ``apply`` gives exactly the rows of ``fuse
--stores``, then ``crf`` on those stores for the CRF classes, then ``clean``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hbens.classes import CLASSES
from hbens.ensemble.fuse import FuseStats, fuse_image
from hbens.ensemble.inputs import ImageInputs
from hbens.ensemble.rules import SoftRule, rules_metadata
from hbens.errors import HbensError
from hbens.execution import Execution, path_field
from hbens.images import find_xrays, read_xray
from hbens.maps.folders import ImageMaps, Inputs, open_inputs
from hbens.maps.probabilities import ClassCrop, crops_to_rles, write_store
from hbens.maps.saved_arrays import ArrayFormat
from hbens.outputs import PathLike
from hbens.paths import output_folders
from hbens.pipeline import ImageOutput, RunSummary, run_images
from hbens.postproc.clean import Cleanup, active_cleanup, clean_rows
from hbens.postproc.crf import CRFParams, refine_store
from hbens.tune.recipe import Recipe, read_recipe, recipe_inputs


def refine_class(
    stored: ClassCrop,
    name: str,
    xray: np.ndarray,
    params: CRFParams,
    *,
    image: str,
    shape: tuple[int, int],
    precision: str,
) -> ClassCrop:
    """The CRF-refined crop of one class's stored (quantized) probabilities, quantized to ``precision``.

    Exactly what ``hbens crf`` makes of that class in a store holding ``stored``
    (:func:`hbens.postproc.crf.refine_store`); ``image`` names the image in errors.
    """
    return refine_store(ImageMaps([name], tuple(shape), [stored], image), xray, params, precision=precision)[0]


@dataclass(frozen=True, kw_only=True)
class ApplyItem:
    """One image of ``apply``: its inputs, the recipe as rules, where its X-ray and fused store are."""

    inputs: ImageInputs
    rules: dict[str, SoftRule]
    cleanup: Cleanup
    crf: dict[str, CRFParams] = field(default_factory=dict)
    xray: str | None = path_field(None)
    store: str | None = path_field(None)
    metadata: dict = field(default_factory=dict)
    precision: str = "uint8"


def apply_image(item: ApplyItem) -> ImageOutput:
    """The per-image task of ``apply``: the recipe's rows (fused, refined, cleaned); writes the store when asked."""
    image = item.inputs.image
    result = fuse_image(item.inputs, item.rules, precision=item.precision,
                        keep_crops=bool(item.crf) or item.store is not None)
    rows, crops = list(result.rows), result.crops
    if item.crf:
        xray = read_xray(item.xray)
        for k, (name, _) in enumerate(rows):
            if name in item.crf:
                crops[k] = refine_class(crops[k], name, xray, item.crf[name], image=image, shape=result.shape,
                                        precision=item.precision)
                rows[k] = (name, crops_to_rles([crops[k]], result.shape, [item.rules[name].threshold])[0])
    if item.store is not None:
        write_store(item.store, crops, result.shape, item.precision, tuple(name for name, _ in rows),
                    image=image, **item.metadata)
    rows, clean = clean_rows(rows, item.cleanup, result.shape)
    return ImageOutput(image, rows, FuseStats(result.stats, clean))


def check_inputs(recipe: Recipe, inputs: Inputs, *, rename: bool, where: str) -> None:
    """HbensError unless ``inputs`` match the recipe's in number and kind, and in name unless ``rename``."""
    expected = recipe.inputs
    given = recipe_inputs(inputs)
    listed = ", ".join(item.name for item in expected)
    if len(given) != len(expected):
        raise HbensError(f"{where}: the recipe fuses {len(expected)} input(s) ({listed}), got {len(given)}; "
                         "pass the test predictions of the same models, in the recipe's order")
    kinds = {"store": "a folder of maps", "csv": "a CSV"}
    for number, (mine, theirs, path) in enumerate(zip(given, expected, inputs.paths), 1):
        if mine.kind != theirs.kind:
            raise HbensError(f"input {number} ({path}) is {kinds[mine.kind]}, the recipe's input {number} "
                             f"({theirs.name}) is {kinds[theirs.kind]}; pass the inputs in the recipe's order")
    for number, (mine, theirs, path) in enumerate(zip(given, expected, inputs.paths), 1):
        if mine.name != theirs.name and not rename:
            raise HbensError(f"input {number} ({path}) is named {mine.name!r}, the recipe's input {number} "
                             f"{theirs.name!r}; pass the inputs in the recipe's order ({listed}), or --rename "
                             "to apply the recipe to them anyway")


def recipe_rules(recipe: Recipe, *, where: str = "recipe") -> tuple[dict[str, SoftRule], Cleanup, dict[str, CRFParams]]:
    """The recipe as the soft rule, cleanup and CRF settings of each class; ``where`` starts errors."""
    rules = {}
    for name, entry in recipe.classes.items():
        try:
            rules[name] = SoftRule(members=entry.members, weights=entry.weights, space=entry.space,
                                   threshold=entry.threshold)
        except HbensError as error:
            raise HbensError(f"{where}: classes.{name}: {error}") from None
    cleanup = active_cleanup({name: entry.cleanup for name, entry in recipe.classes.items()})
    crf = {name: entry.crf for name, entry in recipe.classes.items() if entry.crf is not None}
    return rules, cleanup, crf


def apply_recipe(
    recipe: PathLike,
    paths: Sequence[PathLike],
    output: PathLike,
    *,
    stores: PathLike | None = None,
    images: PathLike | None = None,
    rename: bool = False,
    array_format: ArrayFormat | None = None,
    execution: Execution | None = None,
    shape: tuple[int, int] | None = None,
) -> RunSummary:
    """Run a recipe written by ``hbens tune`` on test predictions of the same models.

    Parameters
    ----------
    recipe : path
        The recipe YAML (:func:`hbens.tune.recipe.read_recipe`).
    paths : sequence of paths
        The inputs, in the recipe's order: folders of probability maps where the recipe has
        ``kind: store``, submission CSVs where it has ``kind: csv``.
    output : path
        The submission CSV written (atomically).
    stores : path, optional
        Also write each image's final probabilities (fused; refined for CRF classes) as hbens
        stores in this folder.
    images : path, optional
        The X-rays (searched recursively); required when a class uses the CRF.
    rename : bool
        Accept inputs whose names differ from the recipe's (number and kinds must still match).
    array_format : ArrayFormat, optional
        How to read folders of saved arrays.
    execution : Execution, optional
        Workers and scheduler of the per-image tasks.
    shape : (int, int), optional
        The frame; default: the stores', else the X-rays', else the saved arrays', else 2048x2048
        (:mod:`hbens.frames`).

    Returns
    -------
    RunSummary
        Its ``stats`` is a :class:`~hbens.ensemble.FuseStats`.
    """
    plan = read_recipe(recipe)
    inputs = open_inputs(paths, array_format=array_format, shape=shape, images=images)
    check_inputs(plan, inputs, rename=rename, where=str(recipe))
    rules, cleanup, crf = recipe_rules(plan, where=str(recipe))
    names = inputs.images
    inputs.check_images(names, what="the other inputs")
    xrays = _xrays(images, names, crf)
    metadata = {"inputs": list(inputs.paths), "recipe": str(recipe), "rules": rules_metadata(rules)}
    with inputs.reader() as read, output_folders([stores] if stores is not None else [], option="--stores"):

        def items():
            for name in names:
                maps, rles = read(name)
                yield ApplyItem(inputs=ImageInputs(image=name, maps=maps, rles=rles, shape=inputs.shape),
                                rules=rules, cleanup=cleanup, crf=crf, xray=xrays.get(name),
                                store=None if stores is None else str(Path(stores) / f"{Path(name).stem}.npz"),
                                metadata=metadata)

        summary = run_images(apply_image, items(), execution or Execution(), names=names, csv=output,
                             inputs=[*inputs.paths, recipe], desc="apply", holds_gil=bool(crf))
    summary.stats = summary.stats or FuseStats()
    return summary


def _xrays(images: PathLike | None, names: Sequence[str], crf: dict[str, CRFParams]) -> dict[str, str]:
    """The X-ray of each image when some class uses the CRF; HbensError when one is missing."""
    if not crf:
        return {}
    if images is None:
        shown = ", ".join(name for name in CLASSES if name in crf)
        raise HbensError(f"the recipe refines {len(crf)} class(es) with a CRF ({shown}); pass --images, the "
                         "folder of the X-rays")
    return find_xrays(images, names, split="test")

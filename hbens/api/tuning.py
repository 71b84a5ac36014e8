"""Per-class recipes: :func:`tune` on validation data, :func:`apply` on test predictions."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hbens.api import options
from hbens.api.options import Shape
from hbens.errors import HbensError, UsageError
from hbens.outputs import PathLike
from hbens.paths import CSV, HTML, YAML, check_paths
from hbens.pipeline import RunSummary
from hbens.tune import apply_recipe, tune_inputs, write_recipe
from hbens.tune.recipe import Recipe
from hbens.tune.report import tuning_table, write_tune_report
from hbens.tune.tuning import TuneResult, parse_steps

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TunedRecipe(Recipe):
    """The :class:`~hbens.tune.recipe.Recipe` that :func:`tune` wrote to ``path``, with its ``table``
    (class, baseline, in-sample, held-out, choice: what ``hbens tune`` prints) and the whole
    :class:`~hbens.tune.tuning.TuneResult` (``result``: per-image Dice, failed images, timings)."""

    path: str = ""
    table: pd.DataFrame = field(default=None, compare=False, repr=False)
    result: TuneResult = field(default=None, compare=False, repr=False)

    def _repr_html_(self) -> str:
        return self.table._repr_html_()


def tune(inputs: Sequence[PathLike], gt: PathLike, output: PathLike, *, folds: int = 5,
         steps: str | Sequence[str] = "members,thresholds,clean,crf", images: PathLike | None = None, seed: int = 0,
         crf_params: Mapping[str, float] | None = None, report: PathLike | None = None, shape: Shape = None,
         key: str | None = None, kind: str = "auto", array_classes: PathLike | Sequence[str] | None = None,
         drop_channel: int | None = None, workers: int | None = None, scheduler: str = "auto",
         keep_going: bool = False, progress: bool = False) -> TunedRecipe:
    """Choose, per class, how to fuse and post-process validation predictions, as ``hbens tune``.

    Each step (members and weights, threshold, cleanup, CRF) is kept for a class only when it
    raises the class's out-of-fold Dice; the recipe is written to ``output`` for :func:`apply`.

    Parameters
    ----------
    inputs : sequence of paths
        Validation predictions of the images of ``gt``: folders of probability maps and/or CSVs.
    gt : path
        Their ground truth: annotation JSONs (a folder) or a ground-truth CSV.
    output : path
        The recipe (YAML).
    folds, seed : int
        Folds of the guard (every choice is made on the other folds) and their seed.
    steps : str or sequence of str
        Among ``members``, ``thresholds``, ``clean``, ``crf`` (``crf`` only with ``images``).
    images : path, optional
        The validation X-rays, for the CRF step.
    crf_params : mapping, optional
        The CRF tried, as ``params`` of :func:`crf`.
    report : path, optional
        Also write an HTML report of the tuning.
    shape, key, kind, array_classes, drop_channel, workers, scheduler, keep_going
        See the module's notes.

    Returns
    -------
    TunedRecipe
        The :class:`~hbens.tune.recipe.Recipe` written, with ``.table`` (a DataFrame: class,
        baseline, in-sample, held-out, choice), ``.path`` and ``.result`` (the whole tuning).

    Examples
    --------
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = synthetic.write_example(folder, n_images=4, shape=(128, 128))
    >>> recipe = hb.tune(csvs, gt, f"{folder}/recipe.yaml", folds=2, steps="members,thresholds", shape=128)
    >>> list(recipe.table.columns), len(recipe.table), len(recipe.inputs)
    (['class', 'baseline', 'in-sample', 'held-out', 'choice'], 29, 3)
    """
    inputs = options.path_list(inputs)
    options.refuse_repeated("INPUTS", inputs)
    check_paths([*(("INPUTS", path) for path in inputs), ("--gt", gt), ("--images", images),
                 ("--classes", options.file_of(array_classes))], [("-o", output, YAML), ("--report", report, HTML)])
    try:
        chosen = parse_steps(steps if isinstance(steps, str) else ",".join(steps))
    except HbensError as error:
        raise UsageError(str(error), "--try") from None
    result = tune_inputs(inputs, gt, output, folds=folds, steps=chosen, images=images, seed=seed,
                         crf_params=crf_params, shape=options.as_frame(shape),
                         array_format=options.make_array_format(key, kind, array_classes, drop_channel),
                         execution=options.make_execution(workers, scheduler, keep_going, progress))
    if report is not None:
        write_tune_report(report, result, gt=gt, inputs=inputs, folds=folds)
    return TunedRecipe(result.recipe.inputs, result.recipe.classes, path=str(output),
                       table=tuning_table(result), result=result)


def apply(recipe: PathLike | Recipe, inputs: Sequence[PathLike], output: PathLike, *,
          stores: PathLike | None = None, images: PathLike | None = None, rename: bool = False,
          shape: Shape = None, key: str | None = None, kind: str = "auto",
          array_classes: PathLike | Sequence[str] | None = None, drop_channel: int | None = None,
          workers: int | None = None, scheduler: str = "auto", keep_going: bool = False,
          progress: bool = False) -> RunSummary:
    """Run a recipe on the test predictions of the same models, as ``hbens apply``.

    Parameters
    ----------
    recipe : path or Recipe
        The YAML written by :func:`tune`, or a recipe: the one :func:`tune` returned is run from
        the file it wrote, any other :class:`~hbens.tune.recipe.Recipe` from a temporary copy.
    inputs : sequence of paths
        The test predictions, in the recipe's order (folders of maps, CSVs).
    output : path
        The submission CSV.
    stores : path, optional
        Also write each image's final probabilities as hbens stores.
    images : path, optional
        The test X-rays; needed when the recipe uses a CRF.
    rename : bool
        Accept inputs whose names differ from the recipe's (their number and kinds must match).
    shape, key, kind, array_classes, drop_channel, workers, scheduler, keep_going
        See the module's notes.

    Returns
    -------
    RunSummary
        ``rows``, ``images``, ``seconds``, ``failed`` and ``stats``: a
        :class:`~hbens.ensemble.FuseStats` (``stats.clean``: what the cleanup removed).

    Examples
    --------
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> gt, csvs = synthetic.write_example(folder := tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> recipe = hb.tune(csvs, gt, f"{folder}/recipe.yaml", folds=2, steps="members", shape=128)
    >>> hb.apply(recipe, csvs, f"{folder}/tuned.csv", shape=128).rows
    58
    """
    inputs = options.path_list(inputs)
    options.refuse_repeated("INPUTS", inputs)
    with tempfile.TemporaryDirectory() as folder:
        recipe = recipe_file(recipe, folder)
        check_paths([("RECIPE", recipe), *(("INPUTS", path) for path in inputs), ("--images", images),
                     ("--classes", options.file_of(array_classes))], [("-o", output, CSV)],
                    folder_writes=[("--stores", stores)])
        return apply_recipe(recipe, inputs, output, stores=stores, images=images, rename=rename,
                            array_format=options.make_array_format(key, kind, array_classes, drop_channel),
                            execution=options.make_execution(workers, scheduler, keep_going, progress),
                            shape=options.as_frame(shape))


def recipe_file(recipe: PathLike | Recipe, folder: str) -> str:
    """The file of a recipe: the path given, the file :func:`tune` wrote, or a copy written in ``folder``."""
    if not isinstance(recipe, Recipe):
        return str(recipe)
    if isinstance(recipe, TunedRecipe) and recipe.path:
        return recipe.path
    path = str(Path(folder) / "recipe.yaml")
    write_recipe(path, Recipe(recipe.inputs, recipe.classes))
    return path

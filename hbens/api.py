"""The public API: one function per command, taking plain Python values and returning a result.

Each function does what its command does, with the same checks (the path guard of
:func:`hbens.paths.check_paths` first, so a refused call has written nothing) and the same
errors: an :class:`~hbens.errors.HbensError` whose message is the line the command prints after
``Error:``.  Nothing is printed; progress bars are off unless ``progress=True``.  Tables are
:mod:`pandas` objects.

==================  ===================================================  ==========================
function            does                                                 returns
==================  ===================================================  ==========================
:func:`predict`     checkpoints to probability stores                    RunSummary
:func:`fuse`        ensembles of CSVs and folders of maps                RunSummary
:func:`clean`       connected-component cleaning of a submission         RunSummary
:func:`crf`         dense CRF on probability maps                        RunSummary
:func:`import_arrays`  another pipeline's saved arrays to stores         RunSummary
:func:`tune`        per-class recipe on validation data                  TunedRecipe (a Recipe)
:func:`apply`       a recipe on test predictions                         RunSummary
:func:`score`       Dice of each image and class                         Scores
:func:`check`       validation of a submission                           CheckReport
:func:`show`        a picture of one image's masks                       (H, W, 3) uint8 array
:func:`draw`        the same, with the image's name and pixel counts     Drawing
:func:`synth`       hand phantoms in the competition's layout            dict of PNG paths
:func:`demo`        the whole pipeline on phantoms                       DemoResult
:func:`read_submission`  a submission as a table                         DataFrame
==================  ===================================================  ==========================

Arguments shared by several functions, named as the command's options:

- ``shape``: the frame, ``(H, W)`` or ``N``; None resolves it as :mod:`hbens.frames` says.
- ``workers``, ``scheduler``, ``keep_going``, ``progress``: the :class:`~hbens.pipeline.Execution`
  of the per-image tasks (``--workers``, ``--scheduler``, ``--keep-going``; ``progress``: a progress
  bar on terminals, as the commands show); images that fail with ``keep_going`` are listed in the
  summary's ``failed``.
- ``key``, ``kind``, ``array_classes``, ``drop_channel``: how to read saved arrays of another
  pipeline (:class:`~hbens.maps.saved_arrays.ArrayFormat`; ``array_classes`` is a file or a list).
- ``min_area``, ``keep``, ``largest``, ``fill_holes``, ``connectivity``, ``clean_classes``,
  ``clean_config``, ``report``: the cleanup of ``hbens clean`` and its per-class report CSV.
- ``thresholds``, ``class_weights``, ``scores``: a CSV path as the command reads, or a mapping
  ``{class: value}`` (``class_weights``: ``{class: [w1, w2, ...]}``).

``hbens.tune`` and ``hbens.demo`` are modules of the library, so those two functions are reached
as ``hbens.api.tune`` and ``hbens.api.demo``; the others are also ``hbens.fuse``, ``hbens.score``...
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hbens.classes import CLASS_INDEX, CLASSES, class_thresholds, read_class_names, read_class_values
from hbens.errors import HbensError
from hbens.frames import csv_frame, resolve_frame
from hbens.metrics import DiceTable
from hbens.outputs import PathLike
from hbens.outputs import same_file
from hbens.paths import CSV, HTML, YAML, check_paths, created_folder
from hbens.pipeline import Execution, RunSummary
from hbens.submission import CheckReport
from hbens.tune.recipe import Recipe
from hbens.tune.tuning import TuneResult

if TYPE_CHECKING:
    import pandas as pd

    from hbens.demo import DemoResult

Shape = int | tuple[int, int] | None
PerClass = PathLike | Mapping[str, float] | None
LARGEST_SIDE = 16384
"""Largest side of a frame (as ``--image-size``)."""


class UsageError(HbensError):
    """Arguments that do not go together (the command line's usage errors, exit status 2).

    ``option`` names the option at fault, when one is; the message then reads as click's.
    """

    def __init__(self, message: str, option: str | None = None):
        super().__init__(f"Invalid value for {option}: {message}" if option else message)
        self.message, self.option = message, option


# ----------------------------------------------------------------------------- shared arguments


def _frame(shape: Shape) -> tuple[int, int] | None:
    """``(H, W)`` of ``N`` or ``(H, W)``; None stays None (the library resolves the frame)."""
    if shape is None:
        return None
    sides = (shape, shape) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(sides) != 2 or not all(isinstance(s, (int, np.integer)) and 1 <= s <= LARGEST_SIDE for s in sides):
        raise UsageError(f"{shape!r}: expected N or (H, W), each side 1 to {LARGEST_SIDE} pixels", "--image-size")
    return int(sides[0]), int(sides[1])


def _execution(workers: int | None, scheduler: str, keep_going: bool, progress: bool,
               default_workers: int | None = None) -> Execution:
    """The :class:`~hbens.pipeline.Execution` of the arguments; a bad ``scheduler`` is a usage error."""
    try:
        return Execution(workers=workers or default_workers, scheduler=scheduler, keep_going=keep_going,
                         progress=progress)
    except HbensError as error:
        raise UsageError(str(error)) from None


def _cleanup(min_area: int, keep: int | None, largest: bool, fill_holes: bool, connectivity: int,
             classes: Sequence[str] | str | None, config: PathLike | None):
    """The per-class cleanup of the clean options, or None when they ask for nothing."""
    from hbens.postproc import CleanConfig, active_cleanup, clean_configs

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


def _array_format(key: str | None, kind: str, classes: PathLike | Sequence[str] | None,
                  drop_channel: int | None):
    from hbens.maps.saved_arrays import ArrayFormat

    if classes is None:
        names = CLASSES
    elif isinstance(classes, (str, Path)):
        names = read_class_names(str(classes))
    else:
        names = classes
    return ArrayFormat(key=key, kind=kind, classes=tuple(names), drop_channel=drop_channel)


def _file(value: object) -> str | None:
    """The path of an argument that is a file or a value (None when it is a value)."""
    return str(value) if isinstance(value, (str, Path)) else None


def _class_values(values: PerClass, column: str, written_by: str = "") -> dict[str, float] | None:
    """``{class: number}`` of a ``class,<column>`` CSV or of a mapping, checked alike."""
    if values is None or isinstance(values, (str, Path)):
        return None if values is None else read_class_values(str(values), column, written_by)
    checked = {}
    for name, value in values.items():
        if name not in CLASS_INDEX:
            raise HbensError(f"{column}s: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
        if not 0 <= float(value) <= 1:
            raise HbensError(f"{column}s: {column} {value} of {name} is not in [0, 1]")
        checked[name] = float(value)
    return checked


def _thresholds(threshold: float, thresholds: PerClass) -> list[float]:
    """One threshold per class: ``threshold``, overridden per class by ``thresholds``."""
    return list(class_thresholds(threshold, _class_values(thresholds, "threshold")).values())


def _class_weights(values: PathLike | Mapping[str, Sequence[float]] | None,
                   n_inputs: int) -> dict[str, list[float]] | None:
    """Per-class weights of a CSV/JSON file (:func:`~hbens.ensemble.read_class_weights`) or of a mapping."""
    from hbens.ensemble import read_class_weights

    if values is None or isinstance(values, (str, Path)):
        return None if values is None else read_class_weights(values, n_inputs)
    for name, weights in values.items():
        if name not in CLASS_INDEX:
            raise HbensError(f"class weights: unknown class {name!r}; valid classes: {', '.join(CLASSES)}")
        if len(weights) != n_inputs or not all(w > 0 for w in weights):
            raise HbensError(f"class weights of {name}: {list(weights)}; give {n_inputs} weights > 0, one per input")
    return {name: [float(w) for w in weights] for name, weights in values.items()}


def _refuse_repeated(option: str, paths: Sequence[str],
                     advice: str = "give each input once (to count one more, use --weights)") -> None:
    for number, path in enumerate(paths):
        for earlier in paths[:number]:
            if same_file(earlier, path):
                raise UsageError(f"{option} {earlier} and {path} are the same file; {advice}")


def _precision(name: str) -> str:
    return "float16" if name == "fp16" else name


def _paths(values: Sequence[PathLike] | PathLike) -> list[str]:
    """A list of paths as strings (one path alone is a list of one); none is a usage error."""
    listed = [values] if isinstance(values, (str, Path)) else list(values)
    if not listed:
        raise UsageError("give at least one input")
    return [str(path) for path in listed]


def _clean_report(summary: RunSummary, cleanup, report: PathLike | None, inputs: Sequence[str] = ()) -> None:
    """Mark the summary ``cleaned`` when a cleanup ran, and write the per-class clean report when asked."""
    from hbens.postproc import write_clean_report

    summary.cleaned = cleanup is not None
    if cleanup and report:
        write_clean_report(report, getattr(summary.stats, "clean", summary.stats), tuple(inputs))


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Scores:
    """Dice of each image and class, as ``hbens score`` computes it.

    ``table`` is a DataFrame (index ``image_name``, one column per class in canonical order),
    ``per_class`` the mean of each class over images (a Series) and ``mean`` the competition's
    score, the mean of ``per_class``; both are exactly the numbers ``hbens score`` prints.
    """

    dice: DiceTable

    @cached_property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.dice.values, index=pd.Index(self.dice.images, name="image_name"),
                            columns=pd.Index(self.dice.classes, name="class"), copy=True)

    @property
    def per_class(self) -> pd.Series:
        import pandas as pd

        return pd.Series(self.dice.per_class, index=pd.Index(self.dice.classes, name="class"), name="dice")

    @property
    def mean(self) -> float:
        return self.dice.mean

    def __repr__(self) -> str:
        return f"Scores(mean={self.mean:.4f}, images={len(self.dice.images)}, classes={len(self.dice.classes)})"

    def _repr_html_(self) -> str:
        return self.table._repr_html_()


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


# ----------------------------------------------------------------------------- submissions


def check(submission: PathLike, *, shape: Shape = None) -> CheckReport:
    """Validate a submission, as ``hbens check``: header, 29 classes per image, every RLE.

    Parameters
    ----------
    submission : path
        The submission CSV.
    shape : int or (int, int), optional
        The frame the RLE strings describe; default 2048x2048.

    Returns
    -------
    CheckReport
        ``ok``, the counts of valid rows, images and classes, and every problem (file:line: what).

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> gt, csvs = write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> report = hb.check(csvs[0], shape=128)
    >>> report.ok, report.rows, report.images
    (True, 58, 2)
    """
    from hbens.submission import check_submission

    check_paths([("SUBMISSION", submission)], [])
    return check_submission(submission, csv_frame(_frame(shape)))


def read_submission(path: PathLike, *, shape: Shape = None) -> pd.DataFrame:
    """A submission as a DataFrame of its rows, every row checked as ``hbens check`` checks it.

    Parameters
    ----------
    path : path
        The submission CSV.
    shape : int or (int, int), optional
        The frame the RLE strings describe; default 2048x2048.

    Returns
    -------
    DataFrame
        Columns ``image_name``, ``class``, ``rle``, rows in canonical order (image, then class).
        A bad row raises :class:`~hbens.errors.HbensError` (``file:line: problem``); absent
        (image, class) rows are not an error here (:func:`check` lists them).

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> gt, csvs = write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> rows = hb.read_submission(csvs[0], shape=128)
    >>> list(rows.columns), len(rows), rows["class"].iloc[0]
    (['image_name', 'class', 'rle'], 58, 'finger-1')
    """
    import pandas as pd

    from hbens.submission import HEADER, iter_rows, scan_submission

    index = scan_submission(path, csv_frame(_frame(shape)))
    return pd.DataFrame(list(iter_rows(index)), columns=list(HEADER))


def score(prediction: PathLike, gt: PathLike, *, threshold: float = 0.5, thresholds: PerClass = None,
          missing: str = "error", shape: Shape = None, out: PathLike | None = None, plot: PathLike | None = None,
          key: str | None = None, kind: str = "auto", array_classes: PathLike | Sequence[str] | None = None,
          drop_channel: int | None = None) -> Scores:
    """Dice of each image and class of a prediction against the ground truth, as ``hbens score``.

    Parameters
    ----------
    prediction : path
        A submission CSV, or a folder of probability maps (hbens stores or saved arrays)
        thresholded at ``threshold`` (per class: ``thresholds``).
    gt : path
        The annotation JSONs (a folder, ``outputs_json``) or a ground-truth CSV.
    threshold, thresholds : float, path or mapping
        Maps only: foreground where the probability exceeds this.
    missing : {"error", "empty"}
        Rows absent from the prediction: an error, or empty masks.
    shape : int or (int, int), optional
        The frame (see :mod:`hbens.frames`).
    out, plot : path, optional
        Also write the per-class Dice as ``class,dice`` (``hbens fuse --scores`` reads it), and a
        bar chart (PNG, PDF or SVG).
    key, kind, array_classes, drop_channel
        How to read saved arrays (see the module's notes).

    Returns
    -------
    Scores
        ``.table`` (images x classes DataFrame), ``.per_class`` (Series) and ``.mean`` (float).

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> gt, csvs = write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> scores = hb.score(csvs[0], gt, shape=128)
    >>> scores.table.shape, scores.table.index.name, list(scores.table.columns[:2])
    ((2, 29), 'image_name', ['finger-1', 'finger-2'])
    >>> print(f"mean Dice {scores.mean:.4f}, Ulna {scores.per_class['Ulna']:.4f}")
    mean Dice 0.4791, Ulna 0.6793
    """
    from hbens.metrics import plot_format, plot_scores, score_maps, score_submission, write_scores

    check_paths([("PREDICTION", prediction), ("--gt", gt), ("--thresholds", _file(thresholds)),
                 ("--classes", _file(array_classes))], [("--out", out, CSV), ("--plot", plot)])
    if plot:
        plot_format(plot)
    if Path(prediction).is_dir():
        table = score_maps(prediction, gt, threshold=threshold, missing=missing,
                           thresholds=_class_values(thresholds, "threshold"),
                           array_format=_array_format(key, kind, array_classes, drop_channel), shape=_frame(shape))
    else:
        table = score_submission(prediction, gt, missing, shape=_frame(shape))
    inputs = (str(prediction), str(gt))
    if out:
        write_scores(out, table, inputs)
    if plot:
        plot_scores(plot, table, inputs)
    return Scores(table)


def show(submission: PathLike, *, image: str | None = None, images: PathLike | None = None,
         compare: PathLike | None = None, shape: Shape = None, output: PathLike | None = None,
         scale: float = 0.5) -> np.ndarray:
    """A picture of one image's masks, each class in its color, as ``hbens show`` draws it.

    Parameters
    ----------
    submission : path
        The submission CSV.
    image : str, optional
        Which image (default: the first).
    images : path, optional
        The folder of the X-rays (searched recursively), to draw over the X-ray.
    compare : path, optional
        Another submission: color where the two agree (green), where only ``submission`` has a
        bone (red), only ``compare`` (blue), or each a different bone (magenta).
    shape : int or (int, int), optional
        The frame; default: the X-rays' size, else 2048x2048.
    output : path, optional
        Also save the picture, with its legend, as PNG or JPEG, resized by ``scale``.

    Returns
    -------
    ndarray
        (H, W, 3) uint8 RGB picture at the frame's size, which a notebook displays with
        ``PIL.Image.fromarray`` or ``matplotlib.pyplot.imshow``.

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=2, shape=(128, 128), images=True)
    >>> picture = hb.show(csvs[0], images=f"{folder}/images", compare=csvs[1])
    >>> picture.shape, picture.dtype
    ((128, 128, 3), dtype('uint8'))
    """
    return draw(submission, image=image, images=images, compare=compare, shape=shape, output=output,
                scale=scale).picture


@dataclass(frozen=True)
class Drawing:
    """What :func:`draw` drew: the (H, W, 3) uint8 ``picture``, the ``image`` it shows and, with
    ``compare``, the pixels of each layer (``counts``)."""

    picture: np.ndarray
    image: str
    counts: dict[str, int] | None = None


def draw(submission: PathLike, *, image: str | None = None, images: PathLike | None = None,
         compare: PathLike | None = None, shape: Shape = None, output: PathLike | None = None,
         scale: float = 0.5) -> Drawing:
    """:func:`show`, with the name of the image drawn and the pixel counts of a comparison (what
    ``hbens show`` prints).

    Parameters
    ----------
    submission, image, images, compare, shape, output, scale
        As :func:`show`.

    Returns
    -------
    Drawing
        ``picture`` (what :func:`show` returns), ``image`` and ``counts`` (None without ``compare``).

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> gt, csvs = write_example(tempfile.mkdtemp(), n_images=1, shape=(64, 64))
    >>> drawing = hb.draw(csvs[0], compare=csvs[1], shape=64)
    >>> drawing.picture.shape, list(drawing.counts)
    ((64, 64, 3), ['in both', 'only in the first', 'only in the second', 'a different class in each'])
    """
    from hbens.pictures import (
        COMPARE_COLORS,
        compare_masks,
        compare_overlay,
        image_rows,
        overlay,
        picture_suffix,
        save_picture,
    )

    check_paths([("SUBMISSION", submission), ("--compare", compare), ("--images", images)], [("-o", output)])
    if output is not None:
        picture_suffix(output)
    frame = csv_frame(_frame(shape), images)
    image, rles = image_rows(submission, image, frame)
    xray = None if images is None else _xray(images, image, frame)
    inputs = tuple(str(path) for path in (submission, compare) if path is not None)
    counts, entries = None, None
    if compare is None:
        picture = overlay(rles, xray, frame)
    else:
        comparison = compare_masks(rles, image_rows(compare, image, frame)[1], shape=frame)
        picture, counts, entries = compare_overlay(comparison, xray), comparison.counts(), COMPARE_COLORS
    if output is not None:
        save_picture(output, picture, scale, inputs=inputs, entries=entries)
    return Drawing(picture, image, counts)


def _xray(images: PathLike, image: str, frame: tuple[int, int]) -> np.ndarray:
    """The X-ray named ``image`` under ``images`` as uint8 gray levels, in the frame."""
    from hbens.images import find_images, read_xray

    found = {path.name: path for path in find_images(images)}
    if image not in found:
        raise HbensError(f"{images}: no file named {image}")
    xray = read_xray(found[image])
    resolve_frame(frame, images=(str(found[image]), xray.shape))
    return xray


# ----------------------------------------------------------------------------- ensembles and cleaning


def fuse(inputs: Sequence[PathLike], output: PathLike, *, strategy: str | None = None, threshold: float = 0.5,
         thresholds: PerClass = None, space: str = "prob", stores: PathLike | None = None,
         precision: str = "uint8", min_votes: int | None = None, union: bool = False, intersection: bool = False,
         weights: Sequence[float] | None = None, min_weight: float | None = None,
         class_weights: PathLike | Mapping[str, Sequence[float]] | None = None, picks: Sequence[str] = (),
         scores: Sequence[PerClass] = (), missing: str = "error", shape: Shape = None, key: str | None = None,
         kind: str = "auto", array_classes: PathLike | Sequence[str] | None = None, drop_channel: int | None = None,
         min_area: int = 0, keep: int | None = None, largest: bool = False, fill_holes: bool = False,
         connectivity: int = 8, clean_classes: Sequence[str] | str | None = None,
         clean_config: PathLike | None = None, report: PathLike | None = None, workers: int | None = None,
         scheduler: str = "auto", keep_going: bool = False,
         progress: bool = False) -> RunSummary:
    """Fuse submissions and folders of probability maps into one submission, as ``hbens fuse``.

    CSVs alone are voted on runs; maps (and CSVs beside them, as 0/1 maps) are averaged per class.

    Parameters
    ----------
    inputs : sequence of paths
        Submission CSVs and/or folders of probability maps (hbens stores or saved arrays).
    output : path
        The fused submission CSV.
    strategy : {"soft", "hard", "classwise"}, optional
        Weighted mean of probabilities, a (weighted) vote of the masks, or each class from chosen
        inputs; default: soft when an input is a folder, else hard.
    threshold, thresholds, space, stores, precision
        Maps: the foreground threshold (per class: ``thresholds``), ``"prob"`` or ``"logit"``
        averaging, a folder to write the fused probabilities to, and its ``uint8``/``fp16``.
    min_votes, union, intersection, weights, min_weight, class_weights
        The vote: at least K inputs (``union``: 1, ``intersection``: all; default: a majority),
        one weight per input, the weight sum to exceed, per-class weights.
    picks, scores
        classwise: ``"CLASS=I[+J...]"`` choices, or each input's per-class Dice (one per input).
    missing : {"error", "empty"}
        Absent (image, class) rows: an error, or empty masks.
    shape, key, kind, array_classes, drop_channel, min_area, keep, largest, fill_holes, connectivity,
    clean_classes, clean_config, report, workers, scheduler, keep_going
        See the module's notes; the cleanup cleans each fused row in the same pass.

    Returns
    -------
    RunSummary
        ``rows`` written, ``seconds``, ``failed`` images and ``stats``: a
        :class:`~hbens.ensemble.csv_votes.VoteStats` (``changed``: rows that differ from each input)
        for votes on CSVs alone, else a :class:`~hbens.ensemble.FuseStats`.

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=2, shape=(128, 128))
    >>> summary = hb.fuse(csvs, f"{folder}/fused.csv", weights=[2, 1, 1], shape=128)
    >>> summary.rows, summary.failed
    (58, [])
    """
    from hbens.ensemble import classwise_rules, hard_rules, soft_rules
    from hbens.ensemble import fuse as fuse_inputs
    from hbens.metrics import read_scores

    inputs = _paths(inputs)
    n = len(inputs)
    if union + intersection + (min_votes is not None) > 1:
        raise UsageError("give at most one of --min-votes, --union, --intersection")
    if min_votes is not None and min_votes > n:
        raise UsageError(f"{min_votes} is outside 1..{n} for {n} inputs", "--min-votes")
    if weights is not None and len(weights) != n:
        raise UsageError(f"{len(weights)} weights for {n} inputs; give one per input", "--weights")
    score_files = [path for path in map(_file, scores) if path is not None]
    _refuse_repeated("INPUTS", inputs)
    _refuse_repeated("--scores", score_files, advice="give each input's validation scores, one file per input")
    check_paths([*(("INPUTS", path) for path in inputs), *(("--scores", path) for path in score_files),
                 ("--class-weights", _file(class_weights)), ("--clean-config", clean_config),
                 ("--thresholds", _file(thresholds)), ("--classes", _file(array_classes))],
                [("-o", output, CSV), ("--report", report, CSV)], folder_writes=[("--stores", stores)])
    min_votes = 1 if union else n if intersection else min_votes
    maps = any(Path(path).is_dir() for path in inputs)
    strategy = strategy or ("soft" if maps else "hard")
    if strategy == "classwise" and (min_votes is not None or weights or class_weights or min_weight is not None):
        raise UsageError("--strategy classwise takes --pick and --scores, not vote options")
    if strategy != "classwise" and (picks or scores):
        raise UsageError("--pick and --scores need --strategy classwise")
    if strategy == "soft" and (min_votes is not None or min_weight is not None):
        raise UsageError("--strategy soft averages; --min-votes, --union, --intersection and --min-weight "
                         "are for --strategy hard")
    class_weights = _class_weights(class_weights, n)
    scored = [read_scores(str(s)) if isinstance(s, (str, Path)) else _class_values(s, "dice") for s in scores] or None
    cleanup = _cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    execution = _execution(workers, scheduler, keep_going, progress)
    per_threshold = _class_values(thresholds, "threshold")
    if strategy == "soft":
        rules = soft_rules(n, weights=weights, class_weights=class_weights, threshold=threshold,
                           thresholds=per_threshold, space=space)
    elif strategy == "classwise":
        rules = classwise_rules(n, picks=picks, scores=scored, threshold=threshold, thresholds=per_threshold,
                                space=space, vote=not maps)
    else:
        rules = hard_rules(n, min_votes=min_votes, weights=weights, min_weight=min_weight,
                           class_weights=class_weights, threshold=threshold, thresholds=per_threshold)
    summary = fuse_inputs(inputs, output, rules, missing=missing, stores=stores, precision=_precision(precision),
                          array_format=_array_format(key, kind, array_classes, drop_channel), cleanup=cleanup,
                          execution=execution, shape=_frame(shape))
    _clean_report(summary, cleanup, report, inputs)
    return summary


def clean(submission: PathLike, output: PathLike, *, min_area: int = 0, keep: int | None = None,
          largest: bool = False, fill_holes: bool = False, connectivity: int = 8,
          classes: Sequence[str] | str | None = None, config: PathLike | None = None,
          report: PathLike | None = None, shape: Shape = None, workers: int | None = None,
          scheduler: str = "auto", keep_going: bool = False,
          progress: bool = False) -> RunSummary:
    """Clean a submission's masks, as ``hbens clean``: small components, largest components, holes.

    Parameters
    ----------
    submission, output : path
        The submission CSV read, and the cleaned one written.
    min_area, keep, largest, fill_holes, connectivity
        Drop components under ``min_area`` pixels, keep the ``keep`` largest (``largest``: 1),
        fill holes; bones are ``connectivity``-connected (4 or 8), holes the other.
    classes : list or comma-separated str, optional
        Clean only these classes.
    config : path, optional
        YAML/JSON of per-class settings (top-level defaults, overrides under class names).
    report : path, optional
        Also write the per-class counts (CSV).
    shape, workers, scheduler, keep_going
        See the module's notes.

    Returns
    -------
    RunSummary
        ``rows`` written, ``seconds``, ``failed`` images and ``stats``: a
        :class:`~hbens.postproc.clean.CleanTotals` (components removed, holes filled).

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=2, shape=(128, 128))
    >>> summary = hb.clean(csvs[0], f"{folder}/clean.csv", largest=True, shape=128)
    >>> summary.rows
    58
    """
    from hbens.postproc import clean_csv

    check_paths([("SUBMISSION", submission), ("--config", config)], [("-o", output, CSV), ("--report", report, CSV)])
    execution = _execution(workers, scheduler, keep_going, progress)
    cleanup = _cleanup(min_area, keep, largest, fill_holes, connectivity, classes, config)
    if cleanup is None:
        raise UsageError("nothing to do: give --min-area, --keep/--largest, --fill-holes or --config")
    summary = clean_csv(submission, output, cleanup, execution=execution, shape=_frame(shape))
    _clean_report(summary, cleanup, report, [str(submission)])
    return summary


# ----------------------------------------------------------------------------- probability maps


def crf(stores: PathLike, images: PathLike, output: PathLike, *, csv: PathLike | None = None,
        gt: PathLike | None = None, threshold: float = 0.5, thresholds: PerClass = None,
        params: Mapping[str, float] | None = None, shape: Shape = None, key: str | None = None, kind: str = "auto",
        array_classes: PathLike | Sequence[str] | None = None, drop_channel: int | None = None,
        min_area: int = 0, keep: int | None = None, largest: bool = False, fill_holes: bool = False,
        connectivity: int = 8, clean_classes: Sequence[str] | str | None = None,
        clean_config: PathLike | None = None, report: PathLike | None = None, workers: int | None = None,
        scheduler: str = "auto", keep_going: bool = False,
        progress: bool = False) -> RunSummary:
    """Refine probability maps with a dense CRF against their X-rays, as ``hbens crf``.

    Parameters
    ----------
    stores : path
        A folder of hbens stores or of saved arrays.
    images : path
        The folder of the X-rays they came from (searched recursively).
    output : path
        The folder of the refined stores.
    csv : path, optional
        Also write a submission, thresholded at ``threshold`` (per class: ``thresholds``).
    gt : path, optional
        Annotation JSONs or a ground-truth CSV: the stats then hold each class's Dice before and
        after refinement (:func:`hbens.postproc.crf.describe_dice` prints them as ``hbens crf --gt``).
    params : mapping or CRFParams, optional
        CRF settings (``iterations``, ``gaussian_sxy``, ``bilateral_sxy``, ``bilateral_srgb``,
        ``gaussian_compat``, ``bilateral_compat``, ``margin``); the others default to their values at
        2048 pixels scaled to the frame (:func:`hbens.postproc.crf.frame_params`).
    shape, key, kind, array_classes, drop_channel, min_area, keep, largest, fill_holes, connectivity,
    clean_classes, clean_config, report, workers, scheduler, keep_going
        See the module's notes; the cleanup applies to the ``csv`` rows.

    Returns
    -------
    RunSummary
        ``images`` refined, ``seconds``, ``failed`` and ``stats``: a :class:`~hbens.postproc.crf.CRFStats`.

    Examples
    --------
    >>> import tempfile, numpy as np, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=1, shape=(64, 64), images=True)
    >>> fused = hb.fuse(csvs, f"{folder}/soft.csv", strategy="soft", stores=f"{folder}/soft", shape=64)
    >>> summary = hb.crf(f"{folder}/soft", f"{folder}/images", f"{folder}/crf", params={"iterations": 2}, workers=1)
    >>> summary.images, summary.failed
    (1, [])
    """
    from hbens.postproc.crf import crf_folder

    check_paths([("STORES", stores), ("--images", images), ("--thresholds", _file(thresholds)),
                 ("--clean-config", clean_config), ("--gt", gt), ("--classes", _file(array_classes))],
                [("--csv", csv, CSV), ("--report", report, CSV)], folder_writes=[("-o", output)])
    cleanup = _cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    summary = crf_folder(stores, images, output, params, csv=csv, thresholds=_thresholds(threshold, thresholds),
                         cleanup=cleanup, array_format=_array_format(key, kind, array_classes, drop_channel),
                         ground_truth=gt, execution=_execution(workers, scheduler, keep_going, progress),
                         shape=_frame(shape))
    _clean_report(summary, cleanup, report)
    return summary


def import_arrays(src: PathLike, output: PathLike, *, size: int | None = None, precision: str = "auto",
                  resume: bool = False, shape: Shape = None, key: str | None = None, kind: str = "auto",
                  array_classes: PathLike | Sequence[str] | None = None, drop_channel: int | None = None,
                  workers: int | None = None, scheduler: str = "auto", keep_going: bool = False,
                  progress: bool = False) -> RunSummary:
    """Convert another pipeline's saved arrays to hbens probability stores, as ``hbens import``.

    Parameters
    ----------
    src : path
        The folder of saved arrays (``.npy``, ``.npz``, ``.pt``/``.pth`` per image, searched recursively).
    output : path
        The folder of the stores (``NAME.npz`` for ``NAME.npy``...).
    size : int, optional
        Stores of N x N images (the same as ``shape=N``); default: each map's own size, or ``shape``.
    precision : {"auto", "uint8", "fp16"}
        Stored probabilities: steps of 1/255 or float16; auto: uint8 for uint8 or bool arrays.
    resume : bool
        Keep the stores made from the same file with the same options.
    shape, key, kind, array_classes, drop_channel, workers, scheduler, keep_going
        See the module's notes.

    Returns
    -------
    RunSummary
        ``images``, ``seconds``, ``failed`` and ``stats``: an :class:`~hbens.importer.ImportTotals`.

    Examples
    --------
    >>> import tempfile, numpy as np, hbens.api as hb
    >>> folder = tempfile.mkdtemp()
    >>> probabilities = np.random.default_rng(0).random((29, 64, 64), dtype=np.float32)
    >>> np.save(f"{folder}/image1.npy", probabilities)
    >>> summary = hb.import_arrays(folder, f"{folder}-stores", kind="probs")
    >>> summary.stats.imported
    1
    """
    from dataclasses import replace

    from hbens.importer import import_folder

    frame = _frame(shape)
    if size is not None and frame is not None and frame != (size, size):
        raise UsageError(f"--size {size} and --image-size {frame[0]}x{frame[1]} disagree; give one")
    check_paths([("SRC", src), ("--classes", _file(array_classes))], [], folder_writes=[("-o", output)])
    fmt = replace(_array_format(key, kind, array_classes, drop_channel), size=frame or ((size, size) if size else None))
    return import_folder(src, output, fmt, precision=_precision(precision), resume=resume,
                         execution=_execution(workers, scheduler, keep_going, progress))


# ----------------------------------------------------------------------------- recipes


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
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=4, shape=(128, 128))
    >>> recipe = hb.tune(csvs, gt, f"{folder}/recipe.yaml", folds=2, steps="members,thresholds", shape=128)
    >>> list(recipe.table.columns), len(recipe.table), len(recipe.inputs)
    (['class', 'baseline', 'in-sample', 'held-out', 'choice'], 29, 3)
    """
    from hbens.tune import tune_inputs
    from hbens.tune.report import write_tune_report
    from hbens.tune.tuning import parse_steps, tuning_table

    inputs = _paths(inputs)
    _refuse_repeated("INPUTS", inputs)
    check_paths([*(("INPUTS", path) for path in inputs), ("--gt", gt), ("--images", images),
                 ("--classes", _file(array_classes))], [("-o", output, YAML), ("--report", report, HTML)])
    try:
        chosen = parse_steps(steps if isinstance(steps, str) else ",".join(steps))
    except HbensError as error:
        raise UsageError(str(error), "--try") from None
    result = tune_inputs(inputs, gt, output, folds=folds, steps=chosen, images=images, seed=seed,
                         crf_params=crf_params, shape=_frame(shape),
                         array_format=_array_format(key, kind, array_classes, drop_channel),
                         execution=_execution(workers, scheduler, keep_going, progress))
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
    >>> import tempfile, hbens.api as hb
    >>> from hbens.synthetic import write_example
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = write_example(folder, n_images=2, shape=(128, 128))
    >>> recipe = hb.tune(csvs, gt, f"{folder}/recipe.yaml", folds=2, steps="members", shape=128)
    >>> hb.apply(recipe, csvs, f"{folder}/tuned.csv", shape=128).rows
    58
    """
    from hbens.tune import apply_recipe

    inputs = _paths(inputs)
    _refuse_repeated("INPUTS", inputs)
    with tempfile.TemporaryDirectory() as folder:
        recipe = _recipe_file(recipe, folder)
        check_paths([("RECIPE", recipe), *(("INPUTS", path) for path in inputs), ("--images", images),
                     ("--classes", _file(array_classes))], [("-o", output, CSV)],
                    folder_writes=[("--stores", stores)])
        return apply_recipe(recipe, inputs, output, stores=stores, images=images, rename=rename,
                            array_format=_array_format(key, kind, array_classes, drop_channel),
                            execution=_execution(workers, scheduler, keep_going, progress), shape=_frame(shape))


def _recipe_file(recipe: PathLike | Recipe, folder: str) -> str:
    """The file of a recipe: the path given, the file :func:`tune` wrote, or a copy written in ``folder``."""
    from hbens.tune import write_recipe

    if not isinstance(recipe, Recipe):
        return str(recipe)
    if isinstance(recipe, TunedRecipe) and recipe.path:
        return recipe.path
    path = str(Path(folder) / "recipe.yaml")
    write_recipe(path, Recipe(recipe.inputs, recipe.classes))
    return path


# ----------------------------------------------------------------------------- models and phantoms


def predict(checkpoints: Sequence[PathLike], images: PathLike, output: PathLike, *, arch: str | None = None,
            encoder: str | None = None, in_channels: int = 3, classes: int = 29, format: str | None = None,
            allow_pickle: bool = False, channels: str | None = None, size: int | None = None,
            window: int | None = None, overlap: float = 0.5, blend: str = "gaussian", tta: str = "none",
            merge: str = "mean", normalize: str = "none", ensemble: str | None = None,
            weights: Sequence[float] | None = None, csv: PathLike | None = None, threshold: float = 0.5,
            thresholds: PerClass = None, precision: str = "uint8", device: str = "auto", batch_size: int = 1,
            resume: bool = False, crop_from: PathLike | None = None, crop_classes: str | None = None,
            crop_margin: float | None = None, model_classes: str | None = None, min_area: int = 0,
            keep: int | None = None, largest: bool = False, fill_holes: bool = False, connectivity: int = 8,
            clean_classes: Sequence[str] | str | None = None, clean_config: PathLike | None = None,
            report: PathLike | None = None, workers: int | None = None, scheduler: str = "auto",
            keep_going: bool = False, progress: bool = False) -> RunSummary:
    """Predict per-class probabilities of every PNG under ``images`` with each checkpoint, as
    ``hbens predict`` (its options, by the same names: see ``hbens predict --help``).

    Parameters
    ----------
    checkpoints : sequence of paths
        Checkpoint files or ``save_pretrained`` folders.
    images : path
        The folder of PNG images (searched recursively).
    output : path
        The folder of the probability stores (one subfolder per model, or ``ensemble``).
    arch, encoder, in_channels, classes, format, allow_pickle, channels
        How to load bare state dicts (segmentation-models-pytorch names), a forced format, whether
        pickled code may load (only for files you trust), and ``START:STOP`` output channels.
    size, window, overlap, blend, tta, merge, normalize, batch_size, precision, device
        How each image becomes probabilities (``--size`` ... ``--device``).
    ensemble, weights
        ``"mean"``: average the checkpoints (with ``weights``) into one store.
    csv, threshold, thresholds
        Also write a submission thresholded at ``threshold`` (per class: ``thresholds``).
    resume : bool
        Skip images whose stores exist and are valid.
    crop_from, crop_classes, crop_margin, model_classes
        A region model: run on each image's region around ``crop_classes`` (comma-separated) in
        this first-stage prediction; ``model_classes``: the model's classes when fewer than 29.
    min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config, report, workers,
    scheduler, keep_going
        See the module's notes; the cleanup applies to the ``csv`` rows.

    Returns
    -------
    RunSummary
        ``images``, ``seconds``, ``failed`` and ``stats``: a :class:`~hbens.predictors.PredictStats`.

    Examples
    --------
    The run needs a checkpoint and torch (seconds to load), so it is not run here:

    >>> import hbens.api as hb
    >>> summary = hb.predict(["unet.pt"], "test/DCM", "probs", csv="unet.csv")  # doctest: +SKIP
    >>> summary.failed  # doctest: +SKIP
    []
    """
    from hbens.classes import WRIST, parse_class_list
    from hbens.predictors import ModelSource, ModelSpec, PredictOptions, predict_folder
    from hbens.predictors.checkpoints import checkpoint_files
    from hbens.predictors.model import parse_channels, resolve_device
    from hbens.predictors.predict import default_predict_workers

    checkpoints = _paths(checkpoints)
    if weights is not None and len(weights) != len(checkpoints):
        raise UsageError(f"{len(weights)} weights for {len(checkpoints)} checkpoints; give one per --ckpt",
                         "--weights")
    if crop_from is None and (crop_classes is not None or crop_margin is not None):
        raise UsageError("--crop-classes and --crop-margin need --crop-from")
    names = parse_class_list(model_classes, option="--model-classes") if model_classes else CLASSES
    around = parse_class_list(crop_classes, option="--crop-classes") if crop_classes else WRIST
    _refuse_repeated("--ckpt", checkpoints)
    models = [("--ckpt", file) for path in checkpoints for file in [path, *checkpoint_files(path)]]
    check_paths([*models, ("--images", images), ("--thresholds", _file(thresholds)), ("--crop-from", crop_from),
                 ("--clean-config", clean_config)],
                [("--csv", csv, CSV), ("--report", report, CSV)], folder_writes=[("-o", output)])
    parse_channels(channels)
    options = PredictOptions(size=size, window=window, overlap=overlap, blend=blend, tta=tta, merge=merge,
                             normalize=normalize, batch_size=batch_size, precision=_precision(precision))
    cleanup = _cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    runs_on = resolve_device(device)
    execution = _execution(workers, scheduler, keep_going, progress, default_predict_workers([runs_on]))
    spec = ModelSpec(arch, encoder, in_channels, classes)
    sources = [ModelSource(checkpoint=str(Path(path).resolve()), spec=spec, allow_pickle=allow_pickle,
                           format=format, device=runs_on, channels=channels, classes=names)
               for path in checkpoints]
    summary = predict_folder(sources, images, output, options, ensemble=ensemble, weights=weights, csv=csv,
                             thresholds=_thresholds(threshold, thresholds), resume=resume, cleanup=cleanup,
                             execution=execution, crop_from=crop_from, crop_classes=around,
                             crop_margin=0.15 if crop_margin is None else crop_margin)
    _clean_report(summary, cleanup, report)
    return summary


def synth(folder: PathLike, *, train_ids: int = 2, test_ids: int = 1, seed: int = 0, size: int = 2048,
          overwrite: bool = False) -> dict[str, list[Path]]:
    """Write hand phantoms in the competition's layout, as ``hbens synth``.

    Parameters
    ----------
    folder : path
        New or empty (or, with ``overwrite``, holding only an earlier synth's ``train/`` and
        ``test/``, which are replaced).
    train_ids, test_ids : int
        IDs (people, two hands each) under ``train/`` and ``test/`` (annotated too).
    seed : int
        The same arguments write the same files.
    size : int
        Height and width of the images (at least 256).

    Returns
    -------
    dict
        ``{"train": [...], "test": [...]}``: the PNGs written; each ``SPLIT/DCM/IDxxx/NAME.png`` has
        its annotation in ``SPLIT/outputs_json/IDxxx/NAME.json``.

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> written = hb.synth(f"{tempfile.mkdtemp()}/phantoms", train_ids=1, test_ids=0, size=256)
    >>> len(written["train"]), written["train"][0].parent.parent.name
    (2, 'DCM')
    """
    from hbens.synthetic import synth_dataset

    check_paths([], [], folder_writes=[("FOLDER", folder)])
    with created_folder(folder, option="FOLDER"):
        return synth_dataset(folder, ids_train=train_ids, ids_test=test_ids, seed=seed, size=size,
                             overwrite=overwrite)


def demo(output: PathLike = "demo-output", *, quick: bool = False, log: Callable[[str], None] | None = None,
         progress: Callable[[str], None] | None = None) -> DemoResult:
    """Train tiny models on hand phantoms, run every stage of the pipeline and write
    ``output/report.html``, as ``hbens demo``.

    Parameters
    ----------
    output : path
        New, empty, or holding a demo stopped before its end (started again).
    quick : bool
        Fewer, smaller images and shorter training (under 3 minutes).
    log : callable, optional
        Receives one line per step as it ends (``print`` shows them).
    progress : callable, optional
        Receives the training's progress lines (``hbens demo`` shows them on a terminal).

    Returns
    -------
    DemoResult
        ``stages`` (each stage's scores), ``lines`` (the table ``hbens demo`` prints), ``report``
        (the HTML page) and ``seconds`` of each step.

    Examples
    --------
    Minutes of training, so not run here:

    >>> import hbens.api as hb
    >>> result = hb.demo("demo-output", quick=True)  # doctest: +SKIP
    >>> print("\\n".join(result.lines))  # doctest: +SKIP
    """
    from hbens.demo import run_demo

    check_paths([], [], folder_writes=[("-o", output)])
    with created_folder(output):
        return run_demo(output, quick=quick, log=log or (lambda line: None), progress=progress)

"""Ensembles and post-processing: :func:`fuse`, :func:`clean`, :func:`crf`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hbens.api import options
from hbens.api.options import PerClass, Shape
from hbens.ensemble import STRATEGIES
from hbens.ensemble import fuse as fuse_inputs
from hbens.ensemble.rules import Rule
from hbens.errors import UsageError
from hbens.metrics import read_scores
from hbens.outputs import PathLike
from hbens.paths import CSV, check_paths
from hbens.pipeline import RunSummary
from hbens.postproc import clean_csv
from hbens.postproc.crf import crf_folder


def vote_count(n_inputs: int, *, min_votes: int | None, union: bool, intersection: bool,
               weights: Sequence[float] | None) -> int | None:
    """The votes a pixel needs (``union``: 1, ``intersection``: all; None: the default majority),
    checked against the inputs with the weights' count."""
    if union + intersection + (min_votes is not None) > 1:
        raise UsageError("give at most one of --min-votes, --union, --intersection")
    if min_votes is not None and min_votes > n_inputs:
        raise UsageError(f"{min_votes} is outside 1..{n_inputs} for {n_inputs} inputs", "--min-votes")
    if weights is not None and len(weights) != n_inputs:
        raise UsageError(f"{len(weights)} weights for {n_inputs} inputs; give one per input", "--weights")
    return 1 if union else n_inputs if intersection else min_votes


def strategy_rules(strategy: str, n_inputs: int, *, maps: bool, min_votes: int | None,
                   weights: Sequence[float] | None, min_weight: float | None,
                   class_weights: dict[str, list[float]] | None, picks: Sequence[str], scores: Sequence[PerClass],
                   threshold: float, thresholds: dict[str, float] | None, space: str) -> dict[str, Rule]:
    """The rule of each class for ``--strategy``: a usage error for options of another strategy.

    ``maps``: some input is a folder of maps (classwise picks are then averaged, not voted).
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"{strategy!r} is not one of {', '.join(STRATEGIES)}", "--strategy")
    if strategy == "classwise" and (min_votes is not None or weights or class_weights or min_weight is not None):
        raise UsageError("--strategy classwise takes --pick and --scores, not vote options")
    if strategy != "classwise" and (picks or scores):
        raise UsageError("--pick and --scores need --strategy classwise")
    if strategy == "soft" and (min_votes is not None or min_weight is not None):
        raise UsageError("--strategy soft averages; --min-votes, --union, --intersection and --min-weight "
                         "are for --strategy hard")
    chosen = {
        "hard": dict(min_votes=min_votes, weights=weights, min_weight=min_weight, class_weights=class_weights),
        "soft": dict(weights=weights, class_weights=class_weights, space=space),
        "classwise": dict(picks=picks, space=space, vote=not maps, scores=[
            read_scores(str(s)) if isinstance(s, (str, Path)) else options.class_values(s, "dice")
            for s in scores] or None),
    }[strategy]
    return STRATEGIES[strategy](n_inputs, threshold=threshold, thresholds=thresholds, **chosen)


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
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = synthetic.write_example(folder, n_images=2, shape=(128, 128))
    >>> summary = hb.fuse(csvs, f"{folder}/fused.csv", weights=[2, 1, 1], shape=128)
    >>> summary.rows, summary.failed
    (58, [])
    """
    inputs = options.path_list(inputs)
    n = len(inputs)
    min_votes = vote_count(n, min_votes=min_votes, union=union, intersection=intersection, weights=weights)
    score_files = [path for path in map(options.file_of, scores) if path is not None]
    options.refuse_repeated("INPUTS", inputs)
    options.refuse_repeated("--scores", score_files, advice="give each input's validation scores, one file per input")
    check_paths([*(("INPUTS", path) for path in inputs), *(("--scores", path) for path in score_files),
                 ("--class-weights", options.file_of(class_weights)), ("--clean-config", clean_config),
                 ("--thresholds", options.file_of(thresholds)), ("--classes", options.file_of(array_classes))],
                [("-o", output, CSV), ("--report", report, CSV)], folder_writes=[("--stores", stores)])
    maps = any(Path(path).is_dir() for path in inputs)
    rules = strategy_rules(strategy or ("soft" if maps else "hard"), n, maps=maps, min_votes=min_votes,
                           weights=weights, min_weight=min_weight,
                           class_weights=options.class_weights_of(class_weights, n), picks=picks, scores=scores,
                           threshold=threshold,
                           thresholds=options.class_values(thresholds, "threshold"), space=space)
    cleanup = options.make_cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    execution = options.make_execution(workers, scheduler, keep_going, progress)
    summary = fuse_inputs(inputs, output, rules, missing=missing, stores=stores,
                          precision=options.precision_name(precision),
                          array_format=options.make_array_format(key, kind, array_classes, drop_channel),
                          cleanup=cleanup, execution=execution, shape=options.as_frame(shape))
    options.report_cleanup(summary, cleanup, report, inputs)
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
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = synthetic.write_example(folder, n_images=2, shape=(128, 128))
    >>> summary = hb.clean(csvs[0], f"{folder}/clean.csv", largest=True, shape=128)
    >>> summary.rows
    58
    """
    check_paths([("SUBMISSION", submission), ("--config", config)], [("-o", output, CSV), ("--report", report, CSV)])
    execution = options.make_execution(workers, scheduler, keep_going, progress)
    cleanup = options.make_cleanup(min_area, keep, largest, fill_holes, connectivity, classes, config)
    if cleanup is None:
        raise UsageError("nothing to do: give --min-area, --keep/--largest, --fill-holes or --config")
    summary = clean_csv(submission, output, cleanup, execution=execution, shape=options.as_frame(shape))
    options.report_cleanup(summary, cleanup, report, [str(submission)])
    return summary


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
    >>> import tempfile, numpy as np, hbens.api as hb, hbens.synthetic as synthetic
    >>> folder = tempfile.mkdtemp()
    >>> gt, csvs = synthetic.write_example(folder, n_images=1, shape=(64, 64), images=True)
    >>> fused = hb.fuse(csvs, f"{folder}/soft.csv", strategy="soft", stores=f"{folder}/soft", shape=64)
    >>> summary = hb.crf(f"{folder}/soft", f"{folder}/images", f"{folder}/crf", params={"iterations": 2}, workers=1)
    >>> summary.images, summary.failed
    (1, [])
    """
    check_paths([("STORES", stores), ("--images", images), ("--thresholds", options.file_of(thresholds)),
                 ("--clean-config", clean_config), ("--gt", gt), ("--classes", options.file_of(array_classes))],
                [("--csv", csv, CSV), ("--report", report, CSV)], folder_writes=[("-o", output)])
    cleanup = options.make_cleanup(min_area, keep, largest, fill_holes, connectivity, clean_classes, clean_config)
    summary = crf_folder(stores, images, output, params, csv=csv, thresholds=options.threshold_list(threshold, thresholds),
                         cleanup=cleanup, array_format=options.make_array_format(key, kind, array_classes, drop_channel),
                         ground_truth=gt, execution=options.make_execution(workers, scheduler, keep_going, progress),
                         shape=options.as_frame(shape))
    options.report_cleanup(summary, cleanup, report)
    return summary

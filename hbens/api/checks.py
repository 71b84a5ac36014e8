"""Submissions read, validated and scored: :func:`check`, :func:`read_submission`, :func:`score`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from hbens.api import options
from hbens.api.options import PerClass, Shape
from hbens.frames import csv_frame
from hbens.metrics import DiceTable, plot_format, plot_scores, score_maps, score_submission, write_scores
from hbens.outputs import PathLike
from hbens.paths import CSV, check_paths
from hbens.submission import HEADER, CheckReport, check_submission, iter_rows, scan_submission

if TYPE_CHECKING:
    import pandas as pd


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
        import pandas as pd  # 0.3 s and 60 MB: loaded only where a table is made

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
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> gt, csvs = synthetic.write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> report = hb.check(csvs[0], shape=128)
    >>> report.ok, report.rows, report.images
    (True, 58, 2)
    """
    check_paths([("SUBMISSION", submission)], [])
    return check_submission(submission, csv_frame(options.as_frame(shape)))


def read_submission(path: PathLike, *, shape: Shape = None) -> pd.DataFrame:
    """A submission as a DataFrame of its rows, every row checked as ``hbens check`` checks it.

    Parameters
    ----------
    path : path
        The submission CSV.
    shape : int or (int, int), optional
        The frame, as for :func:`check`.

    Returns
    -------
    DataFrame
        Columns ``image_name``, ``class``, ``rle``, rows in canonical order (image, then class).
        A bad row raises :class:`~hbens.errors.HbensError` (``file:line: problem``); absent
        (image, class) rows are not an error here (:func:`check` lists them).

    Examples
    --------
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> gt, csvs = synthetic.write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> rows = hb.read_submission(csvs[0], shape=128)
    >>> list(rows.columns), len(rows), rows["class"].iloc[0]
    (['image_name', 'class', 'rle'], 58, 'finger-1')
    """
    import pandas as pd

    index = scan_submission(path, csv_frame(options.as_frame(shape)))
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
    >>> import tempfile, hbens.api as hb, hbens.synthetic as synthetic
    >>> gt, csvs = synthetic.write_example(tempfile.mkdtemp(), n_images=2, shape=(128, 128))
    >>> scores = hb.score(csvs[0], gt, shape=128)
    >>> scores.table.shape, scores.table.index.name, list(scores.table.columns[:2])
    ((2, 29), 'image_name', ['finger-1', 'finger-2'])
    >>> print(f"mean Dice {scores.mean:.4f}, Ulna {scores.per_class['Ulna']:.4f}")
    mean Dice 0.4791, Ulna 0.6793
    """
    check_paths([("PREDICTION", prediction), ("--gt", gt), ("--thresholds", options.file_of(thresholds)),
                 ("--classes", options.file_of(array_classes))], [("--out", out, CSV), ("--plot", plot)])
    if plot:
        plot_format(plot)
    if Path(prediction).is_dir():
        table = score_maps(prediction, gt, threshold=threshold, missing=missing,
                           thresholds=options.class_values(thresholds, "threshold"),
                           array_format=options.make_array_format(key, kind, array_classes, drop_channel),
                           shape=options.as_frame(shape))
    else:
        table = score_submission(prediction, gt, missing, shape=options.as_frame(shape))
    inputs = (str(prediction), str(gt))
    if out:
        write_scores(out, table, inputs)
    if plot:
        plot_scores(plot, table, inputs)
    return Scores(table)

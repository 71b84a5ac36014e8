"""``hbens tune --report``: one self-contained HTML page of what the tuning chose and how it held out.

Per class the baseline against the tuned Dice (in sample and out of fold, as lines of an inline
SVG chart of :func:`hbens.report.dice_chart`), the chosen settings with the steps each class took
or refused, and the images the tuned recipe does worst on (by their held-out Dice).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

import numpy as np

from hbens.metrics import DiceTable
from hbens.outputs import PathLike
from hbens.report import STYLE, Stage, dice_chart, html_table, write_report
from hbens.tune.tuning import TuneResult

if TYPE_CHECKING:
    import pandas as pd

WORST_IMAGES = 10
"""Images listed in the report's worst-images table."""


def dice_tables(result: TuneResult) -> dict[str, DiceTable]:
    """Per-image Dice of every class: the baseline, the tuned recipe in sample, and held out."""
    everyone = np.arange(len(result.images))
    choices = result.choices
    columns = {
        "baseline": [entry.baseline for entry in result.classes],
        "tuned, in sample": [entry.tables.score(choices[entry.name], everyone) for entry in result.classes],
        "tuned, held out": [entry.held_out for entry in result.classes],
    }
    classes = tuple(entry.name for entry in result.classes)
    return {name: DiceTable(list(result.images), classes, np.stack(values, axis=1))
            for name, values in columns.items()}


def _settings_table(result: TuneResult) -> str:
    """The chosen settings of each class (:func:`tuning_table`) with the guard's verdict on each step."""
    table = tuning_table(result).rename(columns={"in-sample": "tuned, in sample", "held-out": "tuned, held out",
                                                 "choice": "choice (inputs weights &gt; threshold, cleanup, CRF)"})
    table["steps (guarded)"] = [
        "<small>" + html.escape(", ".join(f"{step} {'taken' if guard.accepted else 'refused'} "
                                          f"({guard.out_of_fold:.4f} held out)"
                                          for step, guard in entry.results.items())) + "</small>"
        for entry in result.classes]
    numbers = {column: "{:.4f}" for column in ("baseline", "tuned, in sample", "tuned, held out")}
    return html_table(table, formats=numbers, markup=["steps (guarded)"])


def _worst_images(tables: dict[str, DiceTable], count: int) -> str:
    """The ``count`` images of lowest held-out mean Dice, with their baseline and three worst classes."""
    import pandas as pd

    held = tables["tuned, held out"]
    base = tables["baseline"]
    means = held.values.mean(axis=1)
    rows = []
    for i in np.argsort(means, kind="stable")[:count]:
        worst = np.argsort(held.values[i], kind="stable")[:3]
        classes = ", ".join(f"{html.escape(held.classes[c])}&nbsp;{held.values[i, c]:.3f}" for c in worst)
        rows.append((held.images[i], float(base.values[i].mean()), float(means[i]), classes))
    frame = pd.DataFrame(rows, columns=["image", "baseline", "tuned, held out", "three worst classes"])
    return html_table(frame, formats={"baseline": "{:.4f}", "tuned, held out": "{:.4f}"},
                      markup=["three worst classes"])


def tune_report(result: TuneResult, *, gt: str, inputs: Sequence[str], folds: int) -> str:
    """The report of a tuning as one HTML page (no network, no scripts).

    Parameters
    ----------
    result : TuneResult
        What :func:`hbens.tune.tune_inputs` returned.
    gt : str
        The ground truth it was tuned on (shown).
    inputs : sequence of str
        The inputs, in the recipe's order (shown).
    folds : int
        Folds of the guard (shown).
    """
    tables = dice_tables(result)
    kinds = {"baseline": "model", "tuned, in sample": "ensemble", "tuned, held out": "ensemble"}
    stages = [Stage(name=name, kind=kinds[name], description=name, table=table) for name, table in tables.items()]
    means = {name: table.mean for name, table in tables.items()}
    listed = ", ".join(f"{k}: {html.escape(str(path))}" for k, path in enumerate(inputs))
    sections = [
        "<h1>hbens tune</h1>",
        f"<p class=verdict>Mean Dice over {len(result.images)} validation images: baseline (best single input at "
        f"0.5) {means['baseline']:.4f}; tuned {means['tuned, held out']:.4f} held out (each image scored by "
        f"choices made on the other {folds - 1} folds), {means['tuned, in sample']:.4f} in sample.</p>",
        f"<p>Inputs {listed}; ground truth {html.escape(gt)}.</p>",
        "<h2>Dice per class</h2>", dice_chart(stages),
        "<h2>Chosen settings</h2>", _settings_table(result),
        "<h2>Worst images (tuned, held out)</h2>", _worst_images(tables, WORST_IMAGES),
    ]
    return ("<!DOCTYPE html><html lang=en><head><meta charset='utf-8'><title>hbens tune</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(sections) + "</body></html>\n")


def write_tune_report(path: PathLike, result: TuneResult, *, gt: PathLike, inputs: Sequence[PathLike],
                      folds: int) -> None:
    """Write :func:`tune_report` to ``path`` (atomically; ``inputs`` and ``gt`` are never overwritten)."""
    page = tune_report(result, gt=str(gt), inputs=[str(p) for p in inputs], folds=folds)
    write_report(path, page, inputs=[*inputs, gt])


def tuning_table(result: TuneResult) -> pd.DataFrame:
    """The per-class table of ``hbens tune`` as a DataFrame, one row per class in canonical order:
    ``class``, the Dice ``baseline``, ``in-sample`` and ``held-out``, and the ``choice``."""
    import pandas as pd

    names = [item.name for item in result.recipe.inputs]
    choices = result.choices
    rows = []
    for entry in result.classes:
        scores = result.recipe.classes[entry.name].scores
        rows.append((entry.name, scores.baseline, scores.in_sample, scores.out_of_fold,
                     choices[entry.name].describe(names)))
    return pd.DataFrame(rows, columns=["class", "baseline", "in-sample", "held-out", "choice"])


def describe_tuning(result: TuneResult) -> str:
    """The per-class table of ``hbens tune`` (:func:`tuning_table`) as text, with the means."""
    table = tuning_table(result)
    lines = [f"{'class':<12} {'baseline':>8} {'in-sample':>9} {'held-out':>8}  choice"]
    for name, baseline, in_sample, held_out, choice in table.itertuples(index=False):
        lines.append(f"{name:<12} {baseline:8.4f} {in_sample:9.4f} {held_out:8.4f}  {choice}")
    means = [np.mean(table[column].to_numpy()) for column in ("baseline", "in-sample", "held-out")]
    lines.append(f"{'mean':<12} {means[0]:8.4f} {means[1]:9.4f} {means[2]:8.4f}  ({len(result.images)} images; "
                 "held-out: each image scored by choices made on the other folds)")
    return "\n".join(lines)

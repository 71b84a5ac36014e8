"""A self-contained HTML report of a run: Dice of every stage, the tune recipe, pictures, changes.

The page needs no network and no JavaScript: charts are inline SVG, pictures are PNG data URIs
and the style sheet is inline, so ``report.html`` can be mailed or opened from a USB stick.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.metrics import DiceTable
from hbens.outputs import PathLike, atomic_open

if TYPE_CHECKING:
    import pandas as pd

    from hbens.tune.recipe import Recipe

KINDS: dict[str, str] = {
    "model": "single model",
    "ensemble": "ensemble",
    "post": "post-processing",
}
"""Kinds of stage, and how the report names them; the verdict compares models with the rest."""

STAGE_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                "#9c755f", "#bab0ac")
"""Line colors of the per-class chart, one per stage in turn."""


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One scored step of a run: its submission's Dice and what the step changed.

    Parameters
    ----------
    name : str
        Short name, as in the printed table.
    kind : str
        A key of :data:`KINDS`.
    description : str
        What the step did, in a sentence.
    table : DiceTable
        Dice of its submission on the scored images.
    changes : str
        What the step changed (rows, components, pixels).
    seconds : float
        Time the step took.
    """

    name: str
    kind: str
    description: str
    table: DiceTable
    changes: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise HbensError(f"stage kind {self.kind!r}: valid kinds are {', '.join(KINDS)}")


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A picture of the report: its caption, PNG bytes and legend (label: RGB)."""

    caption: str
    png: bytes
    legend: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def worst_classes(table: DiceTable, count: int = 3) -> list[tuple[str, float]]:
    """The ``count`` classes of lowest mean Dice, lowest first (ties in class order)."""
    order = np.argsort(table.per_class, kind="stable")[:count]
    return [(table.classes[i], float(table.per_class[i])) for i in order]


def verdict(stages: Sequence[Stage]) -> str:
    """One plain sentence: does the best stage built from the models beat the best single model?"""
    models = [s for s in stages if s.kind == "model"]
    built = [s for s in stages if s.kind != "model"]
    if not models or not built:
        return "Nothing to compare: the run has no single model or no ensemble."
    best_model = max(models, key=lambda s: s.table.mean)
    best = max(built, key=lambda s: s.table.mean)
    gap = best.table.mean - best_model.table.mean
    if gap >= 0:
        return (f"The best stage built from the models, {best.name} ({best.table.mean:.4f}), is better than "
                f"the best single model, {best_model.name} ({best_model.table.mean:.4f}), by {gap:+.4f} "
                "mean Dice.")
    spread = best_model.table.mean - min(s.table.mean for s in models)
    return (f"No stage built from the models beats the best single model: {best_model.name} "
            f"({best_model.table.mean:.4f}) against {best.name} ({best.table.mean:.4f}, {gap:+.4f}). "
            f"The models differ by {spread:.4f} mean Dice; an equal-weight vote or mean pulls the best model "
            "towards the weaker ones, and per-class choices made on a few validation images do not carry "
            "over to the test images when the models are this close or this noisy.")


def stage_lines(stages: Sequence[Stage]) -> list[str]:
    """The run's table as text: stage, mean Dice and its three worst classes."""
    width = max([len("stage"), *(len(s.name) for s in stages)])
    lines = [f"{'stage':<{width}}  mean Dice  worst classes"]
    for stage in stages:
        worst = ", ".join(f"{name} {value:.3f}" for name, value in worst_classes(stage.table))
        lines.append(f"{stage.name:<{width}}  {stage.table.mean:9.4f}  {worst}")
    return lines


def _heat(value: float) -> str:
    """Background color of a Dice cell: red at 0, yellow at 0.5, green at 1."""
    value = min(max(value, 0.0), 1.0)
    hue = 120 * value
    return f"hsl({hue:.0f}, 70%, 82%)"


def html_table(frame: pd.DataFrame, *, formats: Mapping[str, str] | None = None, heat: Sequence[str] = (),
               markup: Sequence[str] = (), right: Sequence[str] = (), css_class: str | None = None) -> str:
    """A DataFrame as a table of the report: a header row of its column names (HTML), a row per row.

    Columns in ``formats`` are numbers shown by their format (``"{:.4f}"``), right-aligned, and
    those also in ``heat`` coloured by value (red 0, green 1); columns in ``markup`` hold HTML
    already (right-aligned when also in ``right``); the others are text, escaped.

    Examples
    --------
    >>> import pandas as pd
    >>> html_table(pd.DataFrame({"class": ["Ulna"], "Dice": [0.9]}), formats={"Dice": "{:.2f}"})
    '<table><tr><th>class</th><th>Dice</th></tr><tr><td>Ulna</td><td class=num>0.90</td></tr></table>'
    """
    formats = formats or {}

    def cell(column: str, value: object) -> str:
        if column in formats:
            style = f" style='background:{_heat(float(value))}'" if column in heat else ""
            return f"<td class=num{style}>{formats[column].format(value)}</td>"
        aligned = " class=num" if column in right else ""
        return f"<td{aligned}>{value if column in markup else html.escape(str(value))}</td>"

    head = "".join(f"<th>{column}</th>" for column in frame.columns)
    rows = "".join("<tr>" + "".join(cell(column, value) for column, value in zip(frame.columns, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    opening = f"<table class={css_class}>" if css_class else "<table>"
    return f"{opening}<tr>{head}</tr>{rows}</table>"


def stage_frame(stages: Sequence[Stage]) -> pd.DataFrame:
    """The stages as a table: name (with its description), kind, mean Dice, three worst classes,
    what it changed, seconds; the name and worst classes as HTML, the rest as values."""
    import pandas as pd

    rows = [(f"<b>{html.escape(stage.name)}</b><br><small>{html.escape(stage.description)}</small>",
             KINDS[stage.kind], stage.table.mean,
             ", ".join(f"{html.escape(name)}&nbsp;{value:.3f}" for name, value in worst_classes(stage.table)),
             stage.changes, stage.seconds) for stage in stages]
    return pd.DataFrame(rows, columns=["stage", "kind", "mean Dice", "three worst classes", "what it changed",
                                       "seconds"])


def _stage_table(stages: Sequence[Stage]) -> str:
    return html_table(stage_frame(stages), formats={"mean Dice": "{:.4f}", "seconds": "{:.1f}"}, heat=["mean Dice"],
                      markup=["stage", "three worst classes"])


def _class_table(stages: Sequence[Stage]) -> str:
    head = "".join(f"<th class=rot><div>{html.escape(s.name)}</div></th>" for s in stages)
    rows = []
    for c, name in enumerate(CLASSES):
        cells = "".join(f"<td class=num style='background:{_heat(v)}'>{v:.3f}</td>"
                        for v in (float(s.table.per_class[c]) for s in stages))
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    means = "".join(f"<td class=num><b>{s.table.mean:.3f}</b></td>" for s in stages)
    return (f"<table class=classes><tr><th>class</th>{head}</tr>{''.join(rows)}"
            f"<tr><td><b>mean</b></td>{means}</tr></table>")


def dice_chart(stages: Sequence[Stage], *, width: int = 960, height: int = 300) -> str:
    """Inline SVG: per-class Dice of every stage, one line per stage, classes along x."""
    left, right, top, bottom = 44, 40, 12, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(CLASSES) - 1, 1)
    total = height + 24 * -(-len(stages) // 4)

    def x(c: int) -> float:
        return left + c * step

    def y(v: float) -> float:
        return top + (1 - min(max(v, 0.0), 1.0)) * plot_h

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{total}' "
             f"viewBox='0 0 {width} {total}' font-family='sans-serif' font-size='11'>"]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' "
                     f"stroke='#ddd'/><text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end'>"
                     f"{tick:.2f}</text>")
    for c, name in enumerate(CLASSES):
        parts.append(f"<text transform='translate({x(c) + 4:.1f},{top + plot_h + 8}) rotate(60)'>"
                     f"{html.escape(name)}</text>")
    for s, stage in enumerate(stages):
        color = STAGE_COLORS[s % len(STAGE_COLORS)]
        points = " ".join(f"{x(c):.1f},{y(float(v)):.1f}" for c, v in enumerate(stage.table.per_class))
        parts.append(f"<polyline points='{points}' fill='none' stroke='{color}' stroke-width='1.6'/>")
        row, column = divmod(s, 4)
        lx, ly = left + column * (plot_w / 4), height + 6 + 24 * row
        parts.append(f"<line x1='{lx:.1f}' x2='{lx + 22:.1f}' y1='{ly:.1f}' y2='{ly:.1f}' stroke='{color}' "
                     f"stroke-width='3'/><text x='{lx + 28:.1f}' y='{ly + 4:.1f}'>{html.escape(stage.name)} "
                     f"({stage.table.mean:.3f})</text>")
    parts.append("</svg>")
    return "".join(parts)


def recipe_frame(recipe: Recipe) -> pd.DataFrame:
    """The recipe as a table, one row per class: members x weight (HTML), space, threshold, cleanup,
    CRF, and the validation Dice untuned -> tuned out of fold (HTML)."""
    import pandas as pd

    names = [entry.name for entry in recipe.inputs]
    rows = []
    for name, entry in recipe.classes.items():
        members = ", ".join(f"{html.escape(names[m])}&nbsp;&times;{w:g}"
                            for m, w in zip(entry.members, entry.weights))
        cleanup = entry.cleanup
        parts = ((f"min area {cleanup.min_area}", cleanup.min_area > 0),
                 (f"keep {cleanup.keep}", cleanup.keep is not None), ("fill holes", cleanup.fill_holes))
        cleaned = ", ".join(part for part, on in parts if on) or "none"
        scores = f"{entry.scores.baseline:.3f} &rarr; {entry.scores.out_of_fold:.3f}" if entry.scores else ""
        rows.append((name, members, entry.space, entry.threshold, cleaned, "no" if entry.crf is None else "yes",
                     scores))
    return pd.DataFrame(rows, columns=["class", "members &times; weight", "space", "threshold", "cleanup", "CRF",
                                       "validation Dice: untuned &rarr; tuned (out of fold)"])


def _recipe_table(recipe: Recipe) -> str:
    scores = "validation Dice: untuned &rarr; tuned (out of fold)"
    return html_table(recipe_frame(recipe), formats={"threshold": "{:.3f}"},
                      markup=["members &times; weight", scores], right=[scores])


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    legend = "".join(f"<span class=key><i style='background:rgb{tuple(int(v) for v in rgb)}'></i>"
                     f"{html.escape(label)}</span>" for label, rgb in figure.legend.items())
    return (f"<figure><img alt='{html.escape(figure.caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(figure.caption)}<br>{legend}</figcaption></figure>")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.86em; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 6px; vertical-align: top; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.classes td, table.classes th { padding: 1px 5px; }
th.rot { height: 110px; vertical-align: bottom; }
th.rot div { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
.verdict { background: #f4f4f4; border-left: 4px solid #4e79a7; padding: 8px 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; width: 218px; } figure img { width: 218px; border: 1px solid #ccc; }
figcaption { font-size: 0.82em; } .key { white-space: nowrap; margin-right: 8px; }
.key i { display: inline-block; width: 10px; height: 10px; margin-right: 3px; border: 1px solid #888; }
.columns { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
"""


def build_report(
    *,
    title: str,
    stages: Sequence[Stage],
    figures: Sequence[Figure] = (),
    recipe: Recipe | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The report as one HTML page.

    Parameters
    ----------
    title : str, keyword-only
        Heading of the page.
    stages : sequence of Stage, keyword-only
        Scored stages in the order they ran.
    figures : sequence of Figure, keyword-only
        Pictures shown side by side (overlays, comparisons).
    recipe : hbens.tune.recipe.Recipe, optional, keyword-only
        The tuned recipe, shown class by class when given.
    notes : sequence of str, keyword-only
        Paragraphs shown under the verdict (settings, what is left out).

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    sections = [f"<h1>{html.escape(title)}</h1>", f"<p class=verdict>{html.escape(verdict(stages))}</p>"]
    sections += [f"<p>{html.escape(note)}</p>" for note in notes]
    sections += ["<h2>Stages: mean Dice on the test images</h2>", _stage_table(stages)]
    if figures:
        sections += ["<h2>Pictures</h2>", "<div class=figures>" + "".join(map(_figure, figures)) + "</div>"]
    sections += ["<h2>Dice per class</h2>", dice_chart(stages), _class_table(stages)]
    if recipe is not None:
        sections += ["<h2>The tuned recipe</h2>", _recipe_table(recipe)]
    return ("<!DOCTYPE html><html lang=en><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(sections) + "</body></html>\n")


def write_report(path: PathLike, page: str, *, inputs: Sequence[PathLike] = ()) -> None:
    """Write an HTML page (UTF-8, atomically); ``inputs`` are never overwritten."""
    with atomic_open(path, inputs) as handle:
        handle.write(page)

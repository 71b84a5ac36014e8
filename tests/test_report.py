"""The HTML report: table text, verdict, self-contained page, recipe and figures."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.metrics import DiceTable
from hbens.report import Figure, Stage, build_report, stage_lines, verdict, worst_classes, write_report


def table(values) -> DiceTable:
    """A one-image table whose per-class Dice are ``values``."""
    return DiceTable(["a.png"], CLASSES, np.asarray(values, float)[None])


def stage(name, kind, mean, low=None) -> Stage:
    values = np.full(len(CLASSES), mean)
    if low is not None:
        values[[CLASSES.index(n) for n in low]] = [0.1, 0.2, 0.3][: len(low)]
    return Stage(name=name, kind=kind, description=f"{name} <made>", table=table(values), changes="3 rows",
                 seconds=1.5)


def test_worst_classes_lowest_first_ties_in_class_order():
    values = np.ones(len(CLASSES))
    values[CLASSES.index("Pisiform")] = 0.2
    values[CLASSES.index("finger-3")] = 0.5
    values[CLASSES.index("Ulna")] = 0.5
    assert worst_classes(table(values)) == [("Pisiform", 0.2), ("finger-3", 0.5), ("Ulna", 0.5)]


def test_stage_lines_one_row_per_stage_with_mean_and_worst_classes():
    lines = stage_lines([stage("unet", "model", 0.7, ["Pisiform", "Lunate"]), stage("hard", "ensemble", 0.8)])
    assert lines[0].split() == ["stage", "mean", "Dice", "worst", "classes"]
    assert lines[1].startswith("unet ") and "Pisiform 0.100, Lunate 0.200" in lines[1]
    assert re.search(r"hard\s+0\.8000\s", lines[2])


def test_verdict_says_plainly_which_is_better():
    better = verdict([stage("a", "model", 0.6), stage("b", "model", 0.7), stage("soft", "ensemble", 0.75)])
    assert "soft (0.7500), is better than the best single model, b (0.7000), by +0.0500" in better
    worse = verdict([stage("a", "model", 0.6), stage("b", "model", 0.7), stage("hard", "ensemble", 0.65)])
    assert worse.startswith("No stage built from the models beats the best single model: b (0.7000)")
    assert "differ by 0.1000" in worse
    assert verdict([stage("a", "model", 0.6)]).startswith("Nothing to compare")


def test_stage_kind_is_checked():
    with pytest.raises(HbensError, match="valid kinds are model, ensemble, post"):
        stage("x", "magic", 0.5)


def test_report_is_self_contained_and_escaped(tmp_path):
    figure = Figure(caption="truth <1>", png=b"\x89PNG fake", legend={"in both": (40, 200, 60)})
    stages = [stage("unet", "model", 0.7), stage("hard", "ensemble", 0.8)]
    page = build_report(title="demo & co", stages=stages, figures=[figure], notes=["note <b>"])
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert "demo &amp; co" in page and "note &lt;b&gt;" in page and "unet &lt;made&gt;" in page
    assert "src='data:image/png;base64,iVBORyBmYWtl'" in page
    assert "rgb(40, 200, 60)" in page
    assert page.count("<polyline") == 2, "one line per stage in the chart"
    assert all(name in page for name in CLASSES)
    assert "tuned recipe" not in page
    write_report(tmp_path / "r.html", page)
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == page


def test_report_shows_the_recipe_choices():
    from hbens.postproc.clean import CleanConfig
    from hbens.postproc.crf import CRFParams
    from hbens.tune.recipe import ClassRecipe, ClassScores, Recipe, RecipeInput

    plain = ClassRecipe(members=(0,), weights=(1.0,))
    tuned = ClassRecipe(members=(0, 1), weights=(2.0, 1.0), space="logit", threshold=0.4,
                        cleanup=CleanConfig(keep=1, fill_holes=True), crf=CRFParams(),
                        scores=ClassScores(baseline=0.5, in_sample=0.7, out_of_fold=0.65))
    recipe = Recipe(inputs=(RecipeInput("unet", "store"), RecipeInput("fpn.csv", "csv")),
                    classes={name: tuned if name == "Pisiform" else plain for name in CLASSES})
    page = build_report(title="t", stages=[stage("unet", "model", 0.7)], recipe=recipe)
    row = re.search(r"<tr><td>Pisiform</td>.*?</tr>", page.split("The tuned recipe")[1]).group(0)
    assert "unet&nbsp;&times;2" in row and "fpn.csv&nbsp;&times;1" in row and "logit" in row
    assert "0.400" in row and "keep 1, fill holes" in row and "<td>yes</td>" in row
    assert "0.500 &rarr; 0.650" in row

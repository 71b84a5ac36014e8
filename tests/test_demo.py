"""``hbens demo``: its checkpoint writers load back, its helpers, and the quick demo end to end (slow)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from hbens.cli import cli
from hbens.demo import PLANS, SAVERS, STEPS, TINY_MODELS, build_model, rows_changed, run_demo
from hbens.errors import HbensError


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_each_checkpoint_format_loads_back_through_the_predictors(tmp_path, name):
    import torch

    from hbens.predictors import detect_format, load_model

    model = TINY_MODELS[name]
    module = build_model(model, seed=0).eval()
    example = torch.rand(1, 3, 64, 64)
    path = SAVERS[model.checkpoint](module, model=model, folder=tmp_path, name=name, example=example)
    assert detect_format(path) == model.checkpoint
    loaded = load_model(path)
    assert loaded.name == name and loaded.format == model.checkpoint
    with torch.no_grad():
        assert torch.allclose(loaded.module(example), module(example), atol=1e-5)


def test_every_planned_model_has_a_saver_and_the_steps_run_in_pipeline_order():
    assert all(TINY_MODELS[name].checkpoint in SAVERS for plan in PLANS.values() for name in plan.models)
    assert len({TINY_MODELS[name].checkpoint for name in PLANS["default"].models}) == 3, "three formats"
    order = list(STEPS)
    assert order[:3] == ["data", "train", "predict"]
    assert order.index("tune") < order.index("apply")


def test_rows_changed_ignores_spacing(tmp_path):
    from hbens.submission import write_submission

    write_submission(tmp_path / "a.csv", {("a.png", "Ulna"): "1 2", ("a.png", "Radius"): "5 1"})
    write_submission(tmp_path / "b.csv", {("a.png", "Ulna"): "1 2", ("a.png", "Radius"): "5 2"})
    assert rows_changed(tmp_path / "a.csv", tmp_path / "b.csv") == 1
    assert rows_changed(tmp_path / "a.csv", tmp_path / "a.csv") == 0


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(HbensError, match="not an empty folder"):
        run_demo(tmp_path, quick=True)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "-o", str(folder), "--quick"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["stage", "mean", "Dice", "worst", "classes"]
    stages = [line.split()[0] for line in lines[1:] if re.match(r"\S+\s+\d\.\d{4}\s", line)]
    assert stages == [*PLANS["quick"].models, "hard", "classwise", "soft", "soft+clean", "soft+crf", "tuned"]
    for line in lines[1 : 1 + len(stages)]:
        assert len(re.findall(r"\S+ \d\.\d{3}", line.split(None, 2)[2])) == 3, "three worst classes"
    assert any(line.startswith(("The best stage", "No stage")) for line in lines)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 5 and "<svg" in page and "The tuned recipe" in page
    assert (folder / "recipe.yaml").is_file()
    for name in PLANS["quick"].models:
        assert len(list((folder / "stores" / "test" / name).glob("*.npz"))) == 2 * PLANS["quick"].ids["test"]
    means = [float(line.split()[1]) for line in lines[1 : 1 + len(stages)]]
    assert np.isfinite(means).all() and all(0 <= m <= 1 for m in means)
    assert max(means[: len(PLANS["quick"].models)]) > 0.2, "the models learn"

"""``hbens demo``: its checkpoint writers load back, its helpers, and the quick demo end to end (slow)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from hbens.cli import cli
from hbens.demo import (
    MARKER,
    PLANS,
    SAVERS,
    STEPS,
    TINY_MODELS,
    DemoRun,
    DemoStopped,
    build_model,
    demo_state,
    prepare_folder,
    rows_changed,
    run_demo,
    train_model,
    train_models,
)
from hbens.errors import HbensError


@pytest.mark.slow
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
    assert rows_changed(tmp_path / "a.csv", tmp_path / "b.csv", shape=(16, 16)) == 1
    assert rows_changed(tmp_path / "a.csv", tmp_path / "a.csv", shape=(16, 16)) == 0


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(HbensError, match="not an empty folder"):
        run_demo(tmp_path, quick=True)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def unfinished_demo(folder):
    """A demo folder as Ctrl-C leaves it during training: marker, data, a checkpoint, a temporary."""
    folder.mkdir()
    (folder / MARKER).write_text('{"demo": "running", "quick": true, "seed": 0}')
    (folder / "data" / "train" / "DCM").mkdir(parents=True)
    (folder / "data" / "train" / "DCM" / "a.png").write_bytes(b"png")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "unet.pt").write_bytes(b"weights")
    (folder / ".recipe.yaml.abcd1234.tmp").write_text("half")


def test_an_unfinished_demo_folder_is_cleared_and_marked_running(tmp_path):
    folder = tmp_path / "demo"
    unfinished_demo(folder)
    assert prepare_folder(folder, quick=False, seed=3) is True
    assert [p.name for p in folder.iterdir()] == [MARKER] and demo_state(folder) == "running"
    assert prepare_folder(tmp_path / "new", quick=True, seed=0) is False
    assert demo_state(tmp_path / "new") == "running"


@pytest.mark.parametrize("change, message", [
    (lambda f: (f / "notes.txt").write_text("mine"), "holds an unfinished demo and notes.txt"),
    (lambda f: (f / MARKER).write_text('{"demo": "finished"}'), "holds a finished demo"),
    (lambda f: (f / MARKER).unlink(), "not an empty folder"),
    (lambda f: (f / MARKER).write_text("not json"), "not an empty folder"),
    (lambda f: (f / "stores").symlink_to(f / "data"), "holds an unfinished demo and stores"),
])
def test_a_demo_folder_with_other_files_or_a_finished_demo_is_refused_untouched(tmp_path, change, message):
    folder = tmp_path / "demo"
    unfinished_demo(folder)
    change(folder)
    before = sorted(folder.rglob("*"))
    with pytest.raises(HbensError, match=message):
        prepare_folder(folder, quick=True, seed=0)
    assert sorted(folder.rglob("*")) == before


def tiny_training(steps, **options):
    import torch

    images = np.random.default_rng(0).random((2, 16, 16), dtype=np.float32)
    masks = np.zeros((2, 29, 16, 16), np.uint8)
    return train_model(torch.nn.Conv2d(3, 29, 1), images, masks, steps=steps, batch=2, seed=0, **options)


def test_training_reports_progress_and_stops_at_the_next_step():
    import threading

    pytest.importorskip("torch")
    seen = []
    tiny_training(16, progress=lambda step, loss: seen.append((step, np.isfinite(loss))))
    assert seen == [(step, True) for step in range(2, 17, 2)]
    stop, seen = threading.Event(), []

    def stop_at_three(step, loss):
        seen.append(step)
        if step == 3:
            stop.set()

    with pytest.raises(DemoStopped, match="before step 4 of 8"):
        tiny_training(8, stop=stop, progress=stop_at_three)
    assert seen == [1, 2, 3]


def test_an_interrupted_training_stops_the_others_before_it_returns(tmp_path, monkeypatch):
    import threading

    import hbens.demo.models as demo
    import hbens.execution

    monkeypatch.setattr(demo, "training_arrays", lambda split, size: (None, None))
    monkeypatch.setattr(demo, "build_model", lambda model, seed: seed)
    monkeypatch.setattr(hbens.execution, "cores", lambda: 3)
    running, stopped = threading.Event(), {}

    def fake_training(module, images, masks, *, seed, stop, **options):
        if seed == 0:
            running.wait(60)
            raise KeyboardInterrupt  # as Ctrl-C reaches the demo during training
        running.set()
        stopped[seed] = stop.wait(60)
        raise DemoStopped("stopped")

    monkeypatch.setattr(demo, "train_model", fake_training)
    run = DemoRun(folder=tmp_path, plan=PLANS["quick"], seed=0, log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        train_models(run)
    assert stopped and all(stopped.values()), stopped


@pytest.mark.slow
@pytest.mark.filterwarnings("error::hbens.frames.FrameWarning")
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

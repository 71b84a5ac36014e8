"""hbens tune: exact histogram Dice, the guarded steps on validation sets with known faults, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from hbens.classes import CLASSES, FINGERS, WRIST
from hbens.cli import cli
from hbens.ensemble.combine import fuse_class
from hbens.execution import Execution
from hbens.maps.probabilities import ClassCrop, crop_runs, tight_crop, write_store
from hbens.metrics import dice_runs
from hbens.runs import box_to_runs
from hbens.tune import read_recipe, tune_inputs
from hbens.tune.evaluate import canonical, fused_curves, member_combos
from hbens.tune.histograms import GRID, grid_dice, grid_histograms
from tests import tune_data as data
from tests.tune_data import Fault, Model

SERIAL = Execution(workers=1)


def soft_disc(shape, centre, radius, confidence=1.0, softness=2.0):
    y, x = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(y - centre[0], x - centre[1])
    return (confidence / (1 + np.exp(-(radius - d) / softness))).astype(np.float32)


def test_fused_curves_equal_brute_force_thresholding():
    """Every combination, every threshold of the grid: the histogram Dice is the Dice of fuse, then threshold."""
    shape = (70, 90)
    truth = box_to_runs((soft_disc(shape, (34, 44), 14) > 0.5).astype(np.uint8), 0, 0, shape)
    sources = [
        tight_crop(soft_disc(shape, (34, 46), 14), (0, 0)),
        tight_crop(soft_disc(shape, (30, 40), 12, confidence=0.6), (0, 0), "float16"),
        box_to_runs((soft_disc(shape, (38, 44), 13) > 0.5).astype(np.uint8), 0, 0, shape),
    ]
    rules = [combo.rule for combo in member_combos(3)]
    for present in (sources, [sources[0], None, sources[2]], [None, sources[1], None]):
        curves = fused_curves(present, truth, rules=rules, shape=shape)
        for rule, curve in zip(rules, curves):
            if all(present[i] is None for i in rule.members):
                assert np.isnan(curve).all()
                continue
            fused = fuse_class(present, rule, shape)
            brute = [dice_runs(crop_runs(fused, shape, float(t)), truth) for t in GRID]
            assert curve.tolist() == brute, rule


def test_fused_curves_of_four_float16_inputs_equal_brute_force_thresholding():
    """65 bits of stored values per pixel: the distinct tuples are found row-wise."""
    shape = (40, 50)
    truth = box_to_runs((soft_disc(shape, (20, 25), 9) > 0.5).astype(np.uint8), 0, 0, shape)
    sources = [tight_crop(soft_disc(shape, (20 + k, 25 - k), 8 + k, confidence=0.6 + 0.1 * k), (0, 0), "float16")
               for k in range(4)]
    rules = [canonical((0, 1, 3), (1, 2, 3)).rule, canonical((2,), (1,)).rule]
    for rule, curve in zip(rules, fused_curves(sources, truth, rules=rules, shape=shape)):
        fused = fuse_class(sources, rule, shape)
        assert curve.tolist() == [dice_runs(crop_runs(fused, shape, float(t)), truth) for t in GRID]


def test_fused_curves_of_saved_arrays_read_directly_equal_brute_force_thresholding():
    """Issue 19: float32 crops (saved arrays read directly, 32 bits a value) beside uint8, float16 and runs."""
    from hbens.maps.saved_arrays import class_crop

    shape = (40, 50)
    truth = box_to_runs((soft_disc(shape, (20, 25), 9) > 0.5).astype(np.uint8), 0, 0, shape)
    sources = [class_crop(soft_disc(shape, (21, 24), 9, confidence=0.7), (0, 0), "float32"),
               class_crop(soft_disc(shape, (19, 26), 8), (0, 0), "float32"),
               tight_crop(soft_disc(shape, (20, 27), 10), (0, 0), "float16"),
               tight_crop(soft_disc(shape, (18, 25), 9), (0, 0)),
               box_to_runs((soft_disc(shape, (22, 23), 9) > 0.5).astype(np.uint8), 0, 0, shape)]
    assert sources[0].values.dtype == np.float32
    rules = [canonical((0,), (1,)).rule, canonical((0, 1), (1, 2)).rule, canonical((1, 3, 4), (1, 1, 3)).rule,
             *(canonical(members, weights).rule for members in ((0, 4), (1, 3)) for weights in ((1, 2), (3, 1)))]
    for rule, curve in zip(rules, fused_curves(sources, truth, rules=rules, shape=shape)):
        fused = fuse_class(sources, rule, shape)
        assert curve.tolist() == [dice_runs(crop_runs(fused, shape, float(t)), truth) for t in GRID], rule


def test_grid_bins_are_exact_at_float32_ties():
    """A stored 51 reads back as float32(0.2), which is not above the float32 threshold 0.2."""
    level = np.array([51 / 255, 102 / 255], np.float32)
    inside, outside = grid_histograms(level, np.array([1, 1]), np.array([0, 0]), truth_elsewhere=0)
    curve = grid_dice(inside, outside)
    assert curve[GRID.tolist().index(0.2)] == pytest.approx(2 / 3) and curve[19] == 1.0
    crop = ClassCrop((0, 0, 1, 2), np.array([[51, 102]], np.uint8))
    fused = fuse_class([crop], canonical((0,), (1,)).rule, (1, 2))
    assert crop_runs(fused, (1, 2), 0.2)[1].sum() == 1


def test_member_combos_are_canonical_and_distinct():
    combos = member_combos(3)
    assert len(combos) == len(set(combos)) == 3 + 3 * 7 + 25
    assert canonical((1, 0), (2, 2)) == canonical((0, 1), (3, 3)) == combos[3]
    assert all(list(c.members) == sorted(c.members) for c in combos)
    assert max(len(c.members) for c in member_combos(5)) == 3


@pytest.fixture(scope="module")
def layouts():
    return data.discs(8, seed=3)


@pytest.fixture(scope="module")
def truth(tmp_path_factory, layouts):
    return data.write_truth(tmp_path_factory.mktemp("gt") / "gt.csv", layouts)


def test_under_confident_model_gets_a_threshold_below_one_half(tmp_path, layouts, truth):
    model = data.write_model(tmp_path / "shy", Model(default=Fault(confidence=0.6, softness=2.0)), layouts)
    result = tune_inputs([model], truth, tmp_path / "r.yaml", folds=2, steps=("thresholds",), execution=SERIAL)
    recipe = read_recipe(tmp_path / "r.yaml")
    thresholds = [entry.threshold for entry in recipe.classes.values()]
    assert max(thresholds) < 0.5 and 0.2 < np.median(thresholds) < 0.4
    assert all(entry.scores.out_of_fold > entry.scores.baseline for entry in recipe.classes.values())
    assert all(entry.taken == ["thresholds"] for entry in result.classes)


def test_the_wrist_model_is_chosen_for_the_wrist_and_noise_never(tmp_path, layouts, truth):
    good, off = Fault(shift=(1, 1), grow=-1.0, softness=2.0), Fault(shift=(5, 4))
    wrist = data.write_model(tmp_path / "wrist", Model(default=off, faults={n: good for n in WRIST}), layouts, 1)
    fingers = data.write_model(tmp_path / "fingers", Model(default=good, faults={n: off for n in WRIST}), layouts, 2)
    noise = data.write_model(tmp_path / "noise", Model(noise=True), layouts, 3)
    tune_inputs([noise, wrist, fingers], truth, tmp_path / "r.yaml", folds=2, steps=("members", "thresholds"),
                execution=SERIAL)
    recipe = read_recipe(tmp_path / "r.yaml")
    for name, entry in recipe.classes.items():
        assert 0 not in entry.members, name
        heaviest = entry.members[int(np.argmax(entry.weights))]
        assert sorted(entry.weights).count(max(entry.weights)) == 1 or len(entry.members) == 1
        assert heaviest == (1 if name in WRIST else 2), (name, entry)


def test_cleanup_removes_false_islands(tmp_path, layouts, truth):
    model = data.write_model(tmp_path / "islands", Model(default=Fault(island=0.9)), layouts)
    result = tune_inputs([model], truth, tmp_path / "r.yaml", folds=2, steps=("clean",), execution=SERIAL)
    recipe = read_recipe(tmp_path / "r.yaml")
    for entry in recipe.classes.values():
        assert entry.cleanup.keep == 1 or entry.cleanup.min_area >= 16
        assert entry.scores.out_of_fold > entry.scores.baseline
    assert {tuple(entry.taken) for entry in result.classes} == {("clean",)}


SPIKE_SHAPE = (48, 40)


def spiky(tmp_path, n_images: int = 4):
    """Ground truth and one model whose finger-1 has, on image i only, a better threshold near 0.15 + 0.1 i.

    finger-1 is a 20 x 20 core (probability 1) with a 4-row band of truth below it and a 5-row band
    of background above it.  Image i's truth band has probability ``0.162 + 0.1 i``, its background
    band ``0.138 + 0.1 i``: a threshold between the two fits the band (Dice 1), a lower one adds
    the background band (Dice below the base), a higher one leaves the band out (the base 0.909).
    Every other class is predicted exactly.
    """
    from hbens.rle import encode
    from hbens.submission import write_submission

    rows = {}
    folder = tmp_path / "spiky"
    folder.mkdir()
    for i in range(n_images):
        image = f"image{i}.png"
        truths, crops = {}, []
        for k, name in enumerate(CLASSES):
            mask = np.zeros(SPIKE_SHAPE, np.float32)
            if name == "finger-1":
                mask[10:30, 10:30] = 1
                truth = mask.copy()
                truth[30:34, 10:30] = 1
                mask[30:34, 10:30] = 0.162 + 0.1 * i
                mask[5:10, 10:30] = 0.138 + 0.1 * i
            else:
                row, col = divmod(k, 6)
                mask[8 * row + 1 : 8 * row + 6, 6 * col + 1 : 6 * col + 5] = 1
                truth = mask
            truths[name] = encode(truth.astype(np.uint8))
            crops.append(tight_crop(mask, (0, 0)))
        write_store(folder / f"image{i}.npz", crops, SPIKE_SHAPE, image=image)
        rows.update({(image, name): rle for name, rle in truths.items()})
    write_submission(tmp_path / "gt.csv", rows)
    return folder, tmp_path / "gt.csv"


def test_the_guard_refuses_a_threshold_that_helps_only_in_sample(tmp_path):
    model, gt = spiky(tmp_path)
    result = tune_inputs([model], gt, tmp_path / "r.yaml", folds=4, steps=("thresholds",), execution=SERIAL)
    finger = next(entry for entry in result.classes if entry.name == "finger-1")
    guard = finger.results["thresholds"]
    assert guard.in_sample > guard.baseline + 0.01
    assert guard.out_of_fold < guard.baseline and not guard.accepted
    entry = read_recipe(tmp_path / "r.yaml").classes["finger-1"]
    assert entry.threshold == 0.5 and entry.scores.in_sample == entry.scores.baseline == pytest.approx(800 / 880)


@pytest.mark.parametrize("scheduler", ["threads", pytest.param("processes", marks=pytest.mark.slow)])
def test_same_recipe_with_two_workers(tmp_path, scheduler):
    layouts = data.discs(4, seed=9)
    truth = data.write_truth(tmp_path / "gt.csv", layouts)
    a = data.write_model(tmp_path / "a", Model(default=Fault(confidence=0.7, island=0.8)), layouts, 1)
    b = data.write_csv_model(tmp_path / "b.csv", Model(default=Fault(shift=(2, 1))), layouts, 2)
    recipes = []
    for k, execution in enumerate((SERIAL, Execution(workers=2, scheduler=scheduler))):
        tune_inputs([a, b], truth, tmp_path / f"r{k}.yaml", folds=2, execution=execution)
        recipes.append((tmp_path / f"r{k}.yaml").read_text())
    assert recipes[0] == recipes[1]
    assert "kind: csv" in recipes[0]


def test_cli_tune_prints_the_table_and_writes_recipe_and_report(tmp_path, layouts, truth):
    model = data.write_model(tmp_path / "shy", Model(default=Fault(confidence=0.6)), layouts)
    other = data.write_model(tmp_path / "other", Model(default=Fault(shift=(1, 1))), layouts, 4)
    args = ["tune", str(model), str(other), "--gt", str(truth), "-o", str(tmp_path / "r.yaml"), "--folds", "2",
            "--try", "thresholds,members", "--report", str(tmp_path / "tune.html"), "--workers", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["class", "baseline", "in-sample", "held-out"]
    assert [line.split()[0] for line in lines[1:30]] == list(CLASSES) and lines[30].startswith("mean")
    assert read_recipe(tmp_path / "r.yaml").inputs[1].name == "other"
    page = (tmp_path / "tune.html").read_text()
    assert "<svg" in page and "Worst images" in page and "http" not in page.replace("http://www.w3.org", "")
    assert all(name in page for name in FINGERS)


@pytest.mark.parametrize("extra, message", [
    (["--try", "thresholds,magic"], "expected names among"),
    (["--folds", "9"], "needs at least 9 images"),
])
def test_cli_tune_refuses_bad_options(tmp_path, layouts, truth, extra, message):
    model = data.write_model(tmp_path / "m", Model(), layouts)
    result = CliRunner().invoke(cli, ["tune", str(model), "--gt", str(truth), "-o", str(tmp_path / "r.yaml"), *extra])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "r.yaml").exists()

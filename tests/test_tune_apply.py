"""hbens apply: the recipe's rows equal fuse, crf and clean run by hand; tune's tables are what apply scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from hbens.classes import CLASSES
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.execution import Execution
from hbens.maps.probabilities import ProbabilityStore
from hbens.postproc.clean import CleanConfig, clean_rows
from hbens.postproc.crf import CRFParams, frame_params
from hbens.submission import read_submission
from hbens.tune import ClassRecipe, Recipe, RecipeInput, apply_recipe, read_recipe, tune_inputs, write_recipe
from hbens.tune.apply import recipe_rules
from tests import tune_data as data
from tests.tune_data import Fault, Model

SERIAL = Execution(workers=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Six validation images: truth, X-rays, two stores (one float16) and a CSV with known faults."""
    folder = tmp_path_factory.mktemp("world")
    layouts = data.discs(6, seed=5)
    return {
        "gt": data.write_truth(folder / "gt.csv", layouts),
        "xrays": data.write_xrays(folder / "xrays", layouts),
        "inputs": [
            data.write_model(folder / "a", Model(default=Fault(confidence=0.7, island=0.8)), layouts, 1),
            data.write_model(folder / "b", Model(default=Fault(shift=(2, 1), grow=1.0)), layouts, 2, "float16"),
            data.write_csv_model(folder / "c.csv", Model(default=Fault(shift=(-1, 2))), layouts, 3),
        ],
    }


def hand_recipe() -> Recipe:
    crf = CRFParams(iterations=3, margin=8)
    special = {
        "finger-1": ClassRecipe(members=(0, 1), weights=(2, 1), threshold=0.4, cleanup=CleanConfig(keep=1)),
        "finger-2": ClassRecipe(members=(0, 2), weights=(1, 1), threshold=0.3),
        "Trapezium": ClassRecipe(members=(2,), weights=(1,), threshold=0.5, cleanup=CleanConfig(fill_holes=True)),
        "Capitate": ClassRecipe(members=(0, 1, 2), weights=(1, 2, 3), threshold=0.45, crf=crf,
                                cleanup=CleanConfig(min_area=16)),
        "Radius": ClassRecipe(members=(1,), weights=(1,), threshold=0.35, crf=crf),
        "Ulna": ClassRecipe(members=(0, 1), weights=(1, 1), space="logit", threshold=0.5),
    }
    classes = {name: special.get(name, ClassRecipe(members=(0,), weights=(1,), threshold=0.2)) for name in CLASSES}
    return Recipe((RecipeInput("a", "store"), RecipeInput("b", "store"), RecipeInput("c.csv", "csv")), classes)


def test_apply_equals_fuse_then_crf_then_clean_by_hand(tmp_path, world):
    from hbens.ensemble import fuse
    from hbens.postproc.crf import crf_folder

    recipe = hand_recipe()
    write_recipe(tmp_path / "r.yaml", recipe)
    summary = apply_recipe(tmp_path / "r.yaml", world["inputs"], tmp_path / "apply.csv", stores=tmp_path / "final",
                           images=world["xrays"], execution=SERIAL)
    assert summary.images == 6 and not summary.failed

    rules, cleanup, crf = recipe_rules(read_recipe(tmp_path / "r.yaml"))
    fuse(world["inputs"], tmp_path / "fused.csv", rules, stores=tmp_path / "fused", execution=SERIAL)
    crf_folder(tmp_path / "fused", world["xrays"], tmp_path / "refined", CRFParams(iterations=3, margin=8),
               csv=tmp_path / "refined.csv", thresholds=[rules[name].threshold for name in CLASSES],
               execution=SERIAL)
    fused, refined = read_submission(tmp_path / "fused.csv"), read_submission(tmp_path / "refined.csv")
    expected = {}
    for image in data.names(6):
        rows = [(name, (refined if name in crf else fused)[(image, name)]) for name in CLASSES]
        expected.update({(image, name): rle for name, rle in clean_rows(rows, cleanup, data.SHAPE)[0]})
    assert set(crf) == {"Capitate", "Radius"} and set(cleanup) == {"finger-1", "Trapezium", "Capitate"}
    ours = read_submission(tmp_path / "apply.csv")
    assert ours == expected
    assert ours != {key: fused[key] for key in ours}, "the CRF and the cleanup changed nothing"

    for image in data.names(6):
        stem = image.replace(".png", ".npz")
        final, plain, better = (ProbabilityStore(tmp_path / folder / stem) for folder in ("final", "fused", "refined"))
        for k, name in enumerate(CLASSES):
            source = better if name in crf else plain
            assert np.array_equal(final.stored_crop(k).values, source.stored_crop(k).values), (image, name)


def test_apply_scores_what_tune_measured(tmp_path, world):
    """The recipe applied to the validation images gives, image by image, the Dice tune's tables hold:
    as tuned, with other cleanups, and with the CRF."""
    from hbens.metrics import score_submission
    from hbens.tune.evaluate import CLEANUPS

    result = tune_inputs(world["inputs"], world["gt"], tmp_path / "r.yaml", folds=2, images=world["xrays"],
                         execution=SERIAL)
    recipe = read_recipe(tmp_path / "r.yaml")
    everyone = np.arange(len(result.images))
    choices = result.choices
    variants = {"tuned": {}, "largest": {"cleanup": "largest", "crf": False},
                "fill-holes": {"cleanup": "fill-holes", "crf": False},
                "crf": {"crf": True}}
    for label, change in variants.items():
        chosen = {name: replace(choice, **change) for name, choice in choices.items()}
        forced = Recipe(recipe.inputs, {name: replace(entry, cleanup=CLEANUPS[chosen[name].cleanup],
                                                      crf=frame_params(data.SHAPE) if chosen[name].crf else None)
                                        for name, entry in recipe.classes.items()})
        write_recipe(tmp_path / f"{label}.yaml", forced)
        apply_recipe(tmp_path / f"{label}.yaml", world["inputs"], tmp_path / f"{label}.csv", images=world["xrays"],
                     execution=SERIAL)
        table = score_submission(str(tmp_path / f"{label}.csv"), str(world["gt"]))
        assert table.images == result.images
        for c, entry in enumerate(result.classes):
            expected = entry.tables.score(chosen[entry.name], everyone)
            assert table.values[:, c].tolist() == expected.tolist(), (entry.name, label)
    assert any(choice.combo.members != (0,) for choice in choices.values())


def test_apply_checks_the_inputs_against_the_recipe(tmp_path, world):
    write_recipe(tmp_path / "r.yaml", hand_recipe())
    a, b, c = world["inputs"]
    renamed = tmp_path / "b-test"
    renamed.symlink_to(b, target_is_directory=True)
    for inputs, message in [
        ([a, b], "fuses 3 input(s) (a, b, c.csv), got 2"),
        ([a, c, b], "input 2 (" + str(c) + ") is a CSV, the recipe's input 2 (b) is a folder of maps"),
        ([a, renamed, c], "is named 'b-test', the recipe's input 2 'b'"),
    ]:
        with pytest.raises(HbensError, match="--rename" if "named" in message else "recipe's order") as error:
            apply_recipe(tmp_path / "r.yaml", inputs, tmp_path / "o.csv", images=world["xrays"], execution=SERIAL)
        assert message in str(error.value)
    with pytest.raises(HbensError, match="refines 2 class"):
        apply_recipe(tmp_path / "r.yaml", [a, b, c], tmp_path / "o.csv", execution=SERIAL)
    apply_recipe(tmp_path / "r.yaml", [a, b, c], tmp_path / "plain.csv", images=world["xrays"], execution=SERIAL)
    apply_recipe(tmp_path / "r.yaml", [a, renamed, c], tmp_path / "renamed.csv", images=world["xrays"], rename=True,
                 execution=SERIAL)
    assert (tmp_path / "plain.csv").read_bytes() == (tmp_path / "renamed.csv").read_bytes()


def test_cli_tune_then_apply(tmp_path, world):
    runner = CliRunner()
    inputs = [str(path) for path in world["inputs"]]
    tuned = runner.invoke(cli, ["tune", *inputs, "--gt", str(world["gt"]), "-o", str(tmp_path / "r.yaml"),
                                "--folds", "2", "--try", "members,thresholds,clean", "--workers", "2"])
    assert tuned.exit_code == 0, tuned.output
    applied = runner.invoke(cli, ["apply", str(tmp_path / "r.yaml"), *inputs, "-o", str(tmp_path / "out.csv"),
                                  "--workers", "2"])
    assert applied.exit_code == 0, applied.output
    assert "wrote" in applied.stderr and len(read_submission(tmp_path / "out.csv")) == 6 * len(CLASSES)
    apply_recipe(tmp_path / "r.yaml", world["inputs"], tmp_path / "lib.csv", execution=SERIAL)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "lib.csv").read_bytes()
    swapped = runner.invoke(cli, ["apply", str(tmp_path / "r.yaml"), inputs[1], inputs[0], inputs[2], "-o",
                                  str(tmp_path / "x.csv")])
    assert swapped.exit_code == 1 and "--rename" in swapped.output and not (tmp_path / "x.csv").exists()


def test_apply_names_the_class_of_a_rule_it_cannot_make(tmp_path, world):
    recipe = hand_recipe()
    classes = dict(recipe.classes, Lunate=ClassRecipe(members=(0,), weights=(1,), space="logit", threshold=0.001))
    write_recipe(tmp_path / "r.yaml", Recipe(recipe.inputs, classes))
    with pytest.raises(HbensError, match=r"r.yaml: classes.Lunate: in logit space the threshold must be >= 1/510"):
        apply_recipe(tmp_path / "r.yaml", world["inputs"], tmp_path / "o.csv", images=world["xrays"])

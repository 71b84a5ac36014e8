import re

import pytest
import yaml

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.postproc.clean import CleanConfig
from hbens.postproc.crf import CRFParams
from hbens.tune.recipe import ClassRecipe, ClassScores, Recipe, RecipeInput, read_recipe, write_recipe


def make_recipe() -> Recipe:
    classes = {}
    for i, name in enumerate(CLASSES):
        classes[name] = ClassRecipe(
            members=(i % 3,) if i % 2 else (2, 0),
            weights=(1.0,) if i % 2 else (2.0, 0.5),
            space="logit" if i % 4 == 0 else "prob",
            threshold=[0.5, 0.37, 1e-05, 0.0, 1.0][i % 5],
            cleanup=CleanConfig(min_area=i * 10, keep=None if i % 3 else 1, fill_holes=bool(i % 2),
                                connectivity=4 if i % 5 else 8),
            crf=CRFParams(iterations=3, bilateral_srgb=7.5) if name == "Pisiform" else None,
            scores=ClassScores(0.9, 0.95, 0.925) if i % 7 else None,
        )
    inputs = (RecipeInput("unet: fold 0", "store"), RecipeInput("b.csv", "csv"), RecipeInput("ünicode", "store"))
    return Recipe(inputs, classes)


def test_round_trip(tmp_path):
    recipe = make_recipe()
    path = tmp_path / "recipe.yaml"
    write_recipe(path, recipe)
    again = read_recipe(path)
    assert again == recipe
    assert list(again.classes) == list(CLASSES)
    write_recipe(tmp_path / "again.yaml", again)
    assert (tmp_path / "again.yaml").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_written_file_is_readable_yaml_in_the_documented_layout(tmp_path):
    path = tmp_path / "recipe.yaml"
    write_recipe(path, make_recipe())
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# hbens recipe")
    data = yaml.safe_load(text)
    assert list(data) == ["format", "version", "inputs", "classes"]
    assert data["format"] == "hbens-recipe" and data["version"] == 1
    assert data["inputs"][0] == {"name": "unet: fold 0", "kind": "store"}
    finger = data["classes"]["finger-1"]
    assert list(finger) == ["members", "weights", "space", "threshold", "cleanup", "crf"]
    assert finger["members"] == [2, 0] and finger["weights"] == [2, 0.5] and finger["crf"] is False
    assert finger["cleanup"] == {"min_area": 0, "keep": 1, "fill_holes": False, "connectivity": 8}
    assert data["classes"]["finger-2"]["scores"] == {"baseline": 0.9, "in_sample": 0.95, "out_of_fold": 0.925}
    assert data["classes"]["Pisiform"]["crf"]["bilateral_srgb"] == 7.5
    assert "    members: [2, 0]\n" in text and "    weights: [2, 0.5]\n" in text


def test_scores_are_rounded_to_6_decimals(tmp_path):
    recipe = make_recipe()
    classes = dict(recipe.classes)
    classes["Radius"] = ClassRecipe((0,), (1,), scores=ClassScores(0.123456789, 0.5, 1.0))
    write_recipe(tmp_path / "r.yaml", Recipe(recipe.inputs, classes))
    assert read_recipe(tmp_path / "r.yaml").classes["Radius"].scores == ClassScores(0.123457, 0.5, 1.0)


def test_optional_keys_default_to_no_cleanup_no_crf_no_scores(tmp_path):
    data = valid_data(tmp_path)
    for name in CLASSES:
        for key in ("cleanup", "crf", "scores"):
            data["classes"][name].pop(key, None)
    data["classes"]["Ulna"]["cleanup"] = {"keep": 1}
    data["classes"]["Ulna"]["crf"] = {}
    recipe = read_recipe(dump(tmp_path, data))
    assert recipe.classes["Radius"].cleanup == CleanConfig() and recipe.classes["Radius"].crf is None
    assert recipe.classes["Radius"].scores is None
    assert recipe.classes["Ulna"].cleanup == CleanConfig(keep=1) and recipe.classes["Ulna"].crf == CRFParams()


def test_write_refuses_an_invalid_recipe_and_leaves_no_file(tmp_path):
    recipe = make_recipe()
    classes = dict(recipe.classes)
    classes["Pisiform"] = ClassRecipe((0,), (1,), threshold=1.5)
    path = tmp_path / "recipe.yaml"
    with pytest.raises(HbensError, match=r"classes\.Pisiform\.threshold: expected a number in \[0, 1\], got 1\.5"):
        write_recipe(path, Recipe(recipe.inputs, classes))
    assert list(tmp_path.iterdir()) == []
    classes.pop("Pisiform")
    with pytest.raises(HbensError, match="missing class 'Pisiform'"):
        write_recipe(path, Recipe(recipe.inputs, classes))


def test_write_refuses_to_overwrite_an_input(tmp_path):
    source = tmp_path / "b.csv"
    source.write_text("keep me")
    with pytest.raises(HbensError, match="overwrite input"):
        write_recipe(source, make_recipe(), inputs=[source])
    assert source.read_text() == "keep me"


def valid_data(tmp_path) -> dict:
    path = tmp_path / "valid.yaml"
    write_recipe(path, make_recipe())
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dump(tmp_path, data) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def set_in(data, keys, value):
    *parents, last = keys
    for key in parents:
        data = data[key]
    data[last] = value


def drop(data, keys):
    *parents, last = keys
    for key in parents:
        data = data[key]
    del data[last]


P = ("classes", "Pisiform")
MALFORMED = [
    (P + ("threshold",), "x", "classes.Pisiform.threshold: expected a number in [0, 1], got 'x'"),
    (P + ("threshold",), 1.5, "classes.Pisiform.threshold: expected a number in [0, 1], got 1.5"),
    (P + ("threshold",), -0.1, "classes.Pisiform.threshold: expected a number in [0, 1], got -0.1"),
    (P + ("threshold",), float("nan"), "classes.Pisiform.threshold: expected a number in [0, 1], got nan"),
    (P + ("threshold",), True, "classes.Pisiform.threshold: expected a number in [0, 1], got True"),
    (P + ("threshold",), None, "classes.Pisiform.threshold: expected a number in [0, 1], got None"),
    (P + ("weights",), [1, 0], "classes.Pisiform.weights[1]: expected a number > 0, got 0"),
    (P + ("weights",), [-1.0, 1], "classes.Pisiform.weights[0]: expected a number > 0, got -1.0"),
    (P + ("weights",), [float("inf"), 1], "classes.Pisiform.weights[0]: expected a number > 0, got inf"),
    (P + ("weights",), ["2", 1], "classes.Pisiform.weights[0]: expected a number > 0, got '2'"),
    (P + ("weights",), [1], "classes.Pisiform.weights: expected a list of 2 weight(s), one per member, got [1]"),
    (P + ("weights",), "1 1", "classes.Pisiform.weights: expected a list of 2 weight(s), one per member, got '1 1'"),
    (P + ("members",), [0, 0], "classes.Pisiform.members: input 0 is listed twice; members must differ"),
    (P + ("members",), [0, 3], "classes.Pisiform.members[1]: expected an index into inputs, 0..2, got 3"),
    (P + ("members",), [-1, 0], "classes.Pisiform.members[0]: expected an index into inputs, 0..2, got -1"),
    (P + ("members",), [1.0, 0], "classes.Pisiform.members[0]: expected an index into inputs, 0..2, got 1.0"),
    (P + ("members",), [True, 0], "classes.Pisiform.members[0]: expected an index into inputs, 0..2, got True"),
    (P + ("members",), [], "classes.Pisiform.members: expected a non-empty list of input indices, got []"),
    (P + ("space",), "probability", "classes.Pisiform.space: expected one of prob, logit, got 'probability'"),
    (P + ("cleanup", "fill_holes"), "false", "classes.Pisiform.cleanup.fill_holes: expected true or false, got 'false'"),
    (P + ("cleanup", "fill_holes"), 0, "classes.Pisiform.cleanup.fill_holes: expected true or false, got 0"),
    (P + ("cleanup", "connectivity"), 6, "classes.Pisiform.cleanup.connectivity: expected one of 4, 8, got 6"),
    (P + ("cleanup", "connectivity"), 4.0, "classes.Pisiform.cleanup.connectivity: expected one of 4, 8, got 4.0"),
    (P + ("cleanup", "min_area"), -1, "classes.Pisiform.cleanup.min_area: expected an integer >= 0, got -1"),
    (P + ("cleanup", "keep"), 0, "classes.Pisiform.cleanup.keep: expected an integer >= 1, got 0"),
    (P + ("cleanup", "largest"), True, "classes.Pisiform.cleanup.largest: unknown key; known keys: min_area, keep, fill_holes, connectivity"),
    (P + ("cleanup",), [1], "classes.Pisiform.cleanup: expected a mapping with keys min_area, keep, fill_holes, connectivity, got [1]"),
    (P + ("crf",), "false", "classes.Pisiform.crf: expected false or a mapping of CRF settings"),
    (P + ("crf",), True, "classes.Pisiform.crf: expected false or a mapping of CRF settings"),
    (P + ("crf", "iterations"), 0, "classes.Pisiform.crf.iterations: expected an integer >= 1, got 0"),
    (P + ("crf", "margin"), 1.5, "classes.Pisiform.crf.margin: expected an integer >= 0, got 1.5"),
    (P + ("crf", "gaussian_sxy"), 0, "classes.Pisiform.crf.gaussian_sxy: expected a number > 0, got 0"),
    (P + ("crf", "bilateral_compat"), -1, "classes.Pisiform.crf.bilateral_compat: expected a number >= 0, got -1"),
    (P + ("crf", "sigma"), 1, "classes.Pisiform.crf.sigma: unknown key; known keys: iterations,"),
    (P + ("scores",), {"baseline": 2, "in_sample": 0.5, "out_of_fold": 0.5}, "classes.Pisiform.scores.baseline: expected a number in [0, 1], got 2"),
    (P + ("scores",), {"baseline": 0.5, "in_sample": 0.5}, "classes.Pisiform.scores.out_of_fold: missing; required keys: baseline, in_sample, out_of_fold"),
    (P + ("thresh",), 0.5, "classes.Pisiform.thresh: unknown key; known keys: members, weights, space, threshold, cleanup, crf, scores"),
    (P, "x", "classes.Pisiform: expected a mapping with keys members, weights, space, threshold, cleanup, crf, scores, got 'x'"),
    (("classes", "Thumb"), {}, "classes.Thumb: unknown class; valid classes: finger-1,"),
    (("classes",), [], "classes: expected a mapping of class names to class recipes, got []"),
    (("extra",), 1, "extra: unknown key; known keys: format, version, inputs, classes"),
    (("format",), "hbens-clean", "format: expected 'hbens-recipe', got 'hbens-clean'; is this a recipe written by hbens tune?"),
    (("version",), 2, "version: expected 1 (the recipe version this hbens reads), got 2"),
    (("version",), True, "version: expected 1 (the recipe version this hbens reads), got True"),
    (("inputs",), [], "inputs: expected a non-empty list of {name: ..., kind: store|csv} mappings, got []"),
    (("inputs", 1, "kind"), "npz", "inputs[1].kind: expected one of store, csv, got 'npz'"),
    (("inputs", 1, "name"), "unet: fold 0", "inputs[1].name: 'unet: fold 0' is already the name of another input; names must differ"),
    (("inputs", 1, "name"), "", "inputs[1].name: expected a non-empty string, got ''"),
    (("inputs", 1, "path"), "b.csv", "inputs[1].path: unknown key; known keys: name, kind"),
]


@pytest.mark.parametrize("keys, value, message", MALFORMED, ids=[m[2].split(":")[0] + f"={m[1]!r}" for m in MALFORMED])
def test_malformed_recipes_are_refused_with_one_line_naming_the_key_path(tmp_path, keys, value, message):
    data = valid_data(tmp_path)
    if keys[:2] == P and keys[2:3] == ("crf",) and len(keys) > 3:
        data["classes"]["Pisiform"]["crf"] = {}
    set_in(data, keys, value)
    path = dump(tmp_path, data)
    with pytest.raises(HbensError) as error:
        read_recipe(path)
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {message}")


@pytest.mark.parametrize(
    "keys, message",
    [
        (P + ("threshold",), "classes.Pisiform.threshold: missing; required keys: members, weights, space, threshold"),
        (("classes", "Radius"), "classes: missing class 'Radius' (1 missing); every class needs a recipe"),
        (("inputs",), "inputs: missing; required keys: format, version, inputs, classes"),
        (("inputs", 0, "kind"), "inputs[0].kind: missing; required keys: name, kind"),
    ],
)
def test_missing_keys_are_named(tmp_path, keys, message):
    data = valid_data(tmp_path)
    drop(data, keys)
    path = dump(tmp_path, data)
    with pytest.raises(HbensError, match="^" + re.escape(f"{path}: {message}") + "$"):
        read_recipe(path)


def test_a_class_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "recipe.yaml"
    write_recipe(path, make_recipe())
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("  Pisiform:")
    block = [start] + [i for i in range(start + 1, len(lines)) if lines[i].startswith("    ")][: 6]
    first = start + 1
    (tmp_path / "twice.yaml").write_text("\n".join(lines + [lines[i] for i in block]) + "\n", encoding="utf-8")
    with pytest.raises(HbensError, match=f"twice.yaml:{len(lines) + 1}: key 'Pisiform' appears twice \\(first on line {first}\\)$"):
        read_recipe(tmp_path / "twice.yaml")


def test_a_key_given_twice_inside_a_class_is_refused(tmp_path):
    path = tmp_path / "recipe.yaml"
    write_recipe(path, make_recipe())
    text = path.read_text(encoding="utf-8").replace("    threshold: 0.5\n", "    threshold: 0.5\n    threshold: 0.6\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HbensError, match="key 'threshold' appears twice"):
        read_recipe(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "expected a mapping with keys format, version, inputs, classes; is this a recipe written by hbens tune?"),
        ("- 1\n- 2\n", "expected a mapping with keys format, version, inputs, classes"),
        ("min_area: 400\n", "format: expected 'hbens-recipe', got None"),
        ("format: [unclosed\n", "not valid YAML"),
    ],
)
def test_files_that_are_not_recipes(tmp_path, content, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(HbensError, match=re.escape(message)) as error:
        read_recipe(path)
    assert "\n" not in str(error.value) and str(error.value).startswith(str(path))


def test_unreadable_files(tmp_path):
    with pytest.raises(HbensError, match="cannot read"):
        read_recipe(tmp_path / "absent.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00format")
    with pytest.raises(HbensError, match="not UTF-8"):
        read_recipe(tmp_path / "binary.yaml")


def test_small_thresholds_and_integer_weights_survive_yaml(tmp_path):
    recipe = make_recipe()
    classes = dict(recipe.classes)
    classes["Lunate"] = ClassRecipe((0, 1), (3, 1), threshold=1e-07)
    write_recipe(tmp_path / "r.yaml", Recipe(recipe.inputs, classes))
    read = read_recipe(tmp_path / "r.yaml").classes["Lunate"]
    assert read.threshold == 1e-07 and read.weights == (3.0, 1.0)


def test_numpy_values_and_any_class_order_are_written_as_plain_canonical_yaml(tmp_path):
    import numpy as np

    entry = ClassRecipe(members=(np.int64(1), np.int64(0)), weights=(np.float64(2.0), np.float32(0.5)),
                        threshold=np.float64(0.35),
                        cleanup=CleanConfig(min_area=np.int64(5), keep=np.int64(1), fill_holes=np.bool_(True)))
    classes = {name: entry for name in reversed(CLASSES)}
    write_recipe(tmp_path / "r.yaml", Recipe((RecipeInput("a", "store"), RecipeInput("b", "csv")), classes))
    read = read_recipe(tmp_path / "r.yaml")
    assert list(read.classes) == list(CLASSES)
    assert read.classes["Ulna"] == ClassRecipe((1, 0), (2.0, 0.5), threshold=0.35,
                                               cleanup=CleanConfig(min_area=5, keep=1, fill_holes=True))
    assert list(yaml.safe_load((tmp_path / "r.yaml").read_text(encoding="utf-8"))["classes"]) == list(CLASSES)

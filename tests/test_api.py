"""The public API (hbens.api): return types, tables, the CLI's numbers and error lines, a light import."""

from __future__ import annotations

import doctest
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import hbens.api as hb
from hbens.classes import CLASSES
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.pipeline import RunSummary
from hbens.tune.recipe import Recipe, read_recipe


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Four 128x128 hands with X-rays, their annotations and three noisy submissions."""
    from hbens.synthetic import write_example

    folder = tmp_path_factory.mktemp("api")
    gt, csvs = write_example(folder, n_images=4, n_models=3, shape=(128, 128), images=True)
    return folder, gt, [str(path) for path in csvs]


def run(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def cli_error(*args) -> str:
    """The message the CLI prints after ``Error: `` (exit status 1 or 2)."""
    result = run(*args)
    assert result.exit_code in (1, 2), result.output
    return next(line for line in result.stderr.splitlines() if line.startswith("Error: "))[len("Error: "):]


def test_doctests_of_every_api_function_run(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    functions = [hb.predict, hb.fuse, hb.clean, hb.crf, hb.import_arrays, hb.tune, hb.apply, hb.score, hb.check,
                 hb.show, hb.synth, hb.demo, hb.read_submission]
    for function in functions:
        assert ">>> " in function.__doc__ and "Parameters" in function.__doc__ and "Returns" in function.__doc__
    modules = {sys.modules[function.__module__] for function in functions}
    results = [doctest.testmod(module, optionflags=doctest.ELLIPSIS) for module in sorted(modules, key=str)]
    assert sum(r.failed for r in results) == 0 and sum(r.attempted for r in results) >= 50


def test_import_hbens_loads_neither_torch_nor_the_library():
    code = ("import sys, hbens; light = not {'torch', 'numba', 'pandas'} & set(sys.modules); "
            "import hbens.api; print(light, {'torch', 'pandas'} & set(sys.modules) or 'none', "
            "hbens.fuse is hbens.api.fuse)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "none", "True"]  # pandas (0.3 s) loads only when a table is made


def test_package_reexports_the_api_but_keeps_its_modules():
    import hbens
    import hbens.demo
    import hbens.tune

    assert hbens.score is hb.score and hbens.api is hb and "fuse" in dir(hbens)
    assert hbens.tune.__name__ == "hbens.tune" and hbens.demo.__name__ == "hbens.demo"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hbens.nothing  # noqa: B018


def test_score_table_is_images_by_classes_and_matches_the_cli(small, tmp_path):
    _folder, gt, csvs = small
    scores = hb.score(csvs[0], gt, shape=128, out=tmp_path / "api.csv")
    assert isinstance(scores.table, pd.DataFrame) and isinstance(scores.per_class, pd.Series)
    assert list(scores.table.columns) == list(CLASSES) and scores.table.index.name == "image_name"
    assert list(scores.table.index) == sorted(scores.table.index) and len(scores.table) == 4
    assert list(scores.per_class.index) == list(CLASSES) and isinstance(scores.mean, float)
    np.testing.assert_allclose(scores.per_class, scores.table.mean(), rtol=1e-12)
    assert scores.mean == float(np.mean(scores.per_class.to_numpy()))
    printed = run("score", csvs[0], "--gt", gt, "--image-size", "128", "--out", tmp_path / "cli.csv")
    assert printed.exit_code == 0
    lines = printed.stdout.splitlines()
    assert lines[:29] == [f"{name:<12} {value:.4f}" for name, value in scores.per_class.items()]
    assert lines[29].startswith(f"{'mean':<12} {scores.mean:.4f}")
    assert (tmp_path / "api.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()


def test_score_of_maps_thresholds_them(small, tmp_path):
    _folder, gt, csvs = small
    hb.fuse(csvs, tmp_path / "soft.csv", strategy="soft", stores=tmp_path / "soft", shape=128)
    maps = hb.score(tmp_path / "soft", gt, thresholds={"Ulna": 0.9})
    csv = hb.score(tmp_path / "soft.csv", gt, shape=128)
    assert maps.table.drop(columns="Ulna").equals(csv.table.drop(columns="Ulna"))


def test_fuse_clean_and_apply_write_what_the_cli_writes(small, tmp_path):
    _folder, _gt, csvs = small
    summary = hb.fuse(csvs, tmp_path / "api.csv", weights=[2, 1, 1], largest=True, shape=128)
    assert isinstance(summary, RunSummary) and summary.rows == 116 and len(summary.stats.changed) == 3
    assert run("fuse", *csvs, "-o", tmp_path / "cli.csv", "--weights", "2,1,1", "--largest", "--image-size", "128",
               "--quiet").exit_code == 0
    assert (tmp_path / "api.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    cleaned = hb.clean(csvs[0], tmp_path / "clean.csv", min_area=20, fill_holes=True, classes="Ulna,Radius",
                       report=tmp_path / "report.csv", shape=128)
    assert isinstance(cleaned, RunSummary) and cleaned.rows == 116 and (tmp_path / "report.csv").exists()
    assert run("clean", csvs[0], "-o", tmp_path / "clean-cli.csv", "--min-area", "20", "--fill-holes",
               "--classes", "Ulna,Radius", "--image-size", "128", "--quiet").exit_code == 0
    assert (tmp_path / "clean.csv").read_bytes() == (tmp_path / "clean-cli.csv").read_bytes()


def test_tune_returns_a_recipe_with_the_cli_table_and_apply_takes_it(small, tmp_path):
    _folder, gt, csvs = small
    recipe = hb.tune(csvs, gt, tmp_path / "api.yaml", folds=2, steps=["members", "thresholds"], shape=128)
    assert isinstance(recipe, Recipe) and isinstance(recipe, hb.TunedRecipe)
    written = read_recipe(tmp_path / "api.yaml")  # the same, with scores rounded to 6 decimals
    assert written.inputs == recipe.inputs and all(
        replace(entry, scores=None) == replace(written.classes[name], scores=None)
        for name, entry in recipe.classes.items())
    table = recipe.table
    assert list(table.columns) == ["class", "baseline", "in-sample", "held-out", "choice"]
    assert list(table["class"]) == list(CLASSES)
    printed = run("tune", *csvs, "--gt", gt, "-o", tmp_path / "cli.yaml", "--folds", "2", "--try",
                  "members,thresholds", "--image-size", "128", "--quiet")
    assert printed.exit_code == 0
    expected = [f"{row['class']:<12} {row['baseline']:8.4f} {row['in-sample']:9.4f} {row['held-out']:8.4f}  "
                f"{row['choice']}" for _, row in table.iterrows()]
    assert printed.stdout.splitlines()[1:30] == expected
    applied = hb.apply(recipe, csvs, tmp_path / "tuned.csv", shape=128)
    plain = hb.apply(read_recipe(tmp_path / "api.yaml"), csvs, tmp_path / "plain.csv", shape=128)
    assert isinstance(applied, RunSummary) and applied.rows == plain.rows == 116
    assert (tmp_path / "tuned.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert run("apply", tmp_path / "cli.yaml", *csvs, "-o", tmp_path / "cli.csv", "--image-size", "128",
               "--quiet").exit_code == 0
    assert (tmp_path / "tuned.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()


def test_read_submission_check_and_show(small, tmp_path):
    folder, _gt, csvs = small
    rows = hb.read_submission(csvs[0], shape=128)
    assert list(rows.columns) == ["image_name", "class", "rle"] and len(rows) == 116
    assert list(rows["class"][:29]) == list(CLASSES)
    report = hb.check(csvs[0], shape=128)
    assert report.ok and report.images == 4
    picture = hb.show(csvs[0], images=folder / "images", output=tmp_path / "api.png", scale=1)
    assert picture.shape == (128, 128, 3) and picture.dtype == np.uint8
    assert run("show", csvs[0], "--images", folder / "images", "-o", tmp_path / "cli.png", "--scale", "1").exit_code == 0
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(Path(csvs[0]).read_text().replace(",finger-3,", ",finger-33,", 1))
    with pytest.raises(HbensError, match=r"bad.csv:4: unknown class 'finger-33'"):
        hb.read_submission(bad, shape=128)


@pytest.mark.filterwarnings("ignore::hbens.frames.FrameWarning")
def test_errors_are_the_cli_lines(small, tmp_path):
    folder, gt, csvs = small
    out = tmp_path / "out.csv"
    cases = [
        (lambda: hb.fuse(csvs, csvs[0]), ("fuse", *csvs, "-o", csvs[0])),
        (lambda: hb.fuse(csvs, out, min_votes=4), ("fuse", *csvs, "-o", out, "--min-votes", "4")),
        (lambda: hb.fuse(csvs, out, union=True, intersection=True), ("fuse", *csvs, "-o", out, "--union",
                                                                      "--intersection")),
        (lambda: hb.fuse([csvs[0], csvs[0]], out), ("fuse", csvs[0], csvs[0], "-o", out)),
        (lambda: hb.clean(csvs[0], out), ("clean", csvs[0], "-o", out)),
        (lambda: hb.clean(csvs[0], tmp_path / "out.txt", largest=True),
         ("clean", csvs[0], "-o", tmp_path / "out.txt", "--largest")),
        (lambda: hb.score(csvs[0], folder / "images"), ("score", csvs[0], "--gt", folder / "images")),
        (lambda: hb.tune(csvs, gt, tmp_path / "r.yaml", steps="members,bogus"),
         ("tune", *csvs, "--gt", gt, "-o", tmp_path / "r.yaml", "--try", "members,bogus")),
        (lambda: hb.show(csvs[0], image="nope.png", output=tmp_path / "p.png"),
         ("show", csvs[0], "--image", "nope.png", "-o", tmp_path / "p.png")),
    ]
    for call, args in cases:
        with pytest.raises(HbensError) as caught:
            call()
        assert str(caught.value) == cli_error(*args), args
    assert not out.exists() and not (tmp_path / "r.yaml").exists()


def test_classwise_scores_may_be_mappings_as_files_are(small, tmp_path):
    folder, gt, csvs = small
    files = []
    for k, csv in enumerate(csvs):
        files.append(tmp_path / f"s{k}.csv")
        hb.score(csv, gt, out=files[-1], shape=128)
    mappings = [hb.score(csv, gt, shape=128).per_class.to_dict() for csv in csvs]
    from_files = hb.fuse(csvs, tmp_path / "files.csv", strategy="classwise", scores=files, shape=128)
    from_maps = hb.fuse(csvs, tmp_path / "maps.csv", strategy="classwise", scores=mappings, shape=128)
    assert from_files.rows == from_maps.rows == 4 * len(CLASSES)
    assert (tmp_path / "files.csv").read_bytes() == (tmp_path / "maps.csv").read_bytes()


def test_bad_precision_is_one_error_before_any_image(small, tmp_path):
    folder, gt, csvs = small
    hb.fuse(csvs, tmp_path / "soft.csv", strategy="soft", stores=tmp_path / "soft", shape=128)
    with pytest.raises(HbensError, match="^precision must be one of uint8, float16, got 'int8'$"):
        hb.fuse([tmp_path / "soft", csvs[0]], tmp_path / "o.csv", precision="int8", shape=128)
    assert not (tmp_path / "o.csv").exists()


def test_draw_is_exported_like_show():
    import hbens

    assert hbens.draw is hb.draw and "draw" in hbens.__all__

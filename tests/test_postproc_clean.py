import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens import rle
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.postproc import (
    CleanConfig,
    active_cleanup,
    clean_configs,
    clean_csv,
    clean_masks,
    clean_probabilities,
    clean_runs,
    fill_holes,
    keep_largest,
    remove_small,
)
from hbens.submission import read_submission
from tests.oracles import clean_reference

SETTINGS = [
    dict(min_area=0, keep=1, fill=False),
    dict(min_area=5, keep=None, fill=False),
    dict(min_area=0, keep=None, fill=True),
    dict(min_area=3, keep=2, fill=True),
    dict(min_area=0, keep=3, fill=False),
]


def clean(mask, min_area=0, keep=None, fill=False, connectivity=8):
    config = CleanConfig(min_area, keep, fill, connectivity)
    runs, _ = clean_runs(rle.mask_to_runs(mask), config, mask.shape)
    return rle.runs_to_mask(*runs, mask.shape)


def adversarial():
    ring = np.zeros((9, 9), np.uint8)
    ring[1:8, 1:8] = 1
    ring[3:6, 3:6] = 0
    yield ring
    leaky = ring.copy()
    leaky[1:3, 1:3] = 0
    leaky[2, 2] = 0
    leaky[3, 3] = 0  # a hole reaching the outside only diagonally
    yield leaky
    border_hole = np.ones((6, 7), np.uint8)
    border_hole[0, 3] = 0
    border_hole[1, 3] = 0
    border_hole[3, 3] = 0
    yield border_hole
    equal = np.zeros((7, 11), np.uint8)
    for x in (0, 4, 8):
        equal[2:4, x : x + 2] = 1
    yield equal
    diagonal = np.eye(6, dtype=np.uint8)
    yield diagonal
    yield diagonal[::-1].copy()
    yield np.ones((5, 5), np.uint8)
    yield np.zeros((5, 5), np.uint8)
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(np.uint8)
    yield checker


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("options", SETTINGS)
def test_adversarial_masks_match_scipy(connectivity, options):
    for mask in adversarial():
        assert np.array_equal(clean(mask, connectivity=connectivity, **options),
                              clean_reference(mask, connectivity=connectivity, **options))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_random_masks_match_scipy(rng, connectivity):
    for density in [0.2, 0.45, 0.6, 0.8]:
        for shape in [(20, 30), (64, 17)]:
            mask = (rng.random(shape) < density).astype(np.uint8)
            for options in SETTINGS:
                assert np.array_equal(clean(mask, connectivity=connectivity, **options),
                                      clean_reference(mask, connectivity=connectivity, **options)), options


@settings(max_examples=150, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 14), st.integers(1, 14)), elements=st.sampled_from([0, 1])),
       st.sampled_from(SETTINGS), st.sampled_from([4, 8]))
def test_property_clean_equals_scipy(mask, options, connectivity):
    assert np.array_equal(clean(mask, connectivity=connectivity, **options),
                          clean_reference(mask, connectivity=connectivity, **options))


def test_full_frame_bone_with_islands_and_holes(rng):
    from hbens.synthetic import random_mask

    mask = random_mask(rng)
    mask[rng.integers(0, 2048, 300), rng.integers(0, 2048, 300)] ^= 1
    expected = clean_reference(mask, min_area=20, keep=1, fill=True)
    assert rle.encode(clean(mask, min_area=20, keep=1, fill=True)) == rle.encode(expected)


def test_mask_api_and_stats():
    mask = np.zeros((10, 10), np.uint8)
    mask[1:6, 1:6] = 1
    mask[3, 3] = 0
    mask[8, 8] = 1
    assert np.array_equal(keep_largest(mask), clean_reference(mask, keep=1))
    assert np.array_equal(remove_small(mask, 2), clean_reference(mask, min_area=2))
    assert np.array_equal(fill_holes(mask), clean_reference(mask, fill=True))
    _, stats = clean_runs(rle.mask_to_runs(mask), CleanConfig(keep=1, fill_holes=True), mask.shape)
    assert (stats.components_removed, stats.pixels_removed, stats.holes_filled, stats.pixels_added) == (1, 1, 1, 1)
    stack = np.stack([mask, mask])
    cleaned = clean_masks(stack, {0: CleanConfig(keep=1)})
    assert np.array_equal(cleaned[0], keep_largest(mask)) and np.array_equal(cleaned[1], mask)


def test_configs_from_options_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("min_area: 400\nfill_holes: true\nPisiform: {largest: true}\nfinger-1: {min_area: 2000}\n")
    configs = clean_configs(CleanConfig(connectivity=4), None, str(path))
    assert configs["Ulna"] == CleanConfig(400, None, True, 4)
    assert configs["Pisiform"] == CleanConfig(400, 1, True, 4)
    assert configs["finger-1"] == CleanConfig(2000, None, True, 4)
    only = clean_configs(CleanConfig(keep=1), ["Ulna", "Radius"])
    assert sorted(only) == ["Radius", "Ulna"]
    path.write_text("Pisiform: {smallest: true}\n")
    with pytest.raises(HbensError, match="Pisiform: unknown key\\(s\\) smallest; known: min_area"):
        clean_configs(CleanConfig(), None, str(path))
    for text, message in (('fill_holes: "false"\n', "fill_holes: expected true or false, got the string 'false'"),
                          ("min_area: .nan\n", "min_area: expected a whole number, got nan"),
                          ("Ulna: {keep: 0}\n", "Ulna: keep must be >= 1, got 0"),
                          ("Ulna: {connectivity: 6}\n", "Ulna: connectivity must be 4 or 8, got 6")):
        path.write_text(text)
        with pytest.raises(HbensError, match=re.escape(message)):
            clean_configs(CleanConfig(), None, str(path))
    with pytest.raises(HbensError, match="unknown class 'Nail'"):
        clean_configs(CleanConfig(), ["Nail"])


def test_clean_csv_equals_mask_oracle_per_row(tmp_path, example):
    _, csvs = example
    out = tmp_path / "clean.csv"
    cleanup = active_cleanup(clean_configs(CleanConfig(min_area=30, keep=1, fill_holes=True)))
    summary = clean_csv(str(csvs[2]), str(out), cleanup)
    assert summary.rows == 58
    before, after = read_submission(csvs[2]), read_submission(out)
    for key, text in before.items():
        expected = clean_reference(rle.decode(text), min_area=30, keep=1, fill=True)
        assert after[key] == rle.encode(expected), key
    assert summary.stats.total.components_removed > 0


def test_cli_clean_and_fuse_with_clean_options(tmp_path, example):
    _, csvs = example
    runner = CliRunner()
    out = tmp_path / "c.csv"
    result = runner.invoke(cli, ["clean", str(csvs[0]), "--largest", "--fill-holes", "-o", str(out),
                                 "--report", str(tmp_path / "r.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.csv").read_text().startswith("class,components_removed,pixels_removed,")
    fused = tmp_path / "f.csv"
    fused_clean = tmp_path / "fc.csv"
    twice = tmp_path / "fc2.csv"
    assert runner.invoke(cli, ["fuse", *map(str, csvs), "-o", str(fused), "--quiet"]).exit_code == 0
    assert runner.invoke(cli, ["fuse", *map(str, csvs), "-o", str(fused_clean), "--quiet", "--largest"]).exit_code == 0
    assert runner.invoke(cli, ["clean", str(fused), "-o", str(twice), "--quiet", "--largest"]).exit_code == 0
    assert fused_clean.read_bytes() == twice.read_bytes()
    config = tmp_path / "clean.yaml"
    config.write_text("Ulna: {min_area: 100000000}\n")
    result = runner.invoke(cli, ["clean", str(csvs[0]), "--config", str(config), "-o", str(tmp_path / "u.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    changed = {k for k, v in read_submission(tmp_path / "u.csv").items() if v != read_submission(csvs[0])[k]}
    assert changed and {name for _, name in changed} == {"Ulna"}
    result = runner.invoke(cli, ["clean", str(csvs[0]), "-o", str(csvs[0]), "--largest"])
    assert result.exit_code == 1 and "is also the input" in result.output
    result = runner.invoke(cli, ["clean", str(csvs[0]), "-o", str(out), "--largest", "--keep", "2"])
    assert result.exit_code == 2 and "--largest or --keep" in result.output


def test_real_masks_clean_like_scipy(realdata):
    masks = np.load(sorted((realdata / "masks").glob("*/*.npz"))[0])["mask"]
    for c in (0, 20, 27):
        expected = clean_reference(masks[c], min_area=50, keep=1, fill=True)
        assert rle.encode(clean(masks[c], min_area=50, keep=1, fill=True)) == rle.encode(expected)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9])
def test_probability_maps_clean_like_their_masks(rng, threshold):
    probability = rng.random((40, 50)).astype(np.float32)
    config = CleanConfig(min_area=3, keep=2, fill_holes=True)
    cleaned = clean_probabilities(probability, config, threshold)
    expected = clean_reference((probability > threshold).astype(np.uint8), min_area=3, keep=2, fill=True)
    assert np.array_equal((cleaned > threshold).astype(np.uint8), expected)
    unchanged = (expected == 1) == (probability > threshold)
    assert np.array_equal(cleaned[unchanged & (expected == 1)], probability[unchanged & (expected == 1)])
    assert (cleaned[(expected == 0) & (probability > threshold)] == 0).all()

"""Hand phantoms and the competition-like data set, measured on their rasterised masks.

The ranges are those of real masks at 2048 x 2048; at smaller sizes areas scale with the
square of the size and rasterisation gets a small tolerance.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hbens.annotations import polygon_mask, read_annotation
from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.phantoms import hand_phantom, render_hand
from hbens.synthetic import write_dataset

AREAS = {
    **{f"finger-{i}": (3100, 8600) for i in (4, 8, 12, 16)}, "finger-1": (6700, 11600),
    **{f"finger-{i}": (4900, 17500) for i in (5, 9, 13, 17)},
    **{f"finger-{i}": (11000, 32000) for i in (2, 6, 10, 14, 18)},
    **{f"finger-{i}": (20000, 49000) for i in (3, 7, 11, 15, 19)},
    "Capitate": (12000, 22400), "Hamate": (6700, 17400), "Scaphoid": (6700, 17400),
    "Trapezium": (7000, 15000), "Trapezoid": (4600, 12200), "Lunate": (4600, 12200),
    "Triquetrum": (4600, 12200), "Pisiform": (2600, 6300),
    "Radius": (65000, 83000), "Ulna": (31000, 45000),
}
OVERLAPS = {
    ("Triquetrum", "Pisiform"): (0.58, 1.0), ("Trapezium", "Trapezoid"): (0.23, 0.66),
    ("Capitate", "Scaphoid"): (0.07, 0.20), ("Capitate", "Hamate"): (0.01, 0.18),
    ("Scaphoid", "Radius"): (0.05, 0.25), ("Lunate", "Radius"): (0.02, 0.21),
    ("finger-19", "Hamate"): (0.05, 0.18), ("finger-7", "Trapezium"): (0.01, 0.14),
}
JOINTS = [(f"finger-{i}", f"finger-{i + 1}") for i in (1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18)]
SMALL = 512


def masks(polygons, size):
    return {name: polygon_mask(points, (size, size)).astype(bool) for name, points in polygons.items()}


def overlap(a, b):
    return (a & b).sum() / min(a.sum(), b.sum())


def centre_x(points):
    return points[:, 0].mean()


@pytest.fixture(scope="module")
def small_hands():
    """Eight hands at 512 x 512: four seeds, each as a right and a left hand."""
    hands = []
    for seed in range(4):
        for side in ("right", "left"):
            polygons = hand_phantom(np.random.default_rng(seed), shape=(SMALL, SMALL), side=side)
            hands.append((polygons, masks(polygons, SMALL)))
    return hands


def test_every_class_is_a_polygon_inside_the_frame(small_hands):
    for polygons, _ in small_hands:
        assert list(polygons) == list(CLASSES)
        for points in polygons.values():
            assert points.ndim == 2 and points.shape[1] == 2 and len(points) >= 16
            assert points.min() >= 0 and points.max() <= SMALL - 1


def test_layout_fingers_radiate_from_the_wrist_over_the_carpals_and_forearm(small_hands):
    chains = [[f"finger-{i}" for i in range(last, first - 1, -1)] for first, last in ((1, 3), (4, 7), (8, 11),
                                                                                    (12, 15), (16, 19))]
    tilts, totals = [], []
    for polygons, hand in small_hands:
        centre = {name: points.mean(axis=0) for name, points in polygons.items()}
        wrist = centre["Capitate"]
        for chain in chains:
            distances = [np.linalg.norm(centre[name] - wrist) for name in chain]
            assert distances == sorted(distances), chain
        axis = centre["finger-11"] - centre["Radius"]
        axis /= np.linalg.norm(axis)
        along = {name: (centre[name] - centre["Radius"]) @ axis for name in CLASSES}
        carpals = [along[name] for name in CLASSES[19:27]]
        assert max(along["Radius"], along["Ulna"]) < min(carpals)
        assert max(carpals) < min(along[name] for name in ("finger-7", "finger-11", "finger-15", "finger-19"))
        tips = [np.arctan2(*((centre[chain[-1]] - wrist) * [1, -1])) for chain in chains]
        assert tips == sorted(tips) or tips == sorted(tips, reverse=True)
        mirror = 1 if centre["finger-3"][0] < wrist[0] else -1
        tilts.append(mirror * np.degrees(np.arctan2(axis[0], -axis[1])))
        totals.append(sum(m.sum() for m in hand.values()))
    assert np.ptp(tilts) > 5 and np.ptp(totals) / np.mean(totals) > 0.03


def test_areas_in_real_ranges(small_hands):
    factor = (SMALL / 2048) ** 2
    for _, hand in small_hands:
        for name, (low, high) in AREAS.items():
            assert 0.95 * low * factor <= hand[name].sum() <= 1.05 * high * factor, name


def test_required_overlaps_in_real_ranges(small_hands):
    for _, hand in small_hands:
        for (a, b), (low, high) in OVERLAPS.items():
            assert low - 0.01 <= overlap(hand[a], hand[b]) <= high + 0.01, (a, b)


def test_finger_neighbours_touch_or_overlap_slightly(small_hands):
    cross = np.ones((3, 3), np.uint8)
    for _, hand in small_hands:
        for a, b in JOINTS:
            grown = cv2.dilate(hand[a].astype(np.uint8), cross).astype(bool)
            assert (grown & hand[b]).any(), (a, b)
            assert overlap(hand[a], hand[b]) <= 0.045, (a, b)


def test_coverage(small_hands):
    for _, hand in small_hands:
        assert 0.10 <= np.any(np.stack(list(hand.values())), axis=0).mean() <= 0.15


def test_full_size_hands_meet_every_range_exactly():
    for seed, side in ((11, "right"), (12, "left")):
        hand = masks(hand_phantom(np.random.default_rng(seed), side=side), 2048)
        for name, (low, high) in AREAS.items():
            assert low <= hand[name].sum() <= high, (seed, name)
        for pair, (low, high) in {**OVERLAPS, **{joint: (0.001, 0.04) for joint in JOINTS}}.items():
            assert low <= overlap(hand[pair[0]], hand[pair[1]]) <= high, (seed, pair)
        assert 0.10 <= np.any(np.stack(list(hand.values())), axis=0).mean() <= 0.15


def test_same_seed_same_hand_other_seed_other_hand():
    first, again, other = (hand_phantom(np.random.default_rng(s), shape=(SMALL, SMALL)) for s in (5, 5, 6))
    assert all(np.array_equal(first[name], again[name]) for name in CLASSES)
    assert not any(np.allclose(first[name], other[name]) for name in CLASSES)


def test_left_hand_is_the_mirror_of_the_right_hand():
    right, left = (hand_phantom(np.random.default_rng(3), shape=(SMALL, SMALL), side=s)
                   for s in ("right", "left"))
    for name in CLASSES:
        np.testing.assert_allclose(left[name], right[name] * [-1, 1] + [SMALL - 1, 0])
    assert centre_x(right["finger-3"]) < centre_x(right["finger-11"]) < centre_x(right["finger-19"])
    assert centre_x(left["finger-3"]) > centre_x(left["finger-11"]) > centre_x(left["finger-19"])
    with pytest.raises(ValueError, match="side"):
        hand_phantom(np.random.default_rng(3), side="up")


def test_rendering_background_tissue_bone_overlap_and_rim(small_hands):
    polygons, hand = small_hands[0]
    image = render_hand(polygons, np.random.default_rng(0), shape=(SMALL, SMALL))
    assert image.dtype == np.uint8 and image.shape == (SMALL, SMALL)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    bones = np.any(np.stack(list(hand.values())), axis=0).astype(np.uint8)
    bone = hand["finger-10"].astype(np.uint8)
    others = np.any(np.stack([m for name, m in hand.items() if name != "finger-10"]), axis=0)
    tissue = cv2.dilate(bone, disc, iterations=2).astype(bool) & ~cv2.dilate(bones, disc).astype(bool)
    interior = cv2.erode(bone, disc, iterations=2).astype(bool) & ~others
    rim = cv2.erode(bone, np.ones((3, 3), np.uint8)).astype(bool) & ~cv2.erode(bone, disc).astype(bool)
    rim &= ~others
    both = cv2.erode((hand["Triquetrum"] & hand["Pisiform"]).astype(np.uint8), disc).astype(bool)
    background = np.median(image[: SMALL // 25])
    levels = [background] + [np.median(image[region]) for region in (tissue, interior, both)]
    assert levels == sorted(levels) and len(set(levels)) == 4, levels
    assert np.median(image[rim]) > levels[2]


def test_write_dataset_layout_and_annotations(tmp_path):
    written = write_dataset(tmp_path / "data", ids_train=2, ids_test=1, seed=4, size=256)
    root = tmp_path / "data"
    assert [p.parent.name for p in written["train"]] == ["ID001", "ID001", "ID002", "ID002"]
    assert [p.parent.name for p in written["test"]] == ["ID003", "ID003"]
    for split, paths in written.items():
        assert sorted(paths) == sorted((root / split / "DCM").rglob("*.png"))
        for png in paths:
            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            assert image.dtype == np.uint8 and image.shape == (256, 256)
            annotation = root / split / "outputs_json" / png.parent.name / png.with_suffix(".json").name
            assert len(json.loads(annotation.read_text())["annotations"]) == 29
            assert all(runs[0].size for runs in read_annotation(annotation, (256, 256)).values())
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    again = write_dataset(tmp_path / "again", ids_train=1, ids_test=0, seed=4, size=256)
    for first, second in zip(written["train"], again["train"]):
        assert first.name == second.name and first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("arguments, message", [
    ({"ids_train": -1, "ids_test": 1}, "ids_train must be a whole number >= 0, got -1"),
    ({"ids_train": 1, "ids_test": 1.5}, "ids_test must be a whole number >= 0, got 1.5"),
    ({"ids_train": 0, "ids_test": 0}, "ask for at least one ID"),
    ({"ids_train": 1, "ids_test": 0, "seed": -2}, "seed must be a whole number >= 0, got -2"),
    ({"ids_train": 1, "ids_test": 0, "size": 255}, "size must be a whole number >= 256, got 255"),
    ({"ids_train": True, "ids_test": 0}, "ids_train must be a whole number >= 0, got True"),
])
def test_write_dataset_rejects_bad_arguments_before_writing(tmp_path, arguments, message):
    with pytest.raises(HbensError, match=message):
        write_dataset(tmp_path / "data", **{"seed": 0, **arguments})
    assert not (tmp_path / "data").exists()


def test_cli_synth_writes_the_phantom_dataset_and_refuses_bad_options(tmp_path):
    from click.testing import CliRunner

    from hbens.cli import cli

    result = CliRunner().invoke(cli, ["synth", str(tmp_path / "data"), "--train-ids", "1", "--test-ids", "1",
                                      "--seed", "4", "--size", "256"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 train and 2 test images of 256x256" in result.output
    direct = write_dataset(tmp_path / "direct", ids_train=1, ids_test=1, seed=4, size=256)
    for split, paths in direct.items():
        for png in paths:
            assert (tmp_path / "data" / png.relative_to(tmp_path / "direct")).read_bytes() == png.read_bytes()
    for option, value in (("--size", "255"), ("--seed", "-1"), ("--train-ids", "-1")):
        refused = CliRunner().invoke(cli, ["synth", str(tmp_path / "bad"), option, value])
        assert refused.exit_code == 2 and option in refused.output
    empty = CliRunner().invoke(cli, ["synth", str(tmp_path / "none"), "--train-ids", "0", "--test-ids", "0"])
    assert empty.exit_code == 1 and "at least one ID" in empty.output
    assert not (tmp_path / "bad").exists() and not (tmp_path / "none").exists()


def files_under(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_cli_synth_refuses_a_written_folder_and_overwrite_replaces_only_its_own_data_set(tmp_path):
    from click.testing import CliRunner

    from hbens.cli import cli

    def synth(*options):
        return CliRunner().invoke(cli, ["synth", str(tmp_path / "data"), "--size", "256", *options])

    assert synth("--train-ids", "2").exit_code == 0
    before = files_under(tmp_path / "data")
    refused = synth("--train-ids", "1")
    assert refused.exit_code == 1 and "is not empty" in refused.output and "--overwrite" in refused.output
    assert files_under(tmp_path / "data") == before
    (tmp_path / "data" / ".synth.abcd1234.tmp" / "train").mkdir(parents=True)  # left by a killed run
    assert synth("--train-ids", "1", "--overwrite").exit_code == 0
    direct = write_dataset(tmp_path / "direct", ids_train=1, ids_test=1, seed=0, size=256)
    assert files_under(tmp_path / "data") == files_under(tmp_path / "direct")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test", "train"]
    assert [p.parent.name for p in direct["test"]] == ["ID002", "ID002"]  # ID002 was train before: gone from it
    (tmp_path / "data" / "train" / "notes.txt").write_text("mine")
    for options in ((), ("--overwrite",)):
        foreign = synth(*options)
        assert foreign.exit_code == 1 and "holds train/notes.txt, which synth did not write" in foreign.output
    assert (tmp_path / "data" / "train" / "notes.txt").read_text() == "mine"


def test_synth_that_fails_leaves_the_earlier_data_set(tmp_path, monkeypatch):
    import hbens.synthetic as synthetic

    synthetic.synth_dataset(tmp_path, ids_train=1, ids_test=0, seed=0, size=256)
    before = files_under(tmp_path)
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", "x.png")
        return write_phantom(*args, **kwargs)

    write_phantom = synthetic.write_phantom
    monkeypatch.setattr(synthetic, "write_phantom", failing)
    with pytest.raises(HbensError, match="x.png: cannot write"):
        synthetic.synth_dataset(tmp_path, ids_train=2, ids_test=0, seed=0, size=256, overwrite=True)
    assert files_under(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["train"]

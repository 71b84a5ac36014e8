import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hbens import rle
from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.metrics import dice_masks, dice_runs, read_scores, score_submission, write_scores
from hbens.submission import read_submission, write_submission

masks = arrays(np.uint8, (6, 7), elements=st.sampled_from([0, 1]))


def test_hand_computed_dice():
    a = np.zeros((2, 4), np.uint8)
    b = np.zeros((2, 4), np.uint8)
    a[0, :3] = 1
    b[0, 1:] = 1
    b[1, 0] = 1
    # |A| = 3, |B| = 4, |A and B| = 2: Dice = 4/7
    assert dice_masks(a, b) == pytest.approx(4 / 7)
    assert dice_runs(rle.mask_to_runs(a), rle.mask_to_runs(b)) == pytest.approx(4 / 7)
    empty = np.zeros((2, 4), np.uint8)
    assert dice_masks(empty, empty) == 1.0
    assert dice_runs(rle.mask_to_runs(empty), rle.mask_to_runs(empty)) == 1.0
    assert dice_runs(rle.mask_to_runs(a), rle.mask_to_runs(empty)) == 0.0


@settings(max_examples=200, deadline=None)
@given(masks, masks)
def test_run_dice_equals_mask_dice(a, b):
    assert dice_runs(rle.mask_to_runs(a), rle.mask_to_runs(b)) == dice_masks(a, b)


def test_score_against_own_ground_truth_csv_is_one_and_json_matches_csv(tmp_path, example):
    from hbens.annotations import GroundTruth

    gt_folder, csvs = example
    truth = GroundTruth(gt_folder)
    rows = {(image, name): rle.runs_to_string(*runs[name]) for image, runs in truth for name in CLASSES}
    gt_csv = tmp_path / "gt.csv"
    write_submission(gt_csv, rows)
    assert score_submission(str(gt_csv), str(gt_folder)).mean == 1.0
    by_json = score_submission(str(csvs[0]), str(gt_folder))
    by_csv = score_submission(str(csvs[0]), str(gt_csv))
    assert np.array_equal(by_json.values, by_csv.values)
    assert 0.8 < by_json.mean < 1.0


def test_score_equals_mask_level_mean_dice(example):
    from hbens.annotations import annotation_masks

    gt_folder, csvs = example
    table = score_submission(str(csvs[1]), str(gt_folder))
    prediction = read_submission(csvs[1])
    expected = []
    for image, path in zip(table.images, sorted(gt_folder.rglob("*.json"), key=lambda p: p.stem)):
        truth = annotation_masks(path)
        expected.append([dice_masks(rle.decode(prediction[(image, n)]), truth[c]) for c, n in enumerate(CLASSES)])
    assert np.allclose(table.values, expected, rtol=0, atol=1e-12)
    assert table.mean == pytest.approx(np.mean(np.mean(expected, axis=0)))


def test_missing_rows_error_or_empty(tmp_path, example):
    gt_folder, csvs = example
    rows = read_submission(csvs[0])
    dropped = sorted(rows)[0]
    del rows[dropped]
    partial = tmp_path / "partial.csv"
    write_submission(partial, rows)
    with pytest.raises(HbensError, match="1 \\(image, class\\) row\\(s\\) of the ground truth are missing"):
        score_submission(str(partial), str(gt_folder))
    table = score_submission(str(partial), str(gt_folder), missing="empty")
    assert table.values[0, CLASSES.index(dropped[1])] == 0.0


def test_scores_file_round_trip_and_errors(tmp_path, example):
    gt_folder, csvs = example
    table = score_submission(str(csvs[0]), str(gt_folder))
    path = tmp_path / "scores.csv"
    write_scores(str(path), table)
    scores = read_scores(str(path))
    assert list(scores) == list(CLASSES)
    assert scores["Ulna"] == pytest.approx(table.per_class[-1], abs=1e-6)
    path.write_text("class,dice\nUlna,high\n")
    with pytest.raises(HbensError, match=":2: dice 'high' is not a number"):
        read_scores(str(path))


def stores_of_truth(folder, gt, value=0.8, shape=(2048, 2048)):
    """A folder of hbens stores of ``shape`` holding each ground-truth mask at probability ``value``."""
    from hbens.annotations import GroundTruth
    from hbens.maps.probabilities import ClassCrop, quantize, write_store
    from hbens.runs import runs_bounds, runs_to_box

    folder.mkdir()
    for image, runs in GroundTruth(gt, shape):
        crops = []
        for name in CLASSES:
            box = runs_bounds(runs[name], shape) or (0, 0, 0, 0)
            crops.append(ClassCrop(box, quantize(runs_to_box(runs[name], box, shape) * value)))
        write_store(folder / image.replace(".png", ".npz"), crops, shape, image=image)
    return folder


def test_score_maps_thresholds_the_stores(tmp_path, example):
    from click.testing import CliRunner

    from hbens.cli import cli
    from hbens.metrics import score_maps

    gt, _ = example
    stores = stores_of_truth(tmp_path / "stores", gt)
    assert score_maps(str(stores), str(gt)).mean == 1.0
    above = score_maps(str(stores), str(gt), threshold=0.9)
    assert above.mean == 0.0
    (tmp_path / "t.csv").write_text("class,threshold\nUlna,0.9\n")
    result = CliRunner().invoke(cli, ["score", str(stores), "--gt", str(gt), "--thresholds", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert "Ulna         0.0000" in result.output and "Radius       1.0000" in result.output
    (stores / next(p.name for p in stores.iterdir())).unlink()
    with pytest.raises(HbensError, match="no maps for 1 image\\(s\\) of the ground truth"):
        score_maps(str(stores), str(gt))
    assert score_maps(str(stores), str(gt), missing="empty").mean < 1.0


def test_score_maps_reads_annotations_in_the_frame_of_the_maps(tmp_path):
    from hbens.metrics import score_maps
    from hbens.synthetic import write_example

    gt, _ = write_example(tmp_path / "small", n_images=2, n_models=1, shape=(256, 256))
    stores = stores_of_truth(tmp_path / "stores", gt, shape=(256, 256))
    assert score_maps(str(stores), str(gt)).mean == 1.0
    last = sorted(stores.iterdir())[-1]
    stores_of_truth(tmp_path / "big", gt)
    (tmp_path / "big" / last.name).replace(last)
    with pytest.raises(HbensError, match=f"{last.name}: maps of 2048x2048, but the other maps of .* are 256x256"):
        score_maps(str(stores), str(gt))


def test_cli_soft_fuse_of_store_folders_writes_stores_that_crf_and_score_read(tmp_path, example):
    from click.testing import CliRunner

    from hbens.cli import cli

    gt, csvs = example
    a = stores_of_truth(tmp_path / "a", gt, 0.8)
    b = stores_of_truth(tmp_path / "b", gt, 0.3)
    run = CliRunner().invoke
    result = run(cli, ["fuse", str(a), str(b), "-o", str(tmp_path / "f.csv"), "--stores", str(tmp_path / "fused"),
                       "--weights", "1,3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert score_submission(str(tmp_path / "f.csv"), str(gt)).mean == 0.0
    result = run(cli, ["fuse", str(a), str(b), str(csvs[0]), "-o", str(tmp_path / "g.csv"), "--threshold", "0.4"])
    assert result.exit_code == 0 and "rows from 3 inputs" in result.output, result.output
    result = run(cli, ["score", str(tmp_path / "fused"), "--gt", str(gt), "--threshold", "0.4"])
    assert result.exit_code == 0 and result.output.splitlines()[-1].startswith("mean         1.0000")


def test_score_at_the_images_size_fills_polygons_and_reads_runs_at_that_size(tmp_path):
    from hbens.annotations import polygon_runs
    from hbens.synthetic import write_annotation

    square = np.array([[10, 20], [60, 20], [60, 50], [10, 50]], float)
    write_annotation(tmp_path / "gt" / "ID001" / "a.json", {"Ulna": square})
    runs = polygon_runs(square, (300, 300))
    write_submission(tmp_path / "p.csv", {("a.png", name): rle.runs_to_string(*runs) if name == "Ulna" else ""
                                          for name in CLASSES})
    small = score_submission(str(tmp_path / "p.csv"), str(tmp_path / "gt"), shape=(300, 300))
    assert small.values[0, CLASSES.index("Ulna")] == 1.0 and small.mean == 1.0
    full = score_submission(str(tmp_path / "p.csv"), str(tmp_path / "gt"))
    assert full.values[0, CLASSES.index("Ulna")] < 0.1, "rows of 300 pixels read as rows of 2048"

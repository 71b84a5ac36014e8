import json

import pytest
from click.testing import CliRunner

from hbens.classes import CLASSES, IMAGE_SHAPE
from hbens.cli import cli
from hbens.ensemble import classwise_rules, fuse, hard_rules, read_class_weights, soft_rules
from hbens.errors import HbensError
from hbens.submission import read_submission, write_submission
from tests.oracles import vote_reference


def oracle(csvs, weights, threshold, classes=CLASSES):
    rows = [read_submission(p) for p in csvs]
    return {key: vote_reference([r.get(key, "") for r in rows], IMAGE_SHAPE, weights, threshold)
            for key in rows[0] if key[1] in classes}


def test_majority_fusion_equals_mask_oracle(tmp_path, example):
    _, csvs = example
    out = tmp_path / "fused.csv"
    summary = fuse(csvs, out)
    assert summary.rows == 58 and len(summary.stats.changed) == 3
    assert read_submission(out) == oracle(csvs, [1, 1, 1], 1.5)


def test_cli_as_written_two_inputs_both_must_agree(tmp_path, example):
    _, csvs = example
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["fuse", str(csvs[0]), str(csvs[1]), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert read_submission(out) == oracle(csvs[:2], [1, 1], 1.5)


@pytest.mark.parametrize("flags, weights, threshold", [
    (["--union"], [1, 1, 1], 0.5),
    (["--intersection"], [1, 1, 1], 2.5),
    (["--min-votes", "2"], [1, 1, 1], 1.5),
    (["--weights", "0.5,0.3,0.2"], [0.5, 0.3, 0.2], 0.5),
    (["--weights", "2,1,1", "--min-weight", "1"], [2, 1, 1], 1.0),
])
def test_cli_vote_options(tmp_path, example, flags, weights, threshold):
    _, csvs = example
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["fuse", *map(str, csvs), "-o", str(out), "--quiet", *flags])
    assert result.exit_code == 0, result.output
    assert read_submission(out) == oracle(csvs, weights, threshold)


def test_class_weights_file(tmp_path, example):
    _, csvs = example
    weights = tmp_path / "w.json"
    weights.write_text(json.dumps({"Ulna": [3, 1, 1]}))
    out = tmp_path / "out.csv"
    fuse(csvs, out, hard_rules(3, class_weights=read_class_weights(weights, 3)))
    fused = read_submission(out)
    assert {k: v for k, v in fused.items() if k[1] == "Ulna"} == oracle(csvs, [3, 1, 1], 2.5, ["Ulna"])
    assert {k: v for k, v in fused.items() if k[1] == "Radius"} == oracle(csvs, [1, 1, 1], 1.5, ["Radius"])
    csv_weights = tmp_path / "w.csv"
    csv_weights.write_text("class,a,b,c\nUlna,3,1,1\n")
    assert read_class_weights(csv_weights, 3) == {"Ulna": [3.0, 1.0, 1.0]}
    csv_weights.write_text("Ulna,3,1\n")
    with pytest.raises(HbensError, match="w.csv:1: 2 weights for Ulna"):
        read_class_weights(csv_weights, 3)


def test_classwise_pick_scores_and_subset_vote(tmp_path, example):
    _, csvs = example
    rows = [read_submission(p) for p in csvs]
    scores = []
    for i in range(3):
        path = tmp_path / f"s{i}.csv"
        path.write_text("class,dice\n" + "".join(f"{n},{0.9 if (n == 'Lunate') == (i == 2) else 0.5}\n" for n in CLASSES))
        scores.append({n: float(v) for n, v in (line.split(",") for line in path.read_text().splitlines()[1:])})
    rules = classwise_rules(3, picks=["Ulna=1", "Pisiform=0+1+2"], scores=scores, vote=True)
    out = tmp_path / "cw.csv"
    fuse(csvs, out, rules)
    fused = read_submission(out)
    majority = oracle(csvs, [1, 1, 1], 1.5, ["Pisiform"])
    for (image, name), value in fused.items():
        if name == "Ulna":
            assert value == rows[1][(image, name)]
        elif name == "Pisiform":
            assert value == majority[(image, name)]
        elif name == "Lunate":
            assert value == rows[2][(image, name)]
        else:
            assert value == rows[0][(image, name)]


def test_score_ties_go_to_the_earlier_input():
    scores = [{n: 0.8 for n in CLASSES}] * 3
    assert all(rule.members == (0,) for rule in classwise_rules(3, scores=scores, vote=True).values())


def test_partial_class_input_is_valid_for_its_classes(tmp_path, example):
    _, csvs = example
    rows = read_submission(csvs[2])
    wrist = tmp_path / "wrist.csv"
    write_submission(wrist, {k: v for k, v in rows.items() if k[1] in ("Lunate", "Pisiform")})
    out = tmp_path / "out.csv"
    fuse([csvs[0], wrist], out, classwise_rules(2, picks=["Lunate=1", "Pisiform=1"], vote=True))
    fused = read_submission(out)
    assert all(fused[k] == v for k, v in rows.items() if k[1] in ("Lunate", "Pisiform"))
    with pytest.raises(HbensError, match="wrist.csv: 54 \\(image, class\\) row\\(s\\) needed for the vote are missing"):
        fuse([csvs[0], wrist], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
    # The same rows are needed on the engine's other path (soft rules read the CSV as 0/1 maps).
    with pytest.raises(HbensError, match="wrist.csv: 54 \\(image, class\\) row\\(s\\) needed"):
        fuse([csvs[0], wrist], tmp_path / "bad.csv", soft_rules(2))
    assert not (tmp_path / "bad.csv").exists()
    fuse([csvs[0], wrist], tmp_path / "empty.csv", soft_rules(2), missing="empty")
    assert len(read_submission(tmp_path / "empty.csv")) == len(read_submission(csvs[0]))


def test_misalignment_errors(tmp_path, example):
    _, csvs = example
    rows = read_submission(csvs[1])
    one_image = tmp_path / "one.csv"
    first = sorted({k[0] for k in rows})[0]
    write_submission(one_image, {k: v for k, v in rows.items() if k[0] == first})
    with pytest.raises(HbensError, match="image sets differ"):
        fuse([csvs[0], one_image], tmp_path / "o.csv")
    fuse([csvs[0], one_image], tmp_path / "o.csv", missing="empty")
    assert len(read_submission(tmp_path / "o.csv")) == 58
    gap = tmp_path / "gap.csv"
    write_submission(gap, {k: v for k, v in rows.items() if k != (first, "Ulna")})
    with pytest.raises(HbensError, match=f"gap.csv: 1 .* e.g. \\({first}, Ulna\\)"):
        fuse([csvs[0], gap], tmp_path / "o2.csv")


def test_cli_usage_errors(tmp_path, example):
    _, csvs = example
    runner = CliRunner()
    base = ["fuse", str(csvs[0]), str(csvs[1]), "-o", str(tmp_path / "o.csv")]
    for extra, message in [
        (["--union", "--intersection"], "at most one of"),
        (["--pick", "Ulna=1"], "need --strategy classwise"),
        (["--strategy", "classwise", "--union"], "takes --pick and --scores"),
        (["--strategy", "classwise", "--pick", "Ulna=5"], "indices must be distinct and in 0..1"),
        (["--strategy", "classwise", "--pick", "Nail=0"], "unknown class 'Nail'"),
        (["--weights", "1,x"], "expected comma-separated numbers"),
        (["--min-votes", "3"], "outside 1..2"),
    ]:
        result = runner.invoke(cli, base + extra)
        assert result.exit_code != 0 and message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()


def test_real_three_checkpoints_vote(tmp_path, realdata):
    csvs = [realdata / "csv" / f"fold2_{name}.csv" for name in ("best", "epoch40", "epoch69")]
    out = tmp_path / "real.csv"
    fuse(csvs, out)
    assert read_submission(out) == oracle(csvs, [1, 1, 1], 1.5)


def test_changed_rows_ignore_whitespace_only_differences(tmp_path):
    rows = {("a.png", name): "1 2" for name in ("finger-1", "Ulna")}
    spaced = tmp_path / "spaced.csv"
    write_submission(spaced, {k: " 1  2\t" for k in rows})
    plain = tmp_path / "plain.csv"
    write_submission(plain, rows)
    summary = fuse([plain, spaced], tmp_path / "o.csv", classwise_rules(2, vote=True), missing="empty")
    assert summary.stats.changed == (0, 0)
    other = tmp_path / "other.csv"
    write_submission(other, {k: "1 3" for k in rows})
    summary = fuse([plain, other], tmp_path / "o2.csv", classwise_rules(2, vote=True), missing="empty")
    assert summary.stats.changed == (0, 2)

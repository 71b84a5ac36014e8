import os
from pathlib import Path

import pytest

from hbens.errors import HbensError
from hbens.outputs import atomic_open, same_file
from hbens.paths import check_paths, created_folder, remove_stale_temporaries


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A folder with two input files and an input folder, as the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    (tmp_path / "images").mkdir()
    return tmp_path


def refused(reads, writes, folder_writes=()):
    with pytest.raises(HbensError) as error:
        check_paths(reads, writes, folder_writes=folder_writes)
    text = str(error.value)
    assert "\n" not in text and len(text) <= 300
    return text


def test_distinct_paths_pass(inputs):
    check_paths([("--scores", "a.csv"), ("--images", "images")], [("-o", "out.csv"), ("--report", None)],
                folder_writes=[("--stores", "stores/run1")])


@pytest.mark.parametrize("output", ["a.csv", "./a.csv", "images/../a.csv", "{root}/a.csv"])
def test_output_that_is_an_input_names_both_options(inputs, output):
    output = Path(output.format(root=inputs))
    text = refused([("--scores", "b.csv"), ("--scores", "a.csv")], [("-o", output)])
    assert text.startswith(f"-o {output} is also the input --scores a.csv; choose another -o path")


def test_links_to_an_input_are_caught(inputs):
    os.symlink("a.csv", "soft.csv")
    os.link("a.csv", "hard.csv")
    assert same_file("soft.csv", "a.csv") and same_file("hard.csv", "a.csv") and not same_file("a.csv", "b.csv")
    assert "is also the input SUBMISSION a.csv" in refused([("SUBMISSION", "a.csv")], [("-o", "soft.csv")])
    assert "is also the input SUBMISSION a.csv" in refused([("SUBMISSION", "a.csv")], [("--report", "hard.csv")])


def test_two_outputs_on_one_file(inputs):
    text = refused([], [("-o", "out.csv"), ("--report", "./out.csv")])
    assert text.startswith("-o out.csv and --report out.csv are the same path")
    assert "are the same path" in refused([], [("--csv", "sub")], [("-o", "sub")])


@pytest.mark.parametrize("output, message", [
    ("a.csv/out.csv", "-o a.csv/out.csv: a.csv is a file, not a folder"),
    ("missing/out.csv", "-o missing/out.csv: folder missing does not exist; create it"),
    ("images", "-o images: is a folder; give a file path"),
])
def test_output_file_whose_folder_is_wrong(inputs, output, message):
    assert refused([], [("-o", output)]).startswith(message)


@pytest.mark.parametrize("folder, message", [
    ("images", "-o images is also the input --images images"),
    (".", "output folder -o . contains --images images"),
    ("images/stores", "output folder -o images/stores lies inside --images images"),
    ("a.csv", "-o a.csv: is a file, not a folder"),
    ("a.csv/stores", "-o a.csv/stores: a.csv is a file, not a folder"),
])
def test_store_folder_is_apart_from_input_folders(inputs, folder, message):
    assert refused([("--images", "images"), ("--thresholds", "a.csv")], [], [("-o", folder)]).startswith(message)


def test_two_store_folders_must_not_nest(inputs):
    text = refused([], [], [("-o", "stores"), ("--refined", "stores/refined")])
    assert text.startswith("output folder --refined stores/refined lies inside -o stores")


def test_remove_stale_temporaries_only_touches_atomic_temporaries(tmp_path):
    (tmp_path / "m").mkdir()
    stale = [tmp_path / ".out.csv.ab_cd123.tmp", tmp_path / "m" / ".x.npz.k2j4h5g6.tmp"]
    kept = [tmp_path / "out.csv", tmp_path / ".hidden.tmp", tmp_path / "a.ab_cd123.tmp", tmp_path / ".x.short.tmp"]
    for path in stale + kept:
        path.write_text("")
    assert remove_stale_temporaries(tmp_path) == sorted(stale)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_remove_stale_temporaries_matches_what_atomic_open_leaves(tmp_path):
    with atomic_open(tmp_path / "out.csv") as handle:
        leftover = [p for p in tmp_path.iterdir() if p.name != "out.csv"]
        handle.write("x")
    assert remove_stale_temporaries(tmp_path) == []
    leftover[0].write_text("killed")
    assert remove_stale_temporaries(tmp_path) == leftover


def test_created_folder_is_removed_when_the_block_fails_empty(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with created_folder(tmp_path / "new" / "stores") as folder:
            (folder / "model").mkdir()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_created_folder_keeps_finished_files_and_old_folders(tmp_path):
    with pytest.raises(ValueError):
        with created_folder(tmp_path / "stores") as folder:
            (folder / "model").mkdir()
            (folder / "model" / "a.npz").write_text("done")
            (folder / "empty").mkdir()
            raise ValueError
    assert [p.name for p in (tmp_path / "stores").rglob("*")] == ["model", "a.npz"]
    (tmp_path / "old").mkdir()
    with pytest.raises(ValueError):
        with created_folder(tmp_path / "old"):
            raise ValueError
    assert (tmp_path / "old").is_dir()
    with created_folder(tmp_path / "fine") as folder:
        assert folder.is_dir()
    assert (tmp_path / "fine").is_dir()


def test_created_folder_blocked_by_a_file(tmp_path):
    (tmp_path / "a.csv").write_text("")
    with pytest.raises(HbensError, match="--stores .*a.csv/x: a file is in the way; choose another --stores folder"):
        with created_folder(tmp_path / "a.csv" / "x", option="--stores"):
            pass

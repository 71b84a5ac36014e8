"""hbens import: each saved-array layout stored as reading it directly gives, --resume, workers, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hbens.classes import CLASSES
from hbens.cli import cli
from hbens.errors import HbensError
from hbens.importer import import_folder
from hbens.maps.folders import open_map_folder
from hbens.maps.probabilities import FLOOR, ProbabilityStore, dequantize
from hbens.maps.saved_arrays import ArrayFormat
from tests.test_saved_arrays import bone_probabilities, logit

SIZE = (48, 48)
AT_SIZE = ["--size", str(SIZE[0])]


def nnunet(p: np.ndarray) -> np.ndarray:
    """nnU-Net's --save_probabilities: background first, (C, 1, H, W) float16."""
    return np.concatenate([1 - p.max(axis=0, keepdims=True), p])[:, None].astype(np.float16)


LAYOUTS = {
    "npz-uint16": (lambda p: {"output": np.rint(p * 10000).astype(np.uint16)}, ".npz", ArrayFormat(size=SIZE)),
    "npz-logits-key": (lambda p: {"logits": logit(p).astype(np.float32), "ids": np.arange(3)}, ".npz",
                       ArrayFormat(key="logits", size=SIZE)),
    "npy-low-res-logits": (lambda p: logit(p[:, ::2, ::2]).astype(np.float16), ".npy", ArrayFormat(size=SIZE)),
    "npz-nnunet": (lambda p: {"probabilities": nnunet(p)}, ".npz", ArrayFormat(drop_channel=0, size=SIZE)),
    "npy-hwc-uint8": (lambda p: np.rint(p.transpose(1, 2, 0) * 255).astype(np.uint8), ".npy",
                      ArrayFormat(size=SIZE)),
}
"""Layout name: (array(s) of a (29, H, W) probability map, file suffix, how to read them)."""


def save(path: Path, content) -> None:
    if isinstance(content, dict):
        np.savez_compressed(path, **content)
    else:
        np.save(path, content)


def write_arrays(folder: Path, rng: np.random.Generator, layout: str, n: int = 2) -> ArrayFormat:
    make, suffix, fmt = LAYOUTS[layout]
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(n):
        save(folder / f"image{number}{suffix}", make(bone_probabilities(rng, len(CLASSES), SIZE)))
    return fmt


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def full_maps(maps) -> np.ndarray:
    """The (C, H, W) float64 probabilities of an image's crops, 0 outside them."""
    out = np.zeros((len(maps.crops), *maps.shape))
    for index, crop in enumerate(maps.crops):
        top, left, bottom, right = crop.box
        out[index, top:bottom, left:right] = dequantize(crop.values)
    return out


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_import_stores_what_reading_the_arrays_directly_gives(tmp_path, rng, layout):
    """By default a uint8 source is stored as uint8 (exactly what reading it directly gives), any other
    as float16: reading directly keeps float32, the store rounds it to float16 and drops p <= 1/255."""
    fmt = write_arrays(tmp_path / "src", rng, layout)
    summary = import_folder(tmp_path / "src", tmp_path / "stores", fmt)
    assert summary.images == 2 and summary.stats.imported == 2 and not summary.failed
    direct = open_map_folder(tmp_path / "src", fmt)
    stored = open_map_folder(tmp_path / "stores")
    assert stored.kind == "hbens stores" and stored.images == direct.images == ["image0.png", "image1.png"]
    precision = "uint8" if layout.endswith("uint8") else "float16"
    for name in direct.images:
        expected, got = direct.files[name].read(), stored.files[name].read()
        assert got.classes == expected.classes and got.shape == expected.shape == SIZE
        meta = ProbabilityStore(stored.files[name].path).meta
        assert meta["image"] == name and meta["source"] == expected.source
        assert meta["precision"] == expected.meta["precision"] == precision
        if precision == "uint8":
            for mine, theirs in zip(got.crops, expected.crops):
                assert mine.box == theirs.box and np.array_equal(mine.values, theirs.values)
            continue
        assert {crop.values.dtype for crop in expected.crops} == {np.dtype(np.float32)}
        exact, kept = full_maps(expected), full_maps(got)
        assert np.abs(kept - exact).max() <= FLOOR
        assert np.abs(kept - exact)[exact > FLOOR].max(initial=0) <= 2**-11


def test_import_precision_overrides_the_source_s(tmp_path, rng):
    write_arrays(tmp_path / "src", rng, "npz-uint16", n=1)
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / "out"),
                                      "--precision", "uint8", "--workers", "1", *AT_SIZE])
    assert result.exit_code == 0, result.output
    assert ProbabilityStore(tmp_path / "out" / "image0.npz").meta["precision"] == "uint8"


def test_import_fp16_and_the_summary(tmp_path, rng):
    write_arrays(tmp_path / "src", rng, "npz-uint16")
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / "out"),
                                      "--precision", "fp16", "--workers", "1", *AT_SIZE])
    assert result.exit_code == 0, result.output
    assert "imported 2 image(s)" in result.output and "0 resumed" in result.output
    assert "from .npz[output] uint16[29, 48, 48] CHW scaled:10000 (2)" in result.output
    assert ProbabilityStore(tmp_path / "out" / "image0.npz").meta["precision"] == "float16"


def run_import(*args: str) -> str:
    result = CliRunner().invoke(cli, ["import", *args, "--workers", "1", *AT_SIZE])
    assert result.exit_code == 0, result.output
    return result.output


def test_resume_keeps_stores_of_the_same_file_and_redoes_the_others(tmp_path, rng):
    write_arrays(tmp_path / "src", rng, "npz-uint16", n=4)
    src, out = str(tmp_path / "src"), str(tmp_path / "out")
    run_import(src, "-o", out)
    stamps = {path.name: path.stat().st_mtime_ns for path in Path(out).iterdir()}
    output = run_import(src, "-o", out, "--resume")
    assert "imported 0 image(s)" in output and "4 resumed" in output and "scaled:10000 (4)" in output
    assert {path.name: path.stat().st_mtime_ns for path in Path(out).iterdir()} == stamps
    os.utime(tmp_path / "src" / "image1.npz", ns=(1, 1))
    (tmp_path / "out" / "image2.npz").write_bytes(b"half a store")
    output = run_import(src, "-o", out, "--resume")
    assert "imported 2 image(s)" in output and "2 resumed" in output
    assert "2 store(s) found but redone (another source file: 1, incomplete or damaged: 1)" in output
    output = run_import(src, "-o", out, "--resume", "--kind", "scaled:10000")
    assert "4 store(s) found but redone (another --kind: 4)" in output
    output = run_import(src, "-o", out, "--resume", "--kind", "scaled:10000", "--precision", "fp16")
    assert "another --precision: 4" in output
    assert "0 resumed" in run_import(src, "-o", out)


@pytest.mark.parametrize("extra", [["--workers", "2"],
                                   pytest.param(["--scheduler", "processes", "--workers", "2"],
                                                marks=pytest.mark.slow)])
def test_import_is_identical_under_workers(tmp_path, rng, extra):
    write_arrays(tmp_path / "src", rng, "npy-low-res-logits", n=5)
    for name, options in (("one", ["--workers", "1"]), ("other", extra)):
        result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / name),
                                          "--size", str(SIZE[0]), "--quiet", *options])
        assert result.exit_code == 0, result.output
    one = sorted(path.name for path in (tmp_path / "one").iterdir())
    assert one == sorted(path.name for path in (tmp_path / "other").iterdir()) and len(one) == 5
    for name in one:
        mine, theirs = store_arrays(tmp_path / "one" / name), store_arrays(tmp_path / "other" / name)
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)


def nan_file(folder: Path) -> None:
    np.save(folder / "image9.npy", np.full((29, *SIZE), np.nan, np.float32))


def other_size(folder: Path) -> None:
    np.save(folder / "image9.npy", np.zeros((29, 2100, 8), np.float32))


BAD = [
    ("ambiguous", lambda folder: np.savez(folder / "image9.npz", a=np.zeros((29, 4, 4)), b=np.zeros(3)),
     [], "image9.npz: holds arrays 'a', 'b'; choose one with --key"),
    ("no-channel-axis", lambda folder: np.save(folder / "image9.npy", np.zeros((30, *SIZE), np.float32)),
     [], "image9.npy: shape (30, 48, 48) has no axis of 29 channels"),
    ("other-size", other_size, [], "image9.npy: maps of a 2100x8 image, but image0.npz of a 48x48 one"),
    ("strings", lambda folder: np.save(folder / "image9.npy", np.array(["x"] * 29)), [], "not numbers"),
    ("missing-key", lambda folder: None, ["--key", "logits"], "no array 'logits'"),
    ("bad-kind", lambda folder: None, ["--kind", "scaled:0"], "--kind scaled:0"),
]


@pytest.mark.parametrize("name, setup, options, message", BAD, ids=[case[0] for case in BAD])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, rng, name, setup, options, message):
    write_arrays(tmp_path / "src", rng, "npz-uint16")
    setup(tmp_path / "src")
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / "out"), *options])
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_values_name_the_file_and_write_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    nan_file(tmp_path / "src")
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1 and "image9.npy: holds NaN or infinite values" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_folders_that_cannot_be_imported(tmp_path, rng):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HbensError, match="no saved arrays"):
        import_folder(tmp_path / "empty", tmp_path / "out")
    write_arrays(tmp_path / "src", rng, "npz-uint16")
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "src"), "-o", str(tmp_path / "src" / "stores")])
    assert result.exit_code == 1 and "lies inside" in result.output
    assert not (tmp_path / "src" / "stores").exists() and not (tmp_path / "out").exists()


def test_import_does_not_load_torch(tmp_path, rng):
    write_arrays(tmp_path / "src", rng, "npz-uint16")
    code = ("import sys; from hbens.cli import cli\n"
            f"cli(['import', {str(tmp_path / 'src')!r}, '-o', {str(tmp_path / 'out')!r}, '--quiet'],"
            " standalone_mode=False)\n"
            "assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_torch_files_import_like_numpy_files(tmp_path, rng):
    torch = pytest.importorskip("torch")
    p = bone_probabilities(rng, len(CLASSES), SIZE)
    (tmp_path / "pt").mkdir()
    (tmp_path / "np").mkdir()
    logits = logit(p[:, ::2, ::2]).astype(np.float32)
    torch.save({"logits": torch.from_numpy(logits)}, tmp_path / "pt" / "image0.pt")
    np.save(tmp_path / "np" / "image0.npy", logits)
    fmt = ArrayFormat(key="logits", size=SIZE)
    import_folder(tmp_path / "pt", tmp_path / "a", fmt)
    import_folder(tmp_path / "np", tmp_path / "b", fmt)
    mine, theirs = store_arrays(tmp_path / "a" / "image0.npz"), store_arrays(tmp_path / "b" / "image0.npz")
    assert all(np.array_equal(mine[k], theirs[k]) for k in ("boxes", "offsets", "data"))

import numpy as np
from click.testing import CliRunner

from hbens import rle
from hbens.cli import cli
from hbens.pictures import class_colors, overlay


def test_colors_are_distinct():
    colors = class_colors()
    assert colors.shape == (29, 3) and len({tuple(c) for c in colors}) == 29


def test_overlay_colors_exactly_the_mask_pixels():
    mask = np.zeros((6, 8), np.uint8)
    mask[1:3, 2:5] = 1
    image = np.full((6, 8), 100, np.uint8)
    picture = overlay({"Ulna": rle.encode(mask)}, image, (6, 8), alpha=1.0)
    assert np.array_equal(picture[mask == 1], np.repeat(class_colors()[-1][None], 6, 0))
    assert (picture[mask == 0] == 100).all()


def test_cli_show(tmp_path, example):
    _, csvs = example
    result = CliRunner().invoke(cli, ["show", str(csvs[0]), "-o", str(tmp_path / "s.png"), "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(cli, ["show", str(csvs[0]), "--image", "nope.png", "-o", str(tmp_path / "t.png")])
    assert result.exit_code == 1 and "no rows for image nope.png" in result.output
    assert not (tmp_path / "t.png").exists()

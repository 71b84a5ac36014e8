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


def _rles(**masks):
    return {name.replace("_", "-"): rle.encode(mask) for name, mask in masks.items()}


def test_compare_masks_layers_agreement_one_sided_and_swapped_bones():
    from hbens.pictures import compare_masks

    a, b = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    a[0, 0:4], b[0, 2:6] = 1, 1  # finger-1: both at 2-3, only first at 0-1, only second at 4-5
    swap_a, swap_b = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    swap_a[3, 3], swap_b[3, 3] = 1, 1  # one pixel: Ulna in the first, Radius in the second
    comparison = compare_masks({**_rles(finger_1=a), "Ulna": rle.encode(swap_a)},
                               {**_rles(finger_1=b), "Radius": rle.encode(swap_b)}, shape=(6, 8))
    layers = comparison.layers
    assert layers["in both"][0].nonzero()[0].tolist() == [2, 3]
    assert layers["only in the first"][0].nonzero()[0].tolist() == [0, 1]
    assert layers["only in the second"][0].nonzero()[0].tolist() == [4, 5]
    assert layers["a different class in each"].nonzero() == (np.array([3]), np.array([3]))
    assert comparison.counts() == {"in both": 2, "only in the first": 2, "only in the second": 2,
                                   "a different class in each": 1}
    stacked = np.stack(list(layers.values())).sum(axis=0)
    assert stacked.max() == 1, "the layers are disjoint"


def test_compare_overlay_colors_each_layer_and_leaves_the_rest():
    from hbens.pictures import COMPARE_COLORS, compare_masks, compare_overlay

    a, b = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    a[0, :2], b[0, 1:3] = 1, 1
    image = np.full((4, 4), 90, np.uint8)
    picture = compare_overlay(compare_masks(_rles(Lunate=a), _rles(Lunate=b), shape=(4, 4)), image, alpha=1.0)
    assert picture[0, 0].tolist() == list(COMPARE_COLORS["only in the first"])
    assert picture[0, 1].tolist() == list(COMPARE_COLORS["in both"])
    assert picture[0, 2].tolist() == list(COMPARE_COLORS["only in the second"])
    assert (picture[1:] == 90).all() and (picture[0, 3] == 90).all()


def test_png_bytes_resizes_and_keeps_rgb_order():
    import cv2

    from hbens.pictures import png_bytes

    picture = np.zeros((10, 20, 3), np.uint8)
    picture[..., 0] = 255
    decoded = cv2.imdecode(np.frombuffer(png_bytes(picture, width=40), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (20, 40, 3)
    assert decoded[..., 2].min() == 255 and decoded[..., :2].max() == 0, "red stays red"


def test_cli_show_compare(tmp_path, example):
    _, csvs = example
    output = tmp_path / "c.png"
    result = CliRunner().invoke(cli, ["show", str(csvs[0]), "--compare", str(csvs[1]), "-o", str(output),
                                      "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert "in both" in result.output and "only in the first" in result.output
    same = CliRunner().invoke(cli, ["show", str(csvs[0]), "--compare", str(csvs[0]),
                                    "-o", str(tmp_path / "d.png"), "--scale", "0.1"])
    assert same.exit_code == 0, same.output
    assert "only in the first 0 px, only in the second 0 px, a different class in each 0 px" in same.output
    refused = CliRunner().invoke(cli, ["show", str(csvs[0]), "--compare", str(csvs[1]), "-o", str(csvs[1])])
    assert refused.exit_code != 0

import gzip
import json

import numpy as np
import pytest

from hbens import rle
from hbens.annotations import GroundTruth, annotation_masks, polygon_mask, polygon_runs, read_annotation
from hbens.errors import HbensError


def test_polygon_on_bounding_box_equals_full_frame_fill(rng):
    shape = (300, 400)
    for _ in range(40):
        points = rng.uniform(-50, 450, (rng.integers(3, 12), 2))
        assert rle.runs_to_string(*polygon_runs(points, shape)) == rle.encode(polygon_mask(points, shape))


def test_read_annotation_overlapping_classes(tmp_path):
    path = tmp_path / "a.json"
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    path.write_text(json.dumps({"annotations": [
        {"label": "finger-1", "points": square},
        {"label": "finger-2", "points": square},
    ]}))
    masks = annotation_masks(path, (8, 8))
    assert masks.shape == (29, 8, 8)
    assert masks[0].sum() == 16 and np.array_equal(masks[0], masks[1]) and masks[2:].sum() == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not an annotation JSON"),
        ('{"annotations": [{"label": "Nail", "points": [[1, 1]]}]}', "annotation 1: unknown class 'Nail'"),
        ('{"annotations": [{"label": "Ulna", "points": [1, 2]}]}', "annotation 1 (Ulna): points must be"),
        ('{"annotations": [{"label": "Ulna", "points": [["a", 2]]}]}', "annotation 1 (Ulna): points must be"),
        ('{"annotations": [{"points": [[1, 2]]}]}', "annotation 1: expected an object with label and points"),
        ('{"annotations": [{"label": ["Ulna"], "points": [[1, 2]]}]}', "annotation 1: unknown class ['Ulna']"),
        ('{"annotations": {}}', "not an annotation JSON (annotations is not a list)"),
        ('{"annotations": [{"label": "Ulna", "points": [[1, 2]]}, {"label": "Radius", "points": [[1, NaN], [2, 3], '
         '[Infinity, 1]]}]}', "annotation 2 (Radius): 2 point(s) not finite: [1, nan], [inf, 1]"),
        ("\u00e9".encode("latin-1"), "bad.json: not UTF-8 (byte 0xe9 at offset 0)"),
        (b"\x1f\x8b\x08\x00", "bad.json: gzip-compressed, not UTF-8 text"),
        ('{"annotations": ' + "[" * 100000 + "]" * 100000 + "}", "bad.json: nested too deeply; not an annotation"),
        ('{"annotations": [{"label": "Ulna", "points": [[1, 2], [1e12, 5], [-2049, 3], [-2048, 4096]]}]}',
         "annotation 1 (Ulna): 2 point(s) beyond the 2048x2048 frame by more than its size: [1e+12, 5], [-2049, 3]"),
    ],
)
def test_bad_annotation_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(HbensError) as error:
        read_annotation(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert len(str(error.value)) <= 300 + len(str(path))


def test_unknown_label_lists_a_few_classes(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"annotations": [{"label": "Nail" * 100, "points": [[1, 1]]}]}))
    with pytest.raises(HbensError, match=r"valid classes: finger-1, finger-2, finger-3 and 26 more$"):
        read_annotation(path)


def test_annotation_with_byte_order_mark(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"annotations": [{"label": "Ulna", "points": [[1, 1]]}]}).encode())
    assert read_annotation(path, (4, 4))["Ulna"][0].size == 1


def test_ground_truth_sources(tmp_path):
    with pytest.raises(HbensError, match="no annotation"):
        GroundTruth(tmp_path)
    with pytest.raises(HbensError, match="no such file"):
        GroundTruth(tmp_path / "nope")


def test_duplicate_image_names_in_a_folder_are_refused(tmp_path):
    for folder in ("ID001", "ID002"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.json").write_text('{"annotations": []}')
    with pytest.raises(HbensError) as error:
        GroundTruth(tmp_path)
    assert "two annotation files for image x.png" in str(error.value)
    assert "ID001/x.json and " in str(error.value) and "ID002/x.json" in str(error.value)


@pytest.mark.parametrize("name, content, message", [
    ("one.json", b'{"annotations": []}', "one.json: a single annotation JSON; pass the folder"),
    ("one.txt", b'\xef\xbb\xbf {"annotations": []}', "one.txt: a single annotation JSON; pass the folder"),
    ("gt.csv.gz", gzip.compress(b"image_name,class,rle\n"), "gt.csv.gz: gzip-compressed, not a CSV; decompress"),
    ("gt.json", gzip.compress(b"{}"), "gt.json: gzip-compressed, not a CSV"),
])
def test_single_file_ground_truth_gets_a_clear_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HbensError, match=message):
        GroundTruth(path)


def test_points_are_refused_beyond_the_frame_by_more_than_its_size(tmp_path):
    """Issue 19: a point at 1e12 overflowed OpenCV's int32 and the Dice was silently wrong."""
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"annotations": [{"label": "Ulna", "points": [[-8, -8], [15, 0], [15, 15]]}]}))
    assert read_annotation(path, (8, 8))["Ulna"][1].sum() > 0
    beyond = r"2 point\(s\) beyond the 7x8 frame by more than its size: \[-8, -8\], \[15, 15\]"
    with pytest.raises(HbensError, match=beyond):
        read_annotation(path, (7, 8))


def test_only_regular_annotation_files_are_read(tmp_path):
    import os

    (tmp_path / "ID001").mkdir()
    os.mkfifo(tmp_path / "ID001" / "a.json")
    with pytest.raises(HbensError, match="no annotation"):
        GroundTruth(tmp_path)
    (tmp_path / "ID001" / "b.json").write_text('{"annotations": []}')
    assert GroundTruth(tmp_path).images == ["b.png"]
    (tmp_path / "ID001" / "c.json").mkdir()
    with pytest.raises(HbensError, match="c.json: a folder named like an annotation file"):
        GroundTruth(tmp_path)

import gzip
from pathlib import Path

import pytest

from hbens import submission
from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.submission import (
    SubmissionWriter,
    check_submission,
    iter_rows,
    read_submission,
    scan_submission,
    write_submission,
)

SHAPE = (8, 8)


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def full_rows(images=("b.png", "a_1_R.png")):
    return {(image, name): f"{i + 1} 2" for image in images for i, name in enumerate(CLASSES)}


def test_round_trip_is_canonical_and_keeps_underscored_names(tmp_path):
    rows = full_rows()
    path = tmp_path / "sub.csv"
    assert write_submission(path, rows) == len(rows)
    lines = path.read_text().splitlines()
    assert lines[0] == "image_name,class,rle"
    assert lines[1] == "a_1_R.png,finger-1,1 2"
    assert lines[30] == "b.png,finger-1,1 2"
    assert read_submission(path, SHAPE) == rows


def test_reader_keys_rows_not_positions(tmp_path):
    path = write(tmp_path / "s.csv", ["class,rle,image_name", "Ulna,1 1,x.png", "Radius,,x.png"])
    assert read_submission(path, SHAPE) == {("x.png", "Radius"): "", ("x.png", "Ulna"): "1 1"}


def test_quoted_fields_and_crlf(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(b'image_name,class,rle\r\n"a,b.png",Ulna,"3 2"\r\n')
    assert read_submission(path, SHAPE) == {("a,b.png", "Ulna"): "3 2"}
    out = tmp_path / "out.csv"
    write_submission(out, read_submission(path, SHAPE))
    assert read_submission(out, SHAPE) == {("a,b.png", "Ulna"): "3 2"}


@pytest.mark.parametrize(
    "lines, message",
    [
        (["image_name,rle", "a.png,1 1"], ":1: header image_name,rle lacks column(s) class"),
        (["image_name,class,rle", "a.png,finger-20,1 1"], ":2: unknown class 'finger-20'"),
        (["image_name,class,rle", "a.png,Ulna,1 2 3"], ":2: a.png Ulna: RLE has an odd number"),
        (["image_name,class,rle", "a.png,Ulna,1 b"], ":2: a.png Ulna: RLE token 2 ('b') is not"),
        (["image_name,class,rle", "a.png,Ulna,0 1"], ":2: a.png Ulna: RLE run 1 starts at 0"),
        (["image_name,class,rle", "a.png,Ulna,1 0"], ":2: a.png Ulna: RLE run 1 has length 0"),
        (["image_name,class,rle", "a.png,Ulna,5 3 6 1"], ":2: a.png Ulna: RLE run 2 (start 6) overlaps"),
        (["image_name,class,rle", "a.png,Ulna,64 2"], ":2: a.png Ulna: RLE run 1 (start 64, length 2) ends past"),
        (["image_name,class,rle", "a.png,Ulna,1 1", "a.png,Ulna,"], ":3: duplicate row for (a.png, Ulna); first at line 2"),
        (["image_name,class,rle", "a.png,Ulna"], ":2: 2 fields, expected 3"),
        (["image_name,class,rle", ",Ulna,"], ":2: empty image_name"),
    ],
)
def test_bad_input_one_line_error_with_file_and_line(tmp_path, lines, message):
    path = write(tmp_path / "bad.csv", lines)
    with pytest.raises(HbensError) as error:
        scan_submission(path, SHAPE)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(HbensError, match="empty file"):
        scan_submission(empty)
    with pytest.raises(HbensError, match="cannot read"):
        scan_submission(tmp_path / "nope.csv")


def test_check_lists_every_problem(tmp_path):
    rows = full_rows(("a.png",))
    path = tmp_path / "s.csv"
    write_submission(path, rows)
    text = path.read_text().replace("a.png,Ulna,29 2\n", "").replace("a.png,Radius,28 2", "a.png,Radius,28 x")
    path.write_text(text + "a.png,Nail,1 1\n")
    report = check_submission(path, SHAPE)
    assert not report.ok
    messages = [str(p) for p in report.problems]
    assert len(messages) == 3
    assert any("unknown class 'Nail'" in m for m in messages)
    assert any("RLE token 2 ('x')" in m for m in messages)
    assert any("missing 2 class(es): Radius, Ulna" in m for m in messages)


def test_check_ok(tmp_path):
    path = tmp_path / "s.csv"
    write_submission(path, full_rows())
    report = check_submission(path, SHAPE)
    assert report.ok and (report.rows, report.images, report.classes) == (58, 2, 29)


def test_writer_refuses_to_overwrite_input_and_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "in.csv"
    write_submission(path, full_rows())
    before = path.read_bytes()
    with pytest.raises(HbensError, match="would overwrite input"):
        write_submission(path, full_rows(), inputs=[path])
    assert path.read_bytes() == before
    out = tmp_path / "out.csv"
    with pytest.raises(ValueError, match="canonical order"):
        with SubmissionWriter(out) as writer:
            writer.write("b.png", "finger-1", "")
            writer.write("a.png", "finger-1", "")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_iter_rows_streams_in_canonical_order(tmp_path):
    path = tmp_path / "s.csv"
    write_submission(path, full_rows())
    rows = list(iter_rows(scan_submission(path, SHAPE)))
    assert [r[:2] for r in rows] == sorted([r[:2] for r in rows], key=lambda k: (k[0], CLASSES.index(k[1])))


def test_real_submissions_are_valid(realdata):
    for path in sorted((realdata / "csv").glob("*.csv")):
        report = check_submission(path)
        assert report.ok, report.problems
        assert (report.rows, report.images, report.classes) == (58, 2, 29)


def test_unreadable_header_is_one_problem(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"image_name,class,rle\xe9\n")
    report = check_submission(path)
    assert [p.message.split(" (")[0] for p in report.problems] == ["unreadable line"]


def one_line_error(path, shape=SHAPE):
    with pytest.raises(HbensError) as error:
        scan_submission(path, shape)
    text = str(error.value)
    assert text.startswith(str(path)) and "\n" not in text and len(text) <= 300 + len(str(path))
    return text


@pytest.mark.parametrize("content, message", [
    (gzip.compress(b"image_name,class,rle\n"), "gzip-compressed, not a CSV; decompress it first"),
    (b"PK\x03\x04" + bytes(40), "a zip archive, not a CSV; extract the file from it first"),
    (b"\x89PNG\r\n\x1a\n" + bytes(20), "a PNG image, not a CSV; give the submission CSV"),
    ("image_name,class,rle\n".encode("utf-16"), "UTF-16 text, not a CSV; save it as UTF-8"),
    (b"image_name,class,rle\n" + bytes(100), "binary data, not a CSV"),
])
def test_compressed_or_binary_file_says_so(tmp_path, content, message):
    path = tmp_path / "sub.csv"
    path.write_bytes(content)
    assert message in one_line_error(path)
    assert [p.message for p in check_submission(path).problems] == [one_line_error(path).split(": ", 1)[1]]


def test_dev_zero_is_refused_at_once():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    assert "binary data, not a CSV" in one_line_error("/dev/zero")


def test_bom_and_quoted_header_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbf"image_name","class","rle"\r\n"a.png","Ulna","1 2"\r\nb.png,Radius,3 1\r\n')
    assert read_submission(path, SHAPE) == {("a.png", "Ulna"): "1 2", ("b.png", "Radius"): "3 1"}


def test_line_over_the_cap_is_one_error_without_reading_on(tmp_path, monkeypatch):
    monkeypatch.setattr(submission, "MAX_LINE", 100)
    path = write(tmp_path / "long.csv", ["image_name,class,rle", "a.png,Ulna," + "1 1 " * 40])
    assert ":2: line longer than" in one_line_error(path)
    assert len(check_submission(path).problems) == 1


def test_echoed_content_is_clipped(tmp_path):
    path = write(tmp_path / "noheader.csv", ["a.png,Ulna," + "1 2 " * 5000])
    text = one_line_error(path)
    assert "lacks column(s) image_name, class, rle" in text and "(+" in text
    path = write(tmp_path / "class.csv", ["image_name,class,rle", "a.png,Nail,"])
    assert "valid classes: finger-1, finger-2, finger-3 and 26 more" in one_line_error(path)
    path = write(tmp_path / "token.csv", ["image_name,class,rle", "a.png,Ulna,1 " + "x" * 5000])
    assert "RLE token 2" in one_line_error(path)
    path = write(tmp_path / "dup.csv", ["image_name,class,rle", "y" * 500 + ",Ulna,", "y" * 500 + ",Ulna,"])
    assert "duplicate row for (yyy" in one_line_error(path)

import gzip
from pathlib import Path

import pytest

from hbens.errors import HbensError
from hbens.settings import binary_kind, check_mapping, clip, examples, read_csv_rows, read_settings, read_text


def test_yaml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("min_area: 3\nUlna: {keep: 1}\n")
    (tmp_path / "a.json").write_text('{"Ulna": [1, 2]}')
    assert read_settings(tmp_path / "a.yaml") == {"min_area": 3, "Ulna": {"keep": 1}}
    assert read_settings(tmp_path / "a.json") == {"Ulna": [1, 2]}


@pytest.mark.parametrize("name, text, message", [
    ("bad.json", "{", "bad.json: not valid JSON"),
    ("bad.yaml", "a: [", "bad.yaml: not valid YAML"),
])
def test_bad_files_give_one_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(HbensError, match=message):
        read_settings(tmp_path / name)
    with pytest.raises(HbensError, match="cannot read"):
        read_settings(tmp_path / "missing.yaml")


def test_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf{"keep": 1}')
    (tmp_path / "a.yaml").write_bytes(b"\xef\xbb\xbfkeep: 1\n")
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfclass,threshold\r\nUlna,0.4\r\n\r\nRadius,0.6\r\n")
    assert read_settings(tmp_path / "a.json") == read_settings(tmp_path / "a.yaml") == {"keep": 1}
    assert read_csv_rows(tmp_path / "a.csv") == [["class", "threshold"], ["Ulna", "0.4"], [], ["Radius", "0.6"]]


@pytest.mark.parametrize("content, message", [
    ("min_area: 3\n".encode("utf-16"), "UTF-16 text, not UTF-8 text; save it as UTF-8"),
    ("name: caf\u00e9\n".encode("latin-1"), "not UTF-8 (byte 0xe9 at offset 9)"),
    (gzip.compress(b"a: 1\n"), "gzip-compressed, not UTF-8 text; decompress it first"),
    (b"PK\x03\x04rest", "a zip archive, not UTF-8 text; extract the file"),
    (b"a: 1\n\x00\x00", "binary data, not UTF-8 text; give the text file itself"),
])
def test_encodings_and_binaries_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(HbensError) as error:
        read_settings(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    with pytest.raises(HbensError, match=message.split(" (")[0]):
        read_csv_rows(path)


def test_huge_and_endless_files_are_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 100)
    with pytest.raises(HbensError, match="big.yaml: larger than"):
        read_text(path, limit=50)
    if Path("/dev/zero").exists():
        with pytest.raises(HbensError, match="binary data"):
            read_settings("/dev/zero")


def test_bad_csv_names_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('class,threshold\nUlna,"0.4\n')
    with pytest.raises(HbensError, match=r"t.csv:\d+: not valid CSV"):
        read_csv_rows(path)


SCHEMA = {"min_area": int, "keep": (int, None), "fill_holes": bool, "weight": float, "name": str, "weights": [float]}


def test_check_mapping_accepts_exact_types():
    data = {"min_area": 3, "keep": None, "fill_holes": False, "weight": 2, "name": "x", "weights": [1, 0.5]}
    checked = check_mapping(data, SCHEMA, where="c.yaml")
    assert checked == data and type(checked["weight"]) is float and type(checked["weights"][0]) is float
    assert check_mapping({}, SCHEMA, where="c.yaml") == {}


@pytest.mark.parametrize("data, message", [
    ({"fill_holes": "false"}, "c.yaml: Ulna: fill_holes: expected true or false, got the string 'false'"),
    ({"fill_holes": 1}, "fill_holes: expected true or false, got 1"),
    ({"min_area": True}, "min_area: expected a whole number, got True"),
    ({"min_area": 2.5}, "min_area: expected a whole number, got 2.5"),
    ({"min_area": "400"}, "min_area: expected a whole number, got the string '400'"),
    ({"keep": 1.0}, "keep: expected a whole number or null, got 1.0"),
    ({"weight": float("nan")}, "weight: expected a finite number, got nan"),
    ({"weight": float("inf")}, "weight: expected a finite number, got inf"),
    ({"weight": 10**400}, "weight: expected a finite number, got 1000"),
    ({"weights": [1, "2"]}, "weights: expected a list of a finite number, got a list"),
    ({"name": ["a"]}, "name: expected text, got a list"),
    ({"min_ares": 3, "kep": 1, "a": 1, "b": 2}, "unknown key(s) min_ares, kep, a and 1 more; known: min_area, keep,"),
])
def test_check_mapping_refuses_in_one_line(data, message):
    with pytest.raises(HbensError) as error:
        check_mapping(data, SCHEMA, where="c.yaml: Ulna")
    text = str(error.value)
    assert message in text and "\n" not in text and len(text) <= 300


def test_check_mapping_needs_a_mapping():
    with pytest.raises(HbensError, match=r"c.yaml: expected a mapping of min_area, keep, fill_holes and 3 more, got a list"):
        check_mapping([1], SCHEMA, where="c.yaml")


def test_yaml_false_string_and_nan_come_from_real_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('fill_holes: "false"\nweight: .nan\n')
    with pytest.raises(HbensError, match="fill_holes: expected true or false, got the string 'false'"):
        check_mapping(read_settings(path), SCHEMA, where=str(path))


def test_clip_and_examples():
    assert clip("abc") == "abc"
    assert clip("a\x00b" + "x" * 100, limit=5) == "a\\x00bxx... (+98 characters)"
    assert examples(["a", "b"]) == "a, b"
    assert examples(list("abcdef")) == "a, b, c and 3 more"
    assert binary_kind(b"image_name,class") is None

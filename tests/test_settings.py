import pytest

from hbens.errors import HbensError
from hbens.settings import read_settings


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

"""Settings files: YAML or JSON (by suffix), read once, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from hbens.errors import HbensError


def read_settings(path: str | Path) -> object:
    """The parsed content of a ``.json`` file, or of a YAML file for any other suffix."""
    import yaml

    path = Path(path)
    is_json = path.suffix == ".json"
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if is_json else yaml.safe_load(text)
    except OSError as error:
        raise HbensError(f"{path}: cannot read ({error.strerror}); check the path") from None
    except (ValueError, yaml.YAMLError) as error:
        raise HbensError(f"{path}: not valid {'JSON' if is_json else 'YAML'} ({str(error).splitlines()[0]})") from None

"""Every Examples section of the library runs (the API's: tests/test_api.py)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hbens

MODULES = sorted(m.name for m in pkgutil.walk_packages(hbens.__path__, "hbens.")
                 if m.name != "hbens.__main__" and not m.name.startswith("hbens.api"))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def test_the_library_has_examples():
    attempted = sum(doctest.testmod(importlib.import_module(name), report=False).attempted for name in MODULES)
    assert attempted >= 50

"""hbens: ensembles and post-processing for hand-bone X-ray segmentation submissions.

The public API is :mod:`hbens.api`, one function per command (``from hbens import api``)::

    api.fuse(["a.csv", "b.csv", "c.csv"], "fused.csv")        # -> RunSummary
    api.score("fused.csv", "outputs_json").table              # -> DataFrame, images x classes
    api.tune(["unet", "fpn"], "outputs_json", "recipe.yaml").table
    api.apply("recipe.yaml", ["unet", "fpn"], "sub.csv")
    api.show("sub.csv", images="test/DCM")                     # -> (H, W, 3) uint8

Its functions other than ``tune`` and ``demo`` (whose names are the library's :mod:`hbens.tune` and
:mod:`hbens.demo`) are also attributes of this package, loaded on first use: ``import hbens`` stays
light (no numba, pandas or torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["api", "apply", "check", "clean", "crf", "fuse", "import_arrays", "predict", "read_submission", "score",
           "show", "synth"]
""":mod:`hbens.api` and the functions of it that this package re-exports."""

if TYPE_CHECKING:
    from hbens import api
    from hbens.api import (
        apply,
        check,
        clean,
        crf,
        fuse,
        import_arrays,
        predict,
        read_submission,
        score,
        show,
        synth,
    )


def __getattr__(name: str):
    """``hbens.api`` and its functions, imported when first used."""
    if name not in __all__:
        raise AttributeError(f"module 'hbens' has no attribute {name!r}")
    import importlib

    module = importlib.import_module("hbens.api")
    value = module if name == "api" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

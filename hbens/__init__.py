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

Where each concept lives, from the ground up (a module imports only from its floor or below):

* ground -- :mod:`~hbens.classes` (the 29 classes; per-class thresholds and values), :mod:`~hbens.rle` (the competition's RLE),
  :mod:`~hbens.runs` (runs, row segments, boxes), :mod:`~hbens.submission` (CSV reading and
  checks), :mod:`~hbens.annotations` (ground truth), :mod:`~hbens.images` (PNGs, X-rays),
  :mod:`~hbens.frames` (the image size of a run), :mod:`~hbens.settings` (side files),
  :mod:`~hbens.outputs` (atomic writes), :mod:`~hbens.paths` (the path guard), :mod:`~hbens.resume`
  (the resume record), :mod:`~hbens.pipeline` and :mod:`~hbens.execution` (per-image tasks on
  threads, processes or Dask), :mod:`~hbens.synthetic` and :mod:`~hbens.phantoms` (test data),
  :mod:`~hbens.pictures`;
* maps -- :mod:`hbens.maps`: the probability store, others' saved arrays, folders of either;
* wings -- :mod:`hbens.ensemble` (one fusion engine), :mod:`hbens.postproc` (cleanup, CRF),
  :mod:`hbens.predictors` (checkpoints to maps), :mod:`hbens.tune` (recipes), :mod:`~hbens.metrics`
  (Dice), :mod:`~hbens.importer` (saved arrays to stores), :mod:`~hbens.report` (HTML);
* :mod:`hbens.api` and :mod:`hbens.demo`; then :mod:`hbens.cli`, thin commands over the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["api", "apply", "check", "clean", "crf", "draw", "fuse", "import_arrays", "predict", "read_submission",
           "score", "show", "synth"]
""":mod:`hbens.api` and the functions of it that this package re-exports."""

if TYPE_CHECKING:
    from hbens import api
    from hbens.api import (
        apply,
        check,
        clean,
        crf,
        draw,
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

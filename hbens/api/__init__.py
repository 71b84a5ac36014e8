"""The public API: one function per command, taking plain Python values and returning a result.

Each function does what its command does, with the same checks (the path guard of
:func:`hbens.paths.check_paths` first, so a refused call has written nothing) and the same
errors: an :class:`~hbens.errors.HbensError` whose message is the line the command prints after
``Error:``.  Nothing is printed; progress bars are off unless ``progress=True``.  Tables are
:mod:`pandas` objects.

==================  ===================================================  ==========================
function            does                                                 returns
==================  ===================================================  ==========================
:func:`predict`     checkpoints to probability stores                    RunSummary
:func:`fuse`        ensembles of CSVs and folders of maps                RunSummary
:func:`clean`       connected-component cleaning of a submission         RunSummary
:func:`crf`         dense CRF on probability maps                        RunSummary
:func:`import_arrays`  another pipeline's saved arrays to stores         RunSummary
:func:`tune`        per-class recipe on validation data                  TunedRecipe (a Recipe)
:func:`apply`       a recipe on test predictions                         RunSummary
:func:`score`       Dice of each image and class                         Scores
:func:`check`       validation of a submission                           CheckReport
:func:`show`        a picture of one image's masks                       (H, W, 3) uint8 array
:func:`draw`        the same, with the image's name and pixel counts     Drawing
:func:`synth`       hand phantoms in the competition's layout            dict of PNG paths
:func:`demo`        the whole pipeline on phantoms                       DemoResult
:func:`read_submission`  a submission as a table                         DataFrame
==================  ===================================================  ==========================

Arguments shared by several functions, named as the command's options:

- ``shape``: the frame, ``(H, W)`` or ``N``; None resolves it as :mod:`hbens.frames` says.
- ``workers``, ``scheduler``, ``keep_going``, ``progress``: the :class:`~hbens.execution.Execution`
  of the per-image tasks (``--workers``, ``--scheduler``, ``--keep-going``; ``progress``: a progress
  bar on terminals, as the commands show); images that fail with ``keep_going`` are listed in the
  summary's ``failed``.
- ``key``, ``kind``, ``array_classes``, ``drop_channel``: how to read saved arrays of another
  pipeline (:class:`~hbens.maps.saved_arrays.ArrayFormat`; ``array_classes`` is a file or a list).
- ``min_area``, ``keep``, ``largest``, ``fill_holes``, ``connectivity``, ``clean_classes``,
  ``clean_config``, ``report``: the cleanup of ``hbens clean`` and its per-class report CSV.
- ``thresholds``, ``class_weights``, ``scores``: a CSV path as the command reads, or a mapping
  ``{class: value}`` (``class_weights``: ``{class: [w1, w2, ...]}``).

The functions live in small modules by task (``checks``, ``pictures``, ``fusing``, ``tuning``,
``predicting``, ``phantoms``; shared argument handling in ``options``); this package is their one door.

``hbens.tune`` and ``hbens.demo`` are modules of the library, so those two functions are reached
as ``hbens.api.tune`` and ``hbens.api.demo``; the others are also ``hbens.fuse``, ``hbens.score``...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hbens.errors import HbensError, UsageError

if TYPE_CHECKING:
    from hbens.api.checks import Scores, check, read_submission, score
    from hbens.api.fusing import clean, crf, fuse
    from hbens.api.phantoms import demo, synth
    from hbens.api.pictures import Drawing, draw, show
    from hbens.api.predicting import import_arrays, predict
    from hbens.api.tuning import TunedRecipe, apply, tune
    from hbens.pipeline import RunSummary
    from hbens.submission import CheckReport

HOMES = {
    "checks": ("Scores", "check", "read_submission", "score"),
    "fusing": ("clean", "crf", "fuse"),
    "phantoms": ("demo", "synth"),
    "pictures": ("Drawing", "draw", "show"),
    "predicting": ("import_arrays", "predict"),
    "tuning": ("TunedRecipe", "apply", "tune"),
}
"""The module of each name of the API: a command loads only its own (``hbens fuse`` needs no demo)."""
_MODULES = {name: f"hbens.api.{module}" for module, names in HOMES.items() for name in names}
_MODULES.update(RunSummary="hbens.pipeline", CheckReport="hbens.submission")

__all__ = ["CheckReport", "Drawing", "HbensError", "RunSummary", "Scores", "TunedRecipe", "UsageError", "apply",
           "check", "clean", "crf", "demo", "draw", "fuse", "import_arrays", "predict", "read_submission", "score",
           "show", "synth", "tune"]


def __getattr__(name: str):
    """The API's functions and result types, each imported from its module when first used."""
    if name not in _MODULES:
        raise AttributeError(f"module 'hbens.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

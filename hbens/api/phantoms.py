"""Synthetic hands: :func:`synth` writes them, :func:`demo` runs the whole pipeline on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hbens.demo import DemoResult, run_demo
from hbens.outputs import PathLike
from hbens.paths import check_paths, created_folder
from hbens.synthetic import synth_dataset


def synth(folder: PathLike, *, train_ids: int = 2, test_ids: int = 1, seed: int = 0, size: int = 2048,
          overwrite: bool = False) -> dict[str, list[Path]]:
    """Write hand phantoms in the competition's layout, as ``hbens synth``.

    Parameters
    ----------
    folder : path
        New or empty (or, with ``overwrite``, holding only an earlier synth's ``train/`` and
        ``test/``, which are replaced).
    train_ids, test_ids : int
        IDs (people, two hands each) under ``train/`` and ``test/`` (annotated too).
    seed : int
        The same arguments write the same files.
    size : int
        Height and width of the images (at least 256).

    Returns
    -------
    dict
        ``{"train": [...], "test": [...]}``: the PNGs written; each ``SPLIT/DCM/IDxxx/NAME.png`` has
        its annotation in ``SPLIT/outputs_json/IDxxx/NAME.json``.

    Examples
    --------
    >>> import tempfile, hbens.api as hb
    >>> written = hb.synth(f"{tempfile.mkdtemp()}/phantoms", train_ids=1, test_ids=0, size=256)
    >>> len(written["train"]), written["train"][0].parent.parent.name
    (2, 'DCM')
    """
    check_paths([], [], folder_writes=[("FOLDER", folder)])
    with created_folder(folder, option="FOLDER"):
        return synth_dataset(folder, ids_train=train_ids, ids_test=test_ids, seed=seed, size=size,
                             overwrite=overwrite)


def demo(output: PathLike = "demo-output", *, quick: bool = False, log: Callable[[str], None] | None = None,
         progress: Callable[[str], None] | None = None) -> DemoResult:
    """Train tiny models on hand phantoms, run every stage of the pipeline and write
    ``output/report.html``, as ``hbens demo``.

    Parameters
    ----------
    output : path
        New, empty, or holding a demo stopped before its end (started again).
    quick : bool
        Fewer, smaller images and shorter training (under 3 minutes).
    log : callable, optional
        Receives one line per step as it ends (``print`` shows them).
    progress : callable, optional
        Receives the training's progress lines (``hbens demo`` shows them on a terminal).

    Returns
    -------
    DemoResult
        ``stages`` (each stage's scores), ``lines`` (the table ``hbens demo`` prints), ``report``
        (the HTML page) and ``seconds`` of each step.

    Examples
    --------
    Minutes of training, so not run here:

    >>> import hbens.api as hb
    >>> result = hb.demo("demo-output", quick=True)  # doctest: +SKIP
    >>> print("\\n".join(result.lines))  # doctest: +SKIP
    """
    check_paths([], [], folder_writes=[("-o", output)])
    with created_folder(output):
        return run_demo(output, quick=quick, log=log or (lambda line: None), progress=progress)

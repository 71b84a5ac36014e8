"""The demo's plan and record: its sizes (:data:`PLANS`), its models (:data:`TINY_MODELS`), the state of
a run (:class:`DemoRun`) and the marker of its folder (:data:`MARKER`, :func:`prepare_folder`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hbens.errors import HbensError
from hbens.metrics import score_submission
from hbens.paths import TEMPORARY
from hbens.postproc.crf import frame_params
from hbens.report import Stage
from hbens.submission import read_submission
from hbens.tune.recipe import Recipe

SPLITS = ("train", "val", "test")
MARKER = ".hbens-demo.json"
"""The demo's marker in its folder: ``{"demo": "running" | "finished", "quick": ..., "seed": ...}``."""
OUTPUTS = ("data", "checkpoints", "stores", "submissions", "recipe.yaml", "report.html", MARKER)
"""Everything the demo writes in its folder (with the temporaries of its atomic writes)."""
PROGRESS_LINES = 8
"""Progress lines per model during training (when a progress callback is given)."""


class DemoStopped(Exception):
    """Training was told to stop (the demo is being interrupted)."""


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How big a demo is: images, model resolution, training length, TTA.

    Parameters
    ----------
    size : int
        Side of the phantoms (pixels).
    model_size : int
        Side the models see (images are resized to it; logits are upsampled back).
    ids : dict
        IDs (two hands each) per split: ``train`` to train on, ``val`` to choose on, ``test`` to score.
    steps : int
        Optimizer steps per model.
    batch : int
        Images per step.
    models : tuple of str
        Keys of :data:`TINY_MODELS`.
    tta : str
        Test-time augmentation of the predictions (``hbens predict --tta``).
    """

    size: int
    model_size: int
    ids: dict[str, int]
    steps: int
    batch: int
    models: tuple[str, ...]
    tta: str = "hflip"


PLANS: dict[str, DemoPlan] = {
    "default": DemoPlan(size=384, model_size=192, ids={"train": 12, "val": 4, "test": 3}, steps=160, batch=4,
                        models=("unet", "deeplab", "fpn")),
    "quick": DemoPlan(size=256, model_size=128, ids={"train": 8, "val": 2, "test": 2}, steps=100, batch=4,
                      models=("unet", "deeplab", "fpn")),
}
"""The demo's sizes: ``default`` and ``--quick``."""


@dataclass(frozen=True, kw_only=True)
class TinyModel:
    """A small segmentation-models-pytorch architecture and the checkpoint format it is saved in."""

    arch: str
    encoder: str
    kwargs: dict[str, Any]
    checkpoint: str


TINY_MODELS: dict[str, TinyModel] = {
    "unet": TinyModel(arch="Unet", encoder="tu-mobilenetv3_small_050",
                      kwargs={"decoder_channels": [64, 32, 24, 16, 16]}, checkpoint="state-dict"),
    "fpn": TinyModel(arch="FPN", encoder="tu-mobilenetv3_small_050",
                     kwargs={"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32},
                     checkpoint="smp-folder"),
    "deeplab": TinyModel(arch="DeepLabV3Plus", encoder="tu-mobilenetv3_small_050",
                         kwargs={"decoder_channels": 64}, checkpoint="torchscript"),
}
"""The demo's models, by name; every one is built with ``encoder_weights=None``."""


@dataclass
class DemoRun:
    """The state of a demo as its steps run: where things are and the stages scored so far."""

    folder: Path
    plan: DemoPlan
    seed: int
    log: Callable[[str], None]
    progress: Callable[[str], None] | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    submissions: dict[str, Path] = field(default_factory=dict)
    recipe: Recipe | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.plan.size, self.plan.size

    @property
    def crf_params(self):
        """``hbens crf``'s defaults for the phantoms' frame (what ``hbens crf`` and ``hbens tune`` use)."""
        return frame_params(self.shape)

    def model_stores(self, split: str) -> list[Path]:
        """The store folder of each model's predictions of a split, in the plan's order."""
        return [self.folder / "stores" / split / name for name in self.plan.models]

    def fused_stores(self, stage: str) -> Path:
        """The store folder of a stage's fused (or refined) test probabilities."""
        return self.folder / "stores" / "test-fused" / stage

    def split(self, name: str) -> Path:
        return self.folder / "data" / name

    def images(self, name: str) -> Path:
        return self.split(name) / "DCM"

    def truth(self, name: str) -> Path:
        return self.split(name) / "outputs_json"

    def csv(self, split: str, name: str) -> Path:
        path = self.folder / "submissions" / split / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def score(self, csv: Path, split: str = "test"):
        return score_submission(str(csv), str(self.truth(split)), shape=self.shape)

    def add_stage(self, name: str, kind: str, description: str, csv: Path, *, changes: str,
                  started: float) -> None:
        """Score ``csv`` on the test images and record it as a stage."""
        self.submissions[name] = csv
        self.stages.append(Stage(name=name, kind=kind, description=description, table=self.score(csv),
                                 changes=changes, seconds=time.perf_counter() - started))


def rows_changed(before: Path, after: Path, *, shape: tuple[int, int]) -> int:
    """Rows (image, class) whose mask differs between two submissions of images of size ``shape``."""
    old, new = read_submission(before, shape), read_submission(after, shape)
    return sum(old.get(key, "").split() != rle.split() for key, rle in new.items())


def demo_state(folder: Path) -> str | None:
    """What the marker in ``folder`` says (``running`` or ``finished``); None without a readable one."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        state = json.loads(marker.read_text(encoding="utf-8")).get("demo")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return state if state in ("running", "finished") else None


def write_marker(folder: Path, state: str, *, quick: bool, seed: int) -> None:
    """Write the demo's marker (:data:`MARKER`) in ``folder``."""
    (folder / MARKER).write_text(json.dumps({"demo": state, "quick": quick, "seed": seed}) + "\n",
                                 encoding="utf-8")


def is_demo_output(entry: Path) -> bool:
    """Whether an entry of a demo's folder is one the demo writes (:data:`OUTPUTS`, temporaries);
    links never are."""
    return not entry.is_symlink() and (entry.name in OUTPUTS or bool(TEMPORARY.fullmatch(entry.name)))


def prepare_folder(folder: Path, *, quick: bool, seed: int) -> bool:
    """Make ``folder`` ready for a demo and mark it running; True when a stopped demo was cleared first.

    ``folder`` may not exist, be empty, or hold an unfinished demo (its marker says ``running``)
    and nothing else: the demo's own outputs (:data:`OUTPUTS`) are then removed, so that it starts
    again from scratch.  A finished demo, a folder without the marker or with other entries
    beside an unfinished demo are refused (HbensError), and nothing is removed.
    """
    if folder.exists() and not folder.is_dir():
        raise HbensError(f"{folder}: exists and is not a folder; choose another -o")
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if entries:
        state = demo_state(folder)
        if state is None:
            raise HbensError(f"{folder}: exists and is not an empty folder; remove it or choose another -o")
        if state == "finished":
            raise HbensError(f"{folder}: holds a finished demo (report.html); remove it or choose another -o")
        foreign = [entry.name for entry in entries if not is_demo_output(entry)]
        if foreign:
            raise HbensError(f"{folder}: holds an unfinished demo and {foreign[0]}, which the demo did not "
                             "write; move it away to start the demo again there, or choose another -o")
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, "running", quick=quick, seed=seed)
    return bool(entries)

"""The safety contract of every command, as one table of wrong commands and broken files.

Each case runs ``python -m hbens ...`` in a subprocess, in a temporary folder next to a shared
synthetic "world" of inputs (submissions, annotation JSONs, PNGs, probability stores, side files),
and asserts: exit status 1 or 2 (130 for Ctrl-C), one line on stderr (click's usage block for 2),
no traceback, every file byte-identical afterwards and no new file or folder.  Full disks are a
small ``RLIMIT_FSIZE`` (Python ignores SIGXFSZ, so writes fail with EFBIG).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from hbens.classes import CLASSES
from hbens.maps.probabilities import ProbabilityStore, tight_crop, write_store

SHAPE = (256, 256)
MESSAGE_LIMIT = 340
"""Longest error line accepted: the CLI cuts messages at 300 characters plus a count of the rest."""


@dataclass(frozen=True)
class World:
    """The shared inputs of every case (never to be changed by any of them)."""

    root: Path
    gt: Path
    csv1: Path
    csv2: Path
    csv3: Path
    images: Path
    image: Path
    json: Path
    stores: Path
    store: Path
    scores1: Path
    scores2: Path
    weights_csv: Path
    weights_json: Path
    clean_yaml: Path
    thresholds: Path
    fake_ckpt: Path

    def fields(self, tmp: Path, model: Path | None) -> dict[str, object]:
        return {**vars(self), "w": self.root, "t": tmp, "model": model, "name": self.image.name}


def blob_crops(rng: np.random.Generator) -> list:
    """One square of probability 0.9 per class, spread over the image."""
    crops = []
    for index in range(len(CLASSES)):
        probability = np.zeros(SHAPE, np.float32)
        top, left = 20 + (index * 37) % 180, 20 + (index * 53) % 180
        probability[top : top + 40, left : left + 40] = 0.6 + 0.3 * rng.random((40, 40))
        crops.append(tight_crop(probability, (0, 0)))
    return crops


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from hbens.ensemble import fuse
    from hbens.metrics import score_submission
    from hbens.pictures import overlay
    from hbens.postproc import CleanConfig, clean_csv
    from hbens.postproc.crf import CRFItem, CRFParams, refine_image
    from hbens.synthetic import write_example

    root = tmp_path_factory.mktemp("world")
    gt, csvs = write_example(root, n_images=2, n_models=3, seed=5, shape=SHAPE, images=True)
    pngs = sorted((root / "images").rglob("*.png"))
    stores = root / "stores"
    stores.mkdir()
    rng = np.random.default_rng(0)
    for png in pngs:
        write_store(stores / f"{png.stem}.npz", blob_crops(rng), SHAPE, image=png.name)
    scores = []
    for number in (1, 2):
        path = root / f"scores{number}.csv"
        path.write_text("class,dice\n" + "".join(f"{name},0.{number}\n" for name in CLASSES))
        scores.append(path)
    (root / "weights.csv").write_text("class,w1,w2,w3\nUlna,3,1,1\n")
    (root / "weights.json").write_text('{"Ulna": [3, 1, 1]}')
    (root / "clean.yaml").write_text("min_area: 10\nfill_holes: true\n")
    (root / "thresholds.csv").write_text("class,threshold\nUlna,0.4\n")
    (root / "fake.pt").write_bytes(b"not a checkpoint")
    # Compile (or load) the numba kernels every command uses, in this process, so that no
    # subprocess under a small RLIMIT_FSIZE has to write a numba cache file.
    scratch = tmp_path_factory.mktemp("warm")
    fuse(csvs, scratch / "f.csv")
    clean_csv(csvs[0], scratch / "c.csv", {"Ulna": CleanConfig(min_area=10, fill_holes=True)})
    score_submission(str(csvs[0]), str(gt))
    overlay({"Ulna": "1 5"}, None, SHAPE)
    import matplotlib.font_manager  # noqa: F401  (builds matplotlib's font cache, as the numba caches above)
    refine_image(CRFItem(store=str(stores / f"{pngs[0].stem}.npz"), image=str(pngs[0]),
                         output=str(scratch / "s.npz"), params=CRFParams(iterations=1),
                         thresholds=(0.5,) * len(CLASSES)))
    return World(root=root, gt=gt, csv1=csvs[0], csv2=csvs[1], csv3=csvs[2], images=root / "images",
                 image=pngs[0], json=sorted(gt.rglob("*.json"))[0], stores=stores,
                 store=stores / f"{pngs[0].stem}.npz",
                 scores1=scores[0], scores2=scores[1], weights_csv=root / "weights.csv",
                 weights_json=root / "weights.json", clean_yaml=root / "clean.yaml",
                 thresholds=root / "thresholds.csv", fake_ckpt=root / "fake.pt")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny untrained smp Unet saved with save_pretrained (as in tests/test_predictors.py)."""
    pytest.importorskip("torch")
    smp = pytest.importorskip("segmentation_models_pytorch")
    folder = tmp_path_factory.mktemp("model") / "unet"
    smp.create_model("Unet", encoder_name="tu-mobilenetv3_small_050", encoder_weights=None,
                     classes=len(CLASSES)).save_pretrained(str(folder))
    return folder


# -- what the cases write before they run ---------------------------------------------------------

def write(name: str, content: str | bytes) -> Callable[[Path, World], None]:
    """A setup writing ``content`` to ``tmp/name``."""
    def setup(tmp: Path, world: World) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def gzipped(tmp: Path, world: World) -> None:
    (tmp / "sub.csv.gz").write_bytes(gzip.compress(world.csv1.read_bytes()))


def symlinked(tmp: Path, world: World) -> None:
    (tmp / "link.csv").symlink_to(world.csv1)


def hard_linked(tmp: Path, world: World) -> None:
    os.link(world.csv2, tmp / "hard.csv")


def duplicate_stems(tmp: Path, world: World) -> None:
    for folder in ("ID0", "ID1"):
        (tmp / "gt" / folder).mkdir(parents=True)
        (tmp / "gt" / folder / world.json.name).write_bytes(world.json.read_bytes())


def nan_points(tmp: Path, world: World) -> None:
    (tmp / "gt" / "ID0").mkdir(parents=True)
    (tmp / "gt" / "ID0" / world.json.name).write_text(
        json.dumps({"annotations": [{"label": "Ulna", "points": [[1, 2], [float("nan"), 5], [9, 9]]}]}))


def missing_rows(tmp: Path, world: World) -> None:
    lines = world.csv1.read_text().splitlines()
    (tmp / "part.csv").write_text("\n".join(lines[:10]) + "\n")


def crafted_store(**change: object) -> Callable[[Path, World], None]:
    """A setup writing ``tmp/stores`` with one store, the world's first one changed: ``meta``
    entries, ``boxes``, ``data`` (new arrays) or ``truncate`` (bytes kept).  It is the only store, so
    that no other image is refined (and kept, as finished stores are) before the run fails."""
    def setup(tmp: Path, world: World) -> None:
        folder = tmp / "stores"
        folder.mkdir()
        target = folder / world.store.name
        if "truncate" in change:
            target.write_bytes(world.store.read_bytes()[: change["truncate"]])
            return
        with np.load(world.store) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays["meta"]))
        meta.update(change.get("meta", {}))
        arrays["meta"] = np.array(json.dumps(meta))
        for name in ("boxes", "data", "offsets"):
            if name in change:
                arrays[name] = change[name](arrays[name])
        with open(target, "wb") as handle:
            np.savez(handle, **arrays)
    return setup


def float16_with(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def data(stored: np.ndarray) -> np.ndarray:
        values = stored.astype(np.float16) / np.float16(255)
        values[5] = value
        return values
    return data


def box_outside(boxes: np.ndarray) -> np.ndarray:
    moved = boxes.copy()
    moved[0] += [300, 0, 300, 0]
    return moved


def saved_arrays(tmp: Path, world: World) -> None:
    """Another pipeline's saved probabilities: one float32 (29, H, W) .npy per image of the world."""
    (tmp / "saved").mkdir()
    rng = np.random.default_rng(1)
    for png in world.images.rglob("*.png"):
        np.save(tmp / "saved" / f"{png.stem}.npy", rng.random((len(CLASSES), *SHAPE), dtype=np.float32))


def truncated_model(tmp: Path, world: World, model: Path) -> None:
    """A copy of the tiny model whose weights file is cut short."""
    (tmp / "unet").mkdir()
    for path in model.iterdir():
        data = path.read_bytes()
        kept = len(data) // 3 if path.suffix == ".safetensors" else len(data)
        (tmp / "unet" / path.name).write_bytes(data[:kept])


def other_size_image(tmp: Path, world: World) -> None:
    import cv2

    (tmp / "imgs").mkdir()
    for png in world.images.rglob("*.png"):
        cv2.imwrite(str(tmp / "imgs" / png.name), np.zeros((128, 128), np.uint8))


def fifo(name: str, *extra: Callable[[Path, World], None]) -> Callable[[Path, World], None]:
    """A setup making a FIFO ``tmp/name`` (opening it would block forever), then running ``extra``."""
    def setup(tmp: Path, world: World) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(tmp / name)
        for other in extra:
            other(tmp, world)
    return setup


def annotation(text: str) -> Callable[[Path, World], None]:
    """A setup copying the world's annotations to ``tmp/gt``, the first image's replaced by ``text``."""
    def setup(tmp: Path, world: World) -> None:
        for path in world.gt.rglob("*.json"):
            write(f"gt/{path.relative_to(world.gt)}", path.read_bytes())(tmp, world)
        write(f"gt/{world.json.relative_to(world.gt)}", text)(tmp, world)
    return setup


def sparse_text(name: str, size: int) -> Callable[[Path, World], None]:
    """A setup writing ``tmp/name``: a text line, then zeros up to ``size`` bytes (a sparse file)."""
    def setup(tmp: Path, world: World) -> None:
        with open(tmp / name, "wb") as handle:
            handle.write(b"#" * 8191 + b"\n")
            handle.truncate(size)
    return setup


def nan_array(folder: str) -> Callable[[Path, World], None]:
    """A setup saving the saved array of the world's first image, all NaN, into ``tmp/folder``."""
    def setup(tmp: Path, world: World) -> None:
        np.save(tmp / folder / f"{world.image.stem}.npy", np.full((len(CLASSES), *SHAPE), np.nan, np.float32))
    return setup


def stores_copy(folder: str) -> Callable[[Path, World], None]:
    """A setup copying the world's stores into ``tmp/folder``."""
    def setup(tmp: Path, world: World) -> None:
        (tmp / folder).mkdir(parents=True, exist_ok=True)
        for path in world.stores.iterdir():
            (tmp / folder / path.name).write_bytes(path.read_bytes())
    return setup


def synthesized(folder: str, *extra: Callable[[Path, World], None]) -> Callable[[Path, World], None]:
    """A setup writing synth's data set (one ID of 256 px) into ``tmp/folder``, then running ``extra``."""
    def setup(tmp: Path, world: World) -> None:
        from hbens.synthetic import write_dataset

        write_dataset(tmp / folder, ids_train=1, ids_test=0, seed=0, size=256)
        for other in extra:
            other(tmp, world)
    return setup


def traced(name: str, classes: int) -> Callable[[Path, World], None]:
    """A setup saving a 1x1 convolution to ``classes`` channels as TorchScript ``tmp/name``."""
    def setup(tmp: Path, world: World) -> None:
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(torch.nn.Conv2d(3, classes, 1), torch.rand(1, 3, 8, 8)).save(str(tmp / name))
    return setup


def stopped_demo(state: str, *extra: Callable[[Path, World], None]) -> Callable[[Path, World], None]:
    """A setup writing ``tmp/d`` as a demo left it (marker saying ``state``, data), then running ``extra``."""
    def setup(tmp: Path, world: World) -> None:
        write("d/.hbens-demo.json", json.dumps({"demo": state, "quick": True, "seed": 0}))(tmp, world)
        write("d/data/train/DCM/ID001/a.png", world.image.read_bytes())(tmp, world)
        for other in extra:
            other(tmp, world)
    return setup


# -- the table ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One wrong command: its arguments (``{w}``, ``{t}``, ``{csv1}``, ... are filled in), the exit
    statuses accepted, a phrase its message must hold, and what to prepare."""

    name: str
    args: str
    codes: tuple[int, ...] = (1,)
    says: str = ""
    setup: Callable[..., None] | None = None
    """Called with the case's folder, the world (and the model folder for ``model`` cases)."""
    fsize: int | None = None
    model: bool = False
    interrupt: str | None = None
    """Send this signal (``SIGINT``, ``SIGTERM``, ``SIGHUP``) once the first image is done, while the
    run waits in :data:`hbens.pipeline.PAUSE_ENV`'s hook: the command is surely at work and not done."""


USAGE = (2,)
FUSE = "fuse {csv1} {csv2} {csv3}"
CLASSWISE = "fuse {csv1} {csv2} --strategy classwise"
SCORE = "score {csv1} --gt {gt}"
CLEAN = "clean {csv1} --min-area 10"
CRF = "crf {stores} --images {images}"
SHOW = "show {csv1}"
PREDICT_FAKE = "predict --ckpt {fake_ckpt} --images {images} -o {t}/p"
PREDICT = "predict --ckpt {model} --images {images} --size 64 --quiet"

CASES = [
    # check: unreadable or foreign files, one line each, nothing written
    Case("check-gzip", "check {t}/sub.csv.gz", says="gzip", setup=gzipped),
    Case("check-binary", "check {t}/b.csv", says="binary", setup=write("b.csv", b"\x00\x01\x02" * 50)),
    Case("check-utf16", "check {t}/u.csv",
         says="UTF-16", setup=write("u.csv", "image_name,class,rle\n".encode("utf-16"))),
    Case("check-no-header", "check {t}/h.csv", setup=write("h.csv", "a,b,c\n1,2,3\n")),
    Case("check-long-line", "check {t}/l.csv",
         setup=write("l.csv", "image_name,class,rle\nx.png,Ulna," + "1 1 " * 50000 + "\n")),
    Case("check-empty", "check {t}/e.csv", says="empty", setup=write("e.csv", "")),
    Case("check-dev-zero", "check /dev/zero", says="binary"),
    Case("check-missing-file", "check {t}/nope.csv", USAGE, says="does not exist"),
    Case("check-folder", "check {t}", USAGE, says="is a directory"),
    Case("check-odd-rle", "check {t}/o.csv",
         says="odd number", setup=write("o.csv", "image_name,class,rle\na.png,Ulna,1 2 3\n")),
    # score: outputs onto inputs, bad ground truth, full disk
    Case("score-out-is-prediction", SCORE + " --out {csv1}", says="is also the input"),
    Case("score-plot-is-gt-json", SCORE + " --plot {json}", says="lies inside the input folder --gt"),
    Case("score-out-is-plot", SCORE + " --out {t}/a.csv --plot {t}/a.csv", says="are the same path"),
    Case("score-out-missing-folder", SCORE + " --out {t}/no/a.csv", says="does not exist"),
    Case("score-out-under-a-file", SCORE + " --out {csv2}/a.csv", says="is a file"),
    Case("score-out-symlink-to-input", SCORE + " --out {t}/link.csv",
         says="is also the input", setup=symlinked),
    Case("score-out-hard-link-to-input", "score {csv2} --gt {gt} --out {t}/hard.csv",
         says="is also the input",
         setup=hard_linked),
    Case("score-out-dot-path", "score {csv1} --gt {gt} --out {w}/./model1.csv", says="is also the input"),
    Case("score-plot-suffix", SCORE + " --plot {t}/p.xyz", says=".xyz"),
    Case("score-gt-gzip", "score {csv1} --gt {t}/sub.csv.gz", says="gzip", setup=gzipped),
    Case("score-gt-single-json", "score {csv1} --gt {json}"),
    Case("score-gt-duplicate-stems", "score {csv1} --gt {t}/gt", setup=duplicate_stems),
    Case("score-gt-nan-points", "score {csv1} --gt {t}/gt", setup=nan_points),
    Case("score-missing-rows", "score {t}/part.csv --gt {gt}", says="missing", setup=missing_rows),
    Case("score-out-is-folder", SCORE + " --out {t}", USAGE, says="is a directory"),
    Case("score-disk-full", SCORE + " --out {t}/s.csv", says="cannot write", fsize=100),
    # fuse: side files replaced by the output, repeated inputs, weights, votes, typed side files
    Case("fuse-out-is-input", FUSE + " -o {csv1}", says="is also the input"),
    Case("fuse-out-is-scores", CLASSWISE + " --scores {scores1} --scores {scores2} -o {scores1}",
         says="is also the input --scores"),
    Case("fuse-out-is-class-weights", FUSE + " --class-weights {weights_csv} -o {weights_csv}",
         says="is also the input --class-weights"),
    Case("fuse-out-is-class-weights-json", FUSE + " --class-weights {weights_json} -o {weights_json}",
         says="is also the input --class-weights"),
    Case("fuse-same-folder-twice", "fuse {stores} {stores}/../stores -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-stores-out-is-input-folder", "fuse {stores} {csv1} -o {t}/f.csv --stores {stores}",
         says="is also the input"),
    Case("fuse-out-is-clean-config", FUSE + " --clean-config {clean_yaml} -o {clean_yaml}",
         says="is also the input --clean-config"),
    Case("fuse-report-is-output", FUSE + " --largest -o {t}/f.csv --report {t}/f.csv", says="same path"),
    Case("fuse-report-is-input", FUSE + " --largest -o {t}/f.csv --report {csv3}", says="is also the input"),
    Case("fuse-same-input-twice", "fuse {csv1} {csv1} {csv2} -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-same-input-other-spelling", "fuse {csv1} {w}/../{w.name}/model1.csv -o {t}/f.csv", USAGE,
         says="--weights"),
    Case("fuse-weights-nan", FUSE + " --weights nan,1,1 -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-weights-zero", FUSE + " --weights 0,1,1 -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-weights-inf", FUSE + " --weights inf,1,1 -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-weights-text", FUSE + " --weights a,b,c -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-weights-count", FUSE + " --weights 1,1 -o {t}/f.csv", USAGE, says="--weights"),
    Case("fuse-min-weight-at-total", FUSE + " --weights 1,1,1 --min-weight 3 -o {t}/f.csv",
         (1, 2), says="total"),
    Case("fuse-min-weight-nan", FUSE + " --weights 1,1,1 --min-weight nan -o {t}/f.csv",
         USAGE, says="--min-weight"),
    Case("fuse-min-votes-zero", FUSE + " --min-votes 0 -o {t}/f.csv", USAGE, says="--min-votes"),
    Case("fuse-min-votes-above-n", FUSE + " --min-votes 4 -o {t}/f.csv", USAGE, says="--min-votes"),
    Case("fuse-same-class-picked-twice", CLASSWISE + " --pick Ulna=0 --pick Ulna=1 -o {t}/f.csv",
         says="Ulna"),
    Case("fuse-scores-nan", CLASSWISE + " --scores {t}/s.csv --scores {scores2} -o {t}/f.csv",
         says="nan", setup=write("s.csv", "class,dice\nUlna,nan\n")),
    Case("fuse-scores-negative", CLASSWISE + " --scores {t}/s.csv --scores {scores2} -o {t}/f.csv", says="-3",
         setup=write("s.csv", "class,dice\nUlna,-3\n")),
    Case("fuse-class-weights-json-strings", FUSE + " --class-weights {t}/w.json -o {t}/f.csv", says="Ulna",
         setup=write("w.json", '{"Ulna": ["1", "1", "1"]}')),
    Case("fuse-class-weights-csv-nan", FUSE + " --class-weights {t}/w.csv -o {t}/f.csv", says="finite",
         setup=write("w.csv", "Ulna,nan,1,1\n")),
    Case("fuse-class-weights-not-utf8", FUSE + " --class-weights {t}/w.csv -o {t}/f.csv", says="UTF-8",
         setup=write("w.csv", b"Ulna,1,1,1\n\xff\xfe\xfa\n")),
    Case("fuse-clean-config-false-string", FUSE + ' --clean-config {t}/c.yaml -o {t}/f.csv',
         says="fill_holes",
         setup=write("c.yaml", 'fill_holes: "false"\n')),
    Case("fuse-clean-classes-empty", FUSE + " --largest --clean-classes '' -o {t}/f.csv",
         USAGE, says="empty name"),
    Case("fuse-out-missing-folder", FUSE + " -o {t}/missing/f.csv", says="does not exist"),
    Case("fuse-out-under-a-file", FUSE + " -o {csv1}/f.csv", says="is a file"),
    Case("fuse-input-gzip", "fuse {t}/sub.csv.gz {csv2} -o {t}/f.csv", says="gzip", setup=gzipped),
    Case("fuse-disk-full", FUSE + " -o {t}/f.csv --quiet", says="cannot write", fsize=2000),
    # clean
    Case("clean-out-is-input", CLEAN + " -o {csv1}", says="is also the input"),
    Case("clean-out-is-config", "clean {csv1} --config {clean_yaml} -o {clean_yaml}",
         says="is also the input --config"),
    Case("clean-report-is-input", CLEAN + " -o {t}/c.csv --report {csv1}", says="is also the input"),
    Case("clean-report-is-output", CLEAN + " -o {t}/c.csv --report {t}/c.csv", says="same path"),
    Case("clean-nothing-to-do", "clean {csv1} -o {t}/c.csv", USAGE, says="nothing to do"),
    Case("clean-bad-scheduler-before-nothing-to-do", "clean {csv1} -o {t}/c.csv --scheduler bogus", USAGE,
         says="--scheduler bogus: expected auto"),
    Case("check-image-size-huge", "check {csv1} --image-size 99999999999999999999", USAGE, says="1 to 16384"),
    Case("clean-image-size-zero", CLEAN + " -o {t}/c.csv --image-size 0", USAGE, says="must be 1 to 16384"),
    Case("clean-image-size-not-a-size", CLEAN + " -o {t}/c.csv --image-size 20x", USAGE, says="expected N or HxW"),
    Case("score-image-size-smaller-than-runs", SCORE + " --image-size 16", says="ends past the last pixel"),
    Case("clean-config-unknown-key", "clean {csv1} --config {t}/c.yaml -o {t}/c.csv", says="known:",
         setup=write("c.yaml", "min_areaa: 3\n")),
    Case("clean-config-not-utf8", "clean {csv1} --config {t}/c.yaml -o {t}/c.csv", says="UTF-8",
         setup=write("c.yaml", b"min_area: 3 \xff\n")),
    Case("clean-config-nan", "clean {csv1} --config {t}/c.yaml -o {t}/c.csv", says="min_area",
         setup=write("c.yaml", "min_area: .nan\n")),
    Case("clean-config-bad-yaml", "clean {csv1} --config {t}/c.yaml -o {t}/c.csv", says="YAML",
         setup=write("c.yaml", "min_area: [3\n")),
    Case("clean-classes-empty", CLEAN + " --classes '' -o {t}/c.csv", USAGE, says="empty name"),
    Case("clean-keep-and-largest", "clean {csv1} --keep 2 --largest -o {t}/c.csv",
         USAGE, says="--largest or --keep"),
    Case("clean-min-area-negative", "clean {csv1} --min-area -1 -o {t}/c.csv", USAGE, says="--min-area"),
    Case("clean-disk-full", CLEAN + " -o {t}/c.csv --quiet", says="cannot write", fsize=2000),
    # crf: kernels pydensecrf cannot take, crafted stores, outputs onto inputs, full disk, Ctrl-C
    Case("crf-gaussian-sxy-zero", CRF + " -o {t}/r --gaussian-sxy 0", USAGE, says="--gaussian-sxy"),
    Case("crf-gaussian-sxy-nan", CRF + " -o {t}/r --gaussian-sxy nan", USAGE, says="--gaussian-sxy"),
    Case("crf-bilateral-srgb-zero", CRF + " -o {t}/r --bilateral-srgb 0", USAGE, says="--bilateral-srgb"),
    Case("crf-bilateral-compat-inf", CRF + " -o {t}/r --bilateral-compat inf",
         USAGE, says="--bilateral-compat"),
    Case("crf-iterations-zero", CRF + " -o {t}/r --iterations 0", USAGE, says="--iterations"),
    Case("crf-threshold-nan", CRF + " -o {t}/r --threshold nan", USAGE, says="--threshold"),
    Case("crf-threshold-two", CRF + " -o {t}/r --threshold 2", USAGE, says="--threshold"),
    Case("crf-threshold-negative", CRF + " -o {t}/r --threshold -1", USAGE, says="--threshold"),
    Case("crf-thresholds-file-nan", CRF + " -o {t}/r --thresholds {t}/th.csv", says="not in [0, 1]",
         setup=write("th.csv", "class,threshold\nUlna,nan\n")),
    Case("crf-csv-is-image", CRF + " -o {t}/r --csv {image}", says="lies inside the input folder --images"),
    Case("crf-csv-is-thresholds", CRF + " -o {t}/r --thresholds {thresholds} --csv {thresholds}",
         says="is also the input --thresholds"),
    Case("crf-csv-is-store", CRF + " -o {t}/r --csv {store}", says="lies inside the input folder STORES"),
    Case("crf-out-is-stores", CRF + " -o {stores}", says="is also the input"),
    Case("crf-out-inside-stores", CRF + " -o {stores}/refined", says="lies inside"),
    Case("crf-out-contains-inputs", CRF + " -o {w}", says="contains"),
    Case("crf-out-is-a-file", CRF + " -o {csv1}", (1, 2)),
    Case("crf-store-nan", "crf {t}/stores --images {images} -o {t}/r", says="finite",
         setup=crafted_store(meta={"precision": "float16"}, data=float16_with(float("nan")))),
    Case("crf-store-above-one", "crf {t}/stores --images {images} -o {t}/r", says="finite",
         setup=crafted_store(meta={"precision": "float16"}, data=float16_with(1.5))),
    Case("crf-store-box-outside", "crf {t}/stores --images {images} -o {t}/r", says="outside",
         setup=crafted_store(boxes=box_outside)),
    Case("crf-store-meta-image-a-list", "crf {t}/stores --images {images} -o {t}/r", says="meta image",
         setup=crafted_store(meta={"image": ["a.png"]})),
    Case("crf-store-unknown-precision", "crf {t}/stores --images {images} -o {t}/r", says="precision",
         setup=crafted_store(meta={"precision": "int4"})),
    Case("crf-store-truncated", "crf {t}/stores --images {images} -o {t}/r",
         setup=crafted_store(truncate=300)),
    Case("crf-image-of-other-size", "crf {stores} --images {t}/imgs -o {t}/r", says="is 256x256 but",
         setup=other_size_image),
    Case("crf-disk-full", CRF + " -o {t}/r --csv {t}/r.csv --quiet", says="cannot write", fsize=300),
    Case("crf-ctrl-c", CRF + " -o {t}/r --iterations 40 --workers 1 --quiet", (130,), says="interrupted",
         interrupt="SIGINT"),
    # show
    Case("show-out-is-input", SHOW + " -o {csv1}", says="is also the input"),
    Case("show-out-is-image", SHOW + " --images {images} -o {image}", says="lies inside the input folder --images"),
    Case("show-suffix", SHOW + " -o {t}/x.gif", says=".gif"),
    Case("show-scale-zero", SHOW + " -o {t}/x.png --scale 0", USAGE, says="--scale"),
    Case("show-scale-nan", SHOW + " -o {t}/x.png --scale nan", USAGE, says="--scale"),
    Case("show-scale-five", SHOW + " -o {t}/x.png --scale 5", USAGE, says="--scale"),
    Case("show-scale-below-a-pixel", SHOW + " -o {t}/x.png --scale 1e-9", says="smaller than a pixel"),
    Case("show-unknown-image", SHOW + " --image nope.png -o {t}/x.png", says="nope.png"),
    Case("show-out-missing-folder", SHOW + " -o {t}/no/x.png", says="does not exist"),
    Case("show-disk-full", SHOW + " -o {t}/x.png --scale 0.5", says="cannot write", fsize=500),
    # synth
    Case("synth-seed-negative", "synth {t}/s --seed -1", USAGE, says="'--seed'"),
    Case("synth-ids-negative", "synth {t}/s --train-ids -1", USAGE, says="'--train-ids'"),
    Case("synth-size-small", "synth {t}/s --size 100", USAGE, says="'--size'"),
    Case("synth-seed-text", "synth {t}/s --seed x", USAGE, says="'--seed'"),
    Case("synth-folder-is-a-file", "synth {csv1}", (1, 2)),
    Case("synth-folder-under-a-file", "synth {csv1}/s", says="is a file"),
    # predict: refused before any model loads
    Case("predict-same-checkpoint-twice", PREDICT_FAKE + " --ckpt {w}/./fake.pt",
         USAGE, says="--weights"),
    Case("predict-threshold-nan", PREDICT_FAKE + " --threshold nan", USAGE, says="--threshold"),
    Case("predict-overlap-one", PREDICT_FAKE + " --overlap 1", USAGE, says="--overlap"),
    Case("predict-overlap-nan", PREDICT_FAKE + " --overlap nan", USAGE, says="--overlap"),
    Case("predict-weights-count", PREDICT_FAKE + " --weights 1,2", USAGE, says="--weights"),
    Case("predict-weights-nan", PREDICT_FAKE + " --weights nan", USAGE, says="--weights"),
    Case("predict-csv-is-checkpoint", PREDICT_FAKE + " --csv {fake_ckpt}", says="is also the input --ckpt"),
    Case("predict-csv-is-image", PREDICT_FAKE + " --csv {image}", says="lies inside the input folder --images"),
    Case("predict-out-is-images", "predict --ckpt {fake_ckpt} --images {images} -o {images}",
         says="is also the input"),
    Case("predict-out-inside-images", "predict --ckpt {fake_ckpt} --images {images} -o {images}/p",
         says="lies inside"),
    Case("predict-clean-classes-empty", PREDICT_FAKE + " --largest --clean-classes ''",
         USAGE, says="empty name"),
    Case("predict-thresholds-nan", PREDICT_FAKE + " --thresholds {t}/th.csv", says="not in [0, 1]",
         setup=write("th.csv", "class,threshold\nUlna,nan\n")),
    Case("predict-size-not-multiple", PREDICT_FAKE + " --size 50", says="multiple of 32"),
    Case("predict-bad-checkpoint", PREDICT_FAKE, says="fake.pt"),
    # predict with a real (tiny) model
    Case("predict-csv-is-model-config", PREDICT + " -o {t}/p --csv {model}/config.json",
         says="is also the input --ckpt", model=True),
    Case("predict-truncated-safetensors", "predict --ckpt {t}/unet --images {images} -o {t}/p --quiet",
         setup=truncated_model, model=True),
    Case("predict-disk-full", PREDICT + " -o {t}/p", says="cannot write", fsize=1000, model=True),
    Case("predict-ctrl-c", PREDICT + " -o {t}/p --tta hflip,vflip --workers 1", (130,), says="interrupted",
         model=True, interrupt="SIGINT"),
    # issue 19: guard and signals. No output lies inside an input folder (where it could replace one of
    # its files); every writer checks its suffix; SIGTERM and SIGHUP unwind as Ctrl-C does.
    Case("fuse-out-inside-input-folder", "fuse {stores} {csv1} -o {store}", says="lies inside the input folder"),
    Case("fuse-report-inside-input-folder", "fuse {stores} {csv1} --largest -o {t}/f.csv --report {store}",
         says="lies inside the input folder INPUTS"),
    Case("fuse-out-new-file-inside-input-folder", "fuse {stores} {csv1} -o {stores}/new.csv",
         says="lies inside the input folder"),
    Case("fuse-stores-disk-full", "fuse {stores} {csv1} -o {t}/f.csv --stores {t}/st --quiet", says="cannot write",
         fsize=200),
    Case("tune-out-inside-store-folder", "tune {stores} {csv1} --gt {gt} -o {store}", says="lies inside the input"),
    Case("tune-out-is-gt-json", "tune {csv1} {csv2} --gt {gt} -o {json}", says="lies inside the input folder --gt"),
    Case("tune-report-inside-gt", "tune {csv1} {csv2} --gt {gt} -o {t}/r.yaml --report {gt}/r.html",
         says="lies inside the input folder --gt"),
    Case("apply-out-inside-store-folder", "apply {clean_yaml} {stores} {csv1} -o {store}",
         says="lies inside the input folder"),
    Case("apply-stores-inside-store-folder", "apply {clean_yaml} {stores} {csv1} -o {t}/a.csv --stores {stores}/s",
         says="lies inside"),
    Case("score-out-inside-map-folder", "score {stores} --gt {gt} --out {store}", says="lies inside the input folder"),
    Case("score-plot-inside-gt", SCORE + " --plot {gt}/x.png", says="lies inside the input folder --gt"),
    Case("crf-csv-inside-images", CRF + " -o {t}/r --csv {images}/x.csv", says="lies inside the input folder"),
    Case("crf-report-inside-stores", CRF + " -o {t}/r --largest --report {stores}/r.csv",
         says="lies inside the input folder STORES"),
    Case("predict-report-inside-images", PREDICT_FAKE + " --largest --report {images}/r.csv",
         says="lies inside the input folder --images"),
    Case("show-out-inside-images", SHOW + " --images {images} -o {images}/x.png",
         says="lies inside the input folder --images"),
    Case("fuse-out-suffix", FUSE + " -o {t}/f.npz", says="ending in .csv"),
    Case("fuse-report-suffix", FUSE + " --largest -o {t}/f.csv --report {t}/r.txt", says="ending in .csv"),
    Case("clean-out-suffix", CLEAN + " -o {t}/c.yaml", says="ending in .csv"),
    Case("score-out-suffix", SCORE + " --out {t}/s.npz", says="ending in .csv"),
    Case("crf-csv-suffix", CRF + " -o {t}/r --csv {t}/r.npz", says="ending in .csv"),
    Case("tune-out-suffix", "tune {csv1} {csv2} --gt {gt} -o {t}/r.csv", says="ending in .yaml"),
    Case("tune-report-suffix", "tune {csv1} {csv2} --gt {gt} -o {t}/r.yaml --report {t}/r.csv",
         says="ending in .html"),
    Case("apply-out-suffix", "apply {clean_yaml} {csv1} {csv2} -o {t}/a.yaml", says="ending in .csv"),
    Case("crf-sigterm", CRF + " -o {t}/r --iterations 40 --workers 1 --quiet", (143,),
         says="stopped by SIGTERM", interrupt="SIGTERM"),
    Case("crf-sighup", CRF + " -o {t}/r --iterations 40 --workers 1 --quiet", (129,),
         says="stopped by SIGHUP", interrupt="SIGHUP"),
    Case("crf-sigterm-processes", CRF + " -o {t}/r --csv {t}/r.csv --iterations 40 --scheduler processes "
         "--workers 2 --quiet", (143,), says="stopped by SIGTERM", interrupt="SIGTERM"),
    Case("fuse-sigterm", FUSE + " -o {t}/f.csv --workers 1 --quiet", (143,), says="stopped by SIGTERM",
         interrupt="SIGTERM"),
    Case("fuse-soft-sigterm", "fuse {stores} {csv1} -o {t}/f.csv --stores {t}/st --workers 1 --quiet", (143,),
         says="stopped by SIGTERM", interrupt="SIGTERM"),
    Case("clean-sighup", CLEAN + " -o {t}/c.csv --workers 1 --quiet", (129,), says="stopped by SIGHUP",
         interrupt="SIGHUP"),
    Case("tune-sigterm", "tune {csv1} {csv2} --gt {gt} -o {t}/r.yaml --folds 2 --workers 1 --quiet", (143,),
         says="stopped by SIGTERM", interrupt="SIGTERM"),
    Case("import-sigterm", "import {t}/saved -o {t}/imp --workers 1 --quiet", (143,), says="stopped by SIGTERM",
         setup=saved_arrays, interrupt="SIGTERM"),
    Case("check-fifo", "check {t}/p.csv", says="a pipe or socket", setup=fifo("p.csv")),
    Case("score-prediction-fifo", "score {t}/p.csv --gt {gt}", says="a pipe or socket", setup=fifo("p.csv")),
    Case("fuse-input-fifo", "fuse {t}/p.csv {csv2} -o {t}/f.csv", says="a pipe or socket", setup=fifo("p.csv")),
    Case("fuse-thresholds-fifo", "fuse {stores} {csv1} -o {t}/f.csv --thresholds {t}/th.csv", says="a pipe or socket",
         setup=fifo("th.csv")),
    Case("apply-recipe-fifo", "apply {t}/r.yaml {csv1} {csv2} -o {t}/a.csv", says="a pipe or socket",
         setup=fifo("r.yaml")),
    Case("predict-sigterm", PREDICT + " -o {t}/p --csv {t}/p.csv --workers 1", (143,), says="stopped by SIGTERM",
         model=True, interrupt="SIGTERM"),
    # issue 19: clusters. A malformed --scheduler address is a usage error before any work (was a
    # traceback after 21 s); an address where no scheduler answers is one line after the connect timeout.
    Case("fuse-scheduler-port-not-a-number", FUSE + " -o {t}/f.csv --scheduler tcp://127.0.0.1:abc", USAGE,
         says="--scheduler tcp://127.0.0.1:abc: not a Dask scheduler address"),
    Case("crf-scheduler-without-host", CRF + " -o {t}/r --scheduler tcp://:1", USAGE,
         says="not a Dask scheduler address"),
    Case("clean-scheduler-port-too-large", CLEAN + " -o {t}/c.csv --scheduler tcp://127.0.0.1:99999", USAGE,
         says="a port from 1 to 65535"),
    Case("tune-scheduler-port-zero", "tune {csv1} {csv2} --gt {gt} -o {t}/r.yaml --scheduler tcp://127.0.0.1:0",
         USAGE, says="not a Dask scheduler address"),
    Case("apply-scheduler-with-a-path", "apply {clean_yaml} {csv1} {csv2} -o {t}/a.csv --scheduler tcp://h:8786/x",
         USAGE, says="not a Dask scheduler address"),
    Case("import-scheduler-host-with-space", "import {stores} -o {t}/imp --scheduler 'tcp://a b:8786'", USAGE,
         says="not a Dask scheduler address"),
    Case("predict-scheduler-open-ipv6", PREDICT_FAKE + " --scheduler tcp://[::1:8786", USAGE,
         says="not a Dask scheduler address"),
    Case("fuse-scheduler-unreachable", FUSE + " -o {t}/f.csv --quiet --scheduler tcp://127.0.0.1:1",
         says="cannot connect within 10 s"),
    # issue 19: bounds and exact reading. Every side file is read under the cap (recipes too: apply
    # /dev/zero grew to 21 GB); only regular files are opened in map folders (a FIFO blocked fuse
    # forever) and a folder named like a map is named; sizes, JSON nesting and coordinates are bounded.
    Case("apply-recipe-dev-zero", "apply /dev/zero {stores} {csv1} -o {t}/a.csv", says="/dev/zero: binary data"),
    Case("apply-recipe-over-the-cap", "apply {t}/r.yaml {stores} {csv1} -o {t}/a.csv", says="larger than 64 MB",
         setup=sparse_text("r.yaml", 65 * 2**20)),
    Case("apply-recipe-nested-deep", "apply {t}/r.yaml {stores} {csv1} -o {t}/a.csv", says="nested too deeply",
         setup=write("r.yaml", "[" * 100000)),
    Case("clean-config-nested-deep", CLEAN + " -o {t}/c.csv --clean-config {t}/c.json", says="nested too deeply",
         setup=write("c.json", "[" * 100000 + "]" * 100000)),
    Case("fuse-fifo-only-in-store-folder", "fuse {t}/st {csv1} -o {t}/f.csv", says="no probability maps",
         setup=fifo("st/x.npz")),
    Case("score-fifo-only-in-map-folder", "score {t}/st --gt {gt}", says="no probability maps",
         setup=fifo("st/IMG.npz")),
    Case("score-fifo-beside-a-nan-array", "score {t}/sv --gt {gt} --missing empty", says="holds NaN",
         setup=fifo("sv/a.npy", nan_array("sv"))),
    Case("fuse-fifo-in-store-folder-still-checks", "fuse {t}/st {csv1} -o {t}/st/f.csv", says="lies inside",
         setup=fifo("st/a.npz", stores_copy("st"))),
    Case("fuse-subfolder-named-npz", "fuse {t}/st {csv1} -o {t}/f.csv", says="x.npz: a folder named like",
         setup=lambda tmp, world: (stores_copy("st")(tmp, world), (tmp / "st" / "x.npz").mkdir())),
    Case("crf-subfolder-named-npz", CRF.replace("{stores}", "{t}/st") + " -o {t}/r", says="a folder named like",
         setup=lambda tmp, world: (tmp / "st" / "x.npz").mkdir(parents=True)),
    Case("import-subfolder-named-npy", "import {t}/sv -o {t}/imp", says="x.npy: a folder named like",
         setup=lambda tmp, world: (tmp / "sv" / "x.npy").mkdir(parents=True)),
    Case("import-size-huge", "import {stores} -o {t}/imp --size 1000000", USAGE, says="1000000"),
    Case("predict-size-huge", PREDICT_FAKE + " --size 1000000", USAGE, says="1000000"),
    Case("score-gt-nested-deep", "score {csv1} --gt {t}/gt --image-size 256", says="nested too deeply",
         setup=annotation('{"annotations": ' + "[" * 100000 + "]" * 100000 + "}")),
    Case("score-gt-point-far-out", "score {csv1} --gt {t}/gt --image-size 256", says="beyond the",
         setup=annotation('{"annotations": [{"label": "Ulna", "points": [[1, 2], [1e12, 5], [9, 9]]}]}')),
    Case("score-gt-point-infinite", "score {csv1} --gt {t}/gt --image-size 256", says="not finite",
         setup=annotation('{"annotations": [{"label": "Ulna", "points": [[1, 2], [Infinity, 5], [9, 9]]}]}')),
    Case("crf-gt-point-far-out", CRF + " -o {t}/r --gt {t}/gt", says="beyond the 256x256 frame",
         setup=annotation('{"annotations": [{"label": "Ulna", "points": [[1, 2], [-1e9, 5], [9, 9]]}]}')),
    Case("score-gt-fifo-only", "score {csv1} --gt {t}/gt --image-size 256", says="no annotation",
         setup=fifo("gt/ID0/x.json")),
    Case("fuse-scores-twice", CLASSWISE + " --scores {scores1} --scores {w}/./scores1.csv -o {t}/f.csv", USAGE,
         says="are the same file"),
    # issue 19: predict, synth, demo. synth refuses a non-empty folder unless --overwrite, which replaces only
    # its own train/ and test/ (anything else is refused, never removed; a failed write keeps the old set);
    # a demo folder is refused unless empty or holding only a stopped demo; TorchScript errors are one line.
    Case("synth-into-its-earlier-data-set", "synth {t}/s --size 256 --train-ids 2", says="pass --overwrite",
         setup=synthesized("s")),
    Case("synth-into-a-folder-with-a-file", "synth {t}/s --size 256", says="which synth did not write",
         setup=write("s/notes.txt", "mine")),
    Case("synth-overwrite-file-inside-its-split", "synth {t}/s --size 256 --overwrite",
         says="holds train/notes.txt, which synth did not write", setup=synthesized("s", write("s/train/notes.txt", "x"))),
    Case("synth-overwrite-the-world", "synth {w} --overwrite", says="which synth did not write"),
    Case("synth-overwrite-split-is-a-link", "synth {t}/s --size 256 --overwrite", says="which synth did not write",
         setup=lambda tmp, world: ((tmp / "s").mkdir(), (tmp / "s" / "train").symlink_to(world.images))),
    Case("synth-overwrite-disk-full", "synth {t}/s --size 256 --overwrite", says="cannot write", fsize=1000,
         setup=synthesized("s")),
    Case("demo-into-a-folder-with-a-file", "demo -o {t}/d", says="not an empty folder",
         setup=write("d/notes.txt", "mine")),
    Case("demo-stopped-beside-a-file", "demo -o {t}/d", says="holds an unfinished demo and notes.txt",
         setup=stopped_demo("running", write("d/notes.txt", "mine"))),
    Case("demo-finished", "demo -o {t}/d --quick", says="holds a finished demo",
         setup=stopped_demo("finished", write("d/report.html", "<html>"))),
    Case("predict-torchscript-wrong-channels", "predict --ckpt {t}/m.ts --images {images} -o {t}/p --quiet",
         says="gives 5 channels, expected 29", setup=traced("m.ts", 5)),
    Case("predict-torchscript-as-state-dict", PREDICT_FAKE.replace("{fake_ckpt}", "{t}/m.ts") + " --format state-dict",
         says="not a PyTorch checkpoint", setup=traced("m.ts", 29)),
    # issue 19: frames. One frame per run (--image-size, else the stores', else the X-rays', else the saved
    # arrays'); two are one error naming both, before anything is written; --image-size is 1 to 16384.
    Case("fuse-store-frame-and-larger-saved-arrays", "fuse {stores} {t}/sv -o {t}/f.csv",
         says="is 256x256 but", setup=lambda tmp, world: ((tmp / "sv").mkdir(), np.save(
             tmp / "sv" / f"{world.image.stem}.npy", np.zeros((len(CLASSES), 384, 384), np.float32)))),
    Case("fuse-stores-of-two-frames", "fuse {stores} {t}/st -o {t}/f.csv", says="is 128x128",
         setup=lambda tmp, world: ((tmp / "st").mkdir(), write_store(
             tmp / "st" / world.store.name, [tight_crop(np.zeros((128, 128), np.float32), (0, 0))] * len(CLASSES),
             (128, 128), image=world.image.name))),
    Case("fuse-image-size-against-stores", "fuse {stores} {csv1} -o {t}/f.csv --image-size 384",
         says="--image-size is 384x384 but"),
    Case("score-image-size-smaller-than-saved", "score {t}/saved --gt {gt} --image-size 128",
         says="--image-size is 128x128 but", setup=saved_arrays),
    Case("tune-image-size-against-stores", "tune {stores} --gt {gt} -o {t}/r.yaml --image-size 128",
         says="--image-size is 128x128 but"),
    Case("crf-image-size-against-xrays", CRF + " -o {t}/r --image-size 384", says="--image-size is 384x384 but"),
    Case("show-image-size-against-xrays", SHOW + " --images {images} -o {t}/s.png --image-size 384",
         says="--image-size is 384x384 but"),
    Case("tune-image-size-zero", "tune {stores} --gt {gt} -o {t}/r.yaml --image-size 0", USAGE,
         says="each side must be 1 to 16384"),
    Case("apply-image-size-zero", "apply {clean_yaml} {stores} -o {t}/a.csv --image-size 0", USAGE,
         says="each side must be"),
    Case("show-image-size-zero", SHOW + " -o {t}/s.png --image-size 0", USAGE, says="each side must be"),
    Case("crf-image-size-zero", CRF + " -o {t}/r --image-size 0x256", USAGE, says="each side must be"),
    Case("import-image-size-zero", "import {stores} -o {t}/imp --image-size 0", USAGE, says="each side must be"),
    Case("score-image-size-huge", SCORE + " --image-size 20000", USAGE, says="16384"),
    Case("clean-image-size-huge", CLEAN + " -o {t}/c.csv --image-size 256x20000", USAGE, says="16384"),
    Case("import-size-and-image-size-disagree", "import {t}/saved -o {t}/imp --size 256 --image-size 384", USAGE,
         says="disagree", setup=saved_arrays),
    Case("tune-crf-width-zero", "tune {stores} --gt {gt} -o {t}/r.yaml --bilateral-sxy 0", USAGE,
         says="--bilateral-sxy"),
]


def digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def snapshot(*roots: Path) -> dict[str, str | None]:
    """Every file (its hash) and folder (None) under ``roots``."""
    state: dict[str, str | None] = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            state[str(path)] = digest(path) if path.is_file() else None
    return state


def command(args: str, fields: dict[str, object]) -> list[str]:
    import shlex

    return [sys.executable, "-m", "hbens", *shlex.split(args.format(**fields))]


def full_disk(limit: int) -> Callable[[], None]:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_file_size


def interrupted(argv: list[str], cwd: Path, env: dict, name: str, marker: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` with the pipeline's pause hook on; once its first image is done (``marker``
    exists and the run waits), send the signal ``name``, and collect the command."""
    from hbens.pipeline import PAUSE_ENV

    process = subprocess.Popen(argv, cwd=cwd, env={**env, PAUSE_ENV: str(marker)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if not marker.exists() or process.poll() is not None:
        process.kill()
        pytest.fail(f"the command ended before its first image was done: {process.communicate()}")
    process.send_signal(getattr(signal, name))
    stdout, stderr = process.communicate(timeout=120)
    marker.unlink()
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def is_finished_store(path: Path) -> bool:
    try:
        ProbabilityStore(path)
    except Exception:
        return False
    return True


def error_lines(result: subprocess.CompletedProcess, name: str) -> list[str]:
    """The lines a person reads on failure: stderr, or for ``check`` (which reports on stdout) stdout."""
    text = result.stdout if name.startswith("check") and not result.stderr.strip() else result.stderr
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("case", [
    pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.model else []) for case in CASES
])
def test_wrong_command_fails_cleanly(case: Case, world: World, tmp_path: Path, request) -> None:
    model = request.getfixturevalue("model") if case.model else None
    if case.setup is not None:
        case.setup(tmp_path, world, *([model] if model else []))
    fields = world.fields(tmp_path, model)
    argv = command(case.args, fields)
    roots = [tmp_path, world.root] + ([model] if model else [])
    before = snapshot(*roots)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if case.interrupt:
        result = interrupted(argv, tmp_path, env, case.interrupt, tmp_path.with_name(tmp_path.name + ".paused"))
    else:
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                                preexec_fn=full_disk(case.fsize) if case.fsize else None)
    output = result.stdout + result.stderr
    assert result.returncode in case.codes, output
    assert "Traceback" not in output and "No such option" not in output, output
    lines = error_lines(result, case.name)
    if result.returncode == 2:
        assert lines and lines[-1].startswith("Error:"), output
    elif case.name.startswith("check"):
        assert len(result.stderr.splitlines()) <= 1, output
    else:
        assert len(lines) == 1, output
    assert all(len(line) <= MESSAGE_LIMIT for line in lines), output
    assert case.says in output, output
    after = snapshot(*roots)
    changed = [path for path in before if after.get(path, "gone") != before[path]]
    assert not changed, f"changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    if case.interrupt:
        # Stores finished before Ctrl-C stay for --resume; nothing else (no temporary, no empty folder).
        new = [path for path in new if not is_finished_store(Path(path))
               and not any(other.startswith(path + os.sep) for other in new)]
    assert not new, f"left behind: {new}"


def test_the_table_covers_every_command() -> None:
    commands = {case.args.split()[0] for case in CASES}
    assert commands == {"check", "score", "fuse", "clean", "predict", "crf", "show", "synth", "tune", "apply",
                        "import", "demo"}
    assert len(CASES) >= 80 and len({case.name for case in CASES}) == len(CASES)


def test_a_later_run_removes_stale_temporaries(world: World, tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    stale = out / f".{world.store.name}.abcd1234.tmp"
    stale.write_bytes(b"half a store")
    argv = command(CRF + " -o {t}/r --iterations 1 --quiet", world.fields(tmp_path, None))
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in world.stores.glob("*.npz"))

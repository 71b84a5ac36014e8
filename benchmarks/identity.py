"""Prove that hbens writes byte-identical outputs before and after a change (a refactor's safety net).

Run it from the repository's virtual environment::

    .venv/bin/python benchmarks/identity.py                        # ac6e2ad against the working tree
    .venv/bin/python benchmarks/identity.py --reference REV        # another reference commit
    .venv/bin/python benchmarks/identity.py --current REV          # a commit instead of the working tree
    .venv/bin/python benchmarks/identity.py --work /tmp/id --keep  # keep the data and every output

Nothing is checked out: the reference commit (default ``ac6e2ad``, the last commit before the
refactor of ``hbens/``) is exported with ``git archive REV | tar -x`` into the work folder, and so is
``--current REV`` when given; otherwise the current side is the working tree as it is, uncommitted
edits included.  Both sides run as ``python -m hbens ...`` with this same interpreter
(``sys.executable``), the reference with ``PYTHONPATH=<work>/reference-tree`` and the current side
with ``PYTHONPATH=<repository root>`` (or its exported tree); before anything runs, each side checks
that ``import hbens`` resolves into its own tree (the editable install of the virtual environment
must not win), and stops otherwise.

The data are made once, by the reference, in ``<work>/data``: ``hbens synth`` phantoms of 256x256
(6 validation and 4 test images) and of 320x320 (2 images, the other frame), three simulated
models per image made with numpy from the annotations (blurred, shifted masks with islands and
holes), saved as another pipeline's arrays (uint16 ``.npz``, float32 ``.npy``, channels-last uint8
``.npy``, and half-size float32 logits), imported into hbens stores with ``hbens import``, and
thresholded into submission CSVs.

Every step of :func:`steps` then runs once per side, each in its own folder (``<work>/reference/STEP``
and ``<work>/current/STEP``), with the same relative paths, so that the two sides see the same
command lines: fuse (hard, weighted, --min-votes with class weights, classwise by --pick and by the
--scores of ``hbens score --out``, soft with --stores in float16, --space logit with per-class
thresholds, hard on stores, a CSV mixed with stores, saved arrays read directly), clean, crf,
score (CSV, stores with --plot, the other frame), tune (--try members,thresholds,clean, a recipe
and an HTML report), apply of that recipe with --stores, import (float32 .npy at half size, enlarged;
channels-last uint8 .npy) and check.  Every command must exit 0 on both sides.

Compared per step: the exit status; stdout and stderr after masking timings (``in 1.2 s``,
``s/image``, ``images/s``...) and the work folder's paths; and every file written, recursively
(CSVs, stores, recipe, HTML report, PNG plot, clean reports), by sha256.  :data:`MASKED` would list
the file suffixes that carry timings or paths, compared after the same masking; it is empty, as
none does (``ac6e2ad`` against itself is identical byte for byte, HTML report and stores included).
Both sides run with ``PYTHONHASHSEED=0``.  Each command's output is kept in ``<work>/SIDE/STEP.log``.

The table gives each step's command, files compared and whether all of it is identical; the
script ends with ``identical: N/N``.  Exit status: 0 when identical; 1 on a difference, after
printing the first differing file (or stream) with its first differing line and column (text) or
bytes (binary; for a store, the first differing array of the .npz); 2 when the script cannot
compare (a command fails on either side, a tree does not import, a commit does not exist).  It takes
about 3 to 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = "ac6e2ad"
CLASSES = tuple(f"finger-{i}" for i in range(1, 20)) + (
    "Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform",
    "Radius", "Ulna")
SIZE = 256
OTHER_SIZE = 320
DATA = "../../data"
"""The data folder as seen from a step's folder (``<work>/SIDE/STEP``): the same on both sides."""
COMMAND_TIMEOUT = 600
TIMING = re.compile(r"\d+(?:\.\d+)?\s?(?:ms|s|min|h)\b(?:/image)?|\d+(?:\.\d+)?\s?(?:images?|it)/s")
MASKED: dict[str, str] = {}
"""Output file suffixes compared after masking timings and paths, with the reason."""


@dataclass(frozen=True)
class Model:
    """A simulated model: how its probability maps depart from the truth."""

    name: str
    sigma: float
    shift: int
    gain: float
    island: float
    hole: float


MODELS = (Model("a", 1.5, 1, 1.0, 0.2, 0.1), Model("b", 3.0, 2, 0.9, 0.3, 0.2),
          Model("c", 2.0, 4, 0.8, 0.4, 0.3))


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a source tree of hbens and the folder its steps write into."""

    name: str
    tree: Path
    runs: Path


@dataclass(frozen=True)
class Step:
    """One hbens command, run in its own folder on each side."""

    name: str
    args: tuple[str, ...]


@dataclass
class Outcome:
    """What one step produced on one side."""

    code: int
    stdout: str
    stderr: str


@dataclass
class Comparison:
    """One step's verdict: files compared, and the first difference (empty when identical)."""

    step: Step
    files: int
    difference: str


def fail(message: str) -> None:
    """Print ``message`` and stop with status 2 (an error of the script, not a difference)."""
    print(f"identity: {message}", file=sys.stderr)
    raise SystemExit(2)


def git(*args: str) -> str:
    """Run git in the repository root; return its stdout, or stop naming the command on failure."""
    done = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        fail(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def export(rev: str, folder: Path) -> Path:
    """Export commit ``rev`` into ``folder`` with ``git archive | tar -x``; return the folder."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    folder.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(folder)], check=False, stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() or untar.returncode:
        fail(f"git archive {rev} | tar -x -C {folder} failed")
    return folder


def environment(tree: Path) -> dict[str, str]:
    """The environment of a side's commands: its tree first on the path, a fixed hash seed."""
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}


def check_import(side: Side) -> None:
    """Stop unless ``import hbens`` under ``side``'s PYTHONPATH loads the package from its tree."""
    done = subprocess.run([sys.executable, "-c", "import hbens; print(hbens.__file__)"], check=False,
                          cwd=side.runs, env=environment(side.tree), capture_output=True, text=True)
    loaded = Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
    if loaded is None or not loaded.is_relative_to(side.tree.resolve()):
        fail(f"{side.name}: import hbens with PYTHONPATH={side.tree} loads {loaded or done.stderr.strip()}, "
             f"not the {side.name} tree")
    print(f"{side.name}: hbens from {loaded.parent}")


def hbens(side: Side, args: tuple[str, ...], cwd: Path) -> Outcome:
    """Run ``python -m hbens ARGS`` for ``side`` in ``cwd``."""
    done = subprocess.run([sys.executable, "-m", "hbens", *args], check=False, cwd=cwd,
                          env=environment(side.tree), capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    return Outcome(done.returncode, done.stdout, done.stderr)


def must_succeed(side: Side, step: Step, outcome: Outcome) -> None:
    """Stop, showing the command's output, when it did not exit 0."""
    if outcome.code:
        fail(f"{side.name}: hbens {' '.join(step.args)} (step {step.name}) exited {outcome.code}:\n"
             f"{outcome.stdout[-2000:]}{outcome.stderr[-4000:]}")


def rasterize(annotation: Path, size: int) -> dict[str, np.ndarray]:
    """The truth masks (uint8) of an annotation JSON, per class."""
    import cv2

    masks = {}
    for item in json.loads(annotation.read_text())["annotations"]:
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [np.asarray(item["points"], np.int32)], 1)
        masks[item["label"]] = mask
    return masks


def disk(shape: tuple[int, int], center: tuple[int, int], radius: int) -> np.ndarray:
    """A boolean disk."""
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius ** 2


def simulate(masks: dict[str, np.ndarray], model: Model, rng: np.random.Generator) -> np.ndarray:
    """A model's (29, H, W) float32 probabilities: each truth mask shifted, blurred, with an
    occasional island beside it and hole inside it (the maps stay zero away from the bones)."""
    import cv2

    shape = next(iter(masks.values())).shape
    maps = np.zeros((len(CLASSES), *shape), np.float32)
    for index, name in enumerate(CLASSES):
        shift = tuple(rng.integers(-model.shift, model.shift + 1, 2))
        mask = np.roll(masks[name], shift, axis=(0, 1)).astype(bool)
        rows, cols = np.nonzero(mask)
        if rows.size and rng.random() < model.island:
            mask |= disk(shape, (rows.max() + 6, cols.min()), 3)
        if rows.size and rng.random() < model.hole:
            mask &= ~disk(shape, (int(rows.mean()), int(cols.mean())), 2)
        blurred = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), model.sigma)
        maps[index] = np.clip(model.gain * blurred + rng.normal(0, 0.03, shape) * (blurred > 0.02), 0, 1)
    return maps


def rle(mask: np.ndarray) -> str:
    """The competition's RLE of a mask: 1-based run starts and lengths in row-major order."""
    flat = np.concatenate([[0], mask.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat)) + 1
    edges[1::2] -= edges[::2]
    return " ".join(map(str, edges))


def write_csv(path: Path, maps: dict[str, np.ndarray]) -> None:
    """Write the submission of probabilities ``> 0.5`` for ``{image name: (29, H, W) maps}``."""
    lines = ["image_name,class,rle"]
    for image, probabilities in maps.items():
        lines += [f"{image},{name},{rle(probabilities[i] > 0.5)}" for i, name in enumerate(CLASSES)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def save_arrays(folder: Path, model: Model, name: str, maps: np.ndarray) -> None:
    """Save one image's maps as another pipeline would, in a layout that depends on the model."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.name == "a":
        np.savez_compressed(folder / f"{name}.npz", output=np.round(maps * 10000).astype(np.uint16))
    elif model.name == "b":
        np.save(folder / f"{name}.npy", maps)
    else:
        np.save(folder / f"{name}.npy", np.round(maps * 255).astype(np.uint8).transpose(1, 2, 0))


def half_logits(maps: np.ndarray) -> np.ndarray:
    """Float32 logits of the maps at half their size (what many pipelines save)."""
    small = maps.reshape(maps.shape[0], maps.shape[1] // 2, 2, maps.shape[2] // 2, 2).mean(axis=(2, 4))
    small = np.clip(small, 1e-4, 1 - 1e-4)
    return np.log(small / (1 - small)).astype(np.float32)


def simulate_split(data: Path, phantoms: str, split: str, size: int, out: str, seed: int, half: bool) -> None:
    """Write the three models' saved arrays (``saved/OUT/MODEL``), CSVs (``csv/OUT/MODEL.csv``) and,
    for model b, half-size logits (``saved/OUT/b-half``) of one split of the phantoms."""
    rng = np.random.default_rng(seed)
    annotations = sorted((data / phantoms / split / "outputs_json").rglob("*.json"))
    per_model: dict[str, dict[str, np.ndarray]] = {model.name: {} for model in MODELS}
    for annotation in annotations:
        masks = rasterize(annotation, size)
        for model in MODELS:
            maps = simulate(masks, model, rng)
            per_model[model.name][f"{annotation.stem}.png"] = maps
            save_arrays(data / "saved" / out / model.name, model, annotation.stem, maps)
            if model.name == "b" and half:
                (data / "saved" / out / "b-half").mkdir(parents=True, exist_ok=True)
                np.save(data / "saved" / out / "b-half" / f"{annotation.stem}.npy", half_logits(maps))
    for name, maps in per_model.items():
        write_csv(data / "csv" / out / f"{name}.csv", maps)


def make_data(reference: Side, data: Path) -> None:
    """Make the shared inputs once, with the reference tree: phantoms, saved arrays, stores, CSVs."""
    print("making the data with the reference ...", flush=True)
    for args in (("synth", "phantoms", "--train-ids", "3", "--test-ids", "2", "--size", str(SIZE)),
                 ("synth", "phantoms-other", "--train-ids", "0", "--test-ids", "1", "--size", str(OTHER_SIZE),
                  "--seed", "1")):
        must_succeed(reference, Step("data", args), hbens(reference, args, data))
    for phantoms, split, size, out, seed in (("phantoms", "train", SIZE, "val", 10),
                                             ("phantoms", "test", SIZE, "test", 11),
                                             ("phantoms-other", "test", OTHER_SIZE, "other", 12)):
        simulate_split(data, phantoms, split, size, out, seed, half=out == "test")
    for split in ("val", "test"):
        for model in MODELS:
            args = ("import", f"saved/{split}/{model.name}", "-o", f"stores/{split}/{model.name}", "--quiet")
            must_succeed(reference, Step("data", args), hbens(reference, args, data))
    (data / "class-weights.json").write_text(json.dumps({"Pisiform": [1, 2, 1], "Ulna": [3, 1, 1]}))
    (data / "thresholds.csv").write_text("class,threshold\nfinger-1,0.3\nUlna,0.6\nPisiform,0.45\n")
    (data / "clean.yaml").write_text("min_area: 20\nfill_holes: true\nPisiform: {largest: true}\n"
                                     "finger-1: {min_area: 60}\n")


def steps() -> list[Step]:
    """The commands run on both sides, in order; a step may read the outputs of earlier ones (``../STEP``)."""
    d = DATA
    csv = tuple(f"{d}/csv/test/{m.name}.csv" for m in MODELS)
    val_csv = tuple(f"{d}/csv/val/{m.name}.csv" for m in MODELS)
    other_csv = tuple(f"{d}/csv/other/{m.name}.csv" for m in MODELS)
    stores = tuple(f"{d}/stores/test/{m.name}" for m in MODELS)
    saved = tuple(f"{d}/saved/test/{m.name}" for m in MODELS)
    val_stores = tuple(f"{d}/stores/val/{m.name}" for m in MODELS)
    size, other_size = ("--image-size", str(SIZE)), ("--image-size", str(OTHER_SIZE))
    gt, val_gt = f"{d}/phantoms/test/outputs_json", f"{d}/phantoms/train/outputs_json"
    other_gt = f"{d}/phantoms-other/test/outputs_json"
    scores = tuple(a for m in MODELS for a in ("--scores", f"../score-val-{m.name}/scores.csv"))
    return [
        Step("check", ("check", csv[0], *size)),
        Step("fuse-hard-csv", ("fuse", *csv, "-o", "hard.csv", *size)),
        Step("fuse-weighted-csv", ("fuse", *csv, "--weights", "2,1,1", "--min-weight", "1.5", "-o", "w.csv",
                                   *size)),
        Step("fuse-min-votes-csv", ("fuse", *csv, "--min-votes", "1", "--class-weights",
                                    f"{d}/class-weights.json", "-o", "votes.csv", *size)),
        Step("fuse-clean-csv", ("fuse", *csv, "--largest", "--fill-holes", "--report", "report.csv",
                                "-o", "fc.csv", *size)),
        *[Step(f"score-val-{m.name}", ("score", path, "--gt", val_gt, *size, "--out", "scores.csv"))
          for m, path in zip(MODELS, val_csv)],
        Step("fuse-classwise-pick", ("fuse", *csv, "--strategy", "classwise", "--pick", "Pisiform=0+2",
                                     "--pick", "Ulna=1", "-o", "cw.csv", *size)),
        Step("fuse-classwise-scores", ("fuse", *csv, "--strategy", "classwise", *scores, "-o", "cw.csv",
                                       *size)),
        Step("fuse-soft-stores", ("fuse", *stores, "--weights", "2,1,1", "--threshold", "0.45",
                                  "--stores", "fused", "--precision", "fp16", "-o", "soft.csv")),
        Step("fuse-soft-logit", ("fuse", *stores[:2], "--space", "logit", "--thresholds",
                                 f"{d}/thresholds.csv", "-o", "logit.csv")),
        Step("fuse-soft-classwise", ("fuse", *stores[:2], "--strategy", "classwise", "--pick", "Pisiform=0+1",
                                     "--pick", "Ulna=1", "-o", "cw.csv")),
        Step("fuse-hard-stores", ("fuse", *stores, "--strategy", "hard", "-o", "hard.csv")),
        Step("fuse-mixed", ("fuse", stores[0], stores[1], csv[2], "--weights", "2,1,1", "--stores", "fused",
                            "-o", "mixed.csv")),
        Step("fuse-saved-arrays", ("fuse", *saved, "--threshold", "0.3", "--min-area", "10",
                                   "-o", "saved.csv")),
        Step("clean", ("clean", csv[2], *size, "--min-area", "20", "--keep", "2", "--fill-holes",
                       "--connectivity", "4", "--report", "report.csv", "-o", "clean.csv")),
        Step("clean-config", ("clean", csv[1], *size, "--config", f"{d}/clean.yaml", "--classes",
                              "finger-1,Pisiform,Ulna", "-o", "clean.csv")),
        Step("crf", ("crf", stores[0], "--images", f"{d}/phantoms/test/DCM", "-o", "refined",
                     "--csv", "crf.csv", "--iterations", "2", "--gt", gt, "--largest", "--workers", "2")),
        Step("score-csv", ("score", "../fuse-hard-csv/hard.csv", "--gt", gt, *size,
                           "--out", "scores.csv")),
        Step("score-stores", ("score", stores[1], "--gt", gt, "--threshold", "0.4", "--plot", "dice.png")),
        Step("tune", ("tune", *val_stores[:2], val_csv[2], "--gt", val_gt, "-o", "recipe.yaml", "--folds", "3",
                      "--try", "members,thresholds,clean", "--report", "tune.html", "--quiet")),
        Step("apply", ("apply", "../tune/recipe.yaml", *stores[:2], csv[2], "-o", "sub.csv",
                       "--stores", "final")),
        Step("import-half-logits", ("import", f"{d}/saved/test/b-half", "-o", "stores", *size, "--quiet")),
        Step("import-channels-last", ("import", saved[2], "-o", "stores", "--precision", "fp16")),
        Step("fuse-other-frame", ("fuse", *other_csv, "-o", "hard.csv", *other_size, "--largest")),
        Step("score-other-frame", ("score", "../fuse-other-frame/hard.csv", "--gt", other_gt, *other_size)),
    ]


def mask_text(text: str, sides: tuple[Side, ...]) -> str:
    """``text`` with timings and the sides' tree and run folders replaced by placeholders."""
    for side in sides:
        text = text.replace(str(side.runs), "<RUNS>").replace(str(side.tree), "<TREE>")
    return TIMING.sub("<T>", text)


def first_text_difference(a: str, b: str) -> str:
    """The first differing line of two texts, both ways, around its first differing character."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for number, (x, y) in enumerate(zip(lines_a, lines_b), 1):
        if x != y:
            column = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            start = max(0, column - 80)
            return (f"line {number}, column {column + 1}:\n  - {x[start:column + 80]}\n"
                    f"  + {y[start:column + 80]}")
    return f"{len(lines_a)} against {len(lines_b)} lines"


def first_byte_difference(a: bytes, b: bytes) -> str:
    """The offset of the first differing byte of two byte strings and 16 bytes from there."""
    offset = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"{len(a)} against {len(b)} bytes; first difference at byte {offset}:\n"
            f"  - {a[offset:offset + 16].hex(' ')}\n  + {b[offset:offset + 16].hex(' ')}")


def zip_members(data: bytes) -> dict[str, bytes]:
    """The uncompressed members of a zip (.npz) archive, by name."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def compare_bytes(a: bytes, b: bytes, suffix: str, sides: tuple[Side, ...]) -> str:
    """Empty when two files' contents are identical (after masking, for :data:`MASKED` suffixes); else
    the first difference."""
    if hashlib.sha256(a).digest() == hashlib.sha256(b).digest():
        return ""
    if suffix in MASKED:
        left, right = (mask_text(x.decode(errors="replace"), sides) for x in (a, b))
        return "" if left == right else first_text_difference(left, right)
    if suffix == ".npz":
        members_a, members_b = zip_members(a), zip_members(b)
        if sorted(members_a) != sorted(members_b):
            return f"members {sorted(members_a)} against {sorted(members_b)}"
        for name in sorted(members_a):
            if members_a[name] != members_b[name]:
                return f"member {name}: {first_byte_difference(members_a[name], members_b[name])}"
        return "zip headers only: " + first_byte_difference(a, b)
    if suffix in (".csv", ".yaml", ".json", ".txt", ".html"):
        return first_text_difference(a.decode(errors="replace"), b.decode(errors="replace"))
    return first_byte_difference(a, b)


def files_under(folder: Path) -> set[str]:
    """Relative paths of every file under ``folder``."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def compare_step(step: Step, outcomes: tuple[Outcome, Outcome], sides: tuple[Side, Side]) -> Comparison:
    """Compare one step's exit status, masked output and files between the two sides."""
    left, right = (side.runs / step.name for side in sides)
    names = files_under(left) | files_under(right)
    if outcomes[0].code != outcomes[1].code:
        return Comparison(step, len(names), f"exit status {outcomes[0].code} against {outcomes[1].code}")
    for stream in ("stdout", "stderr"):
        texts = [mask_text(getattr(outcome, stream), sides) for outcome in outcomes]
        if texts[0] != texts[1]:
            return Comparison(step, len(names), f"{stream}: {first_text_difference(*texts)}")
    for name in sorted(names):
        if not (left / name).is_file() or not (right / name).is_file():
            writer = sides[0] if (left / name).is_file() else sides[1]
            return Comparison(step, len(names), f"{name}: written only by {writer.name}")
        contents = (left / name).read_bytes(), (right / name).read_bytes()
        difference = compare_bytes(*contents, Path(name).suffix, sides)
        if difference:
            return Comparison(step, len(names), f"{name}: {difference}")
    return Comparison(step, len(names), "")


def run_steps(sides: tuple[Side, Side]) -> list[Comparison]:
    """Run every step on both sides (each must exit 0) and compare them."""
    comparisons = []
    for step in steps():
        outcomes = []
        for side in sides:
            folder = side.runs / step.name
            folder.mkdir(parents=True)
            outcome = hbens(side, step.args, folder)
            (side.runs / f"{step.name}.log").write_text(
                f"$ hbens {' '.join(step.args)}\n{outcome.stdout}{outcome.stderr}exit {outcome.code}\n")
            must_succeed(side, step, outcome)
            outcomes.append(outcome)
        comparisons.append(compare_step(step, (outcomes[0], outcomes[1]), sides))
        verdict = "DIFFERENT" if comparisons[-1].difference else "identical"
        print(f"  {step.name:24s} {verdict}", flush=True)
    return comparisons


def report(comparisons: list[Comparison]) -> bool:
    """Print the table and the first difference; return whether everything is identical."""
    print(f"\n{'step':24s} {'command':8s} {'files':>5s}  identical")
    for comparison in comparisons:
        same = "yes" if not comparison.difference else "NO"
        print(f"{comparison.step.name:24s} {comparison.step.args[0]:8s} {comparison.files:5d}  {same}")
    for reason in sorted(set(MASKED.values())):
        print(f"masked: {', '.join(s for s, r in MASKED.items() if r == reason)}: {reason}")
    if not MASKED:
        print("masked: none (every file compared by sha256; stdout and stderr with timings masked)")
    identical = sum(not comparison.difference for comparison in comparisons)
    print(f"identical: {identical}/{len(comparisons)}")
    first = next((comparison for comparison in comparisons if comparison.difference), None)
    if first is not None:
        print(f"\nfirst difference, step {first.step.name} (hbens {' '.join(first.step.args)}):")
        print(first.difference)
    return first is None


def parse_arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default=DEFAULT_REFERENCE, metavar="REV",
                        help=f"commit to compare against (default {DEFAULT_REFERENCE})")
    parser.add_argument("--current", metavar="REV", help="export this commit as the current side "
                        "(default: the working tree as it is)")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="folder for the trees, data and outputs; must not exist "
                        "(default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args()


def main() -> int:
    """Export the trees, make the data, run every step on both sides and compare; 0 when identical."""
    arguments = parse_arguments()
    if arguments.work is not None and arguments.work.exists():
        fail(f"--work {arguments.work} exists; give a new folder")
    work = (arguments.work or Path(tempfile.mkdtemp(prefix="hbens-identity-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        reference_tree = export(arguments.reference, work / "reference-tree")
        current_tree = export(arguments.current, work / "current-tree") if arguments.current else ROOT
        sides = (Side("reference", reference_tree, work / "reference"),
                 Side("current", current_tree, work / "current"))
        for side in sides:
            side.runs.mkdir()
            check_import(side)
        (work / "data").mkdir()
        make_data(sides[0], work / "data")
        print(f"running {len(steps())} steps on both sides ...", flush=True)
        return 0 if report(run_steps(sides)) else 1
    finally:
        if arguments.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The GPU path of `hbens predict`, measured: speed, share outside forward passes, memory, agreement.

Builds two real-size segmentation-models-pytorch models from random weights
(``encoder_weights=None``, nothing downloaded): ``Unet`` with a ``resnet34`` encoder and
``UnetPlusPlus`` with ``efficientnet-b0``, 29 classes.  Each is saved as a state dict with its
YAML beside it (as ``hbens demo`` saves one) and run by :func:`hbens.predictors.predict_folder`,
the function behind ``hbens predict``, on synthetic hand phantoms, one worker, for every setting:
model x ``--size`` x ``--tta``, plus a sliding window (``--window W --overlap 0``, where
``--batch-size`` is the number of windows per forward pass; a whole-image pass has one).

Per setting it prints images/s, the share of wall time outside the forward passes (hbens's own
``forward_seconds``), the peak GPU memory (``torch.cuda.max_memory_allocated``, per setting,
models loaded afresh), and, for the model and size of the row, fp16 autocast against fp32 on the
GPU over every image: the largest absolute probability difference and the mean Dice of the masks
thresholded at 0.5 (per image and class; two empty masks agree).  Then GPU fp32 against CPU fp32 on
one image at ``--agreement-size``.

Without CUDA (or with ``--cpu-smoke``) it runs the same code on the CPU at tiny sizes and prints
"n/a (no GPU)" in the GPU-only columns.  Random weights make every class cover the whole frame
(a trained model's crops are small), so the CPU-side work per image is the worst case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NA = "n/a (no GPU)"
MODELS = (("Unet", "resnet34"), ("UnetPlusPlus", "efficientnet-b0"))
"""The benchmark's models: smp architecture and encoder, each built with 29 classes."""


@dataclass(frozen=True)
class Plan:
    """How big a run is: where it runs, the phantoms, and the grid of settings."""

    device: str
    images: int
    image_size: int
    sizes: tuple[int, ...]
    ttas: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    agreement_size: int

    @property
    def window(self) -> int:
        """The sliding window's side: half the image's (four windows per image with no overlap)."""
        return self.image_size // 2


GPU_PLAN = Plan(device="cuda", images=16, image_size=2048, sizes=(1024, 2048), ttas=("none", "hflip"),
                batch_sizes=(1, 2, 4), agreement_size=512)
CPU_PLAN = Plan(device="cpu", images=2, image_size=256, sizes=(64,), ttas=("none", "hflip"),
                batch_sizes=(1, 4), agreement_size=64)
"""The full grid on a GPU, and the CPU smoke run (tiny phantoms, the same code)."""


@dataclass(frozen=True)
class Setting:
    """One row: a model run with ``--size`` (a whole-image pass) or ``--window`` (tiles in batches)."""

    model: str
    size: int | None
    window: int | None
    tta: str
    batch_size: int

    @property
    def label(self) -> str:
        view = f"--size {self.size}" if self.size else f"--window {self.window}"
        return f"{self.model:<28} {view:<14} {self.tta:<6} {self.batch_size:>5}"


@dataclass(frozen=True)
class Row:
    """What one setting measured (None where it cannot be measured, on the CPU)."""

    setting: Setting
    images_per_second: float
    outside_share: float
    peak_gib: float | None


def settings(plan: Plan) -> list[Setting]:
    """The grid: whole-image passes at each size and TTA, then the window at each batch size."""
    grid = []
    for arch, encoder in MODELS:
        name = model_name(arch, encoder)
        grid += [Setting(name, size, None, tta, 1) for size in plan.sizes for tta in plan.ttas]
        grid += [Setting(name, None, plan.window, "none", batch) for batch in plan.batch_sizes]
    return grid


def model_name(arch: str, encoder: str) -> str:
    """The checkpoint stem of a model (hbens names stores after it)."""
    return f"{arch}-{encoder}"


def save_models(folder: Path) -> dict[str, Path]:
    """Random-weight models as ``.pt`` state dicts with their YAML beside them (hbens demo's format)."""
    import segmentation_models_pytorch as smp
    import torch

    from hbens.demo import TinyModel, save_state_dict

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, (arch, encoder) in enumerate(MODELS):
        torch.manual_seed(seed)
        module = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, in_channels=3, classes=29)
        name = model_name(arch, encoder)
        described = TinyModel(arch=arch, encoder=encoder, kwargs={}, checkpoint="state-dict")
        paths[name] = save_state_dict(module, model=described, folder=folder, name=name, example=None)
    return paths


def write_images(folder: Path, n_images: int, size: int) -> list[Path]:
    """``n_images`` hand phantoms of ``size`` x ``size`` (``hbens synth``'s layout, test split)."""
    from hbens.synthetic import write_dataset

    written = write_dataset(folder, ids_train=0, ids_test=(n_images + 1) // 2, seed=0, size=size)["test"]
    for extra in written[n_images:]:
        extra.unlink()
    return written[:n_images]


def run_setting(setting: Setting, checkpoint: Path, images: Path, output: Path, device: str) -> Row:
    """Predict every image of ``images`` with one setting, through the library, one worker."""
    import torch

    from hbens.execution import Execution
    from hbens.predictors import ModelSource, PredictOptions, predict_folder
    from hbens.predictors import predict as predict_module

    predict_module._PREDICTORS.clear()  # each setting loads its model afresh, as a new `hbens predict` does
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    options = PredictOptions(size=setting.size, window=setting.window, overlap=0.0, tta=setting.tta,
                             batch_size=setting.batch_size)
    source = ModelSource(checkpoint=str(checkpoint), device=device)
    summary = predict_folder([source], images, output, options, execution=Execution(workers=1))
    if summary.failed or summary.stats.predicted != summary.images:
        raise RuntimeError(f"{setting.label}: {len(summary.failed)} image(s) failed")
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    outside = 1 - summary.stats.forward_seconds / summary.seconds
    return Row(setting, summary.images / summary.seconds, outside, peak)


def probabilities(module, image: np.ndarray, size: int, device: str, fp16: bool):
    """Sigmoid probabilities (29, size, size) of one gray image, prepared as hbens prepares it
    (bilinear resize, gray repeated, no normalization) and run with or without fp16 autocast."""
    import torch
    import torch.nn.functional as F

    from hbens.images import parse_normalize, to_input

    resized = F.interpolate(torch.from_numpy(image)[None, None], size=(size, size), mode="bilinear",
                            align_corners=False)[0, 0].numpy()
    batch = torch.from_numpy(to_input(resized, 3, parse_normalize("none")))[None].to(device)
    with torch.inference_mode(), torch.autocast("cuda", enabled=fp16):
        return torch.sigmoid(module(batch).float())[0]


def agreement(first, second, threshold: float = 0.5) -> tuple[float, list[float]]:
    """Largest absolute difference of two (C, H, W) probability tensors, and the Dice of each
    class's masks thresholded at ``threshold`` (1.0 where both are empty)."""
    a, b = first > threshold, second.to(first.device) > threshold
    both = (a & b).sum(dim=(1, 2)).double()
    total = (a.sum(dim=(1, 2)) + b.sum(dim=(1, 2))).double()
    dice = (2 * both / total.clamp(min=1)).where(total > 0, 1.0)
    return float((first - second.to(first.device)).abs().max()), dice.tolist()


def load_module(checkpoint: Path, device: str):
    """The checkpoint as hbens loads it (eval mode), moved to ``device``."""
    from hbens.predictors import load_model

    return load_model(checkpoint).module.to(device)


def fp16_agreement(checkpoint: Path, images: list[Path], size: int) -> tuple[float, float]:
    """fp16 autocast vs fp32 on the GPU over ``images`` at ``size``: max |dp| and mean Dice."""
    from hbens.images import read_gray

    module = load_module(checkpoint, "cuda")
    worst, dice = 0.0, []
    for path in images:
        image = read_gray(path)
        diff, scores = agreement(probabilities(module, image, size, "cuda", True),
                                 probabilities(module, image, size, "cuda", False))
        worst, dice = max(worst, diff), dice + scores
    return worst, float(np.mean(dice))


def device_agreement(checkpoint: Path, image: Path, size: int) -> tuple[float, float]:
    """GPU fp32 vs CPU fp32 on one image at ``size``: max |dp| and mean Dice over the classes."""
    from hbens.images import read_gray

    gray = read_gray(image)
    on_gpu = probabilities(load_module(checkpoint, "cuda"), gray, size, "cuda", False)
    on_cpu = probabilities(load_module(checkpoint, "cpu"), gray, size, "cpu", False)
    diff, scores = agreement(on_gpu, on_cpu)
    return diff, float(np.mean(scores))


def format_row(row: Row, fp16: tuple[float, float] | None) -> str:
    """One printed line of the table (see :data:`HEADER`)."""
    peak = f"{row.peak_gib:8.2f}" if row.peak_gib is not None else f"{'n/a':>8}"
    versus = f"{fp16[0]:12.2e} {fp16[1]:9.5f}" if fp16 else f"{'n/a':>12} {'n/a':>9}"
    return (f"{row.setting.label} {row.images_per_second:8.2f} {100 * row.outside_share:9.1f} % "
            f"{peak} {versus}")


HEADER = (f"{'model':<28} {'setting':<14} {'tta':<6} {'batch':>5} {'images/s':>8} {'outside fwd':>11} "
          f"{'peak GiB':>8} {'fp16 max|dp|':>12} {'fp16 Dice':>9}")


def run(plan: Plan, folder: Path, out=print) -> list[Row]:
    """Build the models and phantoms under ``folder``, run every setting, print the table."""
    import torch

    started = time.perf_counter()
    checkpoints = save_models(folder / "models")
    images = write_images(folder / "phantoms", plan.images, plan.image_size)
    image_folder = images[0].parents[1]
    gpu = torch.cuda.get_device_name() if plan.device == "cuda" else "none (CPU smoke run)"
    out(f"{plan.images} phantoms of {plan.image_size}x{plan.image_size}, one worker, device {plan.device}, "
        f"GPU: {gpu}; torch {torch.__version__}; random weights (every class covers the whole frame)")
    out(f"set-up (models saved, phantoms written): {time.perf_counter() - started:.1f} s")
    first = settings(plan)[0]
    warm = time.perf_counter()
    run_setting(first, checkpoints[first.model], image_folder, folder / "warm-up", plan.device)
    out(f"warm-up run of the first setting (not in the table): {time.perf_counter() - warm:.1f} s")
    out(HEADER)
    rows, versus = [], {}
    for number, setting in enumerate(settings(plan)):
        row = run_setting(setting, checkpoints[setting.model], image_folder, folder / f"run{number}", plan.device)
        size = setting.size or plan.image_size  # a window sees the image's own pixels
        if plan.device == "cuda" and (setting.model, size) not in versus:
            versus[setting.model, size] = fp16_agreement(checkpoints[setting.model], images, size)
        out(format_row(row, versus.get((setting.model, size))))
        rows.append(row)
    for name, checkpoint in checkpoints.items():
        if plan.device == "cuda":
            diff, dice = device_agreement(checkpoint, images[0], plan.agreement_size)
            text = f"max |dp| {diff:.2e}, mean Dice {dice:.5f}"
        else:
            text = NA
        out(f"GPU fp32 vs CPU fp32, {name}, one image at --size {plan.agreement_size}: {text}")
    out(f"total: {time.perf_counter() - started:.1f} s")
    return rows


def plan_from_arguments(argv: list[str] | None = None) -> Plan:
    """The plan: the GPU grid when CUDA is there (unless ``--cpu-smoke``), else the CPU one; flags
    shrink it."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="Tiny CPU run even when CUDA is there.")
    parser.add_argument("--images", type=int, help="Number of phantoms (default 16 on a GPU, 2 on the CPU).")
    parser.add_argument("--image-size", type=int, help="Side of the phantoms (default 2048 on a GPU, 256 on the CPU).")
    parser.add_argument("--sizes", help="Comma-separated --size values (default 1024,2048 on a GPU).")
    parser.add_argument("--batch-sizes", help="Comma-separated windows per forward pass (default 1,2,4).")
    args = parser.parse_args(argv)
    plan = GPU_PLAN if torch.cuda.is_available() and not args.cpu_smoke else CPU_PLAN
    if args.images is not None:
        plan = replace(plan, images=args.images)
    if args.image_size is not None:
        plan = replace(plan, image_size=args.image_size)
    if args.sizes:
        plan = replace(plan, sizes=tuple(int(v) for v in args.sizes.split(",")))
    if args.batch_sizes:
        plan = replace(plan, batch_sizes=tuple(int(v) for v in args.batch_sizes.split(",")))
    return plan


def main(argv: list[str] | None = None) -> None:
    plan = plan_from_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="hbens-gpu-bench-") as tmp:
        run(plan, Path(tmp))


if __name__ == "__main__":
    main()

"""A loaded model made uniform for inference: device, memory layout, padding, output form."""

from __future__ import annotations

import os
import sys
import time

from hbens.classes import CLASSES
from hbens.errors import HbensError
from hbens.predictors.checkpoints import LoadedModel

OPENMP_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
"""Environment variables that say how OpenMP threads wait; when one is set, hbens leaves them all alone."""


def wait_passively() -> None:
    """Let torch's idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``).

    By default GNU OpenMP keeps each idle thread of torch's pool spinning for a while after every
    parallel region.  A CPU forward pass of a small model is hundreds of short operators with
    Python between them, so one worker with a thread per core burned about two cores' time in
    spins for one core's work, and far more when the cores were busy with other jobs (a spinning
    thread waits for a peer that is not running): ``predict --workers 1`` cost three to five times
    the CPU of two single-threaded workers for the same images.  Sleeping threads cost only a wake-up per
    operator.  OpenMP reads the variable once, when torch is first imported, so this does nothing
    after that import, nor when the user chose a policy (:data:`OPENMP_SETTINGS`).
    """
    if "torch" not in sys.modules and not any(name in os.environ for name in OPENMP_SETTINGS):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def parse_channels(text: str | None) -> slice | None:
    """``START:STOP`` of ``--channels`` as a slice."""
    if not text:
        return None
    try:
        start, stop = (int(v) if v else None for v in text.split(":"))
    except ValueError:
        raise HbensError(f"--channels {text}: expected START:STOP such as 0:29") from None
    return slice(start, stop)


def output_logits(output, source: str, channels: slice | None = None, expected: int = len(CLASSES)):
    """Logits from a model's output: a tensor, a dict with ``out``, a list/tuple (first) or ``.logits``."""
    import torch

    if isinstance(output, dict):
        if "out" not in output:
            raise HbensError(f"{source}: the model returned a dict without 'out' (keys: {', '.join(output)})")
        output = output["out"]
    elif isinstance(output, (list, tuple)):
        output = output[0]
    elif hasattr(output, "logits"):
        output = output.logits
    if not isinstance(output, torch.Tensor) or output.ndim != 4:
        raise HbensError(f"{source}: the model returned {type(output).__name__}; expected (N, C, H, W) logits")
    if channels is not None:
        output = output[:, channels]
    if output.shape[1] < expected:
        raise HbensError(
            f"{source}: the model gives {output.shape[1]} channels, expected {expected}; "
            "name its classes in channel order with --model-classes (e.g. --model-classes Capitate,Hamate,...)"
        )
    if output.shape[1] != expected:
        raise HbensError(
            f"{source}: the model gives {output.shape[1]} channels, expected {expected}; "
            f"select them with --channels START:STOP (e.g. --channels 0:{expected})"
        )
    return output.float()


def resolve_device(name: str = "auto") -> str:
    """``auto`` picks CUDA when available, else the CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise HbensError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise HbensError(f"--device {name}: valid devices are auto, cpu, cuda")
    return name


class InferenceModel:
    """Call a model on a (N, C, H, W) batch and get float32 logits of ``outputs`` channels (29 unless
    the model has fewer classes) at the input size.

    Inputs are padded (reflect) to a multiple of 32 and the output cropped back; CPU runs use
    channels_last (about 2x faster for convolutions), CUDA runs use fp16 autocast.  The time
    spent in forward passes is kept in ``forward_seconds``.
    """

    def __init__(self, loaded: LoadedModel, device: str = "cpu", channels: slice | None = None, multiple: int = 32,
                 *, outputs: int = len(CLASSES)):
        import torch

        self.loaded = loaded
        self.outputs = outputs
        self.device = device
        self.channels = channels
        self.multiple = multiple
        self.forward_seconds = 0.0
        module = loaded.module.to(device)
        if device == "cpu" and not isinstance(module, torch.jit.ScriptModule):
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    @property
    def in_channels(self) -> int:
        return self.loaded.in_channels

    def __call__(self, batch):
        import torch
        import torch.nn.functional as F

        height, width = batch.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            batch = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
        batch = batch.to(self.device)
        if self.device == "cpu":
            batch = batch.contiguous(memory_format=torch.channels_last)
        started = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.device == "cuda"):
            output = self.module(batch)
            logits = output_logits(output, self.loaded.name, self.channels, self.outputs)
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.forward_seconds += time.perf_counter() - started
        if not torch.isfinite(logits.sum()):
            raise HbensError(f"{self.loaded.name}: the model produced non-finite logits (NaN or inf)")
        return logits[:, :, :height, :width] if pad_h or pad_w else logits

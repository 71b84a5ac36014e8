"""Test-time augmentation with ttach transforms, merged on logits.

Each ttach transformer is an augment / de-augment pair.  De-augmented outputs are resized to
the exact input size before merging: ttach's Scale returns maps 1-2 px short for many factors.
"""

from __future__ import annotations

from typing import Callable

from hbens.errors import HbensError

MERGES = ("mean", "max", "gmean")


def _factors(name: str, value: str) -> list[float]:
    try:
        values = [float(v) for v in value.split(":")]
    except ValueError:
        raise HbensError(f"--tta {name}={value}: expected factors separated by ':' such as 0.9:1.1") from None
    if any(v <= 0 for v in values):
        raise HbensError(f"--tta {name}={value}: factors must be positive")
    return values


def _hflip(_):
    import ttach

    return ttach.HorizontalFlip()


def _vflip(_):
    import ttach

    return ttach.VerticalFlip()


def _multiply(value):
    import ttach

    return ttach.Multiply(factors=[1.0, *_factors("multiply", value)])


def _scale(value):
    import ttach

    return ttach.Scale(scales=[1.0, *_factors("scale", value)], interpolation="bilinear", align_corners=False)


TRANSFORMS: dict[str, Callable] = {"hflip": _hflip, "vflip": _vflip, "multiply": _multiply, "scale": _scale}
"""TTA names of ``--tta``; multiply and scale take ``=F1:F2`` (the identity is always included)."""


def tta_steps(spec: str | None) -> list[tuple[str, str]]:
    """Check a ``--tta`` spec without importing torch: its ``(name, factors)`` steps; [] for ``none``."""
    if not spec or spec == "none":
        return []
    steps = []
    for part in spec.split(","):
        name, _, value = part.strip().partition("=")
        if name not in TRANSFORMS:
            raise HbensError(f"--tta {part}: unknown transform; valid: {', '.join(TRANSFORMS)} or none")
        if (name in ("multiply", "scale")) != bool(value):
            raise HbensError(f"--tta {part}: {'needs' if not value else 'takes no'} =factors")
        if value:
            _factors(name, value)
        steps.append((name, value))
    return steps


def parse_tta(spec: str | None):
    """A ttach Compose from ``hflip,vflip,multiply=0.9:1.1,scale=0.75:1.25``; None for ``none``."""
    steps = tta_steps(spec)
    if not steps:
        return None
    import ttach

    return ttach.Compose([TRANSFORMS[name](value) for name, value in steps])


class Merger:
    """Running merge of de-augmented logits: mean, max, or geometric mean of the probabilities."""

    def __init__(self, kind: str = "mean"):
        if kind not in MERGES:
            raise HbensError(f"--merge {kind}: valid merges are {', '.join(MERGES)}")
        self.kind = kind
        self.total = None
        self.count = 0

    def append(self, logits) -> None:
        import torch.nn.functional as F

        value = F.logsigmoid(logits) if self.kind == "gmean" else logits
        if self.total is None:
            self.total = value.clone()
        elif self.kind == "max":
            self.total = self.total.maximum(value)
        else:
            self.total += value
        self.count += 1

    @property
    def result(self):
        """Merged logits."""
        import torch

        if self.kind == "max":
            return self.total
        mean = self.total / self.count
        if self.kind == "gmean":
            return mean - torch.log1p(-mean.exp().clamp(max=1 - 1e-7))
        return mean


def predict_tta(forward: Callable, batch, transforms=None, merge: str = "mean"):
    """Logits of ``forward(batch)`` merged over the TTA ``transforms`` (a ttach Compose or None)."""
    if transforms is None:
        return forward(batch)
    import torch.nn.functional as F

    merger = Merger(merge)
    size = batch.shape[-2:]
    for transformer in transforms:
        logits = transformer.deaugment_mask(forward(transformer.augment_image(batch)))
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        merger.append(logits)
    return merger.result

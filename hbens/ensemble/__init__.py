"""Ensembles: one engine that fuses submissions and probability maps class by class.

* :mod:`~hbens.ensemble.rules` -- the rule of a class (:class:`SoftRule` mean, :class:`HardRule` vote)
  and the builders of the ``--strategy`` options;
* :mod:`~hbens.ensemble.inputs` -- one image's inputs (map files or CSV rows) as per-class sources;
* :mod:`~hbens.ensemble.combine` -- one class fused from its sources (soft mean or vote);
* :mod:`~hbens.ensemble.fuse` -- the engine: :func:`fuse`, one task per image;
* :mod:`~hbens.ensemble.csv_votes` -- its fast path for votes on CSVs alone;
* :mod:`~hbens.ensemble.vote` -- the run-level vote kernels.
"""

from hbens.ensemble.fuse import FuseStats, describe_fuse, fuse, fuse_image
from hbens.ensemble.rules import (
    STRATEGIES,
    HardRule,
    SoftRule,
    classwise_rules,
    hard_rules,
    read_class_weights,
    soft_rules,
)

__all__ = [
    "STRATEGIES",
    "FuseStats",
    "HardRule",
    "SoftRule",
    "classwise_rules",
    "describe_fuse",
    "fuse",
    "fuse_image",
    "hard_rules",
    "read_class_weights",
    "soft_rules",
]

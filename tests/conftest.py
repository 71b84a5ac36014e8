"""Shared fixtures: small synthetic data from hbens.synthetic, and the real data when ../shared exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def example(tmp_path_factory):
    """Two synthetic hands at 256x256 with three noisy model submissions."""
    from hbens.synthetic import write_example

    folder = tmp_path_factory.mktemp("example")
    gt, csvs = write_example(folder, n_images=2, n_models=3, seed=7)
    return gt, csvs


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is absent")
    return REALDATA

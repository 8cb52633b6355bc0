"""Shared fixtures: seeded rng, a small analysis grid, the repository root."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def small_grid():
    from datxai.grid import Grid

    # 8 mm keeps atlas resampling fast; odd/even mix exposes axis mix-ups
    return Grid((18, 23, 19), 8.0)

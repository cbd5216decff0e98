"""Shared fixtures: the project's data (../shared/data or $INPAINT_DATA) and small test images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    """$INPAINT_DATA, else ../shared/data beside the repository; None where neither exists."""
    candidate = Path(os.environ.get("INPAINT_DATA", ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("project data not found: set INPAINT_DATA or put it at ../shared/data")
    return root


@pytest.fixture
def examples_dir() -> Path:
    return ROOT / "examples"


@pytest.fixture
def smooth_image() -> np.ndarray:
    """A 96 x 128 uint8 RGB image with smooth gradients and a little texture (deterministic)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128].astype(np.float64)
    channels = [
        128 + 80 * np.sin(x / 17.0) * np.cos(y / 23.0),
        100 + 0.8 * x,
        60 + 1.2 * y,
    ]
    image = np.stack(channels, axis=-1) + rng.normal(0, 4, size=(96, 128, 3))
    return np.clip(image, 0, 255).astype(np.uint8)

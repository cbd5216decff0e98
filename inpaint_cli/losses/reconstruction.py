"""Per-pixel reconstruction penalties: the squared error of Context Encoder and GLCIC
(docs/architectures.md §1, §2), or the absolute error of the later papers (DeepFill, LaMa), which
those two recipes offer as a config choice."""

from __future__ import annotations

import torch

RECONSTRUCTIONS = ("mse", "l1")


def check_reconstruction(kind: str) -> None:
    if kind not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be 'mse' or 'l1', got {kind!r}")


def pixel_penalty(error: torch.Tensor, kind: str) -> torch.Tensor:
    """Elementwise penalty of `error`: squared for "mse", absolute for "l1"."""
    return error.abs() if kind == "l1" else error.pow(2)

"""Square patches centred on each sample's hole: the local critics' input (GLCIC's local
discriminator, docs/architectures.md §2; DeepFill v1's local critic, §3)."""

from __future__ import annotations

import torch


def hole_patch_corners(mask: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """(top, left) of the `size` square centred on each mask's hole bounding box, clamped inside
    the image (the image centre for an empty mask)."""
    hole = mask[:, 0] > 0.5
    tops = _centred_starts(hole.any(dim=2), size)
    lefts = _centred_starts(hole.any(dim=1), size)
    return list(zip(tops.tolist(), lefts.tolist()))


def _centred_starts(occupied: torch.Tensor, size: int) -> torch.Tensor:
    """Start of the `size` span centred on each row's occupied extent (N x extent booleans)."""
    extent = occupied.shape[1]
    index = torch.arange(extent, device=occupied.device)
    first = torch.where(occupied, index, extent).amin(dim=1)
    last = torch.where(occupied, index, -1).amax(dim=1)
    start = torch.where(occupied.any(dim=1), (first + last + 1 - size) // 2, (extent - size) // 2)
    return start.clamp(0, extent - size)


def crop(x: torch.Tensor, corners: list[tuple[int, int]], size: int) -> torch.Tensor:
    return torch.stack(
        [x[i, :, top : top + size, left : left + size] for i, (top, left) in enumerate(corners)]
    )

"""Aggregated contextual-transformation (AOT) block (Zeng et al., IEEE TVCG 2022; official
`src/model/aotgan.py`; docs/architectures.md §6).

The block splits its transform into one dilated 3x3 branch per rate, concatenates the branches,
fuses them with a 3x3 conv and mixes the result with its input through a learned spatial gate:

    out = x * (1 - g) + fuse(cat(branch_r(x) for r in rates)) * g,   g = sigmoid(norm(gate(x)))

Sub-module names (`block00`..., `fuse`, `gate`, with the conv at index 1 after its reflection pad)
follow the official checkpoint, so converted AOT-GAN weights load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def aot_layer_norm(features: torch.Tensor) -> torch.Tensor:
    """The official "my_layer_norm": `5 * (2 * (f - mean) / (std + 1e-9) - 1)`.

    Mean and (unbiased) std are taken per sample and channel over H x W; computed in float32 so
    that the 1e-9 guard survives mixed precision.
    """
    values = features.float()
    mean = values.mean(dim=(2, 3), keepdim=True)
    std = values.std(dim=(2, 3), keepdim=True) + 1e-9
    return 5 * (2 * (values - mean) / std - 1)


def gated_residual(identity: torch.Tensor, update: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """`identity * (1 - gate) + update * gate`: gate 0 keeps the input, gate 1 takes the update."""
    return identity * (1 - gate) + update * gate


def _padded_conv(
    in_channels: int, out_channels: int, dilation: int = 1
) -> list[nn.Module]:
    """Reflection pad + 3x3 conv (padding 0), the official `[ReflectionPad2d, Conv2d]` pair."""
    return [
        nn.ReflectionPad2d(dilation),
        nn.Conv2d(in_channels, out_channels, 3, padding=0, dilation=dilation),
    ]


class AOTBlock(nn.Module):
    """One AOT block of `channels` channels; `len(rates)` branches of `channels / len(rates)` each."""

    def __init__(self, channels: int, rates: Sequence[int] = (1, 2, 4, 8)) -> None:
        super().__init__()
        if channels % len(rates):
            raise ValueError(f"{channels} channels do not split into {len(rates)} branches")
        self.rates = tuple(rates)
        branch_channels = channels // len(rates)
        for index, rate in enumerate(self.rates):
            branch = nn.Sequential(*_padded_conv(channels, branch_channels, rate), nn.ReLU(True))
            self.add_module(f"block{index:02d}", branch)
        self.fuse = nn.Sequential(*_padded_conv(channels, channels))
        self.gate = nn.Sequential(*_padded_conv(channels, channels))

    def branches(self) -> list[nn.Module]:
        return [getattr(self, f"block{index:02d}") for index in range(len(self.rates))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aggregated = torch.cat([branch(x) for branch in self.branches()], dim=1)
        fused = self.fuse(aggregated)
        gate = torch.sigmoid(aot_layer_norm(self.gate(x))).to(x.dtype)
        return gated_residual(x, fused, gate)

"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019;
ARCHITECTURES.md §4).
"""

from __future__ import annotations

import torch
from torch import nn


class GatedConv2d(nn.Module):
    """`activation(features) * sigmoid(gates)`, both halves of ONE convolution of `width` filters.

    As in the official `gen_conv`, `width` is the convolution's width and the output has
    `width // 2` channels (`out_channels`). Zero padding keeps the size (halves it at stride 2).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"a gated convolution needs an even width, got {width}")
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, width, kernel_size, stride, padding, dilation)
        self.activation = activation if activation is not None else nn.ELU()
        self.out_channels = width // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gates = self.conv(x).chunk(2, dim=1)
        return self.activation(features) * torch.sigmoid(gates)

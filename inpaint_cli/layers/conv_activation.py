"""A convolution and its activation with "same" zero padding: DeepFill v1's `gen_conv`
(Yu et al., CVPR 2018), and the base of DeepFill v2's gated convolution (`gated_conv`)."""

from __future__ import annotations

import torch
from torch import nn


class ConvActivation(nn.Module):
    """Convolution then activation (ELU unless given); `width` output channels (DeepFill v1's
    `gen_conv`). Zero padding keeps the size (halves it at stride 2)."""

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
        self.out_channels = self._output_channels(width)
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, width, kernel_size, stride, padding, dilation)
        self.activation = activation if activation is not None else nn.ELU()

    def _output_channels(self, width: int) -> int:
        """The block's output channels for a convolution of `width` filters."""
        return width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))

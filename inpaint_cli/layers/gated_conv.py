"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019;
docs/architectures.md §4).
"""

from __future__ import annotations

import torch

from inpaint_cli.layers.conv_activation import ConvActivation


class GatedConv2d(ConvActivation):
    """`activation(features) * sigmoid(gates)`, both halves of ONE convolution of `width` filters.

    As in the official `gen_conv`, `width` is the convolution's width and the output has
    `width // 2` channels (`out_channels`); built as `ConvActivation` (same padding, default ELU).
    """

    def _output_channels(self, width: int) -> int:
        if width % 2:
            raise ValueError(f"a gated convolution needs an even width, got {width}")
        return width // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gates = self.convolve(x).chunk(2, dim=1)
        return self.activation(features) * torch.sigmoid(gates)

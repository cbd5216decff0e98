"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019;
docs/architectures.md §4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
        # the two halves as two convolutions of the weights' halves: each comes out dense, where
        # halves of one channels-last output are strided, and elementwise passes over strided
        # full-resolution maps ran at less than half speed (DeepFill v2's forward 7-10 % faster)
        x, conv = self.pad(x), self.conv
        features, gates = (F.conv2d(x, conv.weight[part], conv.bias[part], conv.stride, conv.padding, conv.dilation)
                           for part in (slice(None, self.out_channels), slice(self.out_channels, None)))
        return self.activation(features) * gates.sigmoid_()  # in place: the convolution's backward needs not its output

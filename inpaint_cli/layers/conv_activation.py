"""A convolution and its activation with "same" zero padding: DeepFill v1's `gen_conv`
(Yu et al., CVPR 2018), and the base of DeepFill v2's gated convolution (`gated_conv`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        tf_same: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = self._output_channels(width)
        self.tf_same = tf_same
        padding = 0 if tf_same else dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, width, kernel_size, stride, padding, dilation)
        self.activation = activation if activation is not None else nn.ELU()

    def _output_channels(self, width: int) -> int:
        """The block's output channels for a convolution of `width` filters."""
        return width

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """TF 'SAME' padding where `tf_same` (`tf_same_pad`); otherwise the convolution pads."""
        if self.tf_same:
            return tf_same_pad(x, self.conv.kernel_size[0], self.conv.stride[0], self.conv.dilation[0])
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(self.pad(x)))


def tf_same_pad(x: torch.Tensor, kernel_size: int, stride: int, dilation: int) -> torch.Tensor:
    """Zero padding of TF's 'SAME' convolutions: ceil(size / stride) outputs, the odd padding pixel
    at the bottom / right (stride 2 on an even size pads 0 before, 1 after; stride 1 is symmetric)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((-(-size // stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)

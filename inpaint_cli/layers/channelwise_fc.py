"""Channel-wise fully connected layer (Pathak et al., CVPR 2016, §3.1; docs/architectures.md §1).

Each of the m feature maps (n x n) is flattened and multiplied by its own n^2 x n^2 matrix, with
no connection across channels: m * n^4 weights instead of a full FC layer's m^2 * n^4. The paper
follows it with a stride-1 convolution that mixes the channels (the caller adds that).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelwiseFC(nn.Module):
    """y[b, c] = x[b, c].flatten() @ W[c], reshaped to n x n; `W` is m x n^2 x n^2, no bias."""

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.channels, self.size = channels, size
        area = size * size
        self.weight = nn.Parameter(torch.empty(channels, area, area))
        nn.init.normal_(self.weight, std=area**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        if (channels, height, width) != (self.channels, self.size, self.size):
            raise ValueError(
                f"channel-wise FC expects {self.channels} x {self.size} x {self.size} maps,"
                f" got {channels} x {height} x {width}"
            )
        # the weights in the maps' dtype: under CPU autocast (`fill --precision bf16`) the maps
        # arrive in bf16, and einsum, which autocast does not list, would meet float32 weights
        # wherever it is decomposed below autocast (torch's FlopCounterMode)
        y = torch.einsum("bcp,cpq->bcq", x.flatten(2), self.weight.to(x.dtype))
        return y.view(batch, channels, height, width)

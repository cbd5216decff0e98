"""Partial convolution (Liu et al., ECCV 2018; NVIDIA `models/partialconv2d.py`; docs/architectures.md §5).

The convolution sees only valid pixels: its input is multiplied by the validity mask, the response
is re-scaled by `window size / number of valid entries under the window`, and the mask is updated
(a location becomes valid if any valid entry fed it). A window with no valid entry outputs exactly
zero (the bias is not added) and stays a hole. Zero padding counts as hole.

The mask (1 = valid) has either one channel (shared by all input channels, NVIDIA's default) or one
channel per input channel (`multi_channel=True` in NVIDIA's code, used where features of different
validity are concatenated, as in the PConv U-Net decoder); the window size is `mask channels * k * k`
accordingly. The updated mask always has one channel: every output channel sees the same windows.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

#: NVIDIA's guard against division by zero in the valid-entry count (1e-6 for fp16 there; the mask
#: path runs in float32 here, so 1e-8 always works)
_COUNT_EPSILON = 1e-8


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast disabled (a no-op on the meta device, which has no autocast)."""
    if device.type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


class PartialConv2d(nn.Conv2d):
    """`nn.Conv2d` whose forward takes `(features, valid_mask)` and returns both, updated."""

    def forward(  # type: ignore[override]
        self, features: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask_channels = valid.shape[1]
        if mask_channels not in (1, features.shape[1]):
            raise ValueError(
                f"mask has {mask_channels} channels; expected 1 or {features.shape[1]}"
            )
        # The mask path is exact bookkeeping: float32 and no autocast, counts up to C * k * k.
        with torch.no_grad(), _autocast_off(features.device):
            ones = torch.ones(1, mask_channels, *self.kernel_size, device=valid.device)
            count = F.conv2d(
                valid.float(), ones, None, self.stride, self.padding, self.dilation
            )
            window = float(ones.numel())
            new_valid = count.clamp(0, 1)
            ratio = window / (count + _COUNT_EPSILON) * new_valid
        raw = F.conv2d(
            features * valid.to(features.dtype),
            self.weight,
            None,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
        output = raw * ratio.to(raw.dtype)
        if self.bias is not None:
            output = (output + self.bias.view(1, -1, 1, 1)) * new_valid.to(output.dtype)
        return output, new_valid

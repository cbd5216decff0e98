"""Partial convolution (Liu et al., ECCV 2018; NVIDIA `models/partialconv2d.py`; docs/architectures.md §5).

The convolution sees only valid pixels: its input is multiplied by the validity mask, the response
is re-scaled by `window size / number of valid entries under the window`, and the mask is updated
(a location becomes valid if any valid entry fed it). A window with no valid entry outputs exactly
zero (the bias is not added) and stays a hole. Zero padding counts as hole.

The mask (1 = valid) has either one channel (shared by all input channels, NVIDIA's default) or one
channel per input channel (`multi_channel=True` in NVIDIA's code, used where features of different
validity are concatenated, as in the PConv U-Net decoder); the window size is `mask channels * k * k`
accordingly. The updated mask always has one channel: every output channel sees the same windows.
`forward_premasked` computes the concatenated case from the parts and their one-channel masks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

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
        return self._partial([features * valid.to(features.dtype)], valid, (1,) * mask_channels)

    def forward_premasked(
        self, parts: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` of the channel-wise join of `parts`, each `(features already multiplied by
        their valid mask, that one-channel mask)`, as with one mask channel per feature channel
        (the U-Net decoder's skip joins). Neither the joined features nor their mask is built:
        each part's mask counts once per channel of its features, and each part meets its own
        slice of the weights. Taking features masked lets a caller multiply once for two uses."""
        if any(valid.shape[1] != 1 for _, valid in parts):
            raise ValueError("forward_premasked takes one mask channel per part")
        masks = torch.cat([valid for _, valid in parts], dim=1) if len(parts) > 1 else parts[0][1]
        return self._partial([masked for masked, _ in parts], masks, tuple(masked.shape[1] for masked, _ in parts))

    def _partial(
        self, masked: Sequence[torch.Tensor], valid: torch.Tensor, channels_per_mask: tuple[int, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The convolution of the join of `masked` (features x valid), re-scaled by the valid
        entries under each window, which mask channel i counts `channels_per_mask[i]` times."""
        # The mask path is exact bookkeeping: float32 and no autocast, counts up to C * k * k.
        with torch.no_grad(), _autocast_off(valid.device):
            counts = torch.tensor(channels_per_mask, dtype=torch.float32, device=valid.device)
            window_weights = counts.view(1, -1, 1, 1).repeat(1, 1, *self.kernel_size)
            count = F.conv2d(valid.float(), window_weights, None, self.stride, self.padding, self.dilation)
            window = float(sum(channels_per_mask) * self.kernel_size[0] * self.kernel_size[1])
            new_valid = count.clamp(0, 1)
            ratio = window / (count + _COUNT_EPSILON) * new_valid
        output = self._convolve_joined(masked)
        if self.bias is not None:
            # (raw + bias x count / window) x ratio: raw x window / count + bias where any entry is
            # valid, 0 where none is; in place on the convolution's output, which its backward
            # does not need
            output.addcmul_(self.bias.view(1, -1, 1, 1), (count / window).to(output.dtype))
        return output.mul_(ratio.to(output.dtype)), new_valid

    def _convolve_joined(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """The convolution (no bias) of the channel-wise join of `parts`: the sum of each part's
        convolution with its input channels' slice of the weights, cheaper than building the join."""
        if len(parts) > 1 and self.groups != 1:
            raise ValueError("a grouped partial convolution takes one part")
        output, start = None, 0
        for part in parts:
            weight = self.weight if len(parts) == 1 else self.weight[:, start : start + part.shape[1]]
            term = F.conv2d(part, weight, None, self.stride, self.padding, self.dilation, self.groups)
            output = term if output is None else output.add_(term)
            start += part.shape[1]
        return output

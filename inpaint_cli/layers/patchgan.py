"""PatchGAN discriminators (Isola et al., CVPR 2017): a stack of 4x4 convs + LeakyReLU(0.2) ending in
a 1-channel 4x4 conv that outputs a map of logits, one per overlapping patch.

Two inpainting variants share this structure (docs/architectures.md §6, §7):

- AOT-GAN's SM-PatchGAN: strides 2, 2, 2, 1, padding 1, spectral norm on every stage, no bias.
- LaMa's pix2pixHD `NLayerDiscriminator`: strides 2, 2, 2, 2, 1, padding 2, BatchNorm on every
  stage but the first, bias everywhere; its stage activations feed the feature-matching loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

NORMS = ("none", "batch", "spectral")


class PatchDiscriminator(nn.Module):
    """Stages `conv 4x4 (stride s) [+ norm] + LeakyReLU(0.2)` of the given widths, then the logits.

    `norm` is "batch" (a BatchNorm after the conv), "spectral" (spectral norm on the conv weight)
    or "none"; `norm_first_stage` says whether the first stage gets it too. The final 1-channel
    conv (stride 1, same padding) never has a norm and always has a bias.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        strides: Sequence[int],
        padding: int,
        norm: str,
        norm_first_stage: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; known: {', '.join(NORMS)}")
        if len(widths) != len(strides):
            raise ValueError("one stride per stage expected")
        stages = []
        previous = in_channels
        for index, (width, stride) in enumerate(zip(widths, strides)):
            use_norm = norm != "none" and (index > 0 or norm_first_stage)
            conv: nn.Module = nn.Conv2d(previous, width, 4, stride, padding, bias=bias)
            layers: list[nn.Module] = []
            if use_norm and norm == "spectral":
                conv = spectral_norm(conv)
            layers.append(conv)
            if use_norm and norm == "batch":
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, True))
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.logits = nn.Conv2d(previous, 1, 4, 1, padding)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits map and the activation of every stage (for feature matching)."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self.logits(x), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

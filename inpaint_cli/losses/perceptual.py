"""Feature losses on a frozen backbone's activations (`inpaint_cli.layers.perceptual`): the
perceptual loss (Johnson et al., ECCV 2016) as PConv and AOT-GAN use it, its squared form (LaMa's
high-receptive-field loss) and the Gram-matrix style loss (Gatys et al., CVPR 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def feature_l1(
    features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over layers of the mean absolute difference (perceptual loss)."""
    return sum(
        (F.l1_loss(f.float(), t.float()) for f, t in zip(features, targets, strict=True)),
        torch.zeros((), device=features[0].device),
    )


def feature_mse(
    features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over layers of the mean squared difference (LaMa's high-receptive-field loss)."""
    return sum(
        (F.mse_loss(f.float(), t.float()) for f, t in zip(features, targets, strict=True)),
        torch.zeros((), device=features[0].device),
    )


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """`F F^T / (C H W)` per sample (N x C x C), in float32 with autocast off (no fp16 overflow)."""
    batch, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(batch, channels, height * width)
        return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def style_l1(
    features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over layers of the mean absolute difference of Gram matrices (style loss)."""
    return sum(
        (
            F.l1_loss(gram_matrix(f), gram_matrix(t))
            for f, t in zip(features, targets, strict=True)
        ),
        torch.zeros((), device=features[0].device),
    )

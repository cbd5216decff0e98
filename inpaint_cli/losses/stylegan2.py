"""The StyleGAN2 training objective as Co-ModGAN and MAT use it (Karras et al., CVPR 2020;
StyleGAN2-ADA `training/loss.py`, MAT `losses/loss.py`; docs/architectures.md §S, §8.4, §9.5).

- Non-saturating logistic loss: G `softplus(-D(fake))`, D `softplus(D(fake)) + softplus(-D(real))`
  (the BCE losses of `losses.adversarial`, which are exactly these).
- R1 (Mescheder et al., ICML 2018): `(gamma / 2) * sum (d sum D(real) / d real)^2` per sample,
  lazy: every `interval`-th D step, multiplied by `interval`.
- Lazy-regularisation corrections of Adam: `lr * c`, `beta ** c` with `c = I / (I + 1)`
  (I = 16 for D; 4 for G, applied although neither network has a G regulariser here).
- The weight average G_ema with a half-life in thousands of images (10 kimg).
- MAT's perceptual loss: 1/4 L1(conv4_4) + 1/2 L1(conv5_4) of VGG19, pre-ReLU features.

No path-length regulariser: neither official recipe uses one (Co-ModGAN `G_reg` None, MAT `--pl False`).
"""

from __future__ import annotations

import torch

from inpaint_cli.losses.adversarial import r1_penalty
from inpaint_cli.layers.perceptual import VGGFeatures

#: MAT `PerceptualLoss(layer_weights=dict(conv4_4=1/4, conv5_4=1/2))`
MAT_PERCEPTUAL_LAYERS = {"conv4_4": 0.25, "conv5_4": 0.5}


def lazy_adam_settings(
    lr: float, betas: tuple[float, float], interval: int | None
) -> tuple[float, tuple[float, float]]:
    """Learning rate and betas of a network regularised every `interval` steps (None: none)."""
    if not interval:
        return lr, betas
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def ema_beta(batch: int, half_life_kimg: float) -> float:
    """Per-step decay of G_ema: `0.5 ** (batch / (half_life_kimg * 1000))` (0.997784 at 32, 10)."""
    return 0.5 ** (batch / (half_life_kimg * 1000))


def r1_regularization(real_logits: torch.Tensor, real_input: torch.Tensor, gamma: float, interval: int) -> torch.Tensor:
    """Lazy R1 term: `interval * gamma / 2 * mean_batch(sum grad^2)`; `real_input` needs grad."""
    return r1_penalty(real_logits, real_input) * (gamma / 2 * interval)


def mat_perceptual_loss(vgg: VGGFeatures, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MAT `losses/pcp.py`: weighted mean absolute differences of pre-ReLU VGG19 features; the
    images in [0, 1] (the backbone applies the ImageNet normalisation itself)."""
    layers = tuple(MAT_PERCEPTUAL_LAYERS)
    features = vgg(output, layers)
    with torch.no_grad():
        targets = vgg(target, layers)
    return sum(
        (weight * (f.float() - t.float()).abs().mean() for weight, f, t in zip(MAT_PERCEPTUAL_LAYERS.values(), features, targets)),
        torch.zeros((), device=output.device),
    )

"""Adversarial losses shared by the recipes. Discriminators output logits everywhere.

- BCE / non-saturating GAN (Goodfellow et al. 2014): Context Encoder, GLCIC, LaMa.
- WGAN-GP (Gulrajani et al. 2017), penalty optionally restricted to hole pixels: DeepFill v1.
- Hinge (Lim & Ye 2017; neuralgym's `gan_hinge_loss` with its 0.5 factors): DeepFill v2.
- R1 penalty (Mescheder et al. 2018): LaMa.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from inpaint_cli.losses.batch_share import rand_per_row


def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(real) - log(1 - D(fake)), from logits; mean over elements, summed over the two."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(fake) (equals softplus(-logit))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def hinge_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 mean relu(1 - D(x)) + 0.5 mean relu(1 + D(x_hat)) (neuralgym `gan_hinge_loss`)."""
    return 0.5 * F.relu(1 - real).mean() + 0.5 * F.relu(1 + fake).mean()


def hinge_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def wgan_gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean((||grad_x critic(x~) * mask||_2 - 1)^2) at x~ = real + a (fake - real), a ~ U(0,1).

    One `a` per sample; `mask` (N x 1 x H x W, 1 = hole) restricts the gradient norm to hole
    pixels, DeepFill v1's modification.
    """
    alpha = rand_per_row(real.shape[0], real.device, real.dtype).view(-1, 1, 1, 1)
    interpolates = (real + alpha * (fake.detach() - real)).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    if mask is not None:
        gradients = gradients * mask
    norms = gradients.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


def r1_penalty(real_logits: torch.Tensor, real_input: torch.Tensor) -> torch.Tensor:
    """Squared gradient norm of sum D(real) w.r.t. the real input, per sample, batch mean.

    `real_input` must have had `requires_grad_(True)` before the discriminator saw it.
    """
    (gradients,) = torch.autograd.grad(real_logits.sum(), real_input, create_graph=True)
    return gradients.flatten(1).pow(2).sum(1).mean()

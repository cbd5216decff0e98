"""DeepFill v1 (Yu, Lin, Yang, Shen, Lu, Huang, "Generative Image Inpainting with Contextual
Attention", CVPR 2018; docs/architectures.md §3).

A coarse dilated encoder-decoder, then a refinement network whose two branches (dilated convs and
contextual attention) are merged; plain convolutions with ELU, outputs clipped to [-1, 1], input
`cat(x_in, ones, mask)` at both stages (`inpaint_cli.archs._deepfill`). Trained with L1 losses and
a WGAN-GP with a global and a local critic, gradient penalties restricted to hole pixels, 5 critic
steps per generator step, Adam lr 1e-4, betas (0.5, 0.9) (official `inpaint.yml`, `v1.0.0`).

Paper vs official code:
- the hole's L1 is weighted by the paper's spatial discount gamma^l, l = distance to the nearest
  known pixel, gamma = 0.99 (paper and issue 3), on the actual hole; the code uses a fixed map over
  the 128 x 128 bbox with `SPATIAL_DISCOUNTING_GAMMA: 0.9` (`discount_gamma=0.9` gives that gamma);
- the hole term is normalised by the hole area (the code takes the mean over the bbox crop);
- masks and local-critic crops are per image (the code shares one mask across the batch); the
  local critic sees the half-size patch centred on the hole's bounding box, clamped inside;
- critics scale with the training size: global (size)^2, local (size / 2)^2 (256 and 128 in the
  paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inpaint_cli.archs._deepfill import (
    CoarseToFineInpainter,
    CoarseToFineTraining,
    deepfill_bbox_mask,
    glorot_init,
    spatial_discount,
)
from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainOptions
from inpaint_cli.layers.conv_activation import ConvActivation
from inpaint_cli.layers.crops import crop, hole_patch_corners
from inpaint_cli.losses.adversarial import wgan_gradient_penalty
from inpaint_cli.losses.batch_share import mean_over_processes
from inpaint_cli.masks import no_parameters


@dataclass(frozen=True)
class DeepFillV1Config:
    channels: int = 32  # cnum of the generator
    critic_channels: int = 64  # width of the critics' first conv
    train_size: int = 256  # the paper's training size; the critics follow `--size` (global size^2, local (size / 2)^2)
    softmax_scale: float = 10.0  # contextual attention
    tf_compatible: bool = False  # TF 'SAME' padding and resizes (converted official weights)
    channel_order: str = "rgb"  # "bgr": the official networks' input order
    discount_gamma: float = 0.99  # paper, issue 3; official inpaint.yml: 0.9
    coarse_l1_weight: float = 1.2  # COARSE_L1_ALPHA: stage-1 L1 relative to stage 2
    hole_l1_weight: float = 1.2  # L1_LOSS_ALPHA: discounted L1 on the hole
    known_l1_weight: float = 1.2  # AE_LOSS_ALPHA: L1 on the known region
    adversarial_weight: float = 0.001  # GAN_LOSS_ALPHA
    gradient_penalty_weight: float = 10.0  # WGAN_GP_LAMBDA
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)


class DeepFillV1(CoarseToFineInpainter, InpaintModel):
    """The v1 generator; `inpaint_with_attention` also returns the attention map."""

    def __init__(self, config: DeepFillV1Config) -> None:
        super().__init__(
            ConvActivation,
            config.channels,
            refine_with_mask=True,
            output="clip",
            flow_upsample="nearest",
            softmax_scale=config.softmax_scale,
            tf_compatible=config.tf_compatible,
            channel_order=config.channel_order,
        )


class WGANCritic(nn.Module):
    """`dis_conv` stack (5 x 5 stride-2 convs, LeakyReLU 0.2, no normalisation) and a dense head."""

    def __init__(self, widths: tuple[int, ...], input_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 5, 2, 2), nn.LeakyReLU(0.2)]
            in_channels = width
        self.input_size = input_size
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** len(widths)
        self.head = nn.Linear(in_channels * side * side, 1)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).flatten()


class DeepFillV1Critics(nn.Module):
    """Global critic on the whole image, local critic on the half-size patch around the hole."""

    def __init__(self, channels: int, image_size: int) -> None:
        super().__init__()
        if image_size % 32:
            raise ValueError(f"DeepFill v1's critics need a multiple of 32, got size {image_size}")
        c = channels
        self.global_critic = WGANCritic((c, 2 * c, 4 * c, 4 * c), image_size)
        self.local_critic = WGANCritic((c, 2 * c, 4 * c, 8 * c), image_size // 2)

    def forward(self, image: torch.Tensor, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.global_critic(image), self.local_critic(patch)


class DeepFillV1Recipe(CoarseToFineTraining):
    """WGAN-GP, local + global critics, 5 critic steps per generator step, bbox holes; an
    optional L1-only first phase (`phases`).

    L_G = 0.001 adv + 1.2 hole_l1 + 1.2 known_l1 with
    hole_l1 = [1.2 mean(|x - x1| D) + mean(|x - x2| D)] / mean(M) (D: spatial discount) and
    known_l1 = [1.2 mean(|x - x1| (1 - M)) + mean(|x - x2| (1 - M))] / mean(1 - M);
    L_D = sum over critics of mean(D(x_hat)) - mean(D(x)) + 10 (gp_global + gp_local).
    """

    mask_kinds = (("deepfill-bbox", 1.0),)
    critic_steps = 5
    arch_name = "deepfill-v1"
    train_size_multiple = 32

    def __init__(self, config: DeepFillV1Config, options: TrainOptions) -> None:
        super().__init__(config, options)
        self.patch_size = options.size // 2

    def phases(self) -> list[Phase]:
        """The paper trains adversarially from the first step; `--phase-steps N` puts N L1-only
        steps first (the official code's optional pretraining, `PRETRAIN_COARSE_NETWORK`, widened
        to both stages): five times cheaper per step without the critics, for slow hardware."""
        return self.scaled_phases(
            (0, 1), ("reconstruction", "adversarial"), ((True, False), (True, True))
        )

    def build_discriminator(self) -> nn.Module:
        return DeepFillV1Critics(self.config.critic_channels, self.options.size)

    def discriminator_loss(
        self,
        discriminator: DeepFillV1Critics,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake = self.real_and_completed(image, mask, output["refined"].detach())
        corners = hole_patch_corners(mask, self.patch_size)
        size = self.patch_size
        real_patch, fake_patch, mask_patch = (crop(t, corners, size) for t in (real, fake, mask))
        real_global, real_local = discriminator(real, real_patch)
        fake_global, fake_local = discriminator(fake, fake_patch)
        wgan = fake_global.mean() - real_global.mean() + fake_local.mean() - real_local.mean()
        penalty = wgan_gradient_penalty(
            discriminator.global_critic, real, fake, mask
        ) + wgan_gradient_penalty(discriminator.local_critic, real_patch, fake_patch, mask_patch)
        loss = wgan + self.config.gradient_penalty_weight * penalty
        return loss, {"d_wgan": wgan.item(), "d_penalty": penalty.item()}

    def generator_loss(
        self,
        discriminator: DeepFillV1Critics | None,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
        phase: Phase,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        _, completed = self.real_and_completed(image, mask, output["refined"])
        coarse_error, refined_error = self.stage_errors(image, output)
        discount = spatial_discount(mask, self.config.discount_gamma)
        known = 1 - mask
        weight = self.config.coarse_l1_weight
        hole_l1 = weight * (coarse_error * discount).mean() + (refined_error * discount).mean()
        hole_l1 = hole_l1 / mean_over_processes(mask.mean()).clamp_min(1e-6)
        known_l1 = weight * (coarse_error * known).mean() + (refined_error * known).mean()
        known_l1 = known_l1 / mean_over_processes(known.mean()).clamp_min(1e-6)
        rec = self.config.hole_l1_weight * hole_l1 + self.config.known_l1_weight * known_l1
        logs = {"rec": rec.item(), "hole_l1": hole_l1.item(), "known_l1": known_l1.item()}
        loss = rec
        if phase.train_discriminator and discriminator is not None:
            patch = crop(completed, hole_patch_corners(mask, self.patch_size), self.patch_size)
            score_global, score_local = discriminator(completed, patch)
            adv = -score_global.mean() - score_local.mean()
            loss = loss + self.config.adversarial_weight * adv
            logs["adv"] = adv.item()
        return loss, logs


def deepfill_bbox(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    no_parameters("deepfill-bbox", parameters)
    return deepfill_bbox_mask(rng, height, width)


CONFIGS = {
    "paper": DeepFillV1Config(),
    "half": DeepFillV1Config(channels=16, critic_channels=32),
    "tiny": DeepFillV1Config(channels=8, critic_channels=8, train_size=64),
    # the official TF networks' conventions, for converted weights (`inpaint convert`)
    "official": DeepFillV1Config(tf_compatible=True, channel_order="bgr"),
}

SPECS = (
    ArchSpec(
        name="deepfill-v1",
        title="Yu et al., CVPR 2018",
        input_note="any size (padded to a multiple of 8); RGB + ones + mask",
        build_generator=DeepFillV1,
        order=30,
        configs=CONFIGS,
        default_config="half",  # the bundled weights' config (weights/README.md)
        recipe=DeepFillV1Recipe,
        training_masks={"deepfill-bbox": deepfill_bbox},
    ),
)

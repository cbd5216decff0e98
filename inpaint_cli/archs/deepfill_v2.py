"""DeepFill v2 (Yu, Lin, Yang, Shen, Lu, Huang, "Free-Form Image Inpainting with Gated
Convolution", ICCV 2019; docs/architectures.md §4).

DeepFill v1's coarse-to-fine generator and contextual attention with every convolution gated
(`inpaint_cli.archs._deepfill` with `GatedConv2d`: output = half the conv width), tanh outputs and
a 3-channel stage-2 input. One spectral-normalised PatchGAN (SN-PatchGAN) on `cat(image, mask)`
with a hinge loss on every output element replaces v1's two WGAN critics; the generator loss is
plain L1 on both stages plus the GAN loss, 1 : 1. Adam lr 1e-4, betas (0.5, 0.999), one D step
per G step, free-form strokes united with a bbox hole (official master `inpaint_model.py`).
Masks are per image (the official code shares one mask across the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from inpaint_cli.archs._deepfill import CoarseToFineInpainter, CoarseToFineTraining, deepfill_bbox_mask, glorot_init
from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase
from inpaint_cli.layers.gated_conv import GatedConv2d
from inpaint_cli.losses.adversarial import hinge_discriminator_loss, hinge_generator_loss
from inpaint_cli.masks import brush_strokes, no_parameters


@dataclass(frozen=True)
class DeepFillV2Config:
    channels: int = 48  # cnum: width of the first gated conv (24 output channels)
    critic_channels: int = 64  # width of the SN-PatchGAN's first conv
    softmax_scale: float = 10.0  # contextual attention
    tf_compatible: bool = False  # TF 'SAME' padding and resizes (converted official weights)
    channel_order: str = "rgb"  # "bgr": the official networks' input order
    l1_weight: float = 1.0  # l1_loss_alpha, on each stage
    adversarial_weight: float = 1.0  # gan_loss_alpha
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)


class DeepFillV2(CoarseToFineInpainter, InpaintModel):
    """The v2 generator; `inpaint_with_attention` also returns the attention map."""

    def __init__(self, config: DeepFillV2Config) -> None:
        if config.channels % 4:
            raise ValueError(f"DeepFill v2 needs channels divisible by 4, got {config.channels}")
        super().__init__(
            GatedConv2d,
            config.channels,
            refine_with_mask=False,
            output="tanh",
            flow_upsample="bilinear",
            softmax_scale=config.softmax_scale,
            tf_compatible=config.tf_compatible,
            channel_order=config.channel_order,
        )


class SNPatchGAN(nn.Module):
    """Six spectral-normalised 5 x 5 stride-2 convs with LeakyReLU(0.2) after each; every element
    of the final map is one GAN output (`build_sn_patch_gan_discriminator`)."""

    def __init__(self, channels: int = 64, in_channels: int = 4) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for width in (c, 2 * c, 4 * c, 4 * c, 4 * c, 4 * c):
            conv = nn.Conv2d(in_channels, width, 5, 2, 2)
            glorot_init(conv)
            layers += [spectral_norm(conv), nn.LeakyReLU(0.2)]
            in_channels = width
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, mask], dim=1)).flatten(1)


def build_discriminator(config: DeepFillV2Config) -> SNPatchGAN:
    return SNPatchGAN(config.critic_channels)


class DeepFillV2Recipe(CoarseToFineTraining):
    """Hinge SN-PatchGAN, 1 : 1 updates. L_G = adv + (mean|x - x1| + mean|x - x2|);
    L_D = 0.5 mean relu(1 - D(x)) + 0.5 mean relu(1 + D(x_hat)), x_hat the composite."""

    mask_kinds = (("deepfill-v2", 1.0),)
    critic_steps = 1
    arch_name = "deepfill-v2"
    train_size_multiple = 8

    def phases(self) -> list[Phase]:
        """The paper trains adversarially from the first step; `--phase-steps N` puts N L1-only
        steps first, as DeepFill v1's recipe does (no critic: far cheaper on slow hardware)."""
        return self.scaled_phases(
            (0, 1), ("reconstruction", "adversarial"), ((True, False), (True, True))
        )

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.config)

    def discriminator_loss(
        self,
        discriminator: nn.Module,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake = self.real_and_completed(image, mask, output["refined"].detach())
        loss = hinge_discriminator_loss(discriminator(real, mask), discriminator(fake, mask))
        return loss, {"d_hinge": loss.item()}

    def generator_loss(
        self,
        discriminator: nn.Module | None,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
        phase: Phase,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        _, completed = self.real_and_completed(image, mask, output["refined"])
        coarse_error, refined_error = self.stage_errors(image, output)
        rec = self.config.l1_weight * (coarse_error.mean() + refined_error.mean())
        logs = {"rec": rec.item()}
        loss = rec
        if phase.train_discriminator and discriminator is not None:
            adv = hinge_generator_loss(discriminator(completed, mask))
            loss = loss + self.config.adversarial_weight * adv
            logs["adv"] = adv.item()
        return loss, logs


def deepfill_v2_holes(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """DeepFill v2 training masks: brush strokes united with the v1 bbox mask (§4)."""
    no_parameters("deepfill-v2", parameters)
    return brush_strokes(rng, height, width) | deepfill_bbox_mask(rng, height, width)


CONFIGS = {
    "paper": DeepFillV2Config(),
    "half": DeepFillV2Config(channels=24, critic_channels=32),
    # DeepFill v1 half's feature widths (16 at conv1): the bundled weights started from v1's
    # (weights/deepfill_v1_to_v2.py)
    "two-thirds": DeepFillV2Config(channels=32, critic_channels=32),
    "tiny": DeepFillV2Config(channels=8, critic_channels=8),
    # the official TF networks' conventions, for converted weights (`inpaint convert`)
    "official": DeepFillV2Config(tf_compatible=True, channel_order="bgr"),
}

SPECS = (
    ArchSpec(
        name="deepfill-v2",
        title="Yu et al., ICCV 2019",
        input_note="any size (padded to a multiple of 8); RGB + ones + mask, gated convolutions",
        build_generator=DeepFillV2,
        order=40,
        configs=CONFIGS,
        default_config="two-thirds",  # the bundled weights' config (weights/README.md)
        recipe=DeepFillV2Recipe,
        training_masks={"deepfill-v2": deepfill_v2_holes},
    ),
)

"""Partial Convolutions: Image Inpainting for Irregular Holes (Liu et al., ECCV 2018).
docs/architectures.md §5.

A U-Net whose every convolution is a partial convolution (`layers.partial_conv`): the encoder halves
the resolution at each of its `levels` stages (kernels 7, 5, 5, 3...), the decoder upsamples
features and masks (nearest), concatenates the skip of the same resolution with its mask and
applies a 3x3 partial conv, down to the input image itself. The hole shrinks layer by layer, so no
placeholder value leaks into the features. Output is linear, in the ImageNet-normalised space the
input is given in (naoto0804's convention; 0 = the mean colour). No discriminator.

Training (paper §4): Adam 2e-4 with BatchNorm active everywhere, then fine-tuning at 5e-5 with the
encoder's BatchNorm frozen (eval mode) so hole pixels do not pollute its statistics. Loss (Eq. 1-7):
1 L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv; the pixel
terms are computed on the [0, 1] image scale, the feature terms on VGG16 pool1-pool3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.partial_conv import PartialConv2d
from inpaint_cli.layers.perceptual import IMAGENET_MEAN, IMAGENET_STD, VGGFeatures, optional_backbone
from inpaint_cli.losses.perceptual import feature_l1, style_l1

#: VGG16 layers of the perceptual and style losses (naoto `VGG16FeatureExtractor`)
VGG_LAYERS = ("pool1", "pool2", "pool3")
TV_REGIONS = ("hole", "image")


@dataclass(frozen=True)
class PConvConfig:
    """Encoder level i: partial conv `kernels[i]` x `kernels[i]`, stride 2, `widths[i]` channels."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512, 512)
    kernels: tuple[int, ...] = (7, 5, 5, 3, 3, 3, 3, 3)
    bias: bool = True  # bias on every partial conv (NVIDIA); False: only the last (naoto0804)
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN  # input normalisation
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    valid_weight: float = 1.0
    hole_weight: float = 6.0
    perceptual_weight: float = 0.05
    style_weight: float = 120.0  # each of the output and composite style terms
    tv_weight: float = 0.1
    tv_region: str = "hole"  # "hole": the 1-px dilated hole (paper); "image": everywhere (naoto)
    lr: float = 2e-4
    finetune_lr: float = 5e-5

    @property
    def levels(self) -> int:
        return len(self.widths)


class PConvStage(nn.Module):
    """Partial conv, then BatchNorm and an activation where the stage has them."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        batch_norm: bool,
        activation: nn.Module | None,
        bias: bool,
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=bias
        )
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in")
        if bias:
            nn.init.zeros_(self.conv.bias)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.activation = activation

    def forward(
        self, parts: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The stage on the channel-wise join of `parts`, each (features multiplied by their valid
        mask, that one-channel mask): the updated features (not masked) and mask."""
        features, valid = self.conv.forward_premasked(parts)
        if self.norm is not None:
            features = self.norm(features)
        if self.activation is not None:
            features = self.activation(features)
        return features, valid


def to_network_scale(image: torch.Tensor, config: PConvConfig) -> torch.Tensor:
    mean = image.new_tensor(config.pixel_mean).view(1, 3, 1, 1)
    std = image.new_tensor(config.pixel_std).view(1, 3, 1, 1)
    return (image - mean) / std


def to_image_scale(output: torch.Tensor, config: PConvConfig) -> torch.Tensor:
    """The network's linear output back on the [0, 1] scale (not clamped)."""
    mean = output.new_tensor(config.pixel_mean).view(1, 3, 1, 1)
    std = output.new_tensor(config.pixel_std).view(1, 3, 1, 1)
    return output * std + mean


class PConvUNet(InpaintModel):
    """The PConv U-Net (paper appendix): 32,865,236 parameters with 8 levels."""

    def __init__(self, config: PConvConfig) -> None:
        super().__init__()
        if len(config.kernels) != config.levels:
            raise ValueError("one kernel size per level expected")
        self.config = config
        self.size_multiple = 2**config.levels
        self.encoder_norm_frozen = False
        widths = config.widths
        self.encoder = nn.ModuleList(
            PConvStage(
                widths[i - 1] if i else 3, widths[i], config.kernels[i], 2,
                batch_norm=i > 0, activation=nn.ReLU(), bias=config.bias,
            )
            for i in range(config.levels)
        )
        # decoder[0] works at the deepest level: it upsamples level L and joins skip L - 1.
        self.decoder = nn.ModuleList(
            PConvStage(
                widths[i] + (widths[i - 1] if i else 3), widths[i - 1] if i else 3, 3, 1,
                batch_norm=i > 0,
                activation=nn.LeakyReLU(0.2) if i else None,
                bias=config.bias or i == 0,
            )
            for i in reversed(range(config.levels))
        )

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """`image` normalised (`to_network_scale`), `valid` N x 1 x H x W (1 = known): linear output."""
        skips = []
        features = image
        for stage in self.encoder:
            # each product of features and mask is made once, for the next stage and the skip
            masked = features * valid
            skips.append((masked, valid))
            features, valid = stage([(masked, valid)])
        for stage, skip in zip(self.decoder, reversed(skips)):
            # nearest upsampling commutes with the mask product, made at the lower resolution; the
            # two halves have different holes: the stage counts each by its own mask
            upsampled = (
                F.interpolate(features * valid, scale_factor=2.0, mode="nearest"),
                F.interpolate(valid, scale_factor=2.0, mode="nearest"),
            )
            features, valid = stage([upsampled, skip])
        return features

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        output = self(to_network_scale(image, self.config), 1 - mask)
        return to_image_scale(output, self.config).clamp(0, 1)

    def freeze_encoder_norm(self, frozen: bool = True) -> None:
        """Keep the encoder's BatchNorm in eval mode, whatever `train()` says (fine-tuning)."""
        self.encoder_norm_frozen = frozen
        self.train(self.training)

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self.encoder_norm_frozen:
            for stage in self.encoder:
                if stage.norm is not None:
                    stage.norm.eval()
        return self


def total_variation(image: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
    """Mean L1 of horizontal plus vertical neighbour differences; with `region` (N x 1 x H x W),
    only pairs whose two pixels both lie in it count (the mean is still over all pairs)."""
    horizontal = (image[..., :, 1:] - image[..., :, :-1]).abs()
    vertical = (image[..., 1:, :] - image[..., :-1, :]).abs()
    if region is not None:
        horizontal = horizontal * (region[..., :, 1:] * region[..., :, :-1])
        vertical = vertical * (region[..., 1:, :] * region[..., :-1, :])
    return horizontal.mean() + vertical.mean()


class PConvRecipe(TrainingRecipe):
    """Two phases, `train` (3/4 of the steps) and `finetune` (1/4; lr x 1/4, encoder BN frozen).

    The paper gives no split between its two stages; 3:1 is this project's choice (`--phase-steps`
    overrides it). Holes: generated irregular masks (the NVIDIA set is kept for evaluation).
    Without `options.backbone` (VGG16 ImageNet features) the perceptual and style terms are dropped.
    """

    mask_kinds = (("irregular", 1.0),)
    phase_lengths = (3, 1)

    def __init__(self, config: PConvConfig, options: TrainOptions) -> None:
        super().__init__(config, options)
        if config.tv_region not in TV_REGIONS:
            raise ValueError(f"unknown tv_region {config.tv_region!r}; known: {', '.join(TV_REGIONS)}")
        self.vgg = optional_backbone(
            lambda: VGGFeatures("vgg16"),
            options.backbone,
            arch="pconv",
            dropped="perceptual and style losses",
            expected="VGG16 ImageNet (torchvision vgg16-397923af.pth)",
        )

    @property
    def learning_rate(self) -> float:
        return self.options.lr or self.config.lr

    def phases(self) -> list[Phase]:
        return self.scaled_phases(
            self.phase_lengths, ("train", "finetune"), ((True, False), (True, False))
        )

    def optimizers(self, generator, discriminator):
        return {"generator": torch.optim.Adam(generator.parameters(), lr=self.learning_rate)}

    def enter_phase(self, phase: Phase, generator: PConvUNet, optimizers) -> None:
        """Set the phase's learning rate and encoder-BatchNorm state (idempotent; call on resume)."""
        finetune = phase.name == "finetune"
        generator.freeze_encoder_norm(finetune)
        scale = self.config.finetune_lr / self.config.lr if finetune else 1.0
        for group in optimizers["generator"].param_groups:
            group["lr"] = self.learning_rate * scale

    def generate(self, generator: PConvUNet, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The linear output on the [0, 1] scale, unclamped (so every pixel gets a gradient)."""
        return to_image_scale(generator(to_network_scale(image, self.config), 1 - mask), self.config)

    def prediction(self, output: torch.Tensor) -> torch.Tensor:
        return output.clamp(0, 1)

    def generator_loss(self, discriminator, image, mask, output, phase):
        config = self.config
        output = output.float()
        valid = 1 - mask
        composite = valid * image + mask * output
        valid_l1 = (valid * (output - image)).abs().mean()
        hole_l1 = (mask * (output - image)).abs().mean()
        reconstruction = config.valid_weight * valid_l1 + config.hole_weight * hole_l1
        region = F.max_pool2d(mask, 3, 1, 1) if config.tv_region == "hole" else None
        tv = total_variation(composite, region)
        loss = reconstruction + config.tv_weight * tv
        logs = {
            "rec": reconstruction.item(), "valid": valid_l1.item(), "hole": hole_l1.item(),
            "tv": tv.item(),
        }
        if self.vgg is not None:
            vgg = self.vgg.to_device_of(image)
            with torch.no_grad():
                target = vgg(image, VGG_LAYERS)
            out_features = vgg(output, VGG_LAYERS)
            comp_features = vgg(composite, VGG_LAYERS)
            perceptual = feature_l1(out_features, target) + feature_l1(comp_features, target)
            style = style_l1(out_features, target) + style_l1(comp_features, target)
            loss = loss + config.perceptual_weight * perceptual + config.style_weight * style
            logs.update(perceptual=perceptual.item(), style=style.item())
        return loss, logs


_SEVEN_LEVEL_QUARTER = PConvConfig(widths=(16, 32, 64, 128, 128, 128, 128), kernels=(7, 5, 5, 3, 3, 3, 3))

CONFIGS = {
    "paper": PConvConfig(),
    # naoto0804's 256 x 256 net (`layer_size=7`): one 512 level fewer
    "seven-level": PConvConfig(
        widths=(64, 128, 256, 512, 512, 512, 512), kernels=(7, 5, 5, 3, 3, 3, 3)
    ),
    "seven-level-half": PConvConfig(
        widths=(32, 64, 128, 256, 256, 256, 256), kernels=(7, 5, 5, 3, 3, 3, 3)
    ),
    "seven-level-quarter": _SEVEN_LEVEL_QUARTER,
    # the TV term weighed 10 x: it is what joins the fill to the known pixels around it (the
    # 1-pixel dilated hole), which the small net's fill of thin holes missed (weights/README.md)
    "seven-level-quarter-tv": replace(_SEVEN_LEVEL_QUARTER, tv_weight=1.0),
    # and no L_valid: the fill is composited, and reproducing the known pixels kept the last layer
    # from filling the hole's edge, where it lost to the harmonic fill (weights/README.md)
    "seven-level-quarter-hole-only": replace(_SEVEN_LEVEL_QUARTER, tv_weight=1.0, valid_weight=0.0),
    "tiny": PConvConfig(widths=(8, 16, 32), kernels=(7, 5, 5), lr=1e-3, finetune_lr=2.5e-4),
}

SPECS = (
    ArchSpec(
        name="pconv",
        title="Liu et al., ECCV 2018",
        input_note="H, W multiples of 2^levels (256 for paper, 128 for seven-level; padded); "
        "RGB x valid mask",
        build_generator=PConvUNet,
        order=50,
        configs=CONFIGS,
        default_config="seven-level-quarter-hole-only",
        recipe=PConvRecipe,
    ),
)

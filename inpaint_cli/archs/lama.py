"""LaMa: Resolution-robust Large Mask Inpainting with Fourier Convolutions (Suvorov et al., WACV
2022). docs/architectures.md §7.

A ResNet-style generator (official `FFCResNetGenerator`): a 7x7 stem and three stride-2 3x3 convs,
the last of which splits the features into a local quarter and a global three quarters; then
residual blocks of Fast Fourier Convolutions (`layers.ffc`), whose global branch is a 1x1 conv over
the 2-D spectrum of the whole feature map, so every block sees the whole image; then three
transposed convs and a 7x7 conv with a sigmoid. It is fully convolutional and the FFT spans the
whole map whatever its size, which is why a model trained at 256 x 256 fills 2k images.
Input: `cat(image * (1 - mask), mask)` in [0, 1]. Module names follow the official checkpoint
(`model.1.ffc.convl2l`, `model.5.conv1.ffc.convg2g.fu.conv_layer`...), so converted weights load
unchanged.

Discriminator: pix2pixHD's `NLayerDiscriminator` (4x4 convs, BatchNorm, LeakyReLU), whose stage
activations also feed the feature-matching loss. Losses (`big-lama.yaml`): known-pixel L1 x 10,
non-saturating adversarial x 10 with an R1 penalty (gamma 0.001) on real images and
`mask_as_fake_target` (only the hole of a prediction is a fake target for D), feature matching x 100,
high-receptive-field perceptual loss (ResNet50-dilated ADE20k features, MSE) x 30. Adam: G 1e-3,
D 1e-4. The official run also clips gradients at norm 1 (Lightning `gradient_clip_val`), which the
shared training loop does not do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.ffc import ConcatParts, FFCNormAct, FFCResnetBlock
from inpaint_cli.layers.patchgan import PatchDiscriminator
from inpaint_cli.layers.perceptual import ResNet50Dilated, optional_backbone
from inpaint_cli.losses.adversarial import bce_generator_loss, r1_penalty
from inpaint_cli.losses.perceptual import feature_mse
from inpaint_cli.masks import LamaBoxes, LamaMaskConfig, LamaStrokes, lama_kind


@dataclass(frozen=True)
class LaMaConfig:
    """Widths `base_channels` x (1, 2, 4, 8): the FFC blocks work at 8 x `base_channels`."""

    base_channels: int = 64
    downsamplings: int = 3  # stride-2 convs between the stem and the blocks (`n_downsampling`)
    blocks: int = 9
    global_ratio: float = 0.75  # share of the block channels in the global (spectral) branch
    discriminator_channels: int = 64
    discriminator_layers: int = 4
    known_l1_weight: float = 10.0
    missing_l1_weight: float = 0.0
    adversarial_weight: float = 10.0
    r1_gamma: float = 0.001
    feature_matching_weight: float = 100.0
    hrf_weight: float = 30.0
    lr: float = 1e-3
    discriminator_lr: float = 1e-4


class LaMaGenerator(InpaintModel):
    """The official `FFCResNetGenerator`: 27,048,835 parameters with 9 blocks, 50,975,875 with 18."""

    size_multiple = 8

    def __init__(self, config: LaMaConfig) -> None:
        super().__init__()
        self.config = config
        base, ratio = config.base_channels, config.global_ratio
        widths = [base * 2**i for i in range(config.downsamplings + 1)]
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFCNormAct(4, base, 7, 0.0, 0.0)]
        for i in range(config.downsamplings):
            last = i == config.downsamplings - 1
            layers.append(
                FFCNormAct(
                    widths[i], widths[i + 1], 3, 0.0, ratio if last else 0.0, stride=2, padding=1
                )
            )
        layers += [FFCResnetBlock(widths[-1], ratio) for _ in range(config.blocks)]
        layers.append(ConcatParts())
        for i in reversed(range(config.downsamplings)):
            layers += [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 3, 2, 1, output_padding=1),
                nn.BatchNorm2d(widths[i]),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(base, 3, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, network_input: torch.Tensor) -> torch.Tensor:
        """`cat(image * (1 - mask), mask)` (4 channels, [0, 1]) -> prediction in [0, 1]."""
        return self.model(network_input)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self(torch.cat([image * (1 - mask), mask], dim=1))


def build_discriminator(config: LaMaConfig) -> PatchDiscriminator:
    """pix2pixHD `NLayerDiscriminator` (padding 2, BatchNorm after the first stage, bias
    everywhere): `discriminator_layers` stride-2 stages, one stride-1 stage; 6,962,369 params."""
    widths = [
        min(config.discriminator_channels * 2**i, 512)
        for i in range(config.discriminator_layers + 1)
    ]
    strides = [2] * config.discriminator_layers + [1]
    return PatchDiscriminator(
        3, widths, strides, padding=2, norm="batch", norm_first_stage=False, bias=True
    )


class LaMaRecipe(TrainingRecipe):
    """One joint phase. Holes: LaMa's training mix of thick strokes and boxes (`lama-train`).
    Without `options.backbone` (the ADE20k ResNet50-dilated encoder) the HRF term is dropped."""

    mask_kinds = (("lama-train", 1.0),)
    grad_clip_norm = 1.0  # the official trainer's gradient_clip_val

    def __init__(self, config: LaMaConfig, options: TrainOptions) -> None:
        super().__init__(config, options)
        self.segmentation_encoder = optional_backbone(
            ResNet50Dilated,
            options.backbone,
            arch="lama",
            dropped="high-receptive-field perceptual loss",
            expected="ADE20k ResNet50-dilated encoder (encoder_epoch_20.pth)",
        )

    def phases(self) -> list[Phase]:
        """The paper trains G and D jointly from the first step; `--phase-steps N` puts N
        reconstruction-only steps first (no critic, no adversarial or feature-matching term), far
        cheaper on slow hardware. That phase learns the hole only where `missing_l1_weight` > 0."""
        return self.scaled_phases((0, 1), ("reconstruction", "joint"), ((True, False), (True, True)))

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.config)

    def optimizers(self, generator, discriminator):
        return self.adam(generator, discriminator, self.config.lr, self.config.discriminator_lr)

    def discriminator_loss(self, discriminator, image, mask, output):
        real = image.detach().requires_grad_(True)
        real_logits = discriminator(real).float()
        fake_logits = discriminator(output.detach()).float()
        # mask_as_fake_target: only the hole of a prediction is fake; its known part counts as real
        fake_target = 1 - F.interpolate(mask, size=fake_logits.shape[-2:], mode="nearest")
        real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_loss = F.binary_cross_entropy_with_logits(fake_logits, fake_target)
        penalty = r1_penalty(real_logits, real)
        loss = real_loss + fake_loss + self.config.r1_gamma * penalty
        return loss, {"d": loss.item(), "r1": penalty.item()}

    def generator_loss(self, discriminator, image, mask, output, phase):
        config = self.config
        output = output.float()
        pixel_weight = config.known_l1_weight * (1 - mask) + config.missing_l1_weight * mask
        reconstruction = ((output - image).abs() * pixel_weight).mean()
        loss, logs = reconstruction, {"rec": reconstruction.item()}
        if phase.train_discriminator:
            fake_logits, fake_features = discriminator.forward_with_features(output)
            with torch.no_grad():
                _, real_features = discriminator.forward_with_features(image)
            adversarial = bce_generator_loss(fake_logits.float())
            feature_matching = torch.stack(
                [F.mse_loss(f.float(), r.float()) for f, r in zip(fake_features, real_features)]
            ).mean()
            loss = (
                loss
                + config.adversarial_weight * adversarial
                + config.feature_matching_weight * feature_matching
            )
            logs.update(adv=adversarial.item(), fm=feature_matching.item())
        if self.segmentation_encoder is not None:
            encoder = self.segmentation_encoder.to_device_of(image)
            with torch.no_grad():
                target = encoder(image)
            hrf = feature_mse(encoder(output), target)
            loss = loss + config.hrf_weight * hrf
            logs["hrf"] = hrf.item()
        return loss, logs


#: LaMa's training holes (docs/architectures.md §7, data/abl-04-256-mh-dist.yaml): the thick strokes,
#: boxes as likely as strokes, up to four of them, any covered share
LAMA_TRAIN = LamaMaskConfig(LamaStrokes(1, 5, 100, 200), LamaBoxes(1.0, 10, 30, 150, 1, 4), 1.0)

CONFIGS = {
    "fourier": LaMaConfig(),
    "big": LaMaConfig(blocks=18),
    "half": LaMaConfig(base_channels=32, discriminator_channels=32),
    # the bundled small network: quarter width; L1 over the hole as well as the known pixels,
    # so that a reconstruction-only phase (`--phase-steps`) can learn without the critic and HRF
    "quarter-l1": LaMaConfig(base_channels=16, discriminator_channels=16, missing_l1_weight=10.0),
    "tiny": LaMaConfig(base_channels=8, blocks=1, discriminator_channels=8, discriminator_layers=2),
}

SPECS = (
    ArchSpec(
        name="lama",
        title="Suvorov et al., WACV 2022",
        input_note="any H x W (multiple of 8, padded), runs above its training size; "
        "RGB x (1 - mask) + mask",
        build_generator=LaMaGenerator,
        order=70,
        configs=CONFIGS,
        default_config="quarter-l1",  # the bundled weights' config (weights/README.md)
        recipe=LaMaRecipe,
        training_masks={"lama-train": lama_kind("lama-train", LAMA_TRAIN)},
    ),
)

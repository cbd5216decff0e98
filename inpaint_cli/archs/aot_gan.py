"""AOT-GAN: Aggregated Contextual Transformations for High-Resolution Image Inpainting (Zeng, Fu,
Chao, Guo, IEEE TVCG 2022). docs/architectures.md §6.

An encoder (7x7, then two 4x4 stride-2 convs), a stack of AOT blocks (`layers.aot_block`: dilated
branches at rates 1, 2, 4, 8, fused and mixed with the input through a learned gate) and a decoder
(bilinear x2 + 3x3 conv, twice, then a 3x3 conv and tanh). Input: the image in [-1, 1] with the hole
filled with +1 (white), plus the mask. Module names follow the official checkpoint (`encoder.1`,
`middle.{i}.block00.1`, `decoder.0.conv`...), so converted official weights load unchanged.

The discriminator is a spectral-normalised PatchGAN trained as a soft-mask segmenter (SM-PatchGAN):
on composites, its target is the Gaussian-blurred (71 x 71, sigma 10) hole map, so it learns where
the hole was rather than one real/fake score. Label convention (`smgan_labels`):

- "paper" (default; Eq. 4-5): real = 1, hole = 0. D: `MSE(D(comp), 1 - blur(m)) + MSE(D(real), 1)`;
  G: `(D(comp) - 1)^2` averaged over the hole (the official code's `* m / mean(m)` weighting, which
  there is a no-op because `MSELoss` has already reduced to a scalar).
- "code" (official `src/loss/loss.py` as released): real = 0, D target on composites `blur(m)`,
  yet G pushes `D(comp)` towards 1 over the whole image (repository issue #2).

D's logit map is resized bilinearly (align_corners=True) to the mask size before either loss.
Generator loss (official defaults): 1 L1 + 250 style + 0.1 perceptual + 0.01 SM-GAN, every
reconstruction term on the raw prediction (not the composite), VGG19 features for style and
perceptual. Adam 1e-4, betas (0.5, 0.999), for both networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.aot_block import AOTBlock
from inpaint_cli.layers.patchgan import PatchDiscriminator
from inpaint_cli.layers.perceptual import VGGFeatures, optional_backbone
from inpaint_cli.losses.batch_share import mean_over_processes
from inpaint_cli.losses.perceptual import feature_l1, style_l1

PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
LABEL_CONVENTIONS = ("paper", "code")


@dataclass(frozen=True)
class AOTGANConfig:
    """Encoder widths `base_channels` x (1, 2, 4); the AOT blocks work at 4 x `base_channels`."""

    base_channels: int = 64
    blocks: int = 8
    rates: tuple[int, ...] = (1, 2, 4, 8)
    discriminator_channels: int = 64  # D widths x (1, 2, 4, 8)
    l1_weight: float = 1.0
    style_weight: float = 250.0
    perceptual_weight: float = 0.1
    adversarial_weight: float = 0.01
    smgan_labels: str = "paper"  # "paper" (real = 1) or "code" (the official code's real = 0)
    blur_kernel: int = 71  # soft-mask target: Gaussian blur of the hole map
    blur_sigma: float = 10.0
    lr: float = 1e-4
    discriminator_lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)


def min_image_size(config: AOTGANConfig) -> int:
    """Smallest H and W: the widest branch's reflection pad must fit the 1/4-scale map."""
    return 4 * (max(config.rates) + 1)


class UpConv(nn.Module):
    """Bilinear x2 (align_corners=True) then a 3x3 conv (official `UpConv`)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
        return self.conv(x)


class AOTGenerator(InpaintModel):
    """The official `InpaintGenerator`: 15,200,835 parameters in the paper config."""

    size_multiple = 4

    def __init__(self, config: AOTGANConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.base_channels, 2 * config.base_channels, 4 * config.base_channels
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(4, c1, 7),
            nn.ReLU(True),
            nn.Conv2d(c1, c2, 4, 2, 1),
            nn.ReLU(True),
            nn.Conv2d(c2, c3, 4, 2, 1),
            nn.ReLU(True),
        )
        self.middle = nn.Sequential(*(AOTBlock(c3, config.rates) for _ in range(config.blocks)))
        self.decoder = nn.Sequential(
            UpConv(c3, c2), nn.ReLU(True), UpConv(c2, c1), nn.ReLU(True), nn.Conv2d(c1, 3, 3, 1, 1)
        )
        for module in self.modules():  # official `init_weights('normal', 0.02)`
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    @property
    def min_size(self) -> int:
        return min_image_size(self.config)

    def forward(self, masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`masked`: image in [-1, 1] with holes set to 1; returns the prediction in [-1, 1]."""
        if min(masked.shape[-2:]) < self.min_size:
            raise ValueError(
                f"AOT-GAN needs images of at least {self.min_size} x {self.min_size} pixels,"
                f" got {masked.shape[-2]} x {masked.shape[-1]}"
            )
        features = self.middle(self.encoder(torch.cat([masked, mask], dim=1)))
        return torch.tanh(self.decoder(features))

    def signed_prediction(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Image in [0, 1] -> prediction in [-1, 1] (the training scale)."""
        signed = image * 2 - 1
        return self(signed * (1 - mask) + mask, mask)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.signed_prediction(image, mask) + 1) / 2


def build_discriminator(config: AOTGANConfig) -> PatchDiscriminator:
    """SM-PatchGAN: four spectral-normalised 4x4 convs (strides 2, 2, 2, 1), no bias; 2,763,777."""
    width = config.discriminator_channels
    return PatchDiscriminator(
        3, (width, 2 * width, 4 * width, 8 * width), (2, 2, 2, 1), padding=1,
        norm="spectral", norm_first_stage=True, bias=False,
    )


def gaussian_blur(mask: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (normalised kernel, zero padding) of an N x 1 x H x W map."""
    offsets = torch.arange(kernel_size, device=mask.device, dtype=torch.float32)
    offsets = offsets - (kernel_size - 1) / 2
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(mask.dtype)
    pad = kernel_size // 2
    blurred = F.conv2d(mask, kernel.view(1, 1, 1, -1), padding=(0, pad))
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(pad, 0))


class AOTGANRecipe(TrainingRecipe):
    """One joint phase, G and D every step. Holes: generated irregular masks (the official code
    trains on the PConv irregular set, kept here for evaluation). Without `options.backbone`
    (VGG19 ImageNet features) the style and perceptual terms are dropped."""

    mask_kinds = (("irregular", 1.0),)

    def __init__(self, config: AOTGANConfig, options: TrainOptions) -> None:
        super().__init__(config, options)
        if config.smgan_labels not in LABEL_CONVENTIONS:
            raise ValueError(
                f"unknown smgan_labels {config.smgan_labels!r}; known: {', '.join(LABEL_CONVENTIONS)}"
            )
        if options.size < min_image_size(config):
            raise ValueError(f"aot-gan trains on crops of at least {min_image_size(config)} px")
        self.vgg = optional_backbone(
            lambda: VGGFeatures("vgg19"),
            options.backbone,
            arch="aot-gan",
            dropped="style and perceptual losses",
            expected="VGG19 ImageNet (torchvision vgg19-dcbb9e9d.pth)",
        )

    def phases(self) -> list[Phase]:
        """The paper trains G and D jointly from the first step; `--phase-steps N` puts N
        reconstruction-only steps first (no critic, no adversarial term), far cheaper on slow
        hardware."""
        return self.scaled_phases((0, 1), ("reconstruction", "joint"), ((True, False), (True, True)))

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.config)

    def optimizers(self, generator, discriminator):
        return self.adam(generator, discriminator, self.config.lr, self.config.discriminator_lr, self.config.betas)

    def generate(self, generator: AOTGenerator, image, mask) -> torch.Tensor:
        """The prediction in [-1, 1], the scale of every loss."""
        return generator.signed_prediction(image, mask)

    def prediction(self, output: torch.Tensor) -> torch.Tensor:
        return (output + 1) / 2

    @staticmethod
    def _soft_logits(discriminator: nn.Module, image: torch.Tensor, size) -> torch.Tensor:
        logits = discriminator(image)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True).float()

    def discriminator_loss(self, discriminator, image, mask, output):
        signed = image * 2 - 1
        composite = (1 - mask) * signed + mask * output.detach()
        size = mask.shape[-2:]
        fake = self._soft_logits(discriminator, composite, size)
        real = self._soft_logits(discriminator, signed, size)
        hole_target = gaussian_blur(mask.float(), self.config.blur_kernel, self.config.blur_sigma)
        if self.config.smgan_labels == "paper":
            loss = F.mse_loss(fake, 1 - hole_target) + F.mse_loss(real, torch.ones_like(real))
        else:
            loss = F.mse_loss(fake, hole_target) + F.mse_loss(real, torch.zeros_like(real))
        return loss, {"d": loss.item()}

    def generator_loss(self, discriminator, image, mask, output, phase):
        config = self.config
        output = output.float()
        signed = image * 2 - 1
        l1 = (output - signed).abs().mean()
        reconstruction = config.l1_weight * l1
        loss, logs = reconstruction, {"rec": reconstruction.item()}
        if phase.train_discriminator:
            composite = (1 - mask) * signed + mask * output
            fake = self._soft_logits(discriminator, composite, mask.shape[-2:])
            if config.smgan_labels == "paper":
                hole_share = mean_over_processes(mask.mean()).clamp_min(1e-8)
                adversarial = ((fake - 1) ** 2 * mask).mean() / hole_share
            else:
                adversarial = F.mse_loss(fake, torch.ones_like(fake))
            loss = loss + config.adversarial_weight * adversarial
            logs["adv"] = adversarial.item()
        if self.vgg is not None:
            vgg = self.vgg.to_device_of(image)
            layers = PERCEPTUAL_LAYERS + STYLE_LAYERS
            split = len(PERCEPTUAL_LAYERS)
            with torch.no_grad():
                target = vgg(image, layers)
            features = vgg((output + 1) / 2, layers)
            perceptual = feature_l1(features[:split], target[:split])
            style = style_l1(features[split:], target[split:])
            loss = loss + config.perceptual_weight * perceptual + config.style_weight * style
            logs.update(perceptual=perceptual.item(), style=style.item())
        return loss, logs


CONFIGS = {
    "paper": AOTGANConfig(),
    "half": AOTGANConfig(base_channels=32, discriminator_channels=32),
    "quarter": AOTGANConfig(base_channels=16, discriminator_channels=16),
    "tiny": AOTGANConfig(base_channels=8, blocks=2, discriminator_channels=8, lr=1e-3,
                         discriminator_lr=1e-3),
}

SPECS = (
    ArchSpec(
        name="aot-gan",
        title="Zeng et al., IEEE TVCG 2022",
        input_note="any H x W from 36 px (multiple of 4, padded); RGB in [-1, 1], hole = 1, + mask",
        build_generator=AOTGenerator,
        order=60,
        configs=CONFIGS,
        default_config="quarter",  # the bundled weights' config (weights/README.md)
        recipe=AOTGANRecipe,
    ),
)

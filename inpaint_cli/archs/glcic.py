"""GLCIC: Globally and Locally Consistent Image Completion (Iizuka, Simo-Serra, Ishikawa,
SIGGRAPH 2017). docs/architectures.md §2.

A fully convolutional completion network (Table 1: down x4, four dilated convs, up) fills a
mean-filled image plus its mask channel; a global (Table 2) and a local (Table 3) context
discriminator, joined by one FC layer, judge the whole completed image and a patch of half its
size centred on the hole. Training (Algorithm 1) runs in three phases: the completion network on
weighted MSE alone (T_C), the discriminators alone (T_D), then both with alpha = 0.0004.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.crops import crop, hole_patch_corners
from inpaint_cli.losses.adversarial import bce_discriminator_loss, bce_generator_loss
from inpaint_cli.losses.batch_share import mean_over_processes
from inpaint_cli.losses.reconstruction import check_reconstruction, pixel_penalty
from inpaint_cli.masks import no_parameters, place_rect, reference_scale

IMAGENET_MEAN = (0.485, 0.456, 0.406)


@dataclass(frozen=True)
class GLCICConfig:
    """Widths are those of Table 1 scaled by `width / 64`; discriminators by `disc_width / 64`."""

    width: int = 64
    dilations: tuple[int, ...] = (2, 4, 8, 16)
    mask_channel: bool = True
    mean_pixel: tuple[float, float, float] = IMAGENET_MEAN  # hole fill (the official `data.mean`)
    store_mean: bool = False  # mean_pixel saved with the weights (converted files: the file's own mean)
    disc_width: int = 64
    disc_fc: int = 1024
    image_size: int = 256  # training size: the global critic's input; the local one sees half
    alpha: float = 0.0004  # weight of the GAN term in the joint phase
    optimizer: str = "adadelta"  # the paper's; "adam" (lr 2e-4, betas 0.5/0.999) trains faster on CPU
    lr: float = 1.0
    reconstruction: str = "mse"  # the paper's weighted MSE, or "l1" over the hole (later papers' loss)


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _up_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CompletionNetwork(InpaintModel):
    """The 17-layer completion network of Table 1 (6,072,131 parameters at width 64)."""

    size_multiple = 4

    def __init__(self, config: GLCICConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.width, 2 * config.width, 4 * config.width
        in_channels = 4 if config.mask_channel else 3
        self.layers = nn.Sequential(
            _conv_bn_relu(in_channels, c1, 5),
            _conv_bn_relu(c1, c2, 3, stride=2),
            _conv_bn_relu(c2, c2, 3),
            _conv_bn_relu(c2, c3, 3, stride=2),
            _conv_bn_relu(c3, c3, 3),
            _conv_bn_relu(c3, c3, 3),
            *(_conv_bn_relu(c3, c3, 3, dilation=d) for d in config.dilations),
            _conv_bn_relu(c3, c3, 3),
            _conv_bn_relu(c3, c3, 3),
            _up_bn_relu(c3, c2),
            _conv_bn_relu(c2, c2, 3),
            _up_bn_relu(c2, c1),
            _conv_bn_relu(c1, c1 // 2, 3),
            nn.Conv2d(c1 // 2, 3, 3, 1, 1),
            nn.Sigmoid(),
        )
        self.register_buffer(
            "mean_pixel", torch.tensor(config.mean_pixel).view(1, 3, 1, 1), persistent=config.store_mean
        )

    def forward(self, network_input: torch.Tensor) -> torch.Tensor:
        return self.layers(network_input)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean-subtracted RGB with the hole at 0 (the mean colour), plus the mask (`inpaint.lua`)."""
        known = (image - self.mean_pixel) * (1 - mask)
        if self.config.mask_channel:
            known = torch.cat([known, mask], dim=1)
        return self.forward(known)


class ContextDiscriminator(nn.Module):
    """Global (Table 2) and local (Table 3) critics, each to 1024 features, joined by FC -> 1 logit.

    The paper's critics see 256 x 256 (six 5 x 5 stride-2 convs) and 128 x 128 (five); at another
    training size the same layers are kept and the FC inputs follow the final map size.
    """

    def __init__(self, config: GLCICConfig) -> None:
        super().__init__()
        w = config.disc_width
        global_channels = (w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w)
        local_channels = global_channels[:5]
        self.global_branch = self._branch(global_channels, config.image_size, config.disc_fc)
        self.local_branch = self._branch(local_channels, config.image_size // 2, config.disc_fc)
        self.head = nn.Linear(2 * config.disc_fc, 1)

    @staticmethod
    def _branch(channels: tuple[int, ...], size: int, features: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        previous = 3
        for out_channels in channels:
            layers += [
                nn.Conv2d(previous, out_channels, 5, 2, 2),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            previous = out_channels
            size = (size + 1) // 2
        layers += [nn.Flatten(), nn.Linear(previous * size * size, features), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    def forward(self, whole: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.global_branch(whole), self.local_branch(patch)], dim=1)
        return self.head(features)


class GLCICRecipe(TrainingRecipe):
    """Algorithm 1: T_C = 90,000 MSE steps, T_D = 10,000 critic steps, 400,000 joint steps,
    scaled to `--steps`. Holes: one rectangle per image with sides in [96, 128] at 256 px (scaled).
    """

    mask_kinds = (("glcic-box", 1.0),)
    paper_phases = (90_000, 10_000, 400_000)

    def __init__(self, config: GLCICConfig, options: TrainOptions) -> None:
        check_reconstruction(config.reconstruction)
        super().__init__(dataclasses.replace(config, image_size=options.size), options)

    def phases(self) -> list[Phase]:
        return self.scaled_phases(
            self.paper_phases,
            ("completion", "discriminator", "joint"),
            ((True, False), (False, True), (True, True)),
        )

    def build_discriminator(self) -> nn.Module:
        return ContextDiscriminator(self.config)

    def optimizers(self, generator, discriminator):
        if self.config.optimizer == "adam":
            return self.adam(generator, discriminator, self.config.lr, betas=(0.5, 0.999))
        if self.config.optimizer != "adadelta":
            raise ValueError(f"unknown optimizer {self.config.optimizer!r}")
        lr = self.options.lr or self.config.lr
        return {name: torch.optim.Adadelta(net.parameters(), lr=lr)
                for name, net in (("generator", generator), ("discriminator", discriminator))}

    def _critic(self, discriminator, images, mask):
        size = self.options.size // 2
        return discriminator(images, crop(images, hole_patch_corners(mask, size), size))

    def discriminator_loss(self, discriminator, image, mask, output):
        completed = image * (1 - mask) + output.detach() * mask
        real = self._critic(discriminator, image, mask)
        fake = self._critic(discriminator, completed, mask)
        loss = bce_discriminator_loss(real, fake)
        return loss, {"d": loss.item()}

    def generator_loss(self, discriminator, image, mask, output, phase):
        hole_pixels = mean_over_processes(mask.sum()).clamp(min=1) * 3
        error = (output - image) * mask
        loss = pixel_penalty(error, self.config.reconstruction).sum() / hole_pixels
        logs = {"rec": loss.item()}
        if phase.train_discriminator:
            completed = image * (1 - mask) + output * mask
            adversarial = bce_generator_loss(self._critic(discriminator, completed, mask))
            loss = loss + self.config.alpha * adversarial
            logs["adv"] = adversarial.item()
        return loss, logs


def glcic_box(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """GLCIC: one rectangle, each side uniform in [96, 128] * S / 256, placed randomly (§2)."""
    no_parameters("glcic-box", parameters)
    scale = reference_scale(height, width)
    low, high = max(1, round(96 * scale)), max(1, round(128 * scale))
    box_h = min(int(rng.integers(low, high + 1)), height)
    box_w = min(int(rng.integers(low, high + 1)), width)
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    return place_rect(height, width, top, left, box_h, box_w)


CONFIGS = {
    "paper": GLCICConfig(),
    "half": GLCICConfig(width=32, disc_width=32, disc_fc=512, optimizer="adam", lr=2e-4),
    # L1 over the hole instead of MSE: sharper fills, better hole L1 and SSIM (Zhao et al., IEEE
    # TCI 2017, and the reconstruction loss of DeepFill, PConv, AOT-GAN and LaMa)
    "half-l1": GLCICConfig(width=32, disc_width=32, disc_fc=512, optimizer="adam", lr=2e-4, reconstruction="l1"),
    "quarter": GLCICConfig(width=16, disc_width=16, disc_fc=256, optimizer="adam", lr=2e-4),
    "tiny": GLCICConfig(
        width=8, dilations=(2, 4), disc_width=8, disc_fc=32, image_size=64, optimizer="adam", lr=1e-3
    ),
    # converted official weights (`inpaint convert`): the mean pixel comes from the file
    "official": GLCICConfig(store_mean=True),
}

SPECS = (
    ArchSpec(
        name="glcic",
        title="Iizuka et al., SIGGRAPH 2017",
        input_note="any H x W (multiple of 4, padded); RGB mean-filled + mask",
        build_generator=CompletionNetwork,
        order=20,
        configs=CONFIGS,
        default_config="half-l1",  # the bundled weights' config (weights/README.md)
        recipe=GLCICRecipe,
        training_masks={"glcic-box": glcic_box},
        post_processing="poisson",  # the paper's Poisson blending (docs/architectures.md §2 I/O conventions)
    ),
)

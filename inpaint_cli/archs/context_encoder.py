"""Context Encoder (Pathak, Krähenbühl, Donahue, Darrell, Efros, "Context Encoders: Feature
Learning by Inpainting", CVPR 2016; docs/architectures.md §1).

An encoder-decoder regresses the missing pixels of a fixed-size window whose hole is filled with
the mean colour: strided 4 x 4 convolutions down to 4 x 4, a 4000-d bottleneck (a full 4 x 4
convolution, as in the released models) or the paper's channel-wise fully connected layer, then
up-convolutions. The centre model (`train.lua`) predicts the centred half-size square, the
random-region model (`train_random.lua`) the whole window. Trained with a masked L2 whose overlap
band (context pixels inside the predicted region) weighs 10x, plus a DCGAN adversarial loss on
the predicted region only: 0.999 L2 + 0.001 adversarial, Adam beta1 = 0.5, G lr = 10 x D lr.

Follows the official code except: conv biases are learned (the code resets them to zero before
every step; they are counted in the paper's parameter totals and start at zero here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import nn

from inpaint_cli.archs.base import ArchSpec, InpaintModel, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.layers.channelwise_fc import ChannelwiseFC
from inpaint_cli.losses.adversarial import bce_discriminator_loss, bce_generator_loss
from inpaint_cli.errors import InpaintError
from inpaint_cli.losses.reconstruction import check_reconstruction, pixel_penalty
from inpaint_cli.masks import MAX_ATTEMPTS, center, hole_ratio, no_parameters, side_of


@dataclass(frozen=True)
class ContextEncoderConfig:
    region: str = "center"  # "center": predicts the centred half-size square; "random": the window
    image_size: int = 128  # the fixed input window (fineSize)
    channels: int = 64  # nef = ngf: width of the first encoder layer
    bottleneck: int = 4000  # latent width of the full 4 x 4 convolution (nBottleneck)
    bottleneck_kind: str = "conv"  # "conv" (released models) or "channelwise-fc" (paper §3.1)
    discriminator_channels: int = 64  # ndf
    mean_color: tuple[float, float, float] = (117 / 255, 104 / 255, 123 / 255)  # ImageNet mean, RGB
    overlap: int = 4  # centre model: context ring inside the predicted square, px (overlapPred)
    # "hole": the mean colour replaces the hole; "center": also the centred square less the overlap
    # ring, whatever the hole (the official centre models' test.lua input)
    mean_fill: str = "hole"
    overlap_weight: float = 10.0  # L2 weight of predicted context pixels relative to hole pixels
    reconstruction: str = "mse"  # the paper's weighted L2, or "l1": the same weights on absolute errors
    reconstruction_weight: float = 0.999  # wtl2
    adversarial_weight: float = 0.001
    lr: float = 2e-3  # generator learning rate (official code: 10 x the discriminator's 2e-4)
    discriminator_lr_ratio: float = 0.1
    beta1: float = 0.5


def _widths(size: int, channels: int) -> tuple[int, ...]:
    """Widths of the stride-2 4 x 4 convolutions taking `size` down to 4: ..., c, c, 2c, 4c, 8c."""
    layers = int(math.log2(size)) - 2
    return tuple(channels * 2 ** max(0, i - (layers - 4)) for i in range(layers))


def _down_stack(widths: tuple[int, ...]) -> list[nn.Module]:
    """Conv 4 x 4 stride 2 + LeakyReLU(0.2), batch norm on all but the first (encoder and D)."""
    layers: list[nn.Module] = []
    in_channels = 3
    for i, width in enumerate(widths):
        layers.append(nn.Conv2d(in_channels, width, 4, 2, 1))
        if i:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.LeakyReLU(0.2))
        in_channels = width
    return layers


def _init_dcgan(module: nn.Module) -> None:
    """Official init: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def _region_bounds(config: ContextEncoderConfig) -> tuple[int, int]:
    """First and last + 1 row (= column) of the predicted region: the centred half-size square
    (centre model) or the whole window (random model)."""
    size = config.image_size
    return (size // 4, 3 * size // 4) if config.region == "center" else (0, size)


def _check(config: ContextEncoderConfig) -> None:
    if config.region not in ("center", "random"):
        raise ValueError(f"region must be 'center' or 'random', got {config.region!r}")
    if config.mean_fill not in ("hole", "center") or (config.mean_fill == "center" and config.region != "center"):
        raise ValueError(f"mean_fill must be 'hole', or 'center' for a centre model, got {config.mean_fill!r}")
    if config.bottleneck_kind not in ("conv", "channelwise-fc"):
        raise ValueError(
            f"bottleneck_kind must be 'conv' or 'channelwise-fc', got {config.bottleneck_kind!r}"
        )
    size = config.image_size
    if size < 32 or size & (size - 1):
        raise ValueError(f"image_size must be a power of two >= 32, got {size}")


class ContextEncoder(InpaintModel):
    """The generator: window N x 3 x S x S in [-1, 1] (hole = mean colour) -> region in [-1, 1].

    The region is the centred S/2 square (centre model) or the whole window (random model).
    """

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        _check(config)
        self.config = config
        self.fixed_size = self.size_multiple = config.image_size
        start, stop = _region_bounds(config)
        self.output_size = stop - start
        # the centre model was trained on holes filling its central half; the random model on
        # boxes a quarter to a half of the window's side, so a fill shows it the hole at a third
        self.window_per_hole = 2.0 if config.region == "center" else 3.0
        widths = _widths(config.image_size, config.channels)
        up_widths = _widths(self.output_size, config.channels)[::-1]
        self.encoder = nn.Sequential(*_down_stack(widths))
        if config.bottleneck_kind == "conv":  # E6 + D1: 4 x 4 -> 1 x 1 -> 4 x 4
            self.bottleneck = nn.Sequential(
                nn.Conv2d(widths[-1], config.bottleneck, 4),
                nn.BatchNorm2d(config.bottleneck),
                nn.LeakyReLU(0.2),
                nn.ConvTranspose2d(config.bottleneck, up_widths[0], 4),
                nn.BatchNorm2d(up_widths[0]),
                nn.ReLU(),
            )
        else:  # each 4 x 4 map through its own 16 x 16 matrix, then a 1 x 1 conv mixing channels
            self.bottleneck = nn.Sequential(
                ChannelwiseFC(widths[-1], 4),
                nn.Conv2d(widths[-1], up_widths[0], 1),
                nn.BatchNorm2d(up_widths[0]),
                nn.ReLU(),
            )
        decoder: list[nn.Module] = []
        for in_channels, out_channels in zip(up_widths, up_widths[1:]):
            decoder += [
                nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
        decoder += [nn.ConvTranspose2d(up_widths[-1], 3, 4, 2, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)
        _init_dcgan(self)
        mean_color = torch.tensor(config.mean_color).view(1, 3, 1, 1)
        self.register_buffer("mean_color", mean_color, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.bottleneck(self.encoder(x)))

    def predict(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw region prediction ([-1, 1]) and the window with it pasted in ([0, 1])."""
        if self.config.mean_fill == "center":
            start, stop = _region_bounds(self.config)
            start, stop = start + self.config.overlap, stop - self.config.overlap
            mask = mask.clone()
            mask[..., start:stop, start:stop] = 1
        x = (image * 2 - 1) * (1 - mask) + (self.mean_color * 2 - 1) * mask
        region = self(x)
        start, stop = _region_bounds(self.config)
        filled = image.clone()
        filled[..., start:stop, start:stop] = ((region + 1) / 2).clamp(0, 1).to(image.dtype)
        return region, filled

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if tuple(image.shape[-2:]) != (size, size):
            shape = tuple(image.shape[-2:])
            raise ValueError(f"the Context Encoder fills {size} x {size} windows, got {shape}")
        mask = (mask > 0.5).to(image.dtype)
        start, stop = _region_bounds(self.config)
        outside = mask.clone()
        outside[..., start:stop, start:stop] = 0
        if bool(outside.any()):
            raise ValueError(
                f"the centre Context Encoder fills only holes inside the centred {self.output_size} x"
                f" {self.output_size} square of its window; use a random-region config"
            )
        return self.predict(image, mask)[1]


class ContextEncoderDiscriminator(nn.Module):
    """DCGAN discriminator on the predicted region only (S/2 or S square) -> one logit each."""

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        _check(config)
        start, stop = _region_bounds(config)
        widths = _widths(stop - start, config.discriminator_channels)
        self.net = nn.Sequential(*_down_stack(widths), nn.Conv2d(widths[-1], 1, 4))
        _init_dcgan(self)

    def forward(self, region: torch.Tensor) -> torch.Tensor:
        return self.net(region).flatten()


class ContextEncoderRecipe(TrainingRecipe):
    """One phase, one D step per G step (official `train.lua`, `train_random.lua`).

    Loss: `wtl2 * mean(w * (pred - target)^2) + (1 - wtl2) * BCE`, w = 1 on hole pixels and
    `overlap_weight` (10) on the other pixels of the predicted region: the `overlap`-px band of the
    centre model (whose training hole is cropped to the centre square less that band: the inner
    56 x 56 of the 64 x 64 centre), every known pixel of the random model (`useOverlapPred`).
    """

    critic_steps = 1

    def __init__(self, config: ContextEncoderConfig, options: TrainOptions) -> None:
        super().__init__(config, options)
        check_reconstruction(config.reconstruction)
        if options.size != self.required_size(config):
            raise ValueError(
                f"context-encoder trains on its {config.image_size} x {config.image_size} window:"
                f" pass --size {config.image_size}"
            )
        self.mask_kinds = (("ce-center", 1.0),) if config.region == "center" else (("ce-random", 1.0),)

    @classmethod
    def required_size(cls, config: ContextEncoderConfig) -> int:
        return config.image_size

    def phases(self) -> list[Phase]:
        if self.config.adversarial_weight == 0:  # reconstruction only: the paper's L2 ablation
            return [Phase("reconstruction", None, train_generator=True, train_discriminator=False)]
        return [Phase("adversarial", None, train_generator=True, train_discriminator=True)]

    def build_discriminator(self) -> nn.Module | None:
        return ContextEncoderDiscriminator(self.config) if self.config.adversarial_weight else None

    def optimizers(
        self, generator: nn.Module, discriminator: nn.Module | None
    ) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return self.adam(generator, discriminator, lr, lr * self.config.discriminator_lr_ratio, (self.config.beta1, 0.999))

    def _hole(self, mask: torch.Tensor) -> torch.Tensor:
        """The training hole: the centre model's is cropped to the centre square less its ring."""
        if self.config.region == "random":
            return mask
        start, stop = _region_bounds(self.config)
        ring = self.config.overlap
        inner = torch.zeros_like(mask)
        inner[..., start + ring : stop - ring, start + ring : stop - ring] = 1
        return mask * inner

    def generate(
        self, generator: ContextEncoder, image: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        region, filled = generator.predict(image, self._hole(mask))
        return {"region": region, "filled": filled}

    def prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        return output["filled"]

    def _region(self, x: torch.Tensor) -> torch.Tensor:
        start, stop = _region_bounds(self.config)
        return x[..., start:stop, start:stop]

    def discriminator_loss(
        self,
        discriminator: nn.Module,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, float]]:
        real = discriminator(self._region(image * 2 - 1))
        fake = discriminator(output["region"].detach())
        loss = bce_discriminator_loss(real, fake)
        return loss, {"d_bce": loss.item()}

    def generator_loss(
        self,
        discriminator: nn.Module | None,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: dict[str, torch.Tensor],
        phase: Phase,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        region, target = output["region"], self._region(image * 2 - 1)
        hole = self._region(self._hole(mask))
        weights = hole + self.config.overlap_weight * (1 - hole)
        rec = (weights * pixel_penalty(region.float() - target, self.config.reconstruction)).mean()
        loss = self.config.reconstruction_weight * rec
        logs = {"rec": rec.item()}
        if phase.train_discriminator and discriminator is not None:
            adv = bce_generator_loss(discriminator(region))
            loss = loss + self.config.adversarial_weight * adv
            logs["adv"] = adv.item()
        return loss, logs


# the paper's channel-wise fully connected bottleneck (§3.1): at the paper's width (6.0 M parameters)
# and at half width, where it keeps the model small (1.5 M)
_RANDOM_FC = ContextEncoderConfig(region="random", bottleneck_kind="channelwise-fc")
_HALF_FC = replace(_RANDOM_FC, channels=32, discriminator_channels=32)

def random_region(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """Context Encoder random region (§1, `train_random.lua`): uniform noise at 0.06 samples per
    pixel, upsampled bicubically, thresholded at 0.25, redrawn until 20-30 % is hole.

    The official code cuts 128 x 128 windows from one 10000^2 pattern; here only the window is
    computed, with the noise cell (1 / 0.06 px at 128) scaled to the window's side.
    """
    no_parameters("ce-random", parameters)
    cell = side_of(height, width) / 128 / 0.06
    rows, cols = math.ceil(height / cell) + 4, math.ceil(width / cell) + 4
    out_h, out_w = round(rows * cell), round(cols * cell)
    for _ in range(MAX_ATTEMPTS):
        noise = rng.random((rows, cols), dtype=np.float32)
        pattern = cv2.resize(noise, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        top = int(rng.integers(0, out_h - height + 1))
        left = int(rng.integers(0, out_w - width + 1))
        mask = pattern[top : top + height, left : left + width] < 0.25
        if 0.20 < hole_ratio(mask) < 0.30:
            return mask
    raise InpaintError(f"ce-random: could not draw a mask at {width}x{height}")


CONFIGS = {
    "paper": ContextEncoderConfig(),
    "paper-random": ContextEncoderConfig(region="random"),
    "half": ContextEncoderConfig(
        region="random", channels=32, bottleneck=2000, discriminator_channels=32
    ),
    "half-fc": _HALF_FC,
    "half-fc-l1": replace(_HALF_FC, reconstruction="l1"),
    "random-fc": _RANDOM_FC,
    "random-fc-l1": replace(_RANDOM_FC, reconstruction="l1"),
    "half-fc-rec": replace(_HALF_FC, adversarial_weight=0.0),
    "half-fc-l1-rec": replace(_HALF_FC, reconstruction="l1", adversarial_weight=0.0),
    # known pixels weighted as the hole: Poisson blending replaces them, so the network's
    # capacity goes to the hole
    "half-fc-rec-flat": replace(_HALF_FC, adversarial_weight=0.0, overlap_weight=1.0),
    "tiny": ContextEncoderConfig(
        region="random", image_size=64, channels=8, bottleneck=64, discriminator_channels=8
    ),
    # converted official centre models (`inpaint convert`): test.lua's input
    "official-center": ContextEncoderConfig(mean_fill="center"),
}

SPECS = (
    ArchSpec(
        name="context-encoder",
        title="Pathak et al., CVPR 2016",
        input_note="fixed windows around each hole (128 x 128; tiny: 64), mean-colour fill;"
        " paper (centre): holes inside the centred 64 x 64 only",
        build_generator=ContextEncoder,
        order=10,
        configs=CONFIGS,
        default_config="half-fc-rec-flat",  # the bundled weights' config (weights/README.md)
        recipe=ContextEncoderRecipe,
        training_masks={"ce-center": center, "ce-random": random_region},
    ),
)

"""Co-ModGAN: Large Scale Image Completion via Co-Modulated Generative Adversarial Networks (Zhao,
Cui, Sheng, Dong, Liang, Chang, Xu, ICLR 2021; official TF code `zsyzzsoft/co-mod-gan`,
`training/co_mod_gan.py`). docs/architectures.md §8, blocks in `layers.stylegan2` (§S).

A StyleGAN2 "skip" generator made image-conditional: an encoder turns `cat[m - 0.5, x * m]`
(m = 1 known, x in [-1, 1]) into skip features E[r] and a global code `x_global` (FC 16 C -> 2 C,
then dropout with keep 0.5 that the official code applies always, at inference too). Every
modulated conv is co-modulated by `A(cat[w_i, x_global])`. Output: the last ToRGB sum (no
activation), composited with the known pixels by the official code (`inpaint` returns it raw).
The discriminator is StyleGAN2's resnet D with a mask channel. Losses: non-saturating logistic,
lazy R1 (gamma 10 every 16 D steps), no reconstruction term; Adam 0.002, betas (0, 0.99).

Module names: the mapping net and the decoder follow StyleGAN2-ADA / MAT (`mapping.fc{i}`,
`synthesis.G_4x4.{fc,conv,toRGB}` as MAT's `DecBlockFirst`, `synthesis.G_{r}x{r}.{conv0,conv1,
toRGB}`), the encoder the TF scopes (`synthesis.E_{r}x{r}.{FromRGB,Conv0,Conv1_down}`,
`synthesis.E_4x4.{Conv,Dense0}`). A TF import maps `Conv0_up` -> `conv0` (as stored: our up-convolution flips
the kernel at run time, as TF's and MAT's code do; the PyTorch port's kernels need a flip), `Conv1`
-> `conv1`, `ToRGB` -> `toRGB`, `mod_weight`/`mod_bias` -> `conv.affine.weight`/`bias` (+1),
`noise{i}` -> the `noise_const` of the i-th StyleConv.

Follows the official code except: `G_4x4` adds E[2] as the TF code does (the PyTorch port omits it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs._stylegan import StyleGANRecipe, StyleInpainter
from inpaint_cli.archs.base import ArchSpec
from inpaint_cli.layers.stylegan2 import (
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    ResnetDiscriminator,
    StyleConv,
    SynthesisBlock,
    ToRGB,
    resolution_widths,
)

@dataclass(frozen=True)
class CoModGANConfig:
    """Widths `clip(channel_base / r, 1, channel_max)` at resolution r (TF `fmap_base` x 2)."""

    resolution: int = 512
    channel_base: int = 32768
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    dropout_rate: float = 0.5  # on x_global, always on (TF `tf.nn.dropout` without a training guard)
    mbstd_group: int = 4
    # training (official `run_training.py` / `G_main` defaults)
    lr: float = 0.002
    r1_gamma: float = 10.0
    r1_interval: int = 16
    style_mixing: float = 0.5
    train_truncation: float = 0.5
    ema_kimg: float = 10.0


def _widths(config: CoModGANConfig) -> dict[int, int]:
    return resolution_widths(config.resolution, config.channel_base, config.channel_max)


def num_ws(resolution: int) -> int:
    """`2 log2(R) - 2`: 16 at 512."""
    return 2 * int(math.log2(resolution)) - 2


class EncoderBlock(nn.Module):
    """TF `E_{r}x{r}`: [FromRGB 1 x 1 at the input resolution], Conv0 3 x 3 (the skip E[r]),
    Conv1_down 3 x 3 down x2; all lrelu."""

    def __init__(self, in_channels: int, out_channels: int, from_rgb: int | None) -> None:
        super().__init__()
        if from_rgb is not None:
            self.FromRGB = Conv2dLayer(from_rgb, in_channels, 1, activation="lrelu")
        self.Conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.Conv1_down = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self, "FromRGB"):
            x = self.FromRGB(x)
        skip = self.Conv0(x)
        return self.Conv1_down(skip), skip


class EncoderHead(nn.Module):
    """TF `E_4x4`: Conv 3 x 3 (the skip E[2]), flatten, Dense0 16 C -> 2 C (lrelu)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.Conv = Conv2dLayer(channels, channels, 3, activation="lrelu")
        self.Dense0 = FullyConnectedLayer(channels * 16, channels * 2, activation="lrelu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.Conv(x)
        return self.Dense0(skip.flatten(1)), skip


class FirstSynthesisBlock(nn.Module):
    """TF `G_4x4` (MAT's `DecBlockFirst`): FC x_global -> C x 4 x 4 (lrelu), + E[2], StyleConv, ToRGB."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.fc = FullyConnectedLayer(channels * 2, channels * 16, activation="lrelu")
        self.conv = StyleConv(channels, channels, style_dim, resolution=4)
        self.toRGB = ToRGB(channels, 3, style_dim)

    def forward(self, x_global, skip, styles, noise_mode):
        x = self.fc(x_global).view(x_global.shape[0], -1, 4, 4) + skip
        x = self.conv(x, styles[0], noise_mode)
        return x, self.toRGB(x, styles[1])


class CoModSynthesis(nn.Module):
    """Encoder + co-modulated skip generator; `forward(y, ws)` with `y = cat[m - 0.5, x * m]`."""

    def __init__(self, config: CoModGANConfig) -> None:
        super().__init__()
        self.config = config
        widths = _widths(config)
        self.resolutions = [2**k for k in range(int(math.log2(config.resolution)), 2, -1)]
        style_dim = config.w_dim + 2 * widths[4]
        for r in self.resolutions:
            from_rgb = 4 if r == config.resolution else None
            setattr(self, f"E_{r}x{r}", EncoderBlock(widths[r], widths[r // 2], from_rgb))
        self.E_4x4 = EncoderHead(widths[4])
        self.G_4x4 = FirstSynthesisBlock(widths[4], style_dim)
        for r in reversed(self.resolutions):
            setattr(self, f"G_{r}x{r}", SynthesisBlock(widths[r // 2], widths[r], style_dim, r))

    def forward(self, y: torch.Tensor, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        skips = {}
        x = y
        for r in self.resolutions:
            x, skips[r] = getattr(self, f"E_{r}x{r}")(x)
        x_global, skip4 = self.E_4x4(x)
        # the official dropout runs at inference too (random even for a fixed z)
        x_global = F.dropout(x_global, self.config.dropout_rate, training=True)

        def style(index: int) -> torch.Tensor:
            return torch.cat([ws[:, index], x_global], dim=1)

        x, image = self.G_4x4(x_global, skip4, (style(0), style(1)), noise_mode)
        for r in reversed(self.resolutions):
            k = int(math.log2(r))
            styles = (style(2 * k - 5), style(2 * k - 4), style(2 * k - 3))
            x, image = getattr(self, f"G_{r}x{r}")(x, image, styles, skips[r], noise_mode)
        return image


class CoModGANGenerator(StyleInpainter):
    """Mapping + synthesis: 79,792,231 parameters in the paper config (512). The official inference
    randomises the noise inputs (`randomize_noise=True`) and does not truncate."""

    def __init__(self, config: CoModGANConfig) -> None:
        super().__init__()
        if config.resolution < 8 or config.resolution & (config.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {config.resolution}")
        self.config = config
        self.fixed_size = self.size_multiple = self.min_size = config.resolution
        self.window_per_hole = 2.0  # training holes cover up to the whole window (hole_range [0, 1])
        self.synthesis = CoModSynthesis(config)
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, num_ws(config.resolution), config.mapping_layers)

    def forward(
        self,
        image: torch.Tensor,
        known: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "random",
    ) -> torch.Tensor:
        """`image` in [-1, 1], `known` 1 = known; returns the raw (uncomposited) output."""
        y = torch.cat([known - 0.5, image * known], dim=1)
        return self.synthesis(y, ws, noise_mode)

    def synthesise(self, image, known, ws, noise_mode) -> torch.Tensor:
        return self(image, known, ws, noise_mode)


def build_discriminator(config: CoModGANConfig) -> ResnetDiscriminator:
    """`D_co_mod_gan` (resnet, mbstd group 4): 28,982,913 parameters at 512."""
    return ResnetDiscriminator(config.resolution, _widths(config), config.mbstd_group)


class CoModGANRecipe(StyleGANRecipe):
    """The official recipe (§8.4) with Co-ModGAN's one discriminator head (`StyleGANRecipe`)."""

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.config)

CONFIGS = {
    "paper": CoModGANConfig(),
    "comod-small-256": CoModGANConfig(resolution=256, channel_base=8192, channel_max=128, z_dim=256, w_dim=256),
    "comod-tiny-128": CoModGANConfig(resolution=128, channel_base=4096, channel_max=64, z_dim=128, w_dim=128),
}
CONFIGS["tiny"] = CONFIGS["comod-tiny-128"]

SPECS = (
    ArchSpec(
        name="co-mod-gan",
        title="Zhao et al., ICLR 2021",
        input_note="fixed square window (512 in the paper config); RGB in [-1, 1], m - 0.5 + x * m (1 = known); z",
        build_generator=CoModGANGenerator,
        configs=CONFIGS,
        default_config="paper",
        order=80,
        recipe=CoModGANRecipe,
    ),
)

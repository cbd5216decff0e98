"""MAT: Mask-Aware Transformer for Large Hole Image Inpainting (Li, Lin, Zhou, Qi, Wang, Jia,
CVPR 2022; official code `fenglinglwb/MAT`, `networks/mat.py`). docs/architectures.md §9, blocks in
`layers.stylegan2` (§S).

Two stages on `cat[m - 0.5, x * m]` (m = 1 known, x in [-1, 1]):

1. Coarse (`first_stage`): partial convs down to 64 x 64 tokens of width `dim`, a U-shaped body
   of five stages of window-attention blocks at 64/32/16/32/64 (no LayerNorm; `fuse(cat[x, attn])`
   and an MLP instead of residuals; keys of invalid tokens get -100 and a window becomes valid
   once any of its tokens is, in the first two stages only), a style module at 16 x 16 (noise
   mixed in through an always-on dropout map, a global code `cat[g, FC(w_last)]`) and a
   StyleGAN-like decoder back to full size.
2. Refinement (`enc`, `to_square`, `to_style`, `dec`): a conv U-Net on `cat[m - 0.5, x~, x * m]`
   (x~ the stage-1 composite) whose 16 x 16 bottleneck gets the same dropout noise mixing, and
   whose decoder is co-modulated by `cat[w_i, global code]` as Co-ModGAN's.

Each stage ends with a ToRGB sum (no activation); the official network composites it with the
known pixels, `inpaint` returns the raw stage-2 output (`fill.py` composites). Two resnet
discriminators (the main one is Co-ModGAN's; the stage-1 one has half the widths). Module names
are the official ones, so MAT's G_ema (and IOPaint's weights-only copy) load unchanged.

Follows the official code, including what the paper does not say: the dropout maps are random
in eval mode too, only the first two body stages use the mask, the partial-conv ratio is applied
after bias and activation. The official code recomputes the shifted-window mask on every call
(its cached `attn_mask` is never read); here the cached buffer is used (same values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs._stylegan import StyleGANRecipe, StyleInpainter
from inpaint_cli.archs.base import ArchSpec, TrainOptions
from inpaint_cli.layers.perceptual import VGGFeatures, optional_backbone
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
from inpaint_cli.losses.stylegan2 import mat_perceptual_loss

TOKEN_RESOLUTION = 64  # the head always tokenises at 64 x 64
BOTTLENECK = 16  # the body's and the refinement encoder's narrowest side (the style square)
BODY_SCALES = (1, 2, 4, 2, 1)  # downscaling of each body stage relative to the tokens
MASK_FILL = -100.0  # attention logit added for invalid keys and across shifted-window regions


@dataclass(frozen=True)
class MATConfig:
    """Stage-2 and discriminator widths `clip(channel_base / r, 1, channel_max)` at resolution r."""

    resolution: int = 512
    dim: int = 180  # stage-1 token width
    num_heads: int = 6
    depths: tuple[int, ...] = (2, 3, 4, 3, 2)
    window_sizes: tuple[int, ...] = (8, 16, 16, 16, 8)
    mlp_ratio: float = 2.0
    channel_base: int = 32768
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mbstd_group: int = 4  # official config 8, effectively min(8, 4 per GPU) = 4
    # training (README command, `losses/loss.py TwoStageLoss`)
    lr: float = 1e-3
    r1_gamma: float = 10.0
    r1_interval: int = 16
    style_mixing: float = 0.5
    train_truncation: float = 0.5
    ema_kimg: float = 10.0
    perceptual_weight: float = 0.1


def num_ws(resolution: int) -> int:
    """`2 log2(R) - 6`: 12 at 512."""
    return 2 * int(math.log2(resolution)) - 6


def token2feature(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x.permute(0, 2, 1).reshape(x.shape[0], x.shape[2], *size)


def feature2token(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """B x H x W x C -> (B nW) x window^2 x C."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """(B nW) x window^2 x C -> B x H x W x C."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def shifted_window_mask(size: int, window: int, shift: int) -> torch.Tensor:
    """Swin's mask after a cyclic shift: -100 between tokens of different regions, nW x N x N."""
    regions = torch.zeros(1, size, size, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for index, (rows, cols) in enumerate((r, c) for r in bands for c in bands):
        regions[:, rows, cols, :] = index
    labels = window_partition(regions, window).squeeze(-1)
    different = labels.unsqueeze(1) - labels.unsqueeze(2)
    return different.masked_fill(different != 0, MASK_FILL).masked_fill(different == 0, 0.0)


class PartialConv(nn.Module):
    """MAT's `Conv2dLayerPartial`: an equalised lrelu conv whose output is multiplied by
    `k^2 / (valid count + 1e-8)` where any input was valid (0 elsewhere); the new mask is
    `clamp(count, 0, 1)`. Features are not masked first, and the ratio follows the activation."""

    def __init__(self, in_channels: int, out_channels: int, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", up=up, down=down)
        self.stride = down

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        x = self.conv(x)
        if mask is None:
            return x, None
        with torch.no_grad():
            ones = torch.ones(1, 1, 3, 3, device=mask.device, dtype=mask.dtype)
            count = F.conv2d(mask, ones, stride=self.stride, padding=1)
            mask = count.clamp(0, 1)
            ratio = 9 / (count + 1e-8) * mask
        return x * ratio, mask


class WindowAttention(nn.Module):
    """Multi-head contextual attention in one window: queries and keys from the L2-normalised
    tokens, values from the tokens, -100 on invalid keys; returns the updated window validity."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = FullyConnectedLayer(dim, dim)
        self.k = FullyConnectedLayer(dim, dim)
        self.v = FullyConnectedLayer(dim, dim)
        self.proj = FullyConnectedLayer(dim, dim)

    def forward(self, x, mask_windows=None, shift_mask=None):
        windows, n, c = x.shape
        heads = self.num_heads
        normed = F.normalize(x, p=2.0, dim=-1)
        q = self.q(normed).reshape(windows, n, heads, c // heads).permute(0, 2, 1, 3)
        k = self.k(normed).reshape(windows, n, heads, c // heads).permute(0, 2, 3, 1)
        v = self.v(x).reshape(windows, n, heads, c // heads).permute(0, 2, 1, 3)
        attn = (q @ k) * self.scale
        if shift_mask is not None:
            count = shift_mask.shape[0]
            attn = attn.view(windows // count, count, heads, n, n) + shift_mask[None, :, None]
            attn = attn.view(-1, heads, n, n)
        if mask_windows is not None:
            valid = mask_windows.squeeze(-1)[:, None, None]
            attn = attn + valid.masked_fill(valid == 0, MASK_FILL).masked_fill(valid == 1, 0.0)
            with torch.no_grad():
                mask_windows = mask_windows.sum(dim=1, keepdim=True).clamp(0, 1).repeat(1, n, 1)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(windows, n, c)
        return self.proj(x), mask_windows


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = FullyConnectedLayer(dim, hidden, activation="lrelu")
        self.fc2 = FullyConnectedLayer(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


class TransformerBlock(nn.Module):
    """MAT's `SwinTransformerBlock`: (shifted) window attention, `fuse(cat[x, attn])` (lrelu),
    MLP; no LayerNorm and no residual. A window as large as the map means one global window."""

    def __init__(self, dim: int, resolution: int, num_heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        if resolution <= window:
            window, shift = resolution, 0
        self.window, self.shift = window, shift
        self.attn = WindowAttention(dim, num_heads)
        self.fuse = FullyConnectedLayer(dim * 2, dim, activation="lrelu")
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if shift:
            self.register_buffer("attn_mask", shifted_window_mask(resolution, window, shift))

    def forward(self, x, size, mask=None):
        h, w = size
        b, _, c = x.shape
        shortcut = x
        x = x.view(b, h, w, c)
        if mask is not None:
            mask = mask.view(b, h, w, 1)
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, (-self.shift, -self.shift), dims=(1, 2))
        mask_windows = None if mask is None else window_partition(mask, self.window)
        shift_mask = self.attn_mask if self.shift else None
        x, mask_windows = self.attn(window_partition(x, self.window), mask_windows, shift_mask)
        x = window_reverse(x, self.window, h, w)
        if mask is not None:
            mask = window_reverse(mask_windows, self.window, h, w)
        if self.shift:
            x = torch.roll(x, (self.shift, self.shift), dims=(1, 2))
            if mask is not None:
                mask = torch.roll(mask, (self.shift, self.shift), dims=(1, 2))
        x = self.fuse(torch.cat([shortcut, x.reshape(b, h * w, c)], dim=-1))
        return self.mlp(x), None if mask is None else mask.reshape(b, h * w, 1)


class TokenResample(nn.Module):
    """`PatchMerging` / `PatchUpsampling`: a partial conv 3 x 3 down or up x2 on the token map."""

    def __init__(self, dim: int, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.conv = PartialConv(dim, dim, up=up, down=down)
        self.factor = up / down

    def forward(self, x, size, mask=None):
        x, mask = self.conv(token2feature(x, size), None if mask is None else token2feature(mask, size))
        size = (int(size[0] * self.factor), int(size[1] * self.factor))
        return feature2token(x), size, None if mask is None else feature2token(mask)


class BasicLayer(nn.Module):
    """One body stage: [resample], blocks (shift 0, window/2, 0, ...), partial conv, + stage input."""

    def __init__(self, dim, resolution, depth, num_heads, window, mlp_ratio, downsample=None) -> None:
        super().__init__()
        if downsample is not None:
            self.downsample = downsample
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, resolution, num_heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio)
            for i in range(depth)
        )
        self.conv = PartialConv(dim, dim)

    def forward(self, x, size, mask=None):
        if hasattr(self, "downsample"):
            x, size, mask = self.downsample(x, size, mask)
        identity = x
        for block in self.blocks:
            x, mask = block(x, size, mask)
        x, mask = self.conv(token2feature(x, size), None if mask is None else token2feature(mask, size))
        return feature2token(x) + identity, size, None if mask is None else feature2token(mask)


def mixing_map(like: torch.Tensor) -> torch.Tensor:
    """The official `F.dropout(ones * 0.5, training=True)`: a {0, 1} map, random in eval too."""
    return F.dropout(torch.full_like(like, 0.5), p=0.5, training=True)


class FirstStage(nn.Module):
    """Stage 1 (`FirstStage`): partial-conv head, transformer body, style module, decoder."""

    def __init__(self, config: MATConfig) -> None:
        super().__init__()
        dim, resolution = config.dim, config.resolution
        downs = int(math.log2(resolution // TOKEN_RESOLUTION))
        self.conv_first = PartialConv(4, dim)
        self.enc_conv = nn.ModuleList(PartialConv(dim, dim, down=2) for _ in range(downs))
        self.tran = nn.ModuleList()
        previous = 1
        for depth, window, scale in zip(config.depths, config.window_sizes, BODY_SCALES):
            resample = None
            if scale > previous:
                resample = TokenResample(dim, down=2)
            elif scale < previous:
                resample = TokenResample(dim, up=2)
            size = TOKEN_RESOLUTION // scale
            self.tran.append(BasicLayer(dim, size, depth, config.num_heads, window, config.mlp_ratio, resample))
            previous = scale
        convs = [Conv2dLayer(dim, dim, 3, activation="lrelu", down=2) for _ in range(int(math.log2(BOTTLENECK)))]
        self.down_conv = nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1))
        self.to_style = FullyConnectedLayer(dim, dim * 2, activation="lrelu")
        self.ws_style = FullyConnectedLayer(config.w_dim, dim, activation="lrelu")
        self.to_square = FullyConnectedLayer(dim, BOTTLENECK * BOTTLENECK, activation="lrelu")
        self.dec_conv = nn.ModuleList(
            SynthesisBlock(dim, dim, dim * 3, TOKEN_RESOLUTION * 2 ** (i + 1), use_noise=False) for i in range(downs)
        )

    def forward(self, image: torch.Tensor, known: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        x, mask = self.conv_first(torch.cat([known - 0.5, image * known], dim=1), known)
        skips = [x]
        for block in self.enc_conv:
            x, mask = block(x, mask)
            skips.append(x)
        skips.pop()  # the 64 x 64 map goes on as tokens
        size = tuple(x.shape[-2:])
        x, mask = feature2token(x), feature2token(mask)
        middle = len(self.tran) // 2
        for i, stage in enumerate(self.tran):
            if i < middle:
                x, size, mask = stage(x, size, mask)
                skips.append(x)
            elif i > middle:
                x, size, _ = stage(x, size)
                x = x + skips[middle - i]
            else:
                x, size, _ = stage(x, size)
                keep = mixing_map(x)
                u = self.ws_style(ws[:, -1])
                # one value per bottleneck token (the official linear resize to L tokens is the
                # identity: the bottleneck always has 16 x 16 tokens), broadcast over channels
                noise = self.to_square(u).unsqueeze(-1)
                x = x * keep + noise * (1 - keep)
                g = self.to_style(self.down_conv(token2feature(x, size)).flatten(1))
                style = torch.cat([g, u], dim=1)
        x = token2feature(x, size)
        image_out = None
        for i, block in enumerate(self.dec_conv):
            x, image_out = block(x, image_out, (style, style, style), skips[len(self.dec_conv) - i - 1])
        return image_out


class EncoderBlock(nn.Module):
    """`EncFromRGB` (conv 1 x 1, conv 3 x 3) at the input size, `ConvBlockDown` (conv 3 x 3 down,
    conv 3 x 3) below; all lrelu."""

    def __init__(self, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        kernel, down = (1, 1) if first else (3, 2)
        self.conv0 = Conv2dLayer(in_channels, out_channels, kernel, activation="lrelu", down=down)
        self.conv1 = Conv2dLayer(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(x))


class Encoder(nn.Module):
    """Stage-2 encoder: `EncConv_Block_{r}x{r}` from the input size down to 16; E[r] per size."""

    def __init__(self, resolution: int, widths: dict[int, int]) -> None:
        super().__init__()
        self.resolutions = [2**k for k in range(int(math.log2(resolution)), int(math.log2(BOTTLENECK)) - 1, -1)]
        for r in self.resolutions:
            first = r == resolution
            block = EncoderBlock(7 if first else widths[2 * r], widths[r], first)
            setattr(self, f"EncConv_Block_{r}x{r}", block)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        features = {}
        for r in self.resolutions:
            x = features[r] = getattr(self, f"EncConv_Block_{r}x{r}")(x)
        return features


class ToStyle(nn.Module):
    """Global code of stage 2: 3 x lrelu conv 3 x 3 down (16 -> 2), average pool, FC (lrelu)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*(Conv2dLayer(in_channels, in_channels, 3, activation="lrelu", down=2) for _ in range(3)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = FullyConnectedLayer(in_channels, out_channels, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(1))


class FirstDecoderBlock(nn.Module):
    """`DecBlockFirstV2`: lrelu conv 3 x 3, + E[16], StyleConv (w_0), ToRGB (w_1)."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv0 = Conv2dLayer(channels, channels, 3, activation="lrelu")
        self.conv1 = StyleConv(channels, channels, style_dim, BOTTLENECK)
        self.toRGB = ToRGB(channels, 3, style_dim)

    def forward(self, x, skip, styles, noise_mode):
        x = self.conv1(self.conv0(x) + skip, styles[0], noise_mode)
        return x, self.toRGB(x, styles[1])


class Decoder(nn.Module):
    """`Dec_16x16`, then `Dec_{r}x{r}` (Co-ModGAN's `G_r` blocks) up to the output size."""

    def __init__(self, resolution: int, widths: dict[int, int], style_dim: int) -> None:
        super().__init__()
        self.resolutions = [2**k for k in range(int(math.log2(BOTTLENECK)) + 1, int(math.log2(resolution)) + 1)]
        self.Dec_16x16 = FirstDecoderBlock(widths[BOTTLENECK], style_dim)
        for r in self.resolutions:
            setattr(self, f"Dec_{r}x{r}", SynthesisBlock(widths[r // 2], widths[r], style_dim, r))

    def forward(self, x, ws, g, features, noise_mode):
        def style(index: int) -> torch.Tensor:
            return torch.cat([ws[:, index], g], dim=1)

        x, image = self.Dec_16x16(x, features[BOTTLENECK], (style(0), style(1)), noise_mode)
        for r in self.resolutions:
            k = int(math.log2(r))
            styles = (style(2 * k - 9), style(2 * k - 8), style(2 * k - 7))
            x, image = getattr(self, f"Dec_{r}x{r}")(x, image, styles, features[r], noise_mode)
        return image


class Synthesis(nn.Module):
    """`SynthesisNet`: stage 1, then the refinement U-Net on its composite."""

    def __init__(self, config: MATConfig) -> None:
        super().__init__()
        widths = resolution_widths(config.resolution, config.channel_base, config.channel_max)
        self.first_stage = FirstStage(config)
        self.enc = Encoder(config.resolution, widths)
        self.to_square = FullyConnectedLayer(config.w_dim, BOTTLENECK * BOTTLENECK, activation="lrelu")
        self.to_style = ToStyle(widths[BOTTLENECK], widths[4] * 2)
        self.dec = Decoder(config.resolution, widths, config.w_dim + widths[4] * 2)

    def forward(self, image, known, ws, noise_mode="random") -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs (stage 2, stage 1); `image` in [-1, 1], `known` 1 = known."""
        coarse = self.first_stage(image, known, ws)
        composite = image * known + coarse * (1 - known)
        features = self.enc(torch.cat([known - 0.5, composite, image * known], dim=1))
        bottleneck = features[BOTTLENECK]
        keep = mixing_map(bottleneck)
        # the official bilinear resize of this 16 x 16 square to the 16 x 16 map is the identity
        noise = self.to_square(ws[:, 0]).view(-1, 1, BOTTLENECK, BOTTLENECK)
        bottleneck = features[BOTTLENECK] = bottleneck * keep + noise * (1 - keep)
        output = self.dec(bottleneck, ws, self.to_style(bottleneck), features, noise_mode)
        return output, coarse


class MATGenerator(StyleInpainter):
    """Mapping + both stages: 61,562,518 parameters in the paper config (512). The official
    inference (`generate_image.py --trunc 1`) does not truncate and uses the stored noise maps."""

    inference_noise = "const"

    def __init__(self, config: MATConfig) -> None:
        super().__init__()
        if config.resolution < 2 * TOKEN_RESOLUTION or config.resolution & (config.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 128, got {config.resolution}")
        if config.dim % config.num_heads:
            raise ValueError(f"dim ({config.dim}) must be a multiple of num_heads ({config.num_heads})")
        if len(config.depths) != len(BODY_SCALES) or len(config.window_sizes) != len(BODY_SCALES):
            raise ValueError(f"depths and window_sizes need {len(BODY_SCALES)} entries (one per body stage)")
        self.config = config
        self.fixed_size = self.size_multiple = self.min_size = config.resolution
        self.window_per_hole = 2.0  # training holes cover up to the whole window (hole_range [0, 1])
        self.synthesis = Synthesis(config)
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, num_ws(config.resolution), config.mapping_layers)

    def forward(self, image, known, ws, noise_mode="random") -> tuple[torch.Tensor, torch.Tensor]:
        return self.synthesis(image, known, ws, noise_mode)

    def synthesise(self, image, known, ws, noise_mode) -> torch.Tensor:
        return self(image, known, ws, noise_mode)[0]


class MATDiscriminator(nn.Module):
    """Two resnet Ds with a mask channel: `main` (Co-ModGAN's, on the final composite) and
    `stage1` (half widths, on the stage-1 composite). Official names: `Dis`, `fc0`, `fc1` and
    `Dis_stg1`, `fc0_stg1`, `fc1_stg1` -> `main.*` and `stage1.*`."""

    def __init__(self, config: MATConfig) -> None:
        super().__init__()
        args = (config.resolution, config.channel_base, config.channel_max)
        self.main = ResnetDiscriminator(config.resolution, resolution_widths(*args), config.mbstd_group)
        self.stage1 = ResnetDiscriminator(config.resolution, resolution_widths(*args, divisor=2), config.mbstd_group)


def build_discriminator(config: MATConfig) -> MATDiscriminator:
    """36,231,618 parameters at 512 (main 28,982,913 + stage 1 7,248,705)."""
    return MATDiscriminator(config)


class MATRecipe(StyleGANRecipe):
    """`TwoStageLoss`: Co-ModGAN's recipe on both stages (each D head judges its composite, both
    see the real image as real, R1 on both) plus 0.1 x the VGG19 perceptual loss of the final
    composite (pre-ReLU conv4_4 / 4 + conv5_4 / 2; dropped, with a warning, without `--backbone`).
    Adam 1e-3 (the README's `--lr`). Same departures as Co-ModGAN's recipe."""

    def __init__(self, config: MATConfig, options: TrainOptions) -> None:
        super().__init__(config, options)
        self.vgg = optional_backbone(
            lambda: VGGFeatures("vgg19"),
            options.backbone,
            arch="mat",
            dropped="perceptual loss",
            expected="VGG19 ImageNet (torchvision vgg19-dcbb9e9d.pth)",
        )

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.config)

    def generate(self, generator, image, mask) -> dict[str, torch.Tensor]:
        ws = self.styles(generator, image.shape[0], image.device)
        output, coarse = generator(image * 2 - 1, 1 - mask, ws)
        return {"output": output, "stage1": coarse}

    def fakes(self, output, image, mask) -> list[torch.Tensor]:
        return [self.composite(output[key], image, mask) for key in ("output", "stage1")]

    def head_logits(self, discriminator, images, known):
        return [discriminator.main(images[0], known), discriminator.stage1(images[1], known)]

    def generator_loss(self, discriminator, image, mask, output, phase):
        loss, logs = super().generator_loss(discriminator, image, mask, output, phase)
        if self.vgg is not None:
            filled = (self.composite(output["output"], image, mask) + 1) / 2
            perceptual = mat_perceptual_loss(self.vgg.to_device_of(image), filled, image)
            loss = loss + self.config.perceptual_weight * perceptual
            logs["perceptual"] = perceptual.item()
        return loss, logs


CONFIGS = {
    "paper": MATConfig(),
    "paper-256": MATConfig(resolution=256),
    "mat-small-256": MATConfig(resolution=256, dim=96, channel_base=8192, channel_max=128, z_dim=256, w_dim=256),
    "mat-tiny-128": MATConfig(
        resolution=128, dim=48, depths=(2, 2, 2, 2, 2), channel_base=4096, channel_max=64, z_dim=128, w_dim=128
    ),
}
CONFIGS["tiny"] = CONFIGS["mat-tiny-128"]

SPECS = (
    ArchSpec(
        name="mat",
        title="Li et al., CVPR 2022",
        input_note="fixed square window (512 in the paper config); RGB in [-1, 1], m - 0.5 + x * m (1 = known); z",
        build_generator=MATGenerator,
        configs=CONFIGS,
        default_config="paper",
        order=90,
        recipe=MATRecipe,
    ),
)

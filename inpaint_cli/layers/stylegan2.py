"""StyleGAN2 building blocks shared by Co-ModGAN and MAT (Karras et al., CVPR 2020; the NVIDIA
StyleGAN2-ADA PyTorch code that MAT's `networks/basic_module.py` builds on; docs/architectures.md §S).

- Equalised learning rate: a stored weight is N(0, 1) / lr_mul and is used as
  `W * lr_mul / sqrt(fan_in)` (biases `b * lr_mul`), so stored tensors are not plain conv weights.
- `lrelu` is `leaky_relu(x + b, 0.2) * sqrt(2)` (`bias_act`), times an extra gain where a caller
  asks for one (the resnet discriminator block's sqrt(1/2)).
- FIR resampling with `f = outer([1, 3, 3, 1]) / 64` (`upfirdn2d`, written here in plain torch).
- Modulated conv: per-sample input scales `s = A(style)` (affine bias initialised to 1),
  demodulation `rsqrt(sum w'^2 + 1e-8)` per output channel, one grouped conv for the batch.
- Mapping network: `z * rsqrt(mean z^2 + 1e-8)`, 8 FC layers with lr_mul 0.01, a running mean
  `w_avg` (beta 0.995) and truncation `w_avg + psi (w - w_avg)`.
- The minibatch-stddev resnet discriminator with a mask channel (Co-ModGAN's D; MAT has two).

Module and tensor names follow StyleGAN2-ADA / MAT (`weight`, `bias`, `affine`, `noise_strength`,
`noise_const`, `resample_filter`, `Dis.{i}`, `fc0`, `fc1`), so MAT checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FIR_TAPS = (1, 3, 3, 1)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)
NOISE_MODES = ("random", "const", "none")


def fir_filter(taps: tuple[int, ...] = FIR_TAPS) -> torch.Tensor:
    """The separable low-pass filter as a normalised 2-D kernel (StyleGAN2-ADA `setup_filter`)."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by inserting zeros, pad (left, right, top, bottom), FIR-filter, keep every
    `down`-th pixel: the reference implementation of StyleGAN2-ADA `upfirdn2d` (padding >= 0)."""
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, list(padding))
    kernel = (f * gain).to(x.dtype).flip([0, 1])
    x = F.conv2d(x, kernel[None, None].repeat(channels, 1, 1, 1), groups=channels)
    return x[:, :, ::down, ::down]


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 image upsampling of the skip (ToRGB) path: zeros inserted, pad (2, 1), blur with 4 f."""
    size = f.shape[-1]
    return upfirdn2d(x, f, up=2, padding=((size + 1) // 2, (size - 2) // 2) * 2, gain=4)


def conv2d_resample(
    x: torch.Tensor,
    weight: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """Convolution with FIR up- or downsampling by 2 (StyleGAN2-ADA `conv2d_resample`).

    Down: pad and blur, then a strided conv (a 1 x 1 kernel: blur, keep every second pixel, conv).
    Up: a strided transposed conv with the flipped kernel (2H + k - 2), then pad and blur with 4 f.
    """
    out_channels, in_per_group, kh, kw = weight.shape
    taps = f.shape[-1]
    if down > 1:
        p0, p1 = padding + (taps - down + 1) // 2, padding + (taps - down) // 2
        if kh == 1 and kw == 1:
            x = upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))
            return F.conv2d(x, weight, groups=groups)
        x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
        return F.conv2d(x, weight, stride=down, groups=groups)
    if up > 1:
        w = weight.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw).flip([2, 3])
        p0 = padding + (taps + up - 1) // 2 - (kw - 1)
        p1 = padding + (taps - up) // 2 - (kw - up)
        x = F.conv_transpose2d(x, w, stride=up, groups=groups)
        return upfirdn2d(x, f, padding=(p0, p1, p0, p1), gain=up**2)
    return F.conv2d(x, weight, padding=padding, groups=groups)


def bias_act(
    x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear", gain: float = 1.0, dim: int = 1
) -> torch.Tensor:
    """`x + b` along `dim`, then `lrelu` (slope 0.2, times sqrt 2) or `linear`, times `gain`."""
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + bias.reshape(shape)
    if activation == "lrelu":
        return F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
    if activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    return x * gain if gain != 1 else x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Equalised dense layer: weight [out, in] ~ N(0, 1) / lr_mul, used times lr_mul / sqrt(in)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.matmul((self.weight * self.weight_gain).t())
        bias = None if self.bias is None else self.bias * self.bias_gain
        return bias_act(x, bias, self.activation, dim=x.ndim - 1)


class Conv2dLayer(nn.Module):
    """Equalised conv (same padding) with optional FIR up/down x2, bias and activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
    ) -> None:
        super().__init__()
        self.activation, self.up, self.down = activation, up, down
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", fir_filter())
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        x = conv2d_resample(x, weight, self.resample_filter, self.up, self.down, self.padding)
        return bias_act(x, self.bias, self.activation, gain)


class ModulatedConv2d(nn.Module):
    """Weight [1, O, I, k, k] scaled per sample by `affine(style)` and (optionally) demodulated."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        up: int = 1,
    ) -> None:
        super().__init__()
        self.demodulate, self.up = demodulate, up
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", fir_filter())
        self.affine = FullyConnectedLayer(style_dim, in_channels, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channels, height, width = x.shape
        scales = self.affine(style).view(batch, 1, in_channels, 1, 1)
        weight = self.weight * self.weight_gain * scales
        if self.demodulate:
            weight = weight * (weight.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        out_channels, kernel = weight.shape[1], weight.shape[-1]
        weight = weight.reshape(batch * out_channels, in_channels, kernel, kernel)
        x = x.reshape(1, batch * in_channels, height, width)
        x = conv2d_resample(x, weight, self.resample_filter, up=self.up, padding=self.padding, groups=batch)
        return x.reshape(batch, out_channels, *x.shape[2:])


class StyleConv(nn.Module):
    """Modulated 3 x 3 conv, noise `strength * n` (n random [B, 1, H, W] or the stored
    `noise_const` [R, R]), bias, lrelu. Without `use_noise` there is no noise tensor at all."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, demodulate, up)
        self.use_noise = use_noise
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        x = self.conv(x, style)
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return bias_act(x, self.bias, "lrelu")


class ChannelsLastSafe(nn.Module):
    """`.to(memory_format=torch.channels_last)` converts the 4-D tensors only: `Module.to` would
    reject the 5-D modulated weights [1, O, I, k, k] that the official checkpoints store (their
    per-sample grouped convs gain nothing from the layout anyway)."""

    def to(self, *args, **kwargs):
        device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
        super().to(device=device, dtype=dtype, non_blocking=non_blocking)
        if memory_format is not None:
            for tensor in (*self.parameters(), *self.buffers()):
                if tensor.dim() == 4:
                    tensor.data = tensor.data.contiguous(memory_format=memory_format)
        return self


class ToRGB(nn.Module):
    """1 x 1 modulated conv without demodulation, + bias, + the x2-upsampled previous image."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", fir_filter())

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = bias_act(self.conv(x, style), self.bias)
        if skip is None:
            return out
        if skip.shape[-1] != out.shape[-1]:
            skip = upsample2d(skip, self.resample_filter)
        return out + skip


class SynthesisBlock(nn.Module):
    """One x2 block of a skip generator: StyleConv up, `+ skip` (encoder feature of this size),
    StyleConv, ToRGB added to the upsampled image (Co-ModGAN `G_r`, MAT `DecBlock`,
    `DecStyleBlock`). Takes the three style vectors (conv0, conv1, toRGB)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        resolution: int,
        use_noise: bool = True,
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        self.conv0 = StyleConv(in_channels, out_channels, style_dim, resolution, up=2, use_noise=use_noise)
        self.conv1 = StyleConv(out_channels, out_channels, style_dim, resolution, use_noise=use_noise)
        self.toRGB = ToRGB(out_channels, image_channels, style_dim)

    def forward(
        self,
        x: torch.Tensor,
        image: torch.Tensor | None,
        styles: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        skip: torch.Tensor,
        noise_mode: str = "random",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv0(x, styles[0], noise_mode) + skip
        x = self.conv1(x, styles[1], noise_mode)
        return x, self.toRGB(x, styles[2], image)


class MappingNetwork(nn.Module):
    """z -> w: normalise, `layers` equalised FC with lrelu and lr_mul 0.01, broadcast to `num_ws`
    rows; `w_avg` tracks the batch mean in training; truncation lerps towards it."""

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_ws: int,
        layers: int = 8,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.num_ws, self.layers, self.w_avg_beta = z_dim, num_ws, layers, w_avg_beta
        widths = [z_dim] + [w_dim] * layers
        for index in range(layers):
            layer = FullyConnectedLayer(
                widths[index], widths[index + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{index}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = True) -> torch.Tensor:
        x = normalize_2nd_moment(z.float())
        for index in range(self.layers):
            x = getattr(self, f"fc{index}")(x)
        if self.training and update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


@contextmanager
def seeded_latents(seed: int | None, batch: int, z_dim: int, device: torch.device) -> Iterator[torch.Tensor]:
    """z for a fill, and torch's RNG for the network's own draws inside the block.

    With a seed, z is `np.random.seed(seed); np.random.randn(batch, z_dim)` (the official
    `generate_image.py`), and torch's generator is seeded with it for the block only (the caller's
    RNG state is restored after), so the network's draws are the first from a fresh seed. Without
    one, z comes from torch's RNG as it stands.
    """
    if seed is None:
        yield torch.randn(batch, z_dim, device=device)
        return
    z = torch.from_numpy(np.random.RandomState(seed).randn(batch, z_dim)).float().to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield z


def mix_styles(
    mapping: MappingNetwork, z: torch.Tensor, ws: torch.Tensor, probability: float, truncation_psi: float
) -> torch.Tensor:
    """Style mixing (StyleGAN2-ADA `run_G`): with `probability`, rows from a random cutoff in
    [1, num_ws) on come from a second z (the w average is not updated for it)."""
    if probability <= 0:
        return ws
    cutoff = int(torch.randint(1, ws.shape[1], []))
    if float(torch.rand([])) >= probability:
        return ws
    other = mapping(torch.randn_like(z), truncation_psi, update_w_avg=False)
    return torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)


class MinibatchStdLayer(nn.Module):
    """Appends the stddev over groups of `min(group_size, N)` samples, averaged over C, H, W."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        if n % group:
            raise ValueError(f"minibatch-stddev needs a batch divisible by {group}, got {n}")
        y = x.reshape(group, -1, 1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1)
        return torch.cat([x, y.repeat(group, 1, h, w)], dim=1)


class DisFromRGB(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv2dLayer(in_channels, out_channels, 1, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DisBlock(nn.Module):
    """Resnet D block: lrelu conv 3 x 3, lrelu conv 3 x 3 down, + linear 1 x 1 down skip, / sqrt 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x, gain=math.sqrt(0.5))
        return skip + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


def channel_width(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: `clip(channel_base / resolution, 1, channel_max)` (the TF
    `nf(stage) = fmap_base / 2^stage` with `channel_base = 2 fmap_base`; MAT's fixed table)."""
    return int(np.clip(channel_base // resolution, 1, channel_max))


class ResnetDiscriminator(nn.Module):
    """StyleGAN2's resnet D with a mask channel (Co-ModGAN `D_co_mod_gan`, MAT's `Dis`):
    input `cat[m - 0.5, image]` (m = 1 known), FromRGB 1 x 1, blocks down to 4 x 4, minibatch
    stddev, lrelu conv 3 x 3, FC 16 C -> C lrelu, FC C -> 1 (a logit)."""

    def __init__(self, resolution: int, widths: dict[int, int], mbstd_group: int = 4, image_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [DisFromRGB(image_channels + 1, widths[resolution])]
        size = resolution
        while size > 4:
            layers.append(DisBlock(widths[size], widths[size // 2]))
            size //= 2
        layers.append(MinibatchStdLayer(mbstd_group))
        layers.append(Conv2dLayer(widths[4] + 1, widths[4], 3, activation="lrelu"))
        self.Dis = nn.Sequential(*layers)
        self.fc0 = FullyConnectedLayer(widths[4] * 16, widths[4], activation="lrelu")
        self.fc1 = FullyConnectedLayer(widths[4], 1)

    def forward(self, image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        x = self.Dis(torch.cat([known - 0.5, image], dim=1))
        return self.fc1(self.fc0(x.flatten(1)))


def resolution_widths(resolution: int, channel_base: int, channel_max: int, divisor: int = 1) -> dict[int, int]:
    """{r: width} for r = 4 ... resolution (powers of two), divided by `divisor` (MAT's D_stg1: 2)."""
    widths = {}
    size = 4
    while size <= resolution:
        widths[size] = channel_width(size, channel_base, channel_max) // divisor
        size *= 2
    return widths

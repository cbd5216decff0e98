"""Fast Fourier Convolution (Chi et al., NeurIPS 2020) as used by LaMa (Suvorov et al., WACV 2022;
official `saicinpainting/training/modules/ffc.py`; docs/architectures.md §7).

Features travel as a pair `(local, global)`: `ratio_out` of the output channels form the global
part. Local-to-local, local-to-global and global-to-local paths are plain 3x3 convs (reflect
padding, no bias); global-to-global is a `SpectralTransform`, a 1x1 conv in the 2-D Fourier domain
of the whole feature map, so every block sees the whole image whatever its size. Where a part has
no channels it is `None` and its convs do not exist.

Module names (`ffc.convl2l`, `convg2g.fu.conv_layer`, `bn_l`, `conv1`/`conv2` of a residual block...)
follow the official checkpoint, so converted LaMa weights load unchanged. The local Fourier unit
(`enable_lfu`) is off in lama-fourier and big-lama and is not implemented.
"""

from __future__ import annotations

import torch
from torch import nn

#: features as they travel between FFC layers: (local, global), either part possibly absent
FFCFeatures = tuple[torch.Tensor, torch.Tensor | None]


def _add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class FourierUnit(nn.Module):
    """1x1 conv + BN + ReLU on the real and imaginary parts of `rfft2(x)` (orthonormal), then back.

    The spectrum's channels are interleaved as the official code orders them:
    `[c0.real, c0.imag, c1.real, c1.imag, ...]`. The FFTs run in float32 (their input is cast, and
    autocast never lowers FFTs), as half-precision FFTs are unsupported or restricted to powers of
    two; the 1x1 conv between them may run in half precision; the result has the input's dtype.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * in_channels, 2 * out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)
        self.relu = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        spectrum = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        spectrum_width = spectrum.shape[-1]
        stacked = torch.stack((spectrum.real, spectrum.imag), dim=2)
        stacked = stacked.reshape(batch, 2 * channels, height, spectrum_width)
        stacked = self.relu(self.bn(self.conv_layer(stacked)))
        real, imaginary = stacked.float().reshape(batch, -1, 2, height, spectrum_width).unbind(2)
        output = torch.fft.irfftn(
            torch.complex(real, imaginary), s=(height, width), dim=(-2, -1), norm="ortho"
        )
        return output.to(x.dtype)


class SpectralTransform(nn.Module):
    """`conv2(x + fourier_unit(x))` with `x = ReLU(BN(conv1(input)))`, at half the output width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(True)
        )
        self.fu = FourierUnit(hidden, hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


def split_channels(channels: int, global_ratio: float) -> tuple[int, int]:
    """(local, global) channel counts; the global part is `int(channels * global_ratio)`."""
    global_channels = int(channels * global_ratio)
    return channels - global_channels, global_channels


class FFC(nn.Module):
    """Y_l = l2l(X_l) + g2l(X_g); Y_g = l2g(X_l) + spectral(X_g). Convs without bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_in: float,
        ratio_out: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if stride != 1 and ratio_in > 0:
            raise ValueError("a strided FFC with a global input is not supported")
        in_local, in_global = split_channels(in_channels, ratio_in)
        out_local, out_global = split_channels(out_channels, ratio_out)

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(
                cin, cout, kernel_size, stride, padding, dilation,
                bias=False, padding_mode="reflect",
            )

        self.convl2l = conv(in_local, out_local)
        self.convl2g = conv(in_local, out_global)
        self.convg2l = conv(in_global, out_local)
        self.convg2g = (
            SpectralTransform(in_global, out_global) if in_global and out_global else None
        )

    def forward(self, x: FFCFeatures) -> FFCFeatures:
        local, global_ = x

        def apply(module: nn.Module | None, features: torch.Tensor | None) -> torch.Tensor | None:
            return None if module is None or features is None else module(features)

        out_local = _add(apply(self.convl2l, local), apply(self.convg2l, global_))
        out_global = _add(apply(self.convl2g, local), apply(self.convg2g, global_))
        return out_local, out_global


class FFCNormAct(nn.Module):
    """FFC followed by BatchNorm and ReLU on each part (official `FFC_BN_ACT`).

    Accepts a plain tensor (all local) as well as a `(local, global)` pair.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_in: float,
        ratio_out: float,
        **conv_options: int,
    ) -> None:
        """`conv_options`: `FFC`'s stride, padding and dilation."""
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_in, ratio_out, **conv_options)
        out_local, out_global = split_channels(out_channels, ratio_out)
        self.bn_l = nn.BatchNorm2d(out_local) if out_local else None
        self.bn_g = nn.BatchNorm2d(out_global) if out_global else None
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor | FFCFeatures) -> FFCFeatures:
        local, global_ = self.ffc(x if isinstance(x, tuple) else (x, None))
        if local is not None and self.bn_l is not None:
            local = self.act(self.bn_l(local))
        if global_ is not None and self.bn_g is not None:
            global_ = self.act(self.bn_g(global_))
        return local, global_


class FFCResnetBlock(nn.Module):
    """Two 3x3 `FFCNormAct` with a residual added to each part (official `FFCResnetBlock`)."""

    def __init__(self, channels: int, global_ratio: float, dilation: int = 1) -> None:
        super().__init__()

        def conv() -> FFCNormAct:
            return FFCNormAct(
                channels, channels, 3, global_ratio, global_ratio, padding=dilation, dilation=dilation
            )

        self.conv1, self.conv2 = conv(), conv()

    def forward(self, x: FFCFeatures) -> FFCFeatures:
        local, global_ = self.conv2(self.conv1(x))
        return _add(local, x[0]), _add(global_, x[1])  # type: ignore[return-value]


class ConcatParts(nn.Module):
    """`(local, global)` -> one tensor, local channels first (official `ConcatTupleLayer`)."""

    def forward(self, x: FFCFeatures) -> torch.Tensor:
        local, global_ = x
        parts = [part for part in (local, global_) if part is not None]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

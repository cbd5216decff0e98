"""LPIPS v0.1, the learned perceptual image patch similarity (Zhang et al., CVPR 2018).

`d(x0, x1) = sum_l mean_hw sum_c w_lc (n0_lchw - n1_lchw)^2` with `n = f / (||f||_c + 1e-10)`, the
features `f` at five ReLU taps of an ImageNet backbone, the weights `w_l >= 0` the lpips package's
`alex.pth` / `vgg.pth` linear layers (docs/metrics.md §2):

- alex: torchvision AlexNet features after relu1-relu5 (64, 192, 384, 256, 256 channels);
- vgg: torchvision VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.

lpips maps [-1, 1] inputs by its ScalingLayer `(x - shift) / scale`, shift (-.030, -.088, -.188),
scale (.458, .448, .450): on x = 2v - 1 that is exactly the ImageNet mean/std normalisation of
v in [0, 1] that the backbones here apply, so images are given in [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from inpaint_cli.layers.perceptual import FrozenBackbone, TappedFeatures, VGGFeatures

LPIPSNet = Literal["alex", "vgg"]
NORM_EPS = 1e-10

#: the backbone layers LPIPS taps, and their channel counts
LPIPS_TAPS: dict[str, tuple[str, ...]] = {
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
}
LPIPS_CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
}


class AlexNetFeatures(TappedFeatures):
    """torchvision's `alexnet().features` (Krizhevsky et al., 2012, the one-GPU variant): conv 11x11
    s4 -> pool -> conv 5x5 -> pool -> three conv 3x3 -> pool, ReLU after each conv. `forward`
    returns the requested ReLU outputs (`relu1`...`relu5`) of ImageNet-normalised [0, 1] RGB."""

    network_name = "AlexNet"
    ignored_prefixes = ("classifier.",)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.layer_index = {f"relu{number}": index for number, index in
                            enumerate((1, 4, 7, 9, 11), 1)}


class _ChannelWeights(nn.Module):
    """lpips' `NetLinLayer`: Dropout (identity in eval) then a 1x1 conv to one channel, no bias;
    kept as `model.1` so the parameter is named as in the published file."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPSLinearLayers(FrozenBackbone):
    """The five per-channel weightings `lin0`...`lin4` of lpips' `alex.pth` / `vgg.pth`."""

    def __init__(self, net: LPIPSNet) -> None:
        super().__init__()
        for index, channels in enumerate(LPIPS_CHANNELS[net]):
            self.add_module(f"lin{index}", _ChannelWeights(channels))

    def layers(self) -> list[_ChannelWeights]:
        return [getattr(self, f"lin{index}") for index in range(len(self._modules))]


def build_lpips_backbone(net: LPIPSNet) -> FrozenBackbone:
    """AlexNet or VGG16 features, to be loaded from torchvision's ImageNet file."""
    return AlexNetFeatures() if net == "alex" else VGGFeatures("vgg16")


class LPIPS(nn.Module):
    """The LPIPS distance between image pairs in [0, 1] (N x 3 x H x W each) -> N distances.

    `per_layer=True` returns the N x 5 per-tap terms instead (their row sums are the distances)."""

    def __init__(self, net: LPIPSNet, backbone: FrozenBackbone, linear: LPIPSLinearLayers) -> None:
        super().__init__()
        self.taps = LPIPS_TAPS[net]
        self.backbone = backbone
        self.linear = linear

    def forward(
        self, image0: torch.Tensor, image1: torch.Tensor, per_layer: bool = False
    ) -> torch.Tensor:
        features0 = self.backbone(image0, self.taps)
        features1 = self.backbone(image1, self.taps)
        terms = []
        for f0, f1, weights in zip(features0, features1, self.linear.layers(), strict=True):
            n0 = f0 / (f0.pow(2).sum(1, keepdim=True).sqrt() + NORM_EPS)
            n1 = f1 / (f1.pow(2).sum(1, keepdim=True).sqrt() + NORM_EPS)
            terms.append(weights((n0 - n1) ** 2).mean(dim=(1, 2, 3)))
        stacked = torch.stack(terms, 1)
        return stacked if per_layer else stacked.sum(1)

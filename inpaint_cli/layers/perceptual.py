"""Frozen ImageNet backbones behind the perceptual losses (docs/architectures.md §5, §6, §7); the
losses themselves are `inpaint_cli.losses.perceptual`.

- `VGGFeatures("vgg16")`: the convolutional part of VGG16 (Simonyan & Zisserman, ICLR 2015), for
  the PConv perceptual and style losses (pool1-pool3; Liu et al., ECCV 2018).
- `VGGFeatures("vgg19")`: VGG19's, for AOT-GAN's perceptual (relu1_1-relu5_1) and style
  (relu2_2, relu3_4, relu4_4, relu5_2) losses (Zeng et al., TVCG 2022).
- `ResNet50Dilated`: the MIT CSAIL ADE20k segmentation encoder (deep 3-conv stem, layer3/layer4
  dilated 2/4 instead of strided, output stride 8) behind LaMa's high-receptive-field perceptual
  loss (Suvorov et al., WACV 2022), returning the outputs of layer1-layer4.

Each backbone takes RGB in [0, 1] and applies the ImageNet mean/std itself. Parameter names equal
the original files' keys (torchvision's `features.0.weight`...; the CSAIL encoder's `conv1.weight`,
`bn1.running_mean`, `layer1.0.conv1.weight`, `layer1.0.downsample.0.weight`...), so the published
weights load after a plain format conversion. Nothing is ever downloaded: weights come only from a
safetensors file the user gives (`load_backbone`), and a loaded backbone is frozen and stays in
eval mode. Convert the published files once (torch.load with `weights_only=True` unpickles no code):

    import torch, safetensors.torch
    state = torch.load("vgg16-397923af.pth", map_location="cpu", weights_only=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, "vgg16.safetensors")

The same three lines convert torchvision's `vgg19-dcbb9e9d.pth` and the ADE20k
`ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth`. The VGG files also hold the classifier
(`classifier.*`), which is ignored; `*.num_batches_tracked` may be absent (unused in eval mode).

Parameter counts: VGG16 features 14,714,688; VGG19 features 20,024,384; ResNet50-dilated encoder
23,631,808 (weights and BatchNorm affine; running statistics are buffers).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.errors import InpaintError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> ImageNet-normalised (torchvision's `Normalize(mean, std)`)."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


class FrozenBackbone(nn.Module):
    """A feature extractor that never trains: `train()` keeps it in eval mode (BatchNorm statistics
    fixed). `ignored_prefixes` name parts of the published files this module does not use."""

    ignored_prefixes: tuple[str, ...] = ()

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(False)

    def to_device_of(self, tensor: torch.Tensor) -> FrozenBackbone:
        """Move to `tensor`'s device if not there yet (recipes build backbones on the CPU)."""
        parameter = next(self.parameters(), None)
        if parameter is not None and parameter.device != tensor.device:
            self.to(tensor.device)
        return self


# ---------------------------------------------------------------------------------------- VGG

#: convs per stage (widths 64, 128, 256, 512, 512), torchvision's configurations D and E
VGG_STAGE_DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_STAGE_WIDTHS = (64, 128, 256, 512, 512)


class TappedFeatures(FrozenBackbone):
    """A frozen `features` Sequential whose named layers (`layer_index`: name -> position) can be
    tapped: `forward` returns the requested outputs of ImageNet-normalised [0, 1] RGB, in the
    order asked, running the network only as deep as needed."""

    network_name: str  # for error messages
    features: nn.Sequential
    layer_index: dict[str, int]

    def forward(self, image: torch.Tensor, layers: Sequence[str]) -> list[torch.Tensor]:
        unknown = [name for name in layers if name not in self.layer_index]
        if unknown:
            raise ValueError(f"unknown {self.network_name} layers: {', '.join(unknown)}")
        wanted = {self.layer_index[name]: name for name in layers}
        outputs: dict[str, torch.Tensor] = {}
        x = imagenet_normalize(image)
        for index, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if index in wanted:
                outputs[wanted[index]] = x
        return [outputs[name] for name in layers]


class VGGFeatures(TappedFeatures):
    """torchvision's `vgg16().features` / `vgg19().features`: conv 3x3 + ReLU stages, max-pooled.

    Layers are named as in the literature (`conv3_4`, `relu3_4`, `pool3`); `forward` returns the
    requested ones in the order asked, running the network only as deep as needed.
    """

    network_name = "VGG"
    ignored_prefixes = ("classifier.",)

    def __init__(self, depth: str = "vgg16") -> None:
        super().__init__()
        if depth not in VGG_STAGE_DEPTHS:
            raise ValueError(f"unknown VGG {depth!r}; known: {', '.join(VGG_STAGE_DEPTHS)}")
        layers: list[nn.Module] = []
        self.layer_index: dict[str, int] = {}
        previous = 3
        for stage, (convs, width) in enumerate(zip(VGG_STAGE_DEPTHS[depth], VGG_STAGE_WIDTHS), 1):
            for conv in range(1, convs + 1):
                self.layer_index[f"conv{stage}_{conv}"] = len(layers)
                layers.append(nn.Conv2d(previous, width, 3, padding=1))
                self.layer_index[f"relu{stage}_{conv}"] = len(layers)
                layers.append(nn.ReLU())
                previous = width
            self.layer_index[f"pool{stage}"] = len(layers)
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)


# ------------------------------------------------------------------------ ResNet50-dilated


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with the stride and dilation, 1x1 x4), BatchNorm, residual."""

    expansion = 4

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, dilation: int = 1,
        downsample: bool = False,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


def _resnet_stage(
    in_channels: int, width: int, blocks: int, stride: int, dilation: int
) -> nn.Sequential:
    """One ResNet stage as CSAIL's `ResnetDilated` turns it (`_nostride_dilate`): with dilation
    d > 1 the stride becomes 1, the first block's 3x3 gets dilation d/2 and the others d."""
    first_dilation = max(dilation // 2, 1)
    layers = [
        Bottleneck(
            in_channels, width, stride if dilation == 1 else 1, first_dilation,
            downsample=True,
        )
    ]
    layers += [
        Bottleneck(width * Bottleneck.expansion, width, dilation=dilation)
        for _ in range(blocks - 1)
    ]
    return nn.Sequential(*layers)


class ResNet50Dilated(FrozenBackbone):
    """The ADE20k `resnet50dilated` encoder (CSAIL semantic-segmentation-pytorch, as in LaMa's
    `models/ade20k`): a stem of three 3x3 convs (3 -> 64 stride 2, 64 -> 64, 64 -> 128) with
    BatchNorm + ReLU and a 3x3 stride-2 max pool, then ResNet50's four stages (3, 4, 6, 3
    bottlenecks) with layer3 and layer4 dilated 2 and 4. Returns `[layer1, ..., layer4]` outputs
    (256, 512, 1024, 2048 channels at 1/4, 1/8, 1/8, 1/8 of the input size)."""

    ignored_prefixes = ("fc.",)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _resnet_stage(128, 64, 3, stride=1, dilation=1)
        self.layer2 = _resnet_stage(256, 128, 4, stride=2, dilation=1)
        self.layer3 = _resnet_stage(512, 256, 6, stride=2, dilation=2)
        self.layer4 = _resnet_stage(1024, 512, 3, stride=2, dilation=4)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = imagenet_normalize(image)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        outputs = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            outputs.append(x)
        return outputs


# ------------------------------------------------------------------------------- loading


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, or of a PyTorch `.pth`/`.pt` state dict read with
    `torch.load(weights_only=True)` (tensors and plain containers only: no code is unpickled)."""
    import pickle

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    shown = os.fspath(path)
    if not os.path.isfile(path):
        raise InpaintError(f"backbone weights {shown}: no such file")
    if os.fspath(path).lower().endswith((".pth", ".pt")):
        try:
            loaded = torch.load(shown, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
            raise InpaintError(
                f"backbone weights {shown}: not a plain PyTorch state dict ({first_line})"
            ) from None
        if not isinstance(loaded, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
        ):
            raise InpaintError(f"backbone weights {shown}: not a state dict of named tensors")
        return loaded
    try:
        return load_file(shown, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InpaintError(
            f"backbone weights {shown}: not a readable safetensors file ({error})"
        ) from None


def load_backbone(backbone: FrozenBackbone, path: str | os.PathLike[str]) -> FrozenBackbone:
    """Load `backbone`'s weights from `path` (safetensors, or a `.pth` state dict read safely by
    `read_state_dict`), freeze it, put it in eval mode.

    Keys must match exactly, except the module's `ignored_prefixes` (extra heads of the published
    file) and `num_batches_tracked` (may be missing). Tensors are loaded as float32. Every problem
    (no such file, not safetensors, missing/unexpected keys, wrong shapes) is an `InpaintError`.
    """
    name = type(backbone).__name__
    loaded = read_state_dict(path)
    own = backbone.state_dict()
    state = {
        key: value
        for key, value in loaded.items()
        if not key.startswith(backbone.ignored_prefixes)
    }
    missing = [
        key for key in own if key not in state and not key.endswith("num_batches_tracked")
    ]
    unexpected = [key for key in state if key not in own]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(own[key].shape)})"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    for problem, keys in (
        ("missing tensors", missing),
        ("unexpected tensors", unexpected),
        ("wrong shapes", wrong_shape),
    ):
        if keys:
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            raise InpaintError(
                f"backbone weights {os.fspath(path)} do not fit {name}: {problem}: {shown}"
            )
    for key, value in own.items():
        if key not in state:
            state[key] = value
        elif value.is_floating_point():
            state[key] = state[key].float()
    backbone.load_state_dict(state, strict=True)
    backbone.requires_grad_(False)
    return backbone.eval()


def optional_backbone(
    build: Callable[[], FrozenBackbone],
    path: str | os.PathLike[str] | None,
    arch: str,
    dropped: str,
    expected: str,
) -> FrozenBackbone | None:
    """`build()` loaded from `path`; without a path, None and one warning naming what is lost."""
    if path is None:
        warnings.warn(
            f"{arch}: no backbone weights given, training without the {dropped}; pass --backbone"
            f" FILE, the {expected} weights as safetensors (see inpaint_cli.layers.perceptual)",
            UserWarning,
            stacklevel=3,
        )
        return None
    return load_backbone(build(), path)

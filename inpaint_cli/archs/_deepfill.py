"""What DeepFill v1 (Yu et al., CVPR 2018) and v2 (Yu et al., ICCV 2019) share (docs/architectures.md
§3, §4): the coarse-to-fine generator, parameterised by its convolution block, the recipe base of
both, v1's bbox training holes (v2 unites them with strokes) and v1's spatially discounted loss
weights.

The layer tables below are the official `build_inpaint_net` (layer names kept), with widths in
multiples of `cnum`. A block is `block(in_channels, width, kernel_size, stride, dilation,
activation)` returning a module with `out_channels`: v1 uses `ConvActivation` (conv + ELU, output
= width), v2 `GatedConv2d` (output = width / 2). The RGB output convolutions are plain in both.
Zero padding is symmetric, `dilation * (k - 1) / 2`: the same shapes as TF 'SAME', but a
half-pixel shift at stride 2; `tf_compatible` networks (converted official weights) pad as TF.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs.base import TrainingRecipe, TrainOptions
from inpaint_cli.layers.contextual_attention import ContextualAttention, align_corners_nearest, flow_to_image
from inpaint_cli.masks import place_rect, reference_scale

#: (in_channels, width, kernel_size, stride, dilation, activation) -> module with `out_channels`
ConvBlock = Callable[[int, int, int, int, int, nn.Module], nn.Module]


@dataclass(frozen=True)
class _Layer:
    name: str
    width: float  # in multiples of cnum
    kernel: int = 3
    stride: int = 1
    dilation: int = 1
    upsample: bool = False  # nearest x2 before the convolution (`gen_deconv`)
    relu: bool = False  # ReLU instead of ELU


def _atrous(prefix: str) -> tuple[_Layer, ...]:
    dilations = (2, 4, 8, 16)
    return tuple(_Layer(f"{prefix}{7 + i}_atrous", 4, dilation=d) for i, d in enumerate(dilations))


def _decoder(prefix: str) -> tuple[_Layer, ...]:
    return (
        _Layer(f"{prefix}11", 4),
        _Layer(f"{prefix}12", 4),
        _Layer(f"{prefix}13_upsample", 2, upsample=True),
        _Layer(f"{prefix}14", 2),
        _Layer(f"{prefix}15_upsample", 1, upsample=True),
        _Layer(f"{prefix}16", 0.5),
    )


def _encoder(
    prefix: str, widths: tuple[float, float, float], relu_last: bool = False
) -> tuple[_Layer, ...]:
    """Layers 1-6 of an encoder: 5 x 5 conv1 of width 1; conv2-4 of `widths` (2 and 4 at stride
    2); conv5-6 of width 4 (conv6 with ReLU where `relu_last`)."""
    down1, middle, down2 = widths
    return (
        _Layer(f"{prefix}1", 1, kernel=5),
        _Layer(f"{prefix}2_downsample", down1, stride=2),
        _Layer(f"{prefix}3", middle),
        _Layer(f"{prefix}4_downsample", down2, stride=2),
        _Layer(f"{prefix}5", 4),
        _Layer(f"{prefix}6", 4, relu=relu_last),
    )


COARSE = (*_encoder("conv", (2, 2, 4)), *_atrous("conv"), *_decoder("conv"))
HALLUCINATION = (*_encoder("xconv", (1, 2, 2)), *_atrous("xconv"))
ATTENTION_ENCODER = _encoder("pmconv", (1, 2, 4), relu_last=True)
ATTENTION_DECODER = (_Layer("pmconv9", 4), _Layer("pmconv10", 4))
MERGE = _decoder("allconv")


def _stack(
    block: ConvBlock, in_channels: int, cnum: int, layers: tuple[_Layer, ...]
) -> tuple[nn.Sequential, int]:
    """The layers as a named `nn.Sequential`, and its output channels."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for layer in layers:
        activation = nn.ReLU() if layer.relu else nn.ELU()
        width = int(layer.width * cnum)
        conv = block(in_channels, width, layer.kernel, layer.stride, layer.dilation, activation)
        if layer.upsample:
            modules[layer.name] = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv)
        else:
            modules[layer.name] = conv
        in_channels = conv.out_channels
    return nn.Sequential(modules), in_channels


#: matching positions (H/8) around the hole whose attention output can reach a hole pixel: the
#: layers after the attention see +-6 px at H/4 (pmconv9-10, allconv11-12, then half-weighted
#: layers at H/2 and H), i.e. +-3 at H/8, and each output pixel is pasted from +-1 position
ATTENTION_REACH = 5


def _near_hole(mask: torch.Tensor) -> torch.Tensor:
    """Positions of the H/8 matching grid within ATTENTION_REACH of a hole pixel (inference only:
    the attention skips tiles with none, which changes nothing inside the hole)."""
    hole = F.max_pool2d(mask, 8, ceil_mode=True)
    return F.max_pool2d(hole, 2 * ATTENTION_REACH + 1, stride=1, padding=ATTENTION_REACH) > 0


class CoarseToFineInpainter(nn.Module):
    """DeepFill's two-stage generator (docs/architectures.md §3 tables; §4 with gated blocks).

    Stage 1 (coarse) sees `cat(x_in, ones, mask)`; stage 2 sees the composite of its output with
    the known pixels (plus ones and mask where `refine_with_mask`, as in v1) in two branches, a
    dilated "hallucination" branch and a contextual-attention branch, merged and decoded. Outputs
    are squashed by `output` ("clip": v1's clip to [-1, 1]; "tanh": v2). Images in [-1, 1].
    H and W must be multiples of 8. Initialised as the official TF code (`glorot_init`).

    `tf_compatible` reproduces the official TF graph for converted weights: TF 'SAME' padding
    (asymmetric at stride 2) and TF1 align-corners nearest resizes of the mask and the features
    before the attention; `channel_order="bgr"` feeds the channels in the official BGR order (and
    flips the outputs back).
    """

    size_multiple = 8

    def __init__(
        self,
        block: ConvBlock,
        cnum: int,
        refine_with_mask: bool,
        output: str,
        flow_upsample: str,
        softmax_scale: float = 10.0,
        tf_compatible: bool = False,
        channel_order: str = "rgb",
    ) -> None:
        super().__init__()
        if output not in ("clip", "tanh"):
            raise ValueError(f"output must be 'clip' or 'tanh', got {output!r}")
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if tf_compatible:
            block = functools.partial(block, tf_same=True)
        self.tf_compatible = tf_compatible
        self.bgr = channel_order == "bgr"
        self.refine_with_mask = refine_with_mask
        self.output = output
        self.flow_upsample = flow_upsample
        self.coarse, channels = _stack(block, 5, cnum, COARSE)
        self.coarse_rgb = nn.Conv2d(channels, 3, 3, padding=1)  # conv17
        refine_inputs = 5 if refine_with_mask else 3
        self.hallucination, hallucinated = _stack(block, refine_inputs, cnum, HALLUCINATION)
        self.attention_encoder, channels = _stack(block, refine_inputs, cnum, ATTENTION_ENCODER)
        self.attention = ContextualAttention(softmax_scale, align_corners=tf_compatible)
        self.attention_decoder, attended = _stack(block, channels, cnum, ATTENTION_DECODER)
        self.merge, channels = _stack(block, hallucinated + attended, cnum, MERGE)
        self.refine_rgb = nn.Conv2d(channels, 3, 3, padding=1)  # allconv17
        glorot_init(self)

    def _channel_order(self, x: torch.Tensor) -> torch.Tensor:
        """RGB <-> the network's channel order (its own inverse)."""
        return x.flip(1) if self.bgr else x

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.output == "tanh" else x.clamp(-1, 1)

    def forward(
        self, x_in: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x_in` N x 3 x H x W in [-1, 1] with holes zeroed, `mask` N x 1 x H x W (1 = hole).

        Returns the coarse and refined images (uncomposited, [-1, 1]) and the attention offsets
        (N x 2 x H/8 x W/8).
        """
        ones = torch.ones_like(mask)
        coarse = self._squash(self.coarse_rgb(self.coarse(torch.cat([x_in, ones, mask], dim=1))))
        composite = coarse * mask + x_in * (1 - mask)
        refine_in = torch.cat([composite, ones, mask], dim=1) if self.refine_with_mask else composite
        hallucinated = self.hallucination(refine_in)
        attended = self.attention_encoder(refine_in)
        if self.tf_compatible:
            small_mask = align_corners_nearest(mask, attended.shape[-2:])
        else:
            small_mask = F.interpolate(mask, size=attended.shape[-2:], mode="nearest")
        attended, offsets = self.attention(attended, small_mask, None if self.training else _near_hole(mask))
        attended = self.attention_decoder(attended)
        merged = self.merge(torch.cat([hallucinated, attended], dim=1))
        return coarse, self._squash(self.refine_rgb(merged)), offsets

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training outputs for `image` in [0, 1]: the coarse and refined images in [-1, 1]."""
        coarse, refined, _ = self(_masked_input(self._channel_order(image), mask), mask)
        return {"coarse": self._channel_order(coarse), "refined": self._channel_order(refined)}

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The refined image over the whole frame, uncomposited, in [0, 1] (docs/design.md "One
        interface"): `fill.py` composites, and `--blend poisson` needs the network's own pixels
        around the hole to find the seam it removes."""
        return self._fill(image, mask)[0]

    def inpaint_with_attention(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fill and where it attended: N x 3 x H x W flow colours in [0, 1] (white = itself)."""
        filled, offsets = self._fill(image, mask)
        flow = flow_to_image(offsets)
        if self.flow_upsample == "nearest":
            flow = F.interpolate(flow, size=image.shape[-2:], mode="nearest")
        else:
            flow = F.interpolate(flow, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return filled, flow.clamp(0, 1)

    def _fill(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        if height % 8 or width % 8:
            raise ValueError(f"DeepFill needs H and W multiples of 8, got {height} x {width}")
        mask = (mask > 0.5).to(image.dtype)
        _, refined, offsets = self(_masked_input(self._channel_order(image), mask), mask)
        return ((self._channel_order(refined).float() + 1) / 2).clamp(0, 1), offsets


def glorot_init(module: nn.Module) -> None:
    """TF's default initialisation, which the official code keeps: Glorot-uniform weights, zero
    biases (convolutions and dense layers; call before wrapping a layer in spectral norm)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class CoarseToFineTraining(TrainingRecipe):
    """The recipe methods DeepFill v1 and v2 share; their `TrainingRecipe`s derive from it.

    `--size` must be a multiple of `train_size_multiple`. `generate` returns both stages
    ({"coarse", "refined"}, [-1, 1]); both networks get Adam with the config's `lr` and `betas`
    (`options.lr`, when set, replaces the lr of both).
    """

    #: the registry name, for error messages
    arch_name: str
    #: `options.size` must be a multiple of this (the critics' or the generator's downsampling)
    train_size_multiple: int

    def __init__(self, config: Any, options: TrainOptions) -> None:
        super().__init__(config, options)
        multiple = self.train_size_multiple
        if options.size % multiple:
            raise ValueError(
                f"{self.arch_name} trains on sizes that are multiples of {multiple},"
                f" got --size {options.size}"
            )

    def optimizers(
        self, generator: nn.Module, discriminator: nn.Module | None
    ) -> dict[str, torch.optim.Optimizer]:
        return self.adam(generator, discriminator, self.config.lr, betas=self.config.betas)

    def generate(
        self, generator: CoarseToFineInpainter, image: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return generator.stages(image, mask)

    def prediction(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((output["refined"].float() + 1) / 2).clamp(0, 1)

    @staticmethod
    def stage_errors(
        image: torch.Tensor, output: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel |x - x1| and |x - x2| of both stages, x = `image` mapped to [-1, 1]."""
        real = image * 2 - 1
        return (real - output["coarse"].float()).abs(), (real - output["refined"].float()).abs()

    @staticmethod
    def real_and_completed(
        image: torch.Tensor, mask: torch.Tensor, refined: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The real image and the composite x2 M + x (1 - M), both in [-1, 1]."""
        real = image * 2 - 1
        return real, refined * mask + real * (1 - mask)


def _masked_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] with holes zeroed (the official `x_in`)."""
    return (image * 2 - 1) * (1 - mask)


def deepfill_bbox_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """DeepFill v1 `random_bbox` + `bbox2mask` (§3): a 128 * S / 256 bbox placed uniformly, each
    side shrunk by the same random 0..16 * S / 256 top and bottom (and left and right)."""
    scale = reference_scale(height, width)
    bbox = min(max(1, round(128 * scale)), height, width)
    max_shrink = min(round(16 * scale), (bbox - 1) // 2)
    top = int(rng.integers(0, height - bbox + 1))
    left = int(rng.integers(0, width - bbox + 1))
    shrink_h = int(rng.integers(0, max_shrink + 1))
    shrink_w = int(rng.integers(0, max_shrink + 1))
    return place_rect(
        height, width, top + shrink_h, left + shrink_w, bbox - 2 * shrink_h, bbox - 2 * shrink_w
    )


def spatial_discount(mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Loss weights gamma^l on hole pixels, 0 on known ones (Yu et al. 2018, §3.1).

    l is the chessboard distance to the nearest known pixel minus one, so the hole's outer ring
    has weight 1. On a rectangular hole this is gamma^(distance to the nearest side), the official
    code's map (which is fixed to the 128 x 128 bbox and off by one at its far sides); here it
    follows the actual hole, of any shape, as the paper says. A mask with no known pixel gets
    weight 0 everywhere.
    """
    reached = mask < 0.5
    weights = torch.zeros_like(mask)
    distance = 0
    while True:
        grown = F.max_pool2d(reached.to(mask.dtype), 3, stride=1, padding=1) > 0
        frontier = grown & ~reached
        if not bool(frontier.any()):
            return weights
        weights[frontier] = gamma**distance
        reached = grown
        distance += 1

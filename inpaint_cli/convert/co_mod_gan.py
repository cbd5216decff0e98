"""Co-ModGAN's PyTorch port (zengxianyu/co-mod-gan-pytorch): `co-mod-gan-places2-050000_net_G_ema.pth`
and `co-mod-gan-ffhq-9-025000_net_G_ema.pth` (512), plain state_dicts of the port's `Generator`
(180 tensors), converted by its author from the official TF weights (zsyzzsoft/co-mod-gan).

The port keeps the TF scopes in rosinality's StyleGAN2 modules; ours keep StyleGAN2-ADA names
(`archs/co_mod_gan.py`). Per tensor: the mapping's `Dense{i}` is `fc{i}`; an encoder `ConvLayer`
(`.0` conv, `.1` bias; `Conv1_down`: `.0` blur, `.1` conv, `.2` bias) is one `Conv2dLayer`; a
`StyledConv` (`Conv`, `Conv0_up`, `Conv1` -> `conv`, `conv0`, `conv1`) has its weight, its
modulation (`affine`, bias stored with its +1 in both), its noise strength (`[1]` -> `[]`) and
its activation's bias; `ToRGB`'s bias `[1, 3, 1, 1]` becomes `[3]`. The port runs the up-conv
as a transposed conv of the stored kernel, StyleGAN2-ADA/MAT (ours) of the flipped kernel, so
`Conv0_up` kernels are flipped. The blur kernels (constants) are dropped and ours built.

What the port does not store: the noise maps (it always draws noise, as the official inference
does; ours are zeros, used only by `noise_mode='const'`) and the average w, which the port
estimates from 4096 random z when truncating; it is estimated here the same way (fixed seed).
Differences of the port's forward that the weights do not carry (ours follows the TF code):
`G_4x4` adds E[2], and the dropout on the global code stays on at inference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from inpaint_cli.convert.official import OfficialModel, check_state_dict, expected_tensors, shape_text
from inpaint_cli.errors import InpaintError
from inpaint_cli.layers.stylegan2 import MappingNetwork, fir_filter
from inpaint_cli.registry import get_arch, get_config

SOURCE = "https://github.com/zengxianyu/co-mod-gan-pytorch"
LICENSE = (
    "the official Co-ModGAN code and weights: NVIDIA Source Code License, non-commercial "
    "(zsyzzsoft/co-mod-gan, built on StyleGAN2); Places365 images are for non-commercial research "
    "and education, FFHQ under CC BY-NC-SA 4.0"
)
#: the encoder's first block is named after the resolution: `E.512x512_0.FromRGB`
FIRST_BLOCK = re.compile(r"G_synthesis\.E\.(\d+)x\1_0\.FromRGB\.0\.weight")
MAPPING = "G_mapping.G_mapping.Dense0.weight"
#: samples of z the average w is estimated from (the port's `mean_latent(4096)`)
W_AVG_SAMPLES = 4096


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _flip(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flip([-2, -1])


def _scalar(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(())


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1)


STYLED = {"Conv": "conv", "Conv0_up": "conv0", "Conv1": "conv1"}
#: (port name pattern, our name template, transform); blur kernels match none and are dropped
RULES: tuple[tuple[re.Pattern[str], str, Callable[[torch.Tensor], torch.Tensor]], ...] = tuple(
    (re.compile(pattern), template, transform)
    for pattern, template, transform in (
        (r"G_mapping\.G_mapping\.Dense(\d+)\.(weight|bias)", r"mapping.fc\1.\2", _same),
        (r"G_synthesis\.E\.(\d+x\d+)(?:_0)?\.(FromRGB|Conv0|Conv)\.0\.weight", r"synthesis.E_\1.\2.weight", _same),
        (r"G_synthesis\.E\.(\d+x\d+)(?:_0)?\.(FromRGB|Conv0|Conv)\.1\.bias", r"synthesis.E_\1.\2.bias", _same),
        (r"G_synthesis\.E\.(\d+x\d+)\.Conv1_down\.1\.weight", r"synthesis.E_\1.Conv1_down.weight", _same),
        (r"G_synthesis\.E\.(\d+x\d+)\.Conv1_down\.2\.bias", r"synthesis.E_\1.Conv1_down.bias", _same),
        (r"G_synthesis\.E\.4x4\.Dense0\.(weight|bias)", r"synthesis.E_4x4.Dense0.\1", _same),
        (r"G_synthesis\.G_4x4\.Dense\.(weight|bias)", r"synthesis.G_4x4.fc.\1", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.Conv0_up\.conv\.weight", r"synthesis.\1.conv0.conv.weight", _flip),
        (r"G_synthesis\.(G_\d+x\d+)\.(Conv|Conv1)\.conv\.weight", r"synthesis.\1.{\2}.conv.weight", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.(Conv|Conv0_up|Conv1)\.conv\.modulation\.(weight|bias)",
         r"synthesis.\1.{\2}.conv.affine.\3", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.(Conv|Conv0_up|Conv1)\.noise\.weight", r"synthesis.\1.{\2}.noise_strength", _scalar),
        (r"G_synthesis\.(G_\d+x\d+)\.(Conv|Conv0_up|Conv1)\.activate\.bias", r"synthesis.\1.{\2}.bias", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.ToRGB\.conv\.weight", r"synthesis.\1.toRGB.conv.weight", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.ToRGB\.conv\.modulation\.(weight|bias)", r"synthesis.\1.toRGB.conv.affine.\2", _same),
        (r"G_synthesis\.(G_\d+x\d+)\.ToRGB\.bias", r"synthesis.\1.toRGB.bias", _flat),
    )
)
BLUR_KERNEL = re.compile(r".*\.(kernel)$")


def our_name(name: str) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]] | None:
    """Our name of a port tensor and the transform of its values; None for a port name we drop
    (blur kernels) or do not know."""
    for pattern, template, transform in RULES:
        if match := pattern.fullmatch(name):
            renamed = match.expand(template)
            for port_layer, ours in STYLED.items():
                renamed = renamed.replace(f"{{{port_layer}}}", ours)
            return renamed, transform
    return None


def resolution(tensors: Mapping[str, torch.Tensor]) -> int:
    return max((int(m.group(1)) for name in tensors if (m := FIRST_BLOCK.fullmatch(name))), default=0)


def average_w(state: Mapping[str, torch.Tensor], config) -> torch.Tensor:
    """The mean of w over `W_AVG_SAMPLES` z (seed 0), through the converted mapping network."""
    mapping = MappingNetwork(config.z_dim, config.w_dim, 1, config.mapping_layers).eval()
    weights = {name.removeprefix("mapping."): tensor for name, tensor in state.items() if name.startswith("mapping.fc")}
    mapping.load_state_dict(weights | {"w_avg": mapping.w_avg})
    z = torch.randn(W_AVG_SAMPLES, config.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return mapping(z, update_w_avg=False)[:, 0].mean(dim=0)


def official_port(name: str, config: str, data: str) -> OfficialModel:
    model_config = get_config(get_arch("co-mod-gan"), config)

    def recognise(tensors: Mapping[str, torch.Tensor]) -> bool:
        return (
            MAPPING in tensors
            and resolution(tensors) == model_config.resolution
            and tensors[MAPPING].shape[1] == model_config.z_dim
        )

    def to_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        for port_name, tensor in tensors.items():
            known = our_name(port_name)
            if known is None and not BLUR_KERNEL.fullmatch(port_name):
                raise InpaintError(f"unexpected tensor {port_name} for co-mod-gan {config}")
            if known is not None:
                state[known[0]] = known[1](tensor)
        expected = expected_tensors("co-mod-gan", config)
        for key, (shape, dtype) in expected.items():
            if key.endswith("resample_filter"):
                state[key] = fir_filter()
            elif key.endswith("noise_const"):
                state[key] = torch.zeros(shape, dtype=dtype)
        if all(key in state for key in expected if key.startswith("mapping.fc")):
            state["mapping.w_avg"] = average_w(check_mapping(state, config), model_config)
        return check_state_dict(state, "co-mod-gan", config)

    return OfficialModel(
        name=name,
        arch="co-mod-gan",
        config=config,
        source=SOURCE,
        license=LICENSE,
        containers=("state-dict",),
        recognise=recognise,
        to_state_dict=to_state_dict,
        data=data,
    )


def check_mapping(state: Mapping[str, torch.Tensor], config: str) -> dict[str, torch.Tensor]:
    """The mapping tensors, their shapes checked (before running them)."""
    expected = expected_tensors("co-mod-gan", config)
    mapping = {key: tensor for key, tensor in state.items() if key.startswith("mapping.fc")}
    for key, tensor in mapping.items():
        if key in expected and tuple(tensor.shape) != expected[key][0]:
            raise InpaintError(f"tensor {key} has shape {shape_text(tensor.shape)}, expected {shape_text(expected[key][0])}")
    return mapping


OFFICIAL = (
    official_port(
        "co-mod-gan-512-port",
        "paper",
        "Places2 (Places365-Challenge, 50,000 kimg) or FFHQ at 512 (official Co-ModGAN weights as converted "
        "by the PyTorch port; the file does not say which)",
    ),
)

"""DeepFill v1 (Yu et al., CVPR 2018) and v2 (Yu et al., ICCV 2019) official TF checkpoints
(JiahuiYu/generative_inpainting, Places2 / CelebA-HQ / ImageNet releases) onto our `deepfill-v1` and
`deepfill-v2` generators, config `official`.

The checkpoints are TF1 tensor bundles (`tf_bundle.read_tf_checkpoint`) of every global variable
of training: the generator's `inpaint_net/<layer>/kernel|bias`, and the discriminator, optimiser
slots and step counters, which are ignored. Our layers carry the official layer names
(docs/architectures.md §3-§4): `coarse.conv1` is `inpaint_net/conv1`, an upsampling layer
`coarse.conv13_upsample.1` is `inpaint_net/conv13_upsample/conv13_upsample_conv`, and the RGB
outputs `coarse_rgb` and `refine_rgb` are `conv17` and `allconv17`. Kernels are HWIO, ours OIHW;
the gated convolutions' feature / gate halves come in the same order in both. The official graph's
conventions (TF 'SAME' padding, TF1 align-corners resizes, BGR input in [-1, 1]) are the
`official` config's `tf_compatible` and `channel_order`.
"""

from __future__ import annotations

import torch

from inpaint_cli.archs.deepfill_v1 import CONFIGS as V1_CONFIGS
from inpaint_cli.archs.deepfill_v1 import DeepFillV1
from inpaint_cli.archs.deepfill_v2 import CONFIGS as V2_CONFIGS
from inpaint_cli.archs.deepfill_v2 import DeepFillV2
from inpaint_cli.convert.official import OfficialModel
from inpaint_cli.errors import InpaintError

CONFIG = "official"
SCOPE = "inpaint_net"
SOURCE = "https://github.com/JiahuiYu/generative_inpainting"
LICENSE = "CC BY-NC 4.0 (non-commercial; educational and academic research use, official README)"
OUTPUT_LAYERS = {"coarse_rgb": "conv17", "refine_rgb": "allconv17"}
CONVENTIONS = {"tf_compatible": True, "channel_order": "bgr"}


def tf_name(key: str) -> str:
    """The TF variable of one of our state-dict keys, e.g. `coarse.conv13_upsample.1.conv.weight`
    -> `inpaint_net/conv13_upsample/conv13_upsample_conv/kernel`."""
    *module, parameter = key.split(".")
    variable = "kernel" if parameter == "weight" else parameter
    if module[0] in OUTPUT_LAYERS:
        return f"{SCOPE}/{OUTPUT_LAYERS[module[0]]}/{variable}"
    layer = module[1]
    if module[2] == "1":  # nn.Sequential(upsample, block)
        return f"{SCOPE}/{layer}/{layer}_conv/{variable}"
    return f"{SCOPE}/{layer}/{variable}"


def _state_dict(tensors: dict[str, torch.Tensor], generator: torch.nn.Module) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for key, ours in generator.state_dict().items():
        name = tf_name(key)
        if name not in tensors:
            raise InpaintError(f"missing TF variable {name!r}")
        value = tensors[name]
        expected = tuple(ours.permute(2, 3, 1, 0).shape) if ours.dim() == 4 else tuple(ours.shape)
        if tuple(value.shape) != expected:
            raise InpaintError(f"TF variable {name!r} has shape {list(value.shape)}, expected {list(expected)}")
        state[key] = (value.permute(3, 2, 0, 1) if value.dim() == 4 else value).float().contiguous()
    return state


def _generator(version: int) -> torch.nn.Module:
    with torch.device("meta"):
        return DeepFillV1(V1_CONFIGS[CONFIG]) if version == 1 else DeepFillV2(V2_CONFIGS[CONFIG])


def _recognise(tensors: dict[str, torch.Tensor], version: int) -> bool:
    """v1 and v2 differ in stage 2's first convolutions: v1 re-reads ones and mask (5 channels),
    v2 the composite only (3); and in the gates: v2's layers read half the previous width."""
    first = tensors.get(f"{SCOPE}/xconv1/kernel")
    second = tensors.get(f"{SCOPE}/conv2_downsample/kernel")
    conv1 = tensors.get(f"{SCOPE}/conv1/kernel")
    if first is None or second is None or conv1 is None or first.dim() != 4 or conv1.dim() != 4 or second.dim() != 4:
        return False
    if version == 1:
        return first.shape[2] == 5 and second.shape[2] == conv1.shape[3]
    return first.shape[2] == 3 and 2 * second.shape[2] == conv1.shape[3]


OFFICIAL = tuple(
    OfficialModel(
        name=f"deepfill-v{version}",
        arch=f"deepfill-v{version}",
        config=CONFIG,
        source=SOURCE,
        license=LICENSE,
        containers=("tf-checkpoint",),
        recognise=lambda tensors, version=version: _recognise(tensors, version),
        to_state_dict=lambda tensors, version=version: _state_dict(tensors, _generator(version)),
        config_overrides=CONVENTIONS,
    )
    for version in (1, 2)
)

"""GLCIC's official completion network (Iizuka et al., SIGGRAPH 2017;
satoshiiizuka/siggraph2017_inpainting, `completionnet_places2.t7` and its siblings) onto our
`glcic` generator, config `official`.

The Torch7 file is a table `{model = nn.Sequential, mean = <3 numbers>}`: 50 modules, of which
17 convolutions (two `nn.SpatialFullConvolution`s) and 16 batch norms carry weights, in the order
of our `CompletionNetwork.layers` (docs/architectures.md §2). `mean` is the per-channel RGB mean on
[0, 1] that `inpaint.lua` subtracts before zeroing the hole; it is stored with the weights
(`store_mean`), so the converted network normalises exactly as the file's.
"""

from __future__ import annotations

import torch

from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
from inpaint_cli.convert.lua_layers import BATCH_NORM, CONV, has_shapes, lua_state_dict
from inpaint_cli.convert.official import OfficialModel
from inpaint_cli.errors import InpaintError

CONFIG = "official"
#: parameterised modules of `model`: 16 x (convolution, batch norm, ReLU), then the RGB convolution
LUA_LAYERS = [
    *((f"model.modules[{3 * i + 1 + offset}]", kind) for i in range(16) for offset, kind in ((0, CONV), (1, BATCH_NORM))),
    ("model.modules[49]", CONV),
]
SIGNATURE = {"model.modules[1].weight": (64, 4, 5, 5), "model.modules[49].weight": (3, 32, 3, 3)}


def _mean(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """`mean`: a 3-element tensor, or a Lua table of three numbers (`mean[1]` .. `mean[3]`)."""
    if "mean" in tensors:
        mean = tensors["mean"]
        if mean.numel() != 3:
            raise InpaintError(f"tensor 'mean' has shape {list(mean.shape)}, expected 3 values")
        return mean.reshape(3)
    missing = [f"mean[{i}]" for i in (1, 2, 3) if f"mean[{i}]" not in tensors]
    if missing:
        raise InpaintError(f"missing {missing[0]!r} (the mean pixel the network subtracts)")
    return torch.stack([tensors[f"mean[{i}]"].reshape(()) for i in (1, 2, 3)])


def to_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = lua_state_dict(tensors, LUA_LAYERS, lambda: CompletionNetwork(CONFIGS[CONFIG]))
    state["mean_pixel"] = _mean(tensors).float().view(1, 3, 1, 1)
    return state


OFFICIAL = (
    OfficialModel(
        name="glcic-completionnet",
        arch="glcic",
        config=CONFIG,
        source="https://github.com/satoshiiizuka/siggraph2017_inpainting",
        license="CC BY-NC-SA 4.0 (non-commercial; model and code, official README)",
        containers=("torch7",),
        recognise=lambda tensors: has_shapes(tensors, SIGNATURE),
        to_state_dict=to_state_dict,
        config_overrides={"store_mean": True},
    ),
)

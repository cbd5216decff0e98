"""The Context Encoder's official centre models (Pathak et al., CVPR 2016; pathak22/context-encoder,
`paris_inpaintCenter.t7`, `imagenet_inpaintCenter.t7`) onto our `context-encoder` generator,
config `official-center`.

The Torch7 file is the generator `nn.Sequential` itself: module 1 is the encoder (a nested
`nn.Sequential` ending in the 512 -> 4000 4 x 4 convolution), then the bottleneck's batch norm and
the decoder of full convolutions. Its 20 parameterised modules come in the order of our encoder,
bottleneck and decoder (docs/architectures.md §1). Inputs are [-1, 1] RGB whose centred 56 x 56
square (the 64 x 64 region less a 4-pixel ring) is the mean colour, as in `test.lua` (`mean_fill`).
"""

from __future__ import annotations

from inpaint_cli.archs.context_encoder import CONFIGS, ContextEncoder
from inpaint_cli.convert.lua_layers import BATCH_NORM, CONV, has_shapes, lua_state_dict
from inpaint_cli.convert.official import OfficialModel

CONFIG = "official-center"
_ENCODER = "net.modules[1].modules"
#: parameterised modules: encoder conv; 4 x (conv, batch norm); the 4000-wide conv; its batch
#: norm; 4 x (full conv, batch norm); the RGB full conv
LUA_LAYERS = [
    (f"{_ENCODER}[1]", CONV),
    *((f"{_ENCODER}[{i + offset}]", kind) for i in (3, 6, 9, 12) for offset, kind in ((0, CONV), (1, BATCH_NORM))),
    (f"{_ENCODER}[15]", CONV),
    ("net.modules[2]", BATCH_NORM),
    *((f"net.modules[{i + offset}]", kind) for i in (4, 7, 10, 13) for offset, kind in ((0, CONV), (1, BATCH_NORM))),
    ("net.modules[16]", CONV),
]
SIGNATURE = {f"{_ENCODER}[1].weight": (64, 3, 4, 4), f"{_ENCODER}[15].weight": (4000, 512, 4, 4)}

OFFICIAL = (
    OfficialModel(
        name="context-encoder-inpaint-center",
        arch="context-encoder",
        config=CONFIG,
        source="https://github.com/pathak22/context-encoder",
        license="UC Berkeley copyright notice: educational, research and not-for-profit use only",
        containers=("torch7",),
        recognise=lambda tensors: has_shapes(tensors, SIGNATURE),
        to_state_dict=lambda tensors: lua_state_dict(tensors, LUA_LAYERS, lambda: ContextEncoder(CONFIGS[CONFIG])),
        config_overrides={"mean_fill": "center"},
    ),
)

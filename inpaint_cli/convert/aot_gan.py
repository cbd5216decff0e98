"""AOT-GAN's official generator (researchmm/AOT-GAN-for-Inpainting): `G0000000.pt`, a plain
state_dict saved from the unwrapped generator. Our `aot-gan` generator keeps the official module
names (`encoder.1`, `middle.<i>.block00.1`, `decoder.0.conv`...), so the tensors map one to one.
The Places2 and CelebA-HQ releases have the same tensors; a file does not say which it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from inpaint_cli.convert.official import OfficialModel, check_state_dict

CONFIG = "paper"


def recognise(tensors: Mapping[str, torch.Tensor]) -> bool:
    return "encoder.1.weight" in tensors and "middle.0.gate.1.weight" in tensors


def to_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return check_state_dict(tensors, "aot-gan", CONFIG)


OFFICIAL = (
    OfficialModel(
        name="aot-gan",
        arch="aot-gan",
        config=CONFIG,
        source="https://github.com/researchmm/AOT-GAN-for-Inpainting",
        license=(
            "Apache-2.0 (the official repository's licence; the weights state no other terms; "
            "Places2 images are for non-commercial research, CelebA-HQ for non-commercial research only)"
        ),
        containers=("state-dict",),
        recognise=recognise,
        to_state_dict=to_state_dict,
        data="Places2 or CelebA-HQ (official AOT-GAN release; the file does not say which)",
    ),
)

"""LaMa's official weights (advimman/lama): big-lama and lama-fourier.

They come as PyTorch-Lightning checkpoints (`models/best.ckpt`, the generator under `generator.`
beside, in some releases, the discriminator and the loss networks, which are dropped) and, for
big-lama, as IOPaint's TorchScript `big-lama.pt` (the same names under `model.generator.`). Our
`lama` generator keeps the official module names (`model.5.conv1.ffc.convg2g.fu.conv_layer`...),
so the mapping only strips the prefix. Batch-norm `num_batches_tracked` counters, unused in
evaluation and perhaps absent from the released files, are filled with zeros when missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from inpaint_cli.convert.official import OfficialModel, check_state_dict, expected_tensors
from inpaint_cli.errors import InpaintError

SOURCE = "https://github.com/advimman/lama"
LICENSE = (
    "Apache-2.0 (the official repository's licence; the weights state no other terms; "
    "trained on Places365, whose images are for non-commercial research and education)"
)
#: where the generator's tensors sit: Lightning's module attribute, IOPaint's TorchScript wrapper,
#: or a bare generator state_dict
PREFIXES = ("generator.", "model.generator.", "")
STEM = "model.1.ffc.convl2l.weight"


def generator_prefix(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The prefix under which the file holds a LaMa generator, None if it holds none."""
    return next((prefix for prefix in PREFIXES if f"{prefix}{STEM}" in tensors), None)


def residual_blocks(tensors: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many FFC residual blocks the file's generator has (from the names `model.<i>.conv1.*`)."""
    pattern = re.compile(rf"{re.escape(prefix)}model\.(\d+)\.conv1\.")
    return len({match.group(1) for name in tensors if (match := pattern.match(name))})


def _official(name: str, config: str, blocks: int, data: str) -> OfficialModel:
    def recognise(tensors: Mapping[str, torch.Tensor]) -> bool:
        prefix = generator_prefix(tensors)
        return prefix is not None and residual_blocks(tensors, prefix) == blocks

    def to_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prefix = generator_prefix(tensors)
        if prefix is None:
            raise InpaintError(f"no LaMa generator: missing tensor generator.{STEM}")
        generator = {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}
        for key in expected_tensors("lama", config):
            if key.endswith("num_batches_tracked"):
                generator.setdefault(key, torch.zeros((), dtype=torch.int64))
        return check_state_dict(generator, "lama", config, prefix)

    return OfficialModel(
        name=name,
        arch="lama",
        config=config,
        source=SOURCE,
        license=LICENSE,
        containers=("lightning-ckpt", "torchscript", "state-dict"),
        recognise=recognise,
        to_state_dict=to_state_dict,
        data=data,
    )


OFFICIAL = (
    _official("big-lama", "big", 18, "Places365-Challenge (official big-lama release)"),
    _official("lama-fourier", "fourier", 9, "Places365-Standard or CelebA-HQ (official lama-fourier release)"),
)

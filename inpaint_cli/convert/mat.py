"""MAT's official weights (fenglinglwb/MAT): the released `G_ema` of each model.

They come as StyleGAN2-ADA network pickles (`Places_512_FullData.pkl`, `Places_512.pkl`,
`CelebA-HQ_512.pkl`, `FFHQ_512.pkl` at 512, `CelebA-HQ_256.pkl` at 256; read without running
the code they carry, `containers`' "network-pickle", tensors under `G_ema.`) and, for
Places_512_FullData, as IOPaint's weights-only `Places_512_FullData_G.pth`, a plain state_dict
of the same network without its 11 noise inputs (IOPaint runs MAT with `noise_mode='none'`).
Our `mat` generator keeps the official module names, so the mapping only strips the prefix; the
resolution (`paper` 512, `paper-256`) and the widths are read from the shapes. Where the noise is
absent its strengths are 0, their initial value, so the noise adds nothing, as in IOPaint; the
maps, then unused, are zeros.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from inpaint_cli.convert.official import OfficialModel, check_state_dict, expected_tensors
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, get_config

SOURCE = "https://github.com/fenglinglwb/MAT"
LICENSE = (
    "research purposes only (the official README: 'The code and models in this repo are for research "
    "purposes only'; the code builds on StyleGAN2-ADA, NVIDIA Source Code License, non-commercial); "
    "Places365 images are for non-commercial research and education, CelebA-HQ and FFHQ for "
    "non-commercial research"
)
#: where the generator's tensors sit: a network pickle's G_ema, or a bare state_dict
PREFIXES = ("G_ema.", "")
STEM = "synthesis.first_stage.conv_first.conv.weight"
MAPPING = "mapping.fc0.weight"
#: the stage-2 encoder's first block is named after the resolution: `EncConv_Block_512x512`
FIRST_BLOCK = re.compile(r"synthesis\.enc\.EncConv_Block_(\d+)x\1\.conv0\.weight")
NOISE = re.compile(r"\.noise_(strength|const)$")


def generator_prefix(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The prefix under which the file holds a MAT generator, None if it holds none."""
    return next((p for p in PREFIXES if f"{p}{STEM}" in tensors and f"{p}{MAPPING}" in tensors), None)


def signature(tensors: Mapping[str, torch.Tensor], prefix: str) -> tuple[int, int, int]:
    """(resolution, token width, w width) of the file's generator; resolution 0 if no encoder block."""
    names = (name[len(prefix):] for name in tensors if name.startswith(prefix))
    resolutions = [int(match.group(1)) for name in names if (match := FIRST_BLOCK.fullmatch(name))]
    return max(resolutions, default=0), tensors[prefix + STEM].shape[0], tensors[prefix + MAPPING].shape[0]


def config_signature(config: str) -> tuple[int, int, int]:
    model_config = get_config(get_arch("mat"), config)
    return model_config.resolution, model_config.dim, model_config.w_dim


def has_noise(tensors: Mapping[str, torch.Tensor], prefix: str) -> bool:
    return any(NOISE.search(name) for name in tensors if name.startswith(prefix))


def official_mat(name: str, config: str, data: str, noise: bool = True) -> OfficialModel:
    """The official MAT model of `config`; `noise=False`: a weights-only copy without the noise."""

    def recognise(tensors: Mapping[str, torch.Tensor]) -> bool:
        prefix = generator_prefix(tensors)
        return (
            prefix is not None
            and signature(tensors, prefix) == config_signature(config)
            and has_noise(tensors, prefix) == noise
        )

    def to_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prefix = generator_prefix(tensors)
        if prefix is None:
            raise InpaintError(f"no MAT generator: missing tensor {PREFIXES[0]}{STEM}")
        generator = {key[len(prefix):]: tensor for key, tensor in tensors.items() if key.startswith(prefix)}
        if not noise:
            for key, (shape, dtype) in expected_tensors("mat", config).items():
                if NOISE.search(key):
                    generator.setdefault(key, torch.zeros(shape, dtype=dtype))
        return check_state_dict(generator, "mat", config, prefix)

    return OfficialModel(
        name=name,
        arch="mat",
        config=config,
        source=SOURCE,
        license=LICENSE,
        containers=("network-pickle", "state-dict") if noise else ("state-dict",),
        recognise=recognise,
        to_state_dict=to_state_dict,
        data=data,
    )


OFFICIAL = (
    official_mat(
        "mat-512",
        "paper",
        "Places365 (Places_512_FullData: the 8 M-image Challenge set; Places_512: Places365-Standard), "
        "CelebA-HQ or FFHQ at 512 (official MAT release; the file does not say which)",
    ),
    official_mat("mat-256", "paper-256", "CelebA-HQ at 256 (official MAT release)"),
    official_mat(
        "mat-512-iopaint",
        "paper",
        "Places365 Challenge at 512 (official Places_512_FullData as IOPaint's weights-only "
        "Places_512_FullData_G.pth: no noise inputs, their strengths set to 0)",
        noise=False,
    ),
)

"""What Co-ModGAN (Zhao et al., ICLR 2021) and MAT (Li et al., CVPR 2022) share as inpainting
models: a fill drawn from a latent z through StyleGAN2's mapping network, seeded and truncated as
the official inference does (docs/architectures.md §8, §9, §S)."""

from __future__ import annotations

from typing import Any

import torch

from inpaint_cli.archs.base import InpaintModel
from inpaint_cli.layers.stylegan2 import ChannelsLastSafe, MappingNetwork, seeded_latents


class StyleInpainter(ChannelsLastSafe, InpaintModel):
    """A pluralistic generator: `inpaint(image, mask, seed=, truncation=)` draws z (numpy's
    generator for a seed, as the official `generate_image.py`), maps it to w with truncation psi,
    and fills with `synthesise`."""

    #: the official inferences' truncation: none (psi = 1)
    default_truncation = 1.0
    #: the fill may pass `seed` and `truncation` to `inpaint`
    pluralistic = True
    #: the noise inputs at inference ("random" or the stored "const" maps)
    inference_noise = "random"
    config: Any
    mapping: MappingNetwork

    def synthesise(self, image: torch.Tensor, known: torch.Tensor, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """The final output in [-1, 1] of `image` in [-1, 1] with `known` (1 = known) and styles `ws`."""
        raise NotImplementedError

    def inpaint(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        *,
        seed: int | None = None,
        truncation: float | None = None,
    ) -> torch.Tensor:
        psi = self.default_truncation if truncation is None else truncation
        with seeded_latents(seed, image.shape[0], self.config.z_dim, image.device) as z:
            ws = self.mapping(z, psi, update_w_avg=False)
            output = self.synthesise(image * 2 - 1, 1 - mask, ws, self.inference_noise)
        return ((output + 1) / 2).clamp(0, 1)

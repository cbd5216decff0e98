"""Classical, weight-free baselines wrapped in the common interface: OpenCV's fast marching method
(Telea, J. Graphics Tools 2004) and Navier-Stokes inpainting (Bertalmio et al., CVPR 2001).

`cv2.inpaint` on uint8 BGR with radius 3, as the evaluation protocol fixes (DESIGN.md step 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from inpaint_cli.archs.base import ArchSpec, InpaintModel


@dataclass(frozen=True)
class ClassicalConfig:
    method: str  # "telea" or "ns"
    radius: int = 3


class ClassicalInpainter(InpaintModel):
    """`cv2.inpaint` per image; no parameters, CPU only (inputs on another device come back there)."""

    def __init__(self, config: ClassicalConfig) -> None:
        super().__init__()
        self.config = config
        self.flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[config.method]

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        holes = (mask.detach().cpu() > 0.5).to(torch.uint8) * 255
        filled = []
        for rgb, hole in zip(pixels.permute(0, 2, 3, 1).numpy(), holes[:, 0].numpy()):
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            result = cv2.inpaint(bgr, np.ascontiguousarray(hole), self.config.radius, self.flag)
            filled.append(torch.from_numpy(np.ascontiguousarray(result[..., ::-1])))
        out = torch.stack(filled).permute(0, 3, 1, 2).float() / 255
        return out.to(device=image.device, dtype=image.dtype)


SPECS = tuple(
    ArchSpec(
        name=name,
        title=title,
        input_note="any H x W; uint8 RGB",
        build_generator=ClassicalInpainter,
        configs={"default": ClassicalConfig(name)},
        default_config="default",
        learned=False,
    )
    for name, title in (
        ("telea", "Telea, J. Graphics Tools 2004 (OpenCV INPAINT_TELEA)"),
        ("ns", "Bertalmio et al., CVPR 2001 (OpenCV INPAINT_NS)"),
    )
)

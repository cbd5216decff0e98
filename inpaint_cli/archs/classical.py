"""Classical, weight-free baselines wrapped in the common interface: OpenCV's fast marching method
(Telea, J. Graphics Tools 2004) and Navier-Stokes inpainting (Bertalmio et al., CVPR 2001), both
`cv2.inpaint` on uint8 BGR with radius 3 as the evaluation protocol fixes (DESIGN.md step 5), and
the membrane (harmonic) interpolant, each hole pixel the mean of its neighbours: Poisson blending
(Pérez et al., SIGGRAPH 2003) of a flat fill, so the baseline that shows what GLCIC's Poisson
post-processing gives on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from inpaint_cli.archs.base import ArchSpec, InpaintModel
from inpaint_cli.blend import poisson_blend


@dataclass(frozen=True)
class ClassicalConfig:
    method: str  # "telea", "ns" or "harmonic"
    radius: int = 3


class ClassicalInpainter(InpaintModel):
    """`cv2.inpaint` (or the membrane solve) per image; no parameters, CPU only (inputs on another
    device come back there)."""

    def __init__(self, config: ClassicalConfig) -> None:
        super().__init__()
        self.config = config

    def _fill(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if self.config.method == "harmonic":
            return poisson_blend(rgb, np.zeros_like(rgb), hole > 0)
        flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[self.config.method]
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return cv2.inpaint(bgr, np.ascontiguousarray(hole), self.config.radius, flag)[..., ::-1]

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        holes = (mask.detach().cpu() > 0.5).to(torch.uint8) * 255
        filled = []
        for rgb, hole in zip(pixels.permute(0, 2, 3, 1).numpy(), holes[:, 0].numpy()):
            filled.append(torch.from_numpy(np.ascontiguousarray(self._fill(rgb, hole))))
        out = torch.stack(filled).permute(0, 3, 1, 2).float() / 255
        return out.to(device=image.device, dtype=image.dtype)


SPECS = tuple(
    ArchSpec(
        name=name,
        title=title,
        input_note="any H x W; uint8 RGB",
        build_generator=ClassicalInpainter,
        order=order,  # after every learned architecture
        configs={"default": ClassicalConfig(name)},
        default_config="default",
        learned=False,
    )
    for order, name, title in (
        (100, "telea", "Telea, J. Graphics Tools 2004 (OpenCV INPAINT_TELEA)"),
        (101, "ns", "Bertalmio et al., CVPR 2001 (OpenCV INPAINT_NS)"),
        (102, "harmonic", "membrane interpolant (Poisson blending of a flat fill, Pérez et al. 2003)"),
    )
)

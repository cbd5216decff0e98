"""Fast marching inpainting (Telea, J. Graphics Tools 2004), OpenCV's `INPAINT_TELEA`: each hole
pixel, in order of its distance from the known region, becomes a weighted average of the known
and already filled pixels within `radius`. Radius 3, as the evaluation protocol fixes
(docs/design.md step 5). A classical, weight-free baseline on uint8 arrays: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inpaint_cli.registry import array_method_spec


@dataclass(frozen=True)
class OpenCVInpaintConfig:
    """`cv2.inpaint`'s neighbourhood radius in pixels (Telea and Navier-Stokes alike)."""

    radius: int = 3


def opencv_inpaint(rgb8: np.ndarray, hole: np.ndarray, radius: int, flag: int) -> np.ndarray:
    """`cv2.inpaint` of uint8 RGB over a bool hole (OpenCV works in BGR)."""
    bgr = np.ascontiguousarray(rgb8[..., ::-1])
    return cv2.inpaint(bgr, hole.astype(np.uint8) * 255, radius, flag)[..., ::-1]


def fill(config: OpenCVInpaintConfig, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return opencv_inpaint(rgb8, hole, config.radius, cv2.INPAINT_TELEA)


SPECS = (array_method_spec("telea", "Telea, J. Graphics Tools 2004 (OpenCV INPAINT_TELEA)", 100, fill, OpenCVInpaintConfig()),)

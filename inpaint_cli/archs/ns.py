"""Navier-Stokes inpainting (Bertalmio, Bertozzi and Sapiro, CVPR 2001), OpenCV's `INPAINT_NS`:
isophotes (lines of equal grey) are continued into the hole by transporting the image's smoothness
along them, a fluid-dynamics analogy. Radius 3, as the evaluation protocol fixes (docs/design.md
step 5). A classical, weight-free baseline on uint8 arrays: no torch.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_cli.archs.telea import OpenCVInpaintConfig, opencv_inpaint
from inpaint_cli.registry import ArchSpec, array_generator


def fill(config: OpenCVInpaintConfig, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return opencv_inpaint(rgb8, hole, config.radius, cv2.INPAINT_NS)


SPECS = (
    ArchSpec(
        name="ns",
        title="Bertalmio et al., CVPR 2001 (OpenCV INPAINT_NS)",
        input_note="any H x W; uint8 RGB",
        build_generator=array_generator(fill),
        order=101,
        configs={"default": OpenCVInpaintConfig()},
        default_config="default",
        learned=False,
        fill_array=fill,
    ),
)

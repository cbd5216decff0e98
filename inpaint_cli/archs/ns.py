"""Navier-Stokes inpainting (Bertalmio, Bertozzi and Sapiro, CVPR 2001), OpenCV's `INPAINT_NS`:
isophotes (lines of equal grey) are continued into the hole by transporting the image's smoothness
along them, a fluid-dynamics analogy. Radius 3, as the evaluation protocol fixes (docs/design.md
step 5). A classical, weight-free baseline on uint8 arrays: no torch.
"""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_cli.archs.telea import OpenCVInpaintConfig, opencv_inpaint
from inpaint_cli.registry import array_method_spec


def fill(config: OpenCVInpaintConfig, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return opencv_inpaint(rgb8, hole, config.radius, cv2.INPAINT_NS)


SPECS = (array_method_spec("ns", "Bertalmio et al., CVPR 2001 (OpenCV INPAINT_NS)", 101, fill, OpenCVInpaintConfig()),)

"""The membrane (harmonic) interpolant: each hole pixel the mean of its neighbours, so the hole is
the smoothest surface that meets the known pixels at its boundary. It is Poisson blending (Pérez et
al., SIGGRAPH 2003) of a flat fill, so the baseline that shows what GLCIC's Poisson
post-processing (`inpaint_cli.blend`) gives on its own. Weight-free, on uint8 arrays: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inpaint_cli.blend import harmonic_fill
from inpaint_cli.registry import array_method_spec


@dataclass(frozen=True)
class HarmonicConfig:
    """No setting: the membrane is unique."""


def fill(config: HarmonicConfig, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return harmonic_fill(rgb8, hole)


SPECS = (array_method_spec("harmonic", "membrane interpolant (Poisson blending of a flat fill, Pérez et al. 2003)", 102, fill, HarmonicConfig()),)

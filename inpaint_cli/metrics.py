"""Per-image quality metrics of the evaluation protocol (docs/design.md "Evaluation protocol", step 4).

Every metric takes the original and the filled image as float RGB arrays (H x W x 3, values in
[0, 1]) and the hole (bool H x W, True = hole), and returns one float. Computation is in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from inpaint_cli.errors import InpaintError

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

PSNR_CAP_DB = 100.0

# SSIM constants of Wang et al. 2004 as scikit-image applies them (data range 1).
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: an 11 x 11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _as_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def l1(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute error over all pixels and channels."""
    return float(np.mean(np.abs(_as_float(original) - _as_float(filled))))


def hole_l1(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute error over the hole's pixels only (all channels); 0 for an empty hole."""
    hole = np.asarray(hole, dtype=bool)
    if not hole.any():
        return 0.0
    return float(np.mean(np.abs(_as_float(original)[hole] - _as_float(filled)[hole])))


def l2(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared error over all pixels and channels."""
    return float(np.mean((_as_float(original) - _as_float(filled)) ** 2))


def psnr(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Peak signal-to-noise ratio for data range 1, 10 log10(1 / MSE), capped at 100 dB."""
    mse = l2(original, filled, hole)
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(10.0 * math.log10(1.0 / mse), PSNR_CAP_DB)


def _gaussian_kernel() -> np.ndarray:
    """The normalised 1-D Gaussian taps (sigma 1.5, truncated at 3.5 sigma: 11 taps)."""
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def _gaussian_blur(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over height and width with reflect padding (d c b a | a b c d)."""
    kernel = _gaussian_kernel()
    return cv2.sepFilter2D(
        np.ascontiguousarray(image), cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT
    )


def ssim(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> float:
    """Structural similarity (Wang et al., IEEE TIP 2004) with Gaussian weights.

    Follows scikit-image's `structural_similarity(..., channel_axis=-1, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1)`: local statistics from an 11 x 11
    Gaussian window with reflect padding, a 5-pixel border dropped, mean per channel, then the
    mean over channels.
    """
    x = _as_float(original)
    y = _as_float(filled)
    window = 2 * SSIM_RADIUS + 1
    if min(x.shape[:2]) < window:
        raise InpaintError(f"ssim needs images of at least {window} x {window} pixels")
    c1 = SSIM_K1**2
    c2 = SSIM_K2**2
    channels = x.shape[-1]
    # One filter pass over the five local moments stacked as channels.
    moments = _gaussian_blur(np.concatenate([x, y, x * x, y * y, x * y], axis=-1))
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = np.split(moments, 5, axis=-1)
    var_x = mean_xx - mean_x * mean_x
    var_y = mean_yy - mean_y * mean_y
    cov_xy = mean_xy - mean_x * mean_y
    similarity = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    border = SSIM_RADIUS
    inner = similarity[border:-border, border:-border]
    per_channel = inner.reshape(-1, channels).mean(axis=0)
    return float(per_channel.mean())


METRICS: dict[str, Metric] = {
    "l1": l1,
    "hole_l1": hole_l1,
    "l2": l2,
    "psnr": psnr,
    "ssim": ssim,
}

HIGHER_IS_BETTER: frozenset[str] = frozenset({"psnr", "ssim"})

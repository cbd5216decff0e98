"""Per-image metrics: agreement with scikit-image and plain numpy, the PSNR cap, hole-only L1."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaint_cli.errors import InpaintError
from inpaint_cli.metrics import METRICS, hole_l1, l1, l2, psnr, ssim


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a,
        b,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
    )


def synthetic_pairs(smooth_image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(original, degraded) float pairs in [0, 1]: noise, blur, a shift, a box fill, non-square."""
    rng = np.random.default_rng(7)
    base = smooth_image.astype(np.float64) / 255.0
    noisy = np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1)
    blurred = cv2.GaussianBlur(base, (7, 7), 2.0)
    shifted = np.roll(base, 3, axis=1)
    boxed = base.copy()
    boxed[20:60, 30:90] = base[20:60, 30:90].mean(axis=(0, 1))
    uniform = rng.random((37, 53, 3))
    return [
        (base, noisy),
        (base, blurred),
        (base, shifted),
        (base, boxed),
        (uniform, rng.random((37, 53, 3))),
        (np.full((16, 16, 3), 0.5), np.full((16, 16, 3), 0.25)),
    ]


def photo_pairs(data_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two evaluation photos against a JPEG re-encoding and a Telea fill of a box."""
    files = sorted((data_dir / "eval" / "cbsd68").glob("*.png"))[:2]
    if not files:
        pytest.skip("no cbsd68 photos in the data folder")
    pairs = []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))[:128, :160]
        encoded = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], 1)
        hole = np.zeros(image.shape[:2], np.uint8)
        hole[40:90, 50:110] = 255
        telea = cv2.inpaint(image, hole, 3, cv2.INPAINT_TELEA)
        for degraded in (encoded, telea):
            pairs.append((image / 255.0, degraded / 255.0))
    return pairs


def test_metric_names() -> None:
    assert list(METRICS) == ["l1", "hole_l1", "l2", "psnr", "ssim"]


def test_l1_and_l2_match_numpy(smooth_image: np.ndarray) -> None:
    for original, filled in synthetic_pairs(smooth_image):
        hole = np.zeros(original.shape[:2], bool)
        difference = original - filled
        assert l1(original, filled, hole) == pytest.approx(np.abs(difference).mean(), rel=1e-12)
        assert l2(original, filled, hole) == pytest.approx((difference**2).mean(), rel=1e-12)


def test_l1_hand_values() -> None:
    original = np.zeros((4, 4, 3))
    filled = np.zeros((4, 4, 3))
    filled[0, 0] = 1.0  # 3 of 48 values off by 1
    hole = np.zeros((4, 4), bool)
    assert l1(original, filled, hole) == pytest.approx(3 / 48)
    assert l2(original, filled, hole) == pytest.approx(3 / 48)
    assert psnr(original, filled, hole) == pytest.approx(10 * np.log10(16))


def test_hole_l1_counts_only_hole_pixels() -> None:
    original = np.full((8, 10, 3), 0.5)
    filled = np.zeros((8, 10, 3))  # off by 0.5 outside the hole
    hole = np.zeros((8, 10), bool)
    hole[2:5, 3:7] = True
    filled[hole] = [0.75, 0.25, 0.5]  # off by 0.25, 0.25, 0 inside
    assert hole_l1(original, filled, hole) == pytest.approx(0.5 / 3)
    assert l1(original, filled, hole) > 0.4
    assert hole_l1(original, filled, np.zeros((8, 10), bool)) == 0.0


def test_psnr_matches_scikit_image(smooth_image: np.ndarray) -> None:
    for original, filled in synthetic_pairs(smooth_image):
        expected = peak_signal_noise_ratio(original, filled, data_range=1)
        assert psnr(original, filled, None) == pytest.approx(expected, abs=1e-3)


def test_psnr_is_capped_at_100_db(smooth_image: np.ndarray) -> None:
    image = smooth_image / 255.0
    assert psnr(image, image.copy(), None) == 100.0
    nearly = image.copy()
    nearly[0, 0, 0] += 1e-9  # 10 log10(1 / MSE) would be far above 100 dB
    assert psnr(image, nearly, None) == 100.0


def test_ssim_matches_scikit_image_on_synthetic_pairs(smooth_image: np.ndarray) -> None:
    values = []
    for original, filled in synthetic_pairs(smooth_image):
        value = ssim(original, filled, None)
        assert value == pytest.approx(reference_ssim(original, filled), abs=1e-3)
        values.append(value)
    assert len(set(np.round(values, 3))) == len(values)  # the pairs really differ
    assert ssim(smooth_image / 255.0, smooth_image / 255.0, None) == pytest.approx(1.0, abs=1e-12)


def test_psnr_and_ssim_match_scikit_image_on_photos(data_dir: Path) -> None:
    for original, filled in photo_pairs(data_dir):
        expected_ssim = reference_ssim(original, filled)
        assert ssim(original, filled, None) == pytest.approx(expected_ssim, abs=1e-3)
        expected_psnr = peak_signal_noise_ratio(original, filled, data_range=1)
        assert psnr(original, filled, None) == pytest.approx(expected_psnr, abs=1e-3)


def test_ssim_is_symmetric_and_ignores_the_hole_argument(smooth_image: np.ndarray) -> None:
    original, filled = synthetic_pairs(smooth_image)[0]
    hole = np.ones(original.shape[:2], bool)
    assert ssim(original, filled, hole) == pytest.approx(ssim(filled, original, None), abs=1e-12)


def test_ssim_rejects_images_smaller_than_its_window() -> None:
    with pytest.raises(InpaintError, match="11 x 11"):
        ssim(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)), None)

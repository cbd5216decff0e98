"""Masks from rectangles and generators (docs/design.md "Evaluation protocol" step 2; docs/architectures.md §1-§4, §7)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaint_cli.errors import InpaintError
from inpaint_cli.masks import (
    KIND_IDS,
    draw_mask,
    eval_rng,
    generate_mask_set,
    mask_kinds,
    parse_rect,
    rect_mask,
)


def _rng(kind: str, index: int) -> np.random.Generator:
    """The protocol's generator for evaluation kinds, a fixed seeded one for training kinds."""
    if kind.split(":")[0] in KIND_IDS:
        return eval_rng(0, index, kind)
    return np.random.default_rng([0, index])


def _ratios(kind: str, size: int, count: int) -> np.ndarray:
    return np.array([draw_mask(kind, _rng(kind, i), size, size).mean() for i in range(count)])


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


# ------------------------------------------------------------------------------------- protocol


def test_kind_ids_are_the_protocol_numbers() -> None:
    assert KIND_IDS == {
        "box": 1,
        "center": 2,
        "irregular": 3,
        "freeform": 4,
        "lama-thin": 5,
        "lama-medium": 6,
        "lama-thick": 7,
    }
    training = {"lama-train", "glcic-box", "deepfill-bbox", "deepfill-v2", "ce-center", "ce-random"}
    assert set(KIND_IDS) | training == set(mask_kinds())


def test_eval_rng_is_default_rng_of_seed_index_kind_id() -> None:
    expected = np.random.default_rng([7, 3, 3]).random(5)
    np.testing.assert_array_equal(eval_rng(7, 3, "irregular").random(5), expected)
    np.testing.assert_array_equal(eval_rng(7, 3, "irregular:20-30").random(5), expected)
    assert not np.array_equal(eval_rng(7, 3, "box").random(5), expected)
    with pytest.raises(InpaintError, match="not an evaluation mask kind"):
        eval_rng(0, 0, "glcic-box")


@pytest.mark.parametrize("side", [256, 255, 100])
def test_box_follows_the_protocol_formula(side: int) -> None:
    for seed, index in [(0, 0), (0, 1), (3, 17), (12345, 99)]:
        rng = np.random.default_rng([seed, index, 1])
        w, h = rng.integers(math.ceil(side / 4), math.floor(side / 2) + 1, size=2)
        x = rng.integers(0, side - w + 1)
        y = rng.integers(0, side - h + 1)
        expected = np.zeros((side, side), dtype=bool)
        expected[y : y + h, x : x + w] = True
        np.testing.assert_array_equal(draw_mask("box", eval_rng(seed, index, "box"), side, side), expected)


def test_center_is_the_centred_half_square() -> None:
    mask = draw_mask("center", eval_rng(0, 0, "center"), 256, 256)
    expected = np.zeros((256, 256), dtype=bool)
    expected[64:192, 64:192] = True
    np.testing.assert_array_equal(mask, expected)
    assert _bbox(draw_mask("center", np.random.default_rng(0), 128, 128)) == (32, 32, 64, 64)
    np.testing.assert_array_equal(draw_mask("ce-center", np.random.default_rng(1), 256, 256), expected)


@pytest.mark.parametrize("kind, low, high", [("irregular", 0.10, 0.60), ("irregular:20-30", 0.20, 0.30),
                                             ("irregular:50-60", 0.50, 0.60), ("irregular:0-10", 0.0, 0.10)])
def test_irregular_ratio_always_in_its_band(kind: str, low: float, high: float) -> None:
    ratios = _ratios(kind, 128, 50)
    assert ratios.min() >= low and ratios.max() <= high
    assert ratios.min() > 0
    assert ratios.std() > 0.01  # spread over the band, not stuck at one edge


def test_irregular_band_narrower_than_a_pixel_is_met() -> None:
    """At 16 x 16 the band 50-50.005 % holds exactly one count, 128 pixels; a target drawn inside
    the band's last fraction of a pixel (any target > 128 / 256 here) could never be met."""
    for seed in range(5):
        assert draw_mask("irregular:50-50.005", np.random.default_rng(seed), 16, 16).sum() == 128


def test_irregular_masks_are_strokes_not_noise() -> None:
    mask = draw_mask("irregular:30-40", eval_rng(0, 0, "irregular"), 256, 256).astype(np.uint8)
    components, _ = cv2.connectedComponents(mask)
    assert components - 1 < 40  # a few connected strokes and blobs
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    assert (opened == mask).mean() > 0.98  # smooth shapes, few isolated pixels


def test_irregular_rejects_bad_bands() -> None:
    for band in ["60-10", "a-b", "10", "10-101"]:
        with pytest.raises(InpaintError, match="LO-HI"):
            draw_mask(f"irregular:{band}", np.random.default_rng(0), 64, 64)


def test_freeform_statistics_and_scale_invariance() -> None:
    small = _ratios("freeform", 256, 100)
    large = _ratios("freeform", 512, 40)
    assert 0.10 < small.mean() < 0.20  # DeepFill v2 strokes: 1-3 strokes, widths 12-40 at 256
    assert small.min() > 0 and small.max() < 0.45
    assert abs(small.mean() - large.mean()) < 0.04  # widths and lengths scale with the side


def test_lama_statistics() -> None:
    thin, medium, thick = (_ratios(kind, 256, 60) for kind in ("lama-thin", "lama-medium", "lama-thick"))
    for ratios in (thin, medium, thick):
        assert ratios.min() > 0 and ratios.max() <= 0.5  # max_tamper_area 0.5
    assert 0.18 < thick.mean() < 0.32
    assert 0.15 < medium.mean() < 0.30
    assert 0.18 < thin.mean() < 0.36
    # Thin strokes are at most 14 px wide at 256: an erosion by a 19 x 19 disk leaves almost nothing.
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (19, 19))

    def surviving(kind: str) -> float:
        masks = [draw_mask(kind, eval_rng(0, i, kind), 256, 256).astype(np.uint8) for i in range(20)]
        return sum(cv2.erode(m, disk).sum() for m in masks) / sum(m.sum() for m in masks)

    assert surviving("lama-thin") < 0.05
    assert surviving("lama-thick") > 0.3


def test_lama_train_is_unfiltered_and_scales() -> None:
    ratios = _ratios("lama-train", 256, 60)
    assert ratios.max() > 0.5  # no max_tamper_area in training
    assert abs(ratios.mean() - _ratios("lama-train", 512, 40).mean()) < 0.08


@pytest.mark.parametrize("kind", mask_kinds())
def test_every_kind_is_deterministic(kind: str) -> None:
    first = draw_mask(kind, np.random.default_rng(42), 96, 96)
    again = draw_mask(kind, np.random.default_rng(42), 96, 96)
    assert first.dtype == bool and first.shape == (96, 96)
    np.testing.assert_array_equal(first, again)
    assert first.any()
    if kind not in ("center", "ce-center"):
        others = [draw_mask(kind, np.random.default_rng(seed), 96, 96) for seed in range(43, 46)]
        assert any(not np.array_equal(first, other) for other in others)


def test_non_square_sizes() -> None:
    for kind in mask_kinds():
        mask = draw_mask(kind, np.random.default_rng(0), 60, 150)
        assert mask.shape == (60, 150) and mask.any()


def test_unknown_kinds_and_parameters_are_errors() -> None:
    with pytest.raises(InpaintError, match="unknown mask kind 'triangle'"):
        draw_mask("triangle", np.random.default_rng(0), 64, 64)
    with pytest.raises(InpaintError, match="takes no parameters"):
        draw_mask("box:3", np.random.default_rng(0), 64, 64)
    with pytest.raises(InpaintError, match="at least"):
        draw_mask("box", np.random.default_rng(0), 2, 64)


# -------------------------------------------------------------------------------- training kinds


@pytest.mark.parametrize("size", [256, 512])
def test_glcic_box_sides_scale_with_size(size: int) -> None:
    low, high = 96 * size // 256, 128 * size // 256
    for seed in range(20):
        top, left, height, width = _bbox(draw_mask("glcic-box", np.random.default_rng(seed), size, size))
        assert low <= height <= high and low <= width <= high


@pytest.mark.parametrize("size", [256, 512])
def test_deepfill_bbox_is_a_shrunk_128_box(size: int) -> None:
    scale = size // 256
    heights = set()
    for seed in range(30):
        mask = draw_mask("deepfill-bbox", np.random.default_rng(seed), size, size)
        top, left, height, width = _bbox(mask)
        assert mask.sum() == height * width  # one solid rectangle
        for side in (height, width):
            shrink = 128 * scale - side
            assert shrink % 2 == 0 and 0 <= shrink // 2 <= 16 * scale
        heights.add(height)
    assert len(heights) > 5


def test_deepfill_v2_unites_strokes_and_bbox() -> None:
    ratios = _ratios("deepfill-v2", 256, 30)
    assert 0.2 < ratios.mean() < 0.45
    assert ratios.min() >= 96 * 96 / 256**2


@pytest.mark.parametrize("size", [128, 256])
def test_ce_random_covers_20_to_30_percent(size: int) -> None:
    ratios = _ratios("ce-random", size, 20)
    assert ratios.min() > 0.20 and ratios.max() < 0.30
    mask = draw_mask("ce-random", np.random.default_rng(0), size, size).astype(np.uint8)
    components, _ = cv2.connectedComponents(mask)
    assert components - 1 < 40  # smooth blobs from upsampled noise


# ------------------------------------------------------------------------------------- rectangles


def test_parse_rect() -> None:
    assert parse_rect("120,80,64,64") == (120, 80, 64, 64)
    assert parse_rect(" -5, 3 ,10,20") == (-5, 3, 10, 20)
    for text in ["1,2,3", "a,b,c,d", "1,2,3,4,5", "1.5,2,3,4"]:
        with pytest.raises(InpaintError, match="x,y,w,h"):
            parse_rect(text)
    for text in ["1,2,0,4", "1,2,3,-4"]:
        with pytest.raises(InpaintError, match="positive"):
            parse_rect(text)


def test_rect_mask_inside_clipped_and_outside() -> None:
    mask, warning = rect_mask(50, 80, (10, 20, 30, 5))
    assert warning is None and mask.sum() == 150 and mask[20:25, 10:40].all()
    mask, warning = rect_mask(50, 80, (70, -10, 30, 20))
    assert mask.sum() == 10 * 10 and mask[0:10, 70:80].all()
    assert warning is not None and "clipped to 70,0,10,10" in warning
    with pytest.raises(InpaintError, match="wholly outside"):
        rect_mask(50, 80, (80, 0, 10, 10))
    with pytest.raises(InpaintError, match="wholly outside"):
        rect_mask(50, 80, (-10, -10, 10, 10))


# ------------------------------------------------------------------------------------- mask sets


def test_generate_mask_set_writes_the_eval_masks(tmp_path: Path) -> None:
    out = tmp_path / "set"
    paths = generate_mask_set("irregular:20-30", 3, 64, 5, out)
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            assert image.mode == "L"
            pixels = np.asarray(image)
        assert set(np.unique(pixels)) <= {0, 255}
        expected = draw_mask("irregular:20-30", eval_rng(5, index, "irregular"), 64, 64)
        np.testing.assert_array_equal(pixels == 255, expected)
    with pytest.raises(InpaintError, match="exists; pass --overwrite"):
        generate_mask_set("box", 3, 64, 5, out)
    np.testing.assert_array_equal(np.asarray(Image.open(paths[0])) == 255,
                                  draw_mask("irregular:20-30", eval_rng(5, 0, "irregular"), 64, 64))
    generate_mask_set("box", 3, 64, 5, out, overwrite=True)
    np.testing.assert_array_equal(np.asarray(Image.open(paths[0])) == 255,
                                  draw_mask("box", eval_rng(5, 0, "box"), 64, 64))
    with pytest.raises(InpaintError, match="not an evaluation mask kind"):
        generate_mask_set("glcic-box", 1, 64, 0, tmp_path / "other")
    assert not (tmp_path / "other").exists()

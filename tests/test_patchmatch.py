"""archs/patchmatch.py: exemplar-based completion copies texture where diffusion smears it."""

import numpy as np
import pytest

from inpaint_cli.fill import FillOptions, Inpainter, resolve_model
from inpaint_cli.registry import list_archs


def _texture(height: int = 96, width: int = 96) -> np.ndarray:
    """A periodic texture (periods 12 and 16, sharp edges): what blurring fails to continue."""
    y, x = np.mgrid[0:height, 0:width]
    checks = ((x // 6 + y // 8) % 2) * 150
    stripes = np.where((x + 2 * y) % 16 < 5, 90, 0)
    return np.stack([checks + 50, stripes + 60, 255 - checks - stripes // 2], axis=-1).clip(0, 255).astype(np.uint8)


def _box_hole(height: int, width: int, top: int, left: int, side: int) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    hole[top : top + side, left : left + side] = True
    return hole


def _fill(arch: str, image: np.ndarray, hole: np.ndarray, seed: int = 0) -> np.ndarray:
    return Inpainter(resolve_model(arch, None), "cpu", FillOptions(seed=seed)).fill(image, hole)[0]


def _hole_l1(filled: np.ndarray, image: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(filled.astype(np.float64) - image)[hole].mean())


def test_registered_as_a_classical_method():
    assert "patchmatch" in list_archs(learned=False)


def test_deterministic_for_a_seed_and_known_pixels_unchanged():
    image = _texture()
    hole = _box_hole(96, 96, 30, 34, 24)
    first, again = _fill("patchmatch", image, hole, seed=3), _fill("patchmatch", image, hole, seed=3)
    assert np.array_equal(first, again)
    assert np.array_equal(first[~hole], image[~hole])
    other = _fill("patchmatch", np.where(hole[..., None], np.uint8(0), image), hole, seed=4)
    assert not np.array_equal(first, other)  # the seed drives the random search


def test_reproduces_a_periodic_texture_where_diffusion_blurs():
    image = _texture()
    hole = _box_hole(96, 96, 30, 34, 24)
    errors = {arch: _hole_l1(_fill(arch, image, hole), image, hole) for arch in ("patchmatch", "telea", "harmonic")}
    assert errors["patchmatch"] < 8, errors  # grey levels: the texture, continued
    assert errors["patchmatch"] < 0.25 * min(errors["telea"], errors["harmonic"]), errors


@pytest.mark.parametrize("corner", ["top-left", "bottom-right"])
def test_a_hole_touching_the_border_is_filled_with_texture(corner):
    image = _texture()
    top, left = (0, 0) if corner == "top-left" else (72, 70)
    hole = _box_hole(96, 96, top, left, 26)
    filled = _fill("patchmatch", image, hole)
    assert np.array_equal(filled[~hole], image[~hole])
    telea = _hole_l1(_fill("telea", image, hole), image, hole)
    assert _hole_l1(filled, image, hole) < 0.5 * telea


def test_degenerate_inputs_are_filled_without_hidden_pixels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    everything = np.ones((40, 50), dtype=bool)
    assert np.array_equal(_fill("patchmatch", image, everything), _fill("patchmatch", image[::-1], everything))
    tiny = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)  # smaller than a patch: Telea's fill
    hole = _box_hole(5, 6, 1, 1, 2)
    assert np.array_equal(_fill("patchmatch", tiny, hole), _fill("telea", tiny, hole))

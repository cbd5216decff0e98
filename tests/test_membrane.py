"""The membrane solve behind Poisson blending and the harmonic fill: converged on large holes, thin
strokes and holes on the image border."""

import numpy as np

from inpaint_cli.blend import poisson_blend
from inpaint_cli.masks import draw_mask
from inpaint_cli.membrane import hierarchy, solve_membrane


def _saddle(size=256):
    """x^2 - y^2 (and a mix of it with x and y): their 5-point Laplacian is exactly 0, so the
    membrane of any hole in them is the image itself."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    saddle = ((x - 128) ** 2 - (y - 100) ** 2) / 256 * 1.5 + 128
    return np.stack([saddle, saddle * 0.5 + 60, 255 - saddle], axis=-1)


def _solved(hole, values):
    """`values` with the hole's pixels replaced by the membrane solve's."""
    solved = values.astype(np.float32)
    solved[hole] = solve_membrane(hole, values)
    return solved


def _equation_error(inside, solution):
    """The largest |count x pixel - sum of neighbours| over the hole (in-array neighbours only)."""
    padded = np.pad(solution, ((1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones(inside.shape), 1)
    neighbours = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    count = (ones[:-2, 1:-1] + ones[2:, 1:-1] + ones[1:-1, :-2] + ones[1:-1, 2:])[..., None]
    return np.abs(count * solution - neighbours)[inside].max()


def test_the_membrane_of_a_large_box_in_a_harmonic_image_is_the_image():
    image = _saddle()
    hole = np.zeros((256, 256), dtype=bool)
    hole[50:200, 60:210] = True  # 22,500 unknowns: plain conjugate gradients stopped 18 levels off
    solved = _solved(hole, image)
    assert np.abs(solved - image)[hole].max() < 0.5
    blended = poisson_blend(np.rint(image).astype(np.uint8), np.zeros((256, 256, 3), np.uint8), hole)
    assert np.abs(blended.astype(int) - np.rint(image))[hole].max() <= 1


def test_the_solve_meets_its_equations_on_strokes_blobs_and_border_holes():
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 255, (200, 300, 3)).astype(np.float32)
    for spec in ("freeform", "irregular:40-50", "box"):
        hole = draw_mask(spec, rng, 200, 300)
        hole[:, :3] |= hole[:, 3:6]  # and a stretch of the image border
        solved = _solved(hole, values)
        # only the known pixels are read: what the hole held does not matter
        poisoned = np.where(hole[..., None], np.float32(np.nan), values)
        assert np.array_equal(solve_membrane(hole, poisoned), solved[hole])
        # each hole pixel is its neighbours' mean to within 0.01 of a grey level, summed
        assert _equation_error(hole, solved.astype(np.float64)) < 0.01 * 4


def test_the_levels_coarsen_to_a_small_direct_solve():
    hole = draw_mask("irregular:40-50", np.random.default_rng(0), 512, 512)
    levels = hierarchy(hole)
    assert levels[0].count == hole.sum()
    assert levels[-1].inverse is not None and levels[-1].count <= 256
    assert all(fine.count > coarse.count for fine, coarse in zip(levels, levels[1:]))
    # the coarse operator is the Galerkin product: constant unknowns feel only the known cells,
    # on every level alike (R A P 1 = R A 1)
    ones = np.ones((1, levels[0].count), np.float32)
    fine = levels[0].apply(ones)
    coarse = levels[1].apply(np.ones((1, levels[1].count), np.float32))
    np.testing.assert_allclose(np.bincount(levels[0].parent, fine[0], minlength=levels[1].count), coarse[0], atol=1e-3)


def test_a_one_pixel_tall_image():
    row = np.tile((np.arange(40, dtype=np.float32) * 5)[None, :, None], (1, 1, 3))
    hole = np.zeros((1, 40), dtype=bool)
    hole[0, 5:30] = True
    solved = _solved(hole, row)
    assert np.abs(solved - row).max() < 0.01  # a line is harmonic along the row

"""Poisson blending (GLCIC post-processing): exact on consistent input, border holes, offsets removed;
the ramp from the membrane fill at a hole's edge to the network's fill inside."""

import numpy as np

from inpaint_cli.blend import RAMP_START, RAMP_WIDTH, poisson_blend, ramp_blend


def _ramp(height=64, width=80):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 3, y * 3, (x + y) * 1.5], axis=-1).clip(0, 255).astype(np.uint8)


def _hole(slices, shape=(64, 80)):
    hole = np.zeros(shape, dtype=bool)
    hole[slices] = True
    return hole


def test_blending_an_image_into_itself_changes_nothing():
    image = _ramp()
    for slices in [(slice(20, 40), slice(30, 55)), (slice(0, 64), slice(0, 10)), (slice(50, 64), slice(70, 80))]:
        hole = _hole(slices)
        assert np.array_equal(poisson_blend(image, image, hole), image)


def test_a_constant_colour_offset_is_removed_even_at_the_border():
    image = _ramp()
    shifted = (image.astype(int) + 20).clip(0, 255).astype(np.uint8)
    for slices in [(slice(20, 40), slice(30, 55)), (slice(0, 64), slice(0, 12))]:
        hole = _hole(slices)
        blended = poisson_blend(image, shifted, hole)
        assert np.abs(blended.astype(int) - image)[hole].max() <= 1
        assert np.abs(shifted.astype(int) - image)[hole].min() == 20


def test_known_pixels_are_untouched_and_a_large_hole_converges():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 260, 3)).astype(np.uint8)
    fill = rng.integers(0, 256, (300, 260, 3)).astype(np.uint8)
    hole = _hole((slice(40, 250), slice(30, 200)), (300, 260))
    blended = poisson_blend(image, fill, hole)
    assert np.array_equal(blended[~hole], image[~hole])
    # the fill's gradients survive: blended - fill is smooth (harmonic) inside the hole
    delta = blended.astype(float) - fill
    interior = delta[60:230, 50:180]
    laplacian = interior[1:-1, 1:-1] * 4 - interior[:-2, 1:-1] - interior[2:, 1:-1] - interior[1:-1, :-2] - interior[1:-1, 2:]
    assert np.abs(laplacian).mean() < 1.5  # rounding to uint8 alone gives about 1


def test_the_harmonic_baseline_is_exact_on_linear_ramps():
    # linear functions are harmonic, so the membrane fill of a ramp is the ramp; Telea's is not
    from inpaint_cli.fill import Inpainter, resolve_model

    y, x = np.mgrid[0:64, 0:80]
    image = np.stack([x * 2 + 40, y * 2 + 30, x + y + 20], axis=-1).astype(np.uint8)
    hole = _hole((slice(16, 48), slice(20, 60)))
    harmonic = Inpainter(resolve_model("harmonic", None))(image, hole)
    telea = Inpainter(resolve_model("telea", None))(image, hole)
    assert np.abs(harmonic.astype(int) - image)[hole].max() <= 1
    assert np.abs(telea.astype(int) - image)[hole].max() > 1


def test_the_ramp_is_the_membrane_at_the_edge_and_the_fill_inside():
    image = _ramp()
    hole = _hole((slice(10, 50), slice(20, 70)))  # 40 x 50: depths up to 20 pixels
    fill = np.full_like(image, 7)
    membrane = poisson_blend(image, np.zeros_like(image), hole)
    blended = ramp_blend(image, fill, hole)
    assert np.array_equal(blended[~hole], image[~hole])
    row = blended[30, :, 0].astype(int)
    # along the middle row the nearest known pixel lies to the left: depth d = column - 19
    for column in range(20, 35):
        weight = min(max((column - 19 - RAMP_START) / RAMP_WIDTH, 0.0), 1.0)
        expected = round(membrane[30, column, 0] + weight * (7 - int(membrane[30, column, 0])))
        assert abs(row[column] - expected) <= 1, column
    assert row[20] == membrane[30, 20, 0] and row[21] == membrane[30, 21, 0]  # depths 1 and 2
    deep = _hole((slice(10 + 7, 50 - 7), slice(20 + 7, 70 - 7)))
    assert (blended[deep] == 7).all()


def test_the_ramp_keeps_a_fill_that_has_nothing_to_meet():
    image = _ramp()
    fill = np.full_like(image, 99)
    assert np.array_equal(ramp_blend(image, fill, np.ones(image.shape[:2], dtype=bool)), fill)
    assert np.array_equal(ramp_blend(image, fill, np.zeros(image.shape[:2], dtype=bool)), image)

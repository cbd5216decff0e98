"""Growing (--dilate) and feathering (--feather) the hole, and the mask preview."""

import math

import numpy as np
import pytest

from inpaint_cli.blend import composite
from inpaint_cli.errors import InpaintError
from inpaint_cli.evaluate import eval_masks, evaluate
from inpaint_cli.fill import FillOptions, Inpainter, resolve_model
from inpaint_cli.masks import PREVIEW_OPACITY, PREVIEW_TINT, grow_hole, preview_hole


def _disk(size: int, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] - size // 2
    return x**2 + y**2 <= radius**2


def test_a_grown_point_is_the_lattice_disk():
    point = np.zeros((41, 41), dtype=bool)
    point[20, 20] = True
    grown = grow_hole(point, 10)
    assert grown.sum() == 317  # lattice points within distance 10 (Gauss's circle problem)
    assert np.array_equal(grown, _disk(41, 10))


def test_a_grown_disk_has_the_area_of_the_wider_disk():
    grown = grow_hole(_disk(121, 20), 12)
    # within 32 of the centre, and every point within 31 is within 12 of a lattice point of the disk
    assert not (grown & ~_disk(121, 32)).any() and (grown | ~_disk(121, 31)).all()
    assert abs(grown.sum() - math.pi * 32**2) < 0.03 * math.pi * 32**2
    assert np.array_equal(grow_hole(_disk(121, 20), 0), _disk(121, 20))
    with pytest.raises(InpaintError, match="--dilate"):
        grow_hole(_disk(121, 20), -1)


def test_a_grown_hole_at_the_border_stays_in_the_image():
    hole = np.zeros((30, 40), dtype=bool)
    hole[0, 39] = True
    assert grow_hole(hole, 3).sum() == 11  # the quarter of the radius-3 lattice disk (29 points) inside


def test_fill_replaces_the_grown_hole_and_keeps_every_other_pixel(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], dtype=bool)
    hole[40:50, 60:75] = True
    inpainter = Inpainter(resolve_model("telea", None), "cpu", FillOptions(dilate=4, feather=3))
    grown = inpainter.hole_to_fill(hole)
    assert np.array_equal(grown, grow_hole(hole, 4)) and grown.sum() > hole.sum()
    filled, _ = inpainter.fill(smooth_image, hole)
    assert np.array_equal(filled[~grown], smooth_image[~grown])
    ring = grown & ~hole
    assert (filled[ring] != smooth_image[ring]).any()  # the halo is filled, not kept


def test_feathered_band_lies_between_fill_and_original(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], dtype=bool)
    hole[20:70, 30:100] = True
    sharp, _ = Inpainter(resolve_model("telea", None), "cpu", FillOptions()).fill(smooth_image, hole)
    soft, _ = Inpainter(resolve_model("telea", None), "cpu", FillOptions(feather=5)).fill(smooth_image, hole)
    assert np.array_equal(soft[~hole], smooth_image[~hole])
    band = np.zeros_like(hole)
    band[20:70, 30:100] = True
    band[25:65, 35:95] = False  # the 5-pixel band inside the edge
    low, high = np.minimum(sharp, smooth_image), np.maximum(sharp, smooth_image)
    assert ((soft[band] >= low[band]) & (soft[band] <= high[band])).all()
    assert (soft[band] != sharp[band]).any()
    deep = hole & ~band
    assert np.array_equal(soft[deep], sharp[deep])


def test_feather_weights_grow_with_depth():
    original = np.full((20, 30, 3), 200, dtype=np.uint8)
    fill = np.zeros_like(original)
    hole = np.zeros((20, 30), dtype=bool)
    hole[:, 10:] = True  # an edge along a column; the other sides are the image border
    result = composite(original, fill, hole, feather=3)
    row = result[10, :, 0]
    assert row[:10].tolist() == [200] * 10
    # depth d = 1, 2, 3 from the known column: the fill weighs d / 4
    assert row[10:15].tolist() == [150, 100, 50, 0, 0]


def test_negative_options_are_user_errors():
    with pytest.raises(InpaintError, match="--feather"):
        Inpainter(resolve_model("telea", None), "cpu", FillOptions(feather=-2))
    with pytest.raises(InpaintError, match="--dilate"):
        Inpainter(resolve_model("telea", None), "cpu", FillOptions(dilate=-1))


def test_preview_tints_only_the_hole(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], dtype=bool)
    hole[5:25, 7:40] = True
    shown = preview_hole(smooth_image, hole)
    assert np.array_equal(shown[~hole], smooth_image[~hole])
    expected = np.rint((1 - PREVIEW_OPACITY) * smooth_image[hole].astype(np.float64) + PREVIEW_OPACITY * np.array(PREVIEW_TINT))
    assert np.abs(shown[hole].astype(np.int64) - expected).max() == 0
    grown = grow_hole(hole, 2)  # `inpaint masks preview --dilate 2`
    changed = (preview_hole(smooth_image, grown) != smooth_image).any(axis=2)
    assert not (changed & ~grown).any() and changed[grown & ~hole].mean() > 0.9


class _Recorder:
    label = "recorder"

    def __init__(self):
        self.holes = []

    def __call__(self, image, hole):
        self.holes.append(hole)
        return np.where(hole[..., None], np.uint8(0), image)


def test_eval_grows_the_holes_every_method_sees_and_scores(smooth_image):
    images = [("a.png", smooth_image[:96, :96]), ("b.png", smooth_image[:96, 32:])]
    recorder = _Recorder()
    evaluate([recorder], images, ["box"], ["l1"], dilate=3)
    _, holes = eval_masks("box", 2, 96, 0)
    for seen, hole in zip(recorder.holes, holes):
        assert np.array_equal(seen, grow_hole(hole, 3))

"""Poisson blending, GLCIC's post-processing (docs/architectures.md §2; Pérez et al., SIGGRAPH 2003),
and the ramp from the membrane fill at a hole's edge to a network's fill inside it (`ramp_blend`).

The official `inpaint.lua` fills the hole by fast marching (OpenCV Telea, radius 1) and then
Poisson-blends the network's fill into it with `cv2.seamlessClone`. seamlessClone is inexact (a
fill blended into itself comes back several levels off) and fails on holes that touch the image
border, so the project solves the same equation itself: inside the hole the result keeps the
fill's gradients, and it meets the known pixels at the hole's boundary. Writing result = fill +
delta, delta is the membrane (harmonic) interpolant of (known - fill) across the boundary, solved
to convergence by `inpaint_cli.membrane` on the hole's bounding box (one pixel wider). At the image
border the hole has no neighbour outside the image (a Neumann boundary), so border holes need no
special case. The converged solution does not depend on where the solve starts, so the official
fast-marching start is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inpaint_cli.membrane import solve_membrane

#: `--blend ramp`: hole pixels this close to the known region take the membrane alone, and the fill
#: fades in over the next RAMP_WIDTH pixels (chosen on training photos, weights/README.md)
RAMP_START = 2.0
RAMP_WIDTH = 4.0


def poisson_blend(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Blend `filled` into `original` over `hole` (uint8 RGB, bool mask); uint8 RGB result whose
    known pixels are `original`'s."""
    result = original.copy()
    if not hole.any():
        return result
    if hole.all():  # no known pixel to meet: the fill stands as it is
        return filled.copy()
    crop = HoleCrop.of(hole)
    delta = solve_membrane(crop.inside, original[crop.box].astype(np.int16) - filled[crop.box])
    crop.write(result, np.clip(np.rint(delta + crop.read(filled)), 0, 255))
    return result


def harmonic_fill(original: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The membrane (harmonic) interpolant of the known pixels over `hole`: Poisson blending of a
    flat fill, which has no gradients of its own."""
    return poisson_blend(original, np.zeros_like(original), hole)


@dataclass
class HoleCrop:
    """The hole's bounding box with a one-pixel ring of known pixels wherever the image has one: a
    hole pixel on the crop's edge lies on the image border, where it simply has fewer neighbours
    (Neumann), and the nearest known pixel of every hole pixel lies inside it. Its hole pixels are
    read and written by index, in row-major order (as boolean indexing lists them, several times
    faster on H x W x C images)."""

    box: tuple[slice, slice]
    inside: np.ndarray  # bool, the hole within the box
    cells: np.ndarray  # its pixels' row-major indices within the box

    @classmethod
    def of(cls, hole: np.ndarray) -> HoleCrop:
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, hole.shape[0])
        left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, hole.shape[1])
        box = np.s_[top:bottom, left:right]
        return cls(box, hole[box], np.flatnonzero(hole[box]))

    def read(self, image: np.ndarray) -> np.ndarray:
        """The hole's pixels of `image` (H x W x C), count x C."""
        crop = np.ascontiguousarray(image[self.box])
        return crop.reshape(-1, crop.shape[-1]).take(self.cells, axis=0)

    def write(self, image: np.ndarray, values: np.ndarray) -> None:
        """`values` (count x C) into the hole's pixels of `image`, in place."""
        crop = np.ascontiguousarray(image[self.box])  # the box itself where it is contiguous
        crop.reshape(-1, crop.shape[-1])[self.cells] = values
        image[self.box] = crop

    def distance(self) -> np.ndarray:
        """Each hole pixel's Euclidean distance to the nearest known pixel (1 when touching), H x W
        over the box."""
        return cv2.distanceTransform(self.inside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def ramp_blend(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The membrane (harmonic) interpolant of the known pixels at the hole's edge, `filled` deeper
    in (uint8 RGB, bool hole): at Euclidean distance d from the nearest known pixel the fill weighs
    clip((d - RAMP_START) / RAMP_WIDTH, 0, 1). For a network that fills the inside of a hole better
    than the membrane but misses the colours at its edge, as the small PConv's last layer does
    (weights/README.md); uint8 RGB result whose known pixels are `original`'s."""
    result = original.copy()
    if not hole.any():
        return result
    if hole.all():  # no known pixel to meet: the fill stands as it is
        return filled.copy()
    crop = HoleCrop.of(hole)
    weight = np.clip((crop.distance().ravel()[crop.cells] - RAMP_START) / RAMP_WIDTH, 0, 1)[:, None]
    edge = np.clip(np.rint(solve_membrane(crop.inside, original[crop.box])), 0, 255)  # the harmonic fill's pixels
    crop.write(result, np.rint(edge + weight * (crop.read(filled) - edge)))
    return result


#: the post-processing of each `--blend` value that changes a fill
BLEND_FUNCTIONS = {"poisson": poisson_blend, "ramp": ramp_blend}


def composite(original: np.ndarray, filled: np.ndarray, hole: np.ndarray, feather: int = 0) -> np.ndarray:
    """Known pixels from `original`, hole pixels from `filled` (uint8 RGB, bool hole). With
    `feather`, hole pixels within `feather` pixels of the known region mix the two: at Euclidean
    distance d from the nearest known pixel the fill weighs d / (feather + 1), so the band softens
    the edge while every known pixel stays bit for bit `original`'s."""
    if feather < 0:
        raise ValueError(f"feather must be 0 or more pixels, got {feather}")
    result = original.copy()
    cv2.copyTo(filled, hole.view(np.uint8), result)
    if feather == 0 or not hole.any() or hole.all():
        return result
    crop = HoleCrop.of(hole)
    box, distance = crop.box, crop.distance()
    band = crop.inside & (distance <= feather)
    weight = (distance[band] / (feather + 1))[:, None]
    mixed = weight * filled[box][band] + (1 - weight) * original[box][band]
    result[box][band] = np.rint(mixed).astype(np.uint8)
    return result

"""Poisson blending, GLCIC's post-processing (docs/architectures.md §2; Pérez et al., SIGGRAPH 2003),
and the ramp from the membrane fill at a hole's edge to a network's fill inside it (`ramp_blend`).

The official `inpaint.lua` fills the hole by fast marching (OpenCV Telea, radius 1) and then
Poisson-blends the network's fill into it with `cv2.seamlessClone`. seamlessClone is inexact (a
fill blended into itself comes back several levels off) and fails on holes that touch the image
border, so the project solves the same equation itself: inside the hole the result keeps the
fill's gradients, and it meets the known pixels at the hole's boundary. Writing result = fill +
delta, delta is the membrane (harmonic) interpolant of (known - fill) across the boundary, solved by
conjugate gradients and started from the fast-marching fill. At the image border the hole has no
neighbour outside the image (a Neumann boundary), so border holes need no special case.

Cost: the solve works on the hole's bounding box (one pixel wider), and each conjugate-gradient
step only on the hole's pixels (gathering their neighbours), in float32; fast marching sees the box
and a small frame, not the image. The relative tolerance, 1e-5, is the loosest that kept every pixel
within one grey level of the former solve (float64, 1e-6) on the example fills and on Poisson
blends of GLCIC and Context Encoder fills of evaluation images (1e-4 moved some by 3, 1e-3 by 4).

Known limit: the solve stops after ITERATIONS_PER_LEVEL steps on every level finer than COARSEST,
so on large holes the result is not the converged solution. Against a float64 direct solve of the same equations, the
membrane of a 150 x 150 box in a 256 x 256 image whose pixels are themselves discrete-harmonic (so
the exact fill is the image) is off by up to 18 grey levels, and the harmonic fills of the
protocol's boxes by up to 44 (hole L1 0.1176 against 0.1164 converged, first 48 photos). The error
is smooth (each pixel is its neighbours' mean to within rounding), not a seam. A converged solver at
this cost (multigrid-preconditioned conjugate gradients) is the fix, with the bundled releases
measured again.
"""

from __future__ import annotations

import cv2
import numpy as np

RELATIVE_TOLERANCE = 1e-5  # stop when the residual norm falls below this fraction of the start's
ITERATIONS_PER_LEVEL = 60  # conjugate-gradient steps on a level that started from a coarser one
COARSEST = 32  # solved to the tolerance (no coarser level) at this side and below
TELEA_FRAME = 4  # pixels of known image around the hole's box that the fast-marching start sees
#: `--blend ramp`: hole pixels this close to the known region take the membrane alone, and the fill
#: fades in over the next RAMP_WIDTH pixels (chosen on training photos, weights/README.md)
RAMP_START = 2.0
RAMP_WIDTH = 4.0


def _neighbour_sum(values: np.ndarray) -> np.ndarray:
    """Sum of the 4 neighbours of each pixel (zero outside the array)."""
    total = np.zeros_like(values)
    total[1:] += values[:-1]
    total[:-1] += values[1:]
    total[:, 1:] += values[:, :-1]
    total[:, :-1] += values[:, 1:]
    return total


def _harmonic(inside: np.ndarray, values: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Fill `values` (H x W x C) inside `inside` with the membrane interpolant of the values
    outside: each hole pixel becomes the mean of its in-array neighbours. Conjugate gradients,
    started from a solution of the half-size problem (cascadic multigrid), or from `initial` at
    the coarsest level."""
    height, width = inside.shape
    if min(height, width) > COARSEST:
        even = np.pad(inside, ((0, height % 2), (0, width % 2)), mode="edge")
        even_values = np.pad(values, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        blocks = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2)
        outside = (~blocks).astype(np.float32)[..., None]
        block_values = even_values.reshape(*blocks.shape, -1)
        coarse_values = (block_values * outside).sum(axis=(1, 3)) / np.maximum(outside.sum(axis=(1, 3)), 1)
        coarse_initial = cv2.resize(initial, (blocks.shape[2], blocks.shape[0]), interpolation=cv2.INTER_AREA)
        coarse = _harmonic(blocks.any(axis=(1, 3)), coarse_values, coarse_initial.reshape(coarse_values.shape))
        initial = cv2.resize(coarse, (even.shape[1], even.shape[0]), interpolation=cv2.INTER_LINEAR)
        initial = initial.reshape(even_values.shape)[:height, :width]
        iterations = ITERATIONS_PER_LEVEL
    else:
        iterations = 4 * height * width
    return _conjugate_gradients(inside, values, initial, iterations)


def _conjugate_gradients(inside: np.ndarray, values: np.ndarray, initial: np.ndarray, iterations: int) -> np.ndarray:
    """The membrane equations of one level (count of in-array neighbours x pixel - sum of the
    neighbours inside = sum of the neighbours outside), solved by conjugate gradients for each
    channel from `initial`, on the hole's pixels alone: each step gathers their 4 neighbours, so
    it costs the hole's size, not its bounding box's."""
    height, width = inside.shape
    rows, cols = np.nonzero(inside)
    count = len(rows)
    # the unknowns' numbers on a grid with a one-pixel frame; the frame and known pixels name a
    # zero slot at `count`
    numbers = np.full((height + 2, width + 2), count, np.intp)
    numbers[rows + 1, cols + 1] = np.arange(count)
    up, down, left, right = (numbers[rows + 1 + dy, cols + 1 + dx] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    in_array = _neighbour_sum(np.ones((height, width, 1), np.float32))[rows, cols, 0]
    # channels first: each channel's unknowns are contiguous
    rhs = np.ascontiguousarray(_neighbour_sum(np.where(inside[..., None], np.float32(0), values))[rows, cols].T)
    padded = np.zeros((values.shape[2], count + 1), np.float32)  # the last column: the zero slot

    def apply(unknown: np.ndarray) -> np.ndarray:
        padded[:, :count] = unknown
        neighbours = padded.take(up, axis=1)
        for side in (down, left, right):
            neighbours += padded.take(side, axis=1)
        return in_array * unknown - neighbours

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", a, b)[:, None]

    solution = np.ascontiguousarray(initial[rows, cols].T, dtype=np.float32)
    residual = rhs - apply(solution)
    direction = residual.copy()
    energy = dot(residual, residual)
    target = RELATIVE_TOLERANCE**2 * np.maximum(energy, 1e-12)
    for _ in range(iterations):
        if (energy <= target).all():
            break
        product = apply(direction)
        step = energy / np.maximum(dot(direction, product), 1e-30)
        solution += step * direction
        residual -= step * product
        new_energy = dot(residual, residual)
        direction = residual + (new_energy / np.maximum(energy, 1e-30)) * direction
        energy = new_energy
    result = values.copy()
    result[rows, cols] = solution.T
    return result


def poisson_blend(original: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Blend `filled` into `original` over `hole` (uint8 RGB, bool mask); uint8 RGB result whose
    known pixels are `original`'s."""
    result = original.copy()
    if not hole.any():
        return result
    if hole.all():  # no known pixel to meet: the fill stands as it is
        return filled.copy()
    rows, cols = np.nonzero(hole)
    # the crop extends one pixel past the hole wherever the image does, so a hole pixel on the
    # crop's edge lies on the image border, where it simply has fewer neighbours (Neumann)
    top, bottom = max(rows.min() - 1, 0), min(rows.max() + 2, hole.shape[0])
    left, right = max(cols.min() - 1, 0), min(cols.max() + 2, hole.shape[1])
    inside = hole[top:bottom, left:right]
    fill = filled[top:bottom, left:right].astype(np.float32)
    # fast marching on the crop and a frame of TELEA_FRAME pixels: it reads no farther
    frame_top, frame_bottom = max(top - TELEA_FRAME, 0), min(bottom + TELEA_FRAME, hole.shape[0])
    frame_left, frame_right = max(left - TELEA_FRAME, 0), min(right + TELEA_FRAME, hole.shape[1])
    framed_hole = hole[frame_top:frame_bottom, frame_left:frame_right]
    shown = np.where(framed_hole[..., None], np.uint8(0), original[frame_top:frame_bottom, frame_left:frame_right])
    telea = cv2.inpaint(np.ascontiguousarray(shown[..., ::-1]), framed_hole.astype(np.uint8) * 255, 1, cv2.INPAINT_TELEA)
    crop = np.s_[top - frame_top : bottom - frame_top, left - frame_left : right - frame_left]
    initial = telea[..., ::-1][crop].astype(np.float32) - fill
    del shown, telea
    delta = _harmonic(inside, original[top:bottom, left:right].astype(np.float32) - fill, initial)
    del initial
    delta += fill
    blended = np.clip(np.rint(delta), 0, 255).astype(np.uint8)
    region = result[top:bottom, left:right]
    region[inside] = blended[inside]
    return result


def _hole_box(hole: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """The hole's bounding box with a one-pixel ring of known pixels wherever the image has one
    (slices), the hole inside it, and each of its pixels' Euclidean distance to the nearest known
    pixel (1 when touching). The nearest known pixel is never farther than that ring."""
    rows, cols = np.nonzero(hole)
    top, bottom = max(rows.min() - 1, 0), min(rows.max() + 2, hole.shape[0])
    left, right = max(cols.min() - 1, 0), min(cols.max() + 2, hole.shape[1])
    box = np.s_[top:bottom, left:right]
    inside = hole[box]
    distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return box, inside, distance


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
    membrane = poisson_blend(original, np.zeros_like(original), hole)
    box, inside, distance = _hole_box(hole)
    weight = np.clip((distance[inside] - RAMP_START) / RAMP_WIDTH, 0, 1)[:, None]
    edge = membrane[box][inside].astype(np.float32)
    result[box][inside] = np.rint(edge + weight * (filled[box][inside] - edge)).astype(np.uint8)
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
    result = np.where(hole[..., None], filled, original)
    if feather == 0 or not hole.any() or hole.all():
        return result
    box, inside, distance = _hole_box(hole)
    band = inside & (distance <= feather)
    weight = (distance[band] / (feather + 1))[:, None]
    mixed = weight * filled[box][band] + (1 - weight) * original[box][band]
    result[box][band] = np.rint(mixed).astype(np.uint8)
    return result

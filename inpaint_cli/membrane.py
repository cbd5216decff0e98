"""The membrane equations on a hole, solved to convergence: each hole pixel is the mean of its
in-array neighbours, and the known pixels around the hole are fixed (Dirichlet; the image border is
a Neumann boundary). Poisson blending and the harmonic fill (`inpaint_cli.blend`) both come down to
it.

Conjugate gradients preconditioned by one multigrid V-cycle (Tatebe, "The multigrid preconditioned
conjugate gradient method", 1993). The levels aggregate 2 x 2 blocks of cells: a coarse unknown is a
block holding any hole pixel, prolongation copies it to the block's hole pixels, restriction sums
them back (its transpose), and each coarse operator is the Galerkin product of the finer one with
them, so it is exact for the hole's own shape, thin strokes included. One weighted-Jacobi sweep
before and after the coarse correction keeps the V-cycle symmetric, as conjugate gradients need;
the coarsest level (at most DIRECT unknowns) is solved by its dense inverse, and each coarse
correction is scaled up by COARSE_WEIGHT. About ten steps reach the tolerance at any hole size,
where plain conjugate gradients need hundreds.

Every unknown is handled by number (the hole's pixels in row-major order) and reads the known pixels
beside it by index, so the set-up and each step cost the hole's size, not its bounding box's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RELATIVE_TOLERANCE = 1e-4  # stop when each channel's residual norm is this fraction of its start's
MAX_STEPS = 200  # a safeguard: about ten steps are the rule
DIRECT = 256  # unknowns of the coarsest level, solved by a dense inverse
JACOBI_WEIGHT = 0.8
#: the coarse correction, scaled up: piecewise-constant prolongation underestimates smooth errors
#: (Braess, "Towards algebraic multigrid for elliptic problems of second order", 1995); 1.5 took the
#: 512 x 512 benchmark holes from 13-14 steps to 10. Below 2 the V-cycle stays positive definite
COARSE_WEIGHT = 1.5


@dataclass
class Level:
    """The membrane operator on one level. Unknowns are numbered in row-major order, so an unknown's
    neighbour on the right, where it has one, is the next unknown and its neighbour on the left the
    previous one: those couplings need no index. Above and below, each unknown names its neighbour
    (`count` for none: a zero slot)."""

    cells: np.ndarray  # (count,): each unknown's cell, as a row-major index into the level's grid
    width: int  # the level's grid width
    diagonal: np.ndarray  # (count,)
    right: np.ndarray  # (count,): the coupling with the next unknown, 0 where it is not the right neighbour
    vertical: np.ndarray  # 2 x count: the unknown below and the one above
    vertical_weights: np.ndarray | None  # 2 x count; None: every coupling 1 (the finest level)
    parent: np.ndarray | None = None  # each unknown's unknown on the next coarser level
    inverse: np.ndarray | None = None  # the coarsest level's dense inverse

    @property
    def count(self) -> int:
        return len(self.diagonal)

    def apply(self, unknowns: np.ndarray) -> np.ndarray:
        """The operator times `unknowns` (channels x count)."""
        result = self.diagonal * unknowns
        coupling = self.right[:-1]
        result[:, :-1] -= coupling * unknowns[:, 1:]
        result[:, 1:] -= coupling * unknowns[:, :-1]
        padded = np.concatenate([unknowns, np.zeros((len(unknowns), 1), unknowns.dtype)], axis=1)
        for index, side in enumerate(self.vertical):
            beside = padded.take(side, axis=1)
            result -= beside if self.vertical_weights is None else self.vertical_weights[index] * beside
        return result

    def dense(self) -> np.ndarray:
        """The operator as a dense float64 matrix (for the coarsest level)."""
        count = self.count
        matrix = np.diag(self.diagonal.astype(np.float64))
        steps = np.arange(count - 1)
        matrix[steps, steps + 1] -= self.right[:-1]
        matrix[steps + 1, steps] -= self.right[:-1]
        weights = np.ones(self.vertical.shape) if self.vertical_weights is None else self.vertical_weights
        for side, weight in zip(self.vertical, weights):
            real = side < count
            matrix[np.nonzero(real)[0], side[real]] -= weight[real]
        return matrix


def _numbering(cells: np.ndarray, width: int) -> np.ndarray:
    """Each cell's unknown number (its place in `cells`), len(cells) where the cell is not one,
    with a row of len(cells) before and after the grid (so the cells above and below any unknown
    can be read)."""
    count = len(cells)
    numbers = np.full(cells[-1] + 3 * width if count else 0, count, np.intp)
    numbers[cells + width] = np.arange(count)
    return numbers


def _level(inside: np.ndarray, diagonal: np.ndarray, right: np.ndarray, down: np.ndarray,
           finest: bool = False) -> tuple[Level, np.ndarray]:
    """A level from grids (which cells are unknowns, their diagonal, and the coupling of each cell
    with the one to its right and the one below it; on the finest level every coupling is 1), and
    its cells' numbering (`_numbering`)."""
    width = inside.shape[1]
    cells = np.flatnonzero(inside)
    numbers = _numbering(cells, width)
    vertical = np.stack([numbers[cells + 2 * width], numbers[cells]])
    vertical_weights = None
    if not finest:
        down = np.concatenate([np.zeros(width, np.float32), down.ravel()])  # cell i + width: i's coupling with the one below
        vertical_weights = np.stack([down[cells + width], down[cells]])
    level = Level(cells, width, diagonal.ravel()[cells].astype(np.float32), right.ravel()[cells].astype(np.float32),
                  vertical, vertical_weights)
    return level, numbers


def _coarser(inside: np.ndarray, diagonal: np.ndarray, right: np.ndarray, down: np.ndarray):
    """The Galerkin coarsening over 2 x 2 blocks: the blocks holding an unknown, and the grids of
    their diagonal and couplings (a block's diagonal loses twice each coupling inside it)."""
    pad = ((0, inside.shape[0] % 2), (0, inside.shape[1] % 2))
    inside, diagonal, right, down = (np.pad(grid, pad) for grid in (inside, diagonal, right, down))
    # a block's four cells by strided slices (top-left, bottom-left, top-right, bottom-right)
    blocks = inside[0::2, 0::2] | inside[1::2, 0::2] | inside[0::2, 1::2] | inside[1::2, 1::2]
    within = right[0::2, 0::2] + right[1::2, 0::2] + down[0::2, 0::2] + down[0::2, 1::2]
    block_diagonal = diagonal[0::2, 0::2] + diagonal[1::2, 0::2] + diagonal[0::2, 1::2] + diagonal[1::2, 1::2] - 2 * within
    block_right = right[0::2, 1::2] + right[1::2, 1::2]
    block_down = down[1::2, 0::2] + down[1::2, 1::2]
    return blocks, block_diagonal, block_right, block_down


def hierarchy(inside: np.ndarray) -> list[Level]:
    """The levels of the membrane operator on `inside` (bool H x W), finest first."""
    height, width = inside.shape
    # each cell's count of in-array neighbours: 4 less those across the image's border
    across_rows = (np.arange(height) == 0) + (np.arange(height) == height - 1).astype(np.float32)
    across_cols = (np.arange(width) == 0) + (np.arange(width) == width - 1).astype(np.float32)
    in_array = 4 - across_rows[:, None] - across_cols[None, :]
    grids = (
        inside,
        np.where(inside, in_array, 0).astype(np.float32),
        np.pad(inside[:, :-1] & inside[:, 1:], ((0, 0), (0, 1))).astype(np.float32),
        np.pad(inside[:-1] & inside[1:], ((0, 1), (0, 0))).astype(np.float32),
    )
    levels = [_level(*grids, finest=True)[0]]
    while levels[-1].count > DIRECT:
        grids = _coarser(*grids)
        coarse, numbers = _level(*grids)
        finer = levels[-1]
        rows, cols = np.divmod(finer.cells, finer.width)
        finer.parent = numbers[(rows // 2 + 1) * coarse.width + cols // 2]
        levels.append(coarse)
    levels[-1].inverse = np.linalg.inv(levels[-1].dense()).astype(np.float32)
    return levels


def v_cycle(levels: list[Level], residual: np.ndarray, depth: int = 0) -> np.ndarray:
    """One symmetric V-cycle from zero: the preconditioner applied to `residual` (channels x count)."""
    level = levels[depth]
    if level.inverse is not None:
        return residual @ level.inverse.T
    correction = JACOBI_WEIGHT * residual / level.diagonal
    remainder = residual - level.apply(correction)
    coarse_count = levels[depth + 1].count
    restricted = np.empty((len(remainder), coarse_count), np.float32)
    for channel, values in enumerate(remainder):
        restricted[channel] = np.bincount(level.parent, values, minlength=coarse_count)
    coarse = v_cycle(levels, restricted, depth + 1)
    coarse *= COARSE_WEIGHT
    correction += coarse.take(level.parent, axis=1)
    correction += JACOBI_WEIGHT * (residual - level.apply(correction)) / level.diagonal
    return correction


def solve_membrane(inside: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The membrane interpolant over `inside` (bool H x W) of the known pixels of `values` (H x W x C,
    any real dtype; only the known pixels next to the hole are read), started from zero: the hole
    pixels' values (count x C float32), in row-major order as `values[inside]` lists them."""
    levels = hierarchy(inside)
    finest = levels[0]
    cells, width = finest.cells, finest.width
    flat_inside = inside.ravel()
    flat_values = values.reshape(-1, values.shape[-1])
    rows_below = len(flat_inside) - width
    rhs = np.zeros((finest.count, values.shape[-1]), np.float32)  # each unknown's sum of its known neighbours
    columns = cells % width
    for offset, in_array in ((-width, cells >= width), (width, cells < rows_below),
                             (-1, columns > 0), (1, columns < width - 1)):
        beside = cells[in_array] + offset
        known = ~flat_inside[beside]
        rhs[np.flatnonzero(in_array)[known]] += flat_values[beside[known]]
    rhs = np.ascontiguousarray(rhs.T)  # channels first: each channel's unknowns are contiguous
    solution = np.zeros_like(rhs)
    residual = rhs.copy()
    target = RELATIVE_TOLERANCE * np.maximum(np.linalg.norm(residual, axis=1, keepdims=True), 1e-6)
    preconditioned = v_cycle(levels, residual)
    direction = preconditioned.copy()
    energy = np.einsum("ij,ij->i", residual, preconditioned)[:, None]
    for _ in range(MAX_STEPS):
        if (np.linalg.norm(residual, axis=1, keepdims=True) <= target).all():
            break
        product = finest.apply(direction)
        step = energy / np.maximum(np.einsum("ij,ij->i", direction, product)[:, None], 1e-30)
        solution += step * direction
        residual -= step * product
        preconditioned = v_cycle(levels, residual)
        new_energy = np.einsum("ij,ij->i", residual, preconditioned)[:, None]
        direction = preconditioned + (new_energy / np.maximum(energy, 1e-30)) * direction
        energy = new_energy
    return solution.T

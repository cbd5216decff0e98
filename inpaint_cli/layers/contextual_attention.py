"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention",
CVPR 2018, §3.2; docs/architectures.md §3, steps 1-8) and the flow colour wheel that shows where it
looked.

Every position of a feature map is rebuilt from the known ("background") 3 x 3 patches of the same
map, matched by cosine similarity at half resolution, and pasted back as 4 x 4 patches at full
resolution. It follows the official `contextual_attention` (ksize 3, stride 1, rate 2, fuse_k 3),
with two deliberate differences:

- each batch element uses its own mask (the official code reads the mask of element 0 only);
- foreground positions are processed in rectangular tiles, so memory stays bounded at any size
  (the official code holds the full L x L score matrix: 65,536^2 floats, 17 GB, for a 2048 x 2048
  image). Tiling is exact: the fuse step sums each score with its diagonal neighbours in row-major
  and then column-major order, so a tile also computes the raw scores of the positions around it
  (a one-position halo, plus the wrap-around neighbours at the ends of rows and columns).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

#: background patches are divided by max(norm, this) (the official escape epsilon)
PATCH_NORM_ESCAPE = 1e-4
#: default bound on the score-matrix elements of one tile (64 MB in float32)
DEFAULT_MAX_SCORES = 2**24


class ContextualAttention(nn.Module):
    """Parameter-free module around `contextual_attention` (see there)."""

    def __init__(
        self,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        chunk_size: int | None = None,
        max_scores: int = DEFAULT_MAX_SCORES,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.chunk_size = chunk_size
        self.max_scores = max_scores
        self.align_corners = align_corners

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor, needed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return contextual_attention(
            features, mask, self.softmax_scale, self.fuse, self.chunk_size, self.max_scores, needed,
            self.align_corners,
        )


def contextual_attention(
    features: torch.Tensor,
    mask: torch.Tensor,
    softmax_scale: float = 10.0,
    fuse: bool = True,
    chunk_size: int | None = None,
    max_scores: int = DEFAULT_MAX_SCORES,
    needed: torch.Tensor | None = None,
    align_corners: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rebuild `features` (N x C x H x W, H and W even) from the patches outside `mask`.

    `mask` is N x 1 x H x W, 1 = hole. Returns the rebuilt map (it replaces the whole input, known
    region included) and the attention offsets, N x 2 x H/2 x W/2 integers (row, column) from
    each matching position to its best background patch, in half-resolution pixels.
    `chunk_size` is the number of foreground positions per tile; by default tiles are as large
    as `max_scores` score elements allow. `needed` (bool N x 1 x H/2 x W/2), when given, names
    the positions whose output is used: tiles holding none of them are skipped, their output left
    zero and their offsets 0 (inference far from the hole). `align_corners` halves the map for
    matching as TF1's `resize_nearest_neighbor(align_corners=True)` does in the official code
    (`align_corners_nearest`) instead of taking every other pixel. Runs in float32 even under
    autocast.
    """
    height, width = features.shape[-2:]
    if height % 2 or width % 2:
        raise ValueError(f"contextual attention needs an even feature size, got {height} x {width}")
    with torch.autocast(features.device.type, enabled=False):
        results = [
            _attend(
                f.float(), m.float(), softmax_scale, fuse, chunk_size, max_scores,
                None if needed is None else n[0], align_corners,
            )
            for f, m, n in zip(features, mask, needed if needed is not None else [None] * len(features))
        ]
    rebuilt = torch.stack([r[0] for r in results]).to(features.dtype)
    offsets = torch.stack([r[1] for r in results])
    return rebuilt, offsets


class _Neighbours(NamedTuple):
    """Previous and next position of each flat (row-major) position in row-major and in
    column-major order, as index tensors of length L + 1 in which L (and entry L) means "none";
    `column_order[k]` is the k-th position in column-major order."""

    row_prev: torch.Tensor
    row_next: torch.Tensor
    col_prev: torch.Tensor
    col_next: torch.Tensor
    column_order: torch.Tensor


def _neighbours(height: int, width: int, device: torch.device) -> _Neighbours:
    size = height * width
    index = torch.arange(size, device=device)
    none = torch.full((1,), size, device=device)
    row_prev = torch.cat([none, index[:-1], none])
    row_next = torch.cat([index[1:], none, none])
    column_order = index.view(height, width).t().reshape(-1)
    col_prev = torch.full((size + 1,), size, device=device)
    col_next = torch.full((size + 1,), size, device=device)
    col_prev[column_order[1:]] = column_order[:-1]
    col_next[column_order[:-1]] = column_order[1:]
    return _Neighbours(row_prev, row_next, col_prev, col_next, column_order)


def _tiles(height: int, width: int, positions: int) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of rectangles of at most `positions` cells covering the grid."""
    if positions >= height * width:
        return [(0, height, 0, width)]
    tile_width = min(width, max(1, math.isqrt(positions)))
    tile_height = max(1, positions // tile_width)
    return [
        (top, min(top + tile_height, height), left, min(left + tile_width, width))
        for top in range(0, height, tile_height)
        for left in range(0, width, tile_width)
    ]


def _tile_positions(size: int, chunk_size: int | None, max_scores: int) -> int:
    """Foreground positions per tile: a square whose haloed score rows fit in `max_scores`."""
    if chunk_size is not None:
        return max(1, chunk_size)
    rows = max_scores // size
    if rows >= size:
        return size
    side = max(1, math.isqrt(rows) - 2)
    return side * side


def _attend(
    features: torch.Tensor,
    mask: torch.Tensor,
    softmax_scale: float,
    fuse: bool,
    chunk_size: int | None,
    max_scores: int,
    needed: torch.Tensor | None,
    align_corners: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch element: features C x H x W, mask 1 x H x W, needed None or H/2 x W/2.

    Score columns (background patches) are kept in column-major order, along which the fuse's
    second pass shifts; `background` numbers the valid ones in that order. Only they are turned
    into weights and pasted from (`_background_softmax`).
    """
    channels, height, width = features.shape
    rows, cols = height // 2, width // 2
    size = rows * cols
    neighbours = _neighbours(rows, cols, features.device)
    order = neighbours.column_order
    # 2. matching at half resolution (nearest): one 3 x 3 patch per position, zero padding
    half = (rows, cols)
    small = align_corners_nearest(features[None], half) if align_corners else features[None, :, ::2, ::2]
    patches = F.unfold(small, 3, padding=1)[0].t()  # L x C*9
    # 3. a background patch is valid if its 3 x 3 window touches no hole
    small_mask = align_corners_nearest(mask[None], half) if align_corners else mask[None, :, ::2, ::2]
    hole_windows = F.unfold(small_mask, 3, padding=1)[0]
    # the valid columns (column-major numbers), the only ones turned into weights and pasted from
    background = (hole_windows.sum(0) == 0)[order].nonzero().squeeze(1)
    # 1. raw 4 x 4 patches at stride 2 (SAME padding): what gets pasted, of the valid columns
    raw = F.unfold(features[None], 4, padding=1, stride=2)[0]  # C*16 x L, row-major positions
    background_raw = raw.index_select(1, order[background])  # C*16 x V
    # 4. cosine-like similarity: background patches normalised, foreground not
    filters = patches / patches.norm(dim=1, keepdim=True).clamp_min(PATCH_NORM_ESCAPE)

    padded = features.new_zeros(channels, height + 2, width + 2)
    offsets = torch.zeros(2, rows, cols, dtype=torch.long, device=features.device)
    for top, bottom, left, right in _tiles(rows, cols, _tile_positions(size, chunk_size, max_scores)):
        if needed is not None and not needed[top:bottom, left:right].any():
            continue
        tile_rows = torch.arange(top, bottom, device=features.device)
        tile_cols = torch.arange(left, right, device=features.device)
        tile = (tile_rows[:, None] * cols + tile_cols[None, :]).reshape(-1)
        # scores of the valid columns only: the others' weights are 0 (6.)
        if fuse and len(tile) == size:  # 5. fuse
            scores = _fused_scores_whole(patches, filters, rows, cols, background)
        elif fuse:
            scores = _fused_scores(patches, filters, tile, neighbours).index_select(1, background)
        else:
            scores = patches[tile] @ filters[order[background]].t()
        # 6. softmax over background patches; invalid ones get logit 0, then weight 0
        attention = _background_softmax(scores, size - len(background), softmax_scale)
        # 8. offsets of the best match
        if len(background):
            best = order[background[attention.argmax(dim=1)]].view(bottom - top, right - left)
        else:  # no background patch: nothing is pasted, and each offset points at column 0 (the argmax of zeros)
            best = order[:1].expand(len(tile)).view(bottom - top, right - left)
        offsets[0, top:bottom, left:right] = best // cols - tile_rows[:, None]
        offsets[1, top:bottom, left:right] = best % cols - tile_cols[None, :]
        # 7. paste 4 x 4 raw patches at stride 2 (a transposed convolution), tile by tile
        values = background_raw @ attention.t()  # C*16 x tile, as fold takes it
        strip_size = (2 * (bottom - top) + 2, 2 * (right - left) + 2)
        strip = F.fold(values[None], strip_size, 4, stride=2)[0]
        padded[:, 2 * top : 2 * bottom + 2, 2 * left : 2 * right + 2] += strip
    # each pixel is covered by 2 x 2 patches: / 4 averages them (border pixels by fewer, as official)
    return padded[:, 1:-1, 1:-1] / 4, offsets


def _background_softmax(scores: torch.Tensor, hole_columns: int, scale: float) -> torch.Tensor:
    """The official softmax over every background column, in which the `hole_columns` columns of
    hole patches get logit 0 and, after it, weight 0, at the valid columns only (`scores`, tile x
    V, overwritten): the hole columns' weights are never formed, each adds exp(0 - max) to the
    sum. With a 20 % hole about 40 % of the columns are hole patches, with a 55 % hole about 75 %."""
    logits = scores.mul_(scale)
    weights = torch.softmax(logits, dim=1)
    if hole_columns == 0 or logits.shape[1] == 0:
        return weights
    # with m a row's largest valid logit, the valid columns' own sum of exp is exp(m) over their
    # largest weight: the hole columns' exp(0) each scale the weights by 1 / (1 + holes exp(-m) max)
    top = logits.amax(dim=1, keepdim=True)
    return weights / (1 + hole_columns * torch.exp(-top) * weights.amax(dim=1, keepdim=True))


def align_corners_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of N x C x H x W to `size` as TF1's `resize_nearest_neighbor` with
    `align_corners=True`: output index d reads round(d (H - 1) / (h - 1)) (halves away from zero,
    in float32), which differs from `F.interpolate(mode="nearest")` when shrinking."""
    indices = []
    for old, new in zip(x.shape[-2:], size):
        scale = (old - 1) / (new - 1) if new > 1 else old / new
        position = torch.arange(new, dtype=torch.float32, device=x.device) * torch.tensor(scale, dtype=torch.float32)
        indices.append(torch.floor(position + 0.5).long().clamp(max=old - 1))
    return x[..., indices[0][:, None], indices[1][None, :]]


def _fused_scores(
    patches: torch.Tensor, filters: torch.Tensor, tile: torch.Tensor, neighbours: _Neighbours
) -> torch.Tensor:
    """Scores of the `tile` positions after both fuse passes (3 x 3 identity kernel over the
    [foreground x background] score image, row-major then column-major), exact at any tiling.
    Columns come out in column-major order."""
    size = len(filters)
    none = torch.full((1,), size, device=tile.device)
    needed = _with_neighbours(tile, neighbours.col_prev, neighbours.col_next)
    computed = _with_neighbours(needed, neighbours.row_prev, neighbours.row_next)
    # raw scores, plus a zero last row read by positions that have no previous / next one
    scores = torch.cat([patches[computed], patches.new_zeros(1, patches.shape[1])]) @ filters.t()
    needed_and_none = torch.cat([needed, none])
    scores = _diagonal_sum(scores, computed, needed_and_none, neighbours.row_prev, neighbours.row_next)
    scores = scores[:, neighbours.column_order]
    return _diagonal_sum(scores, needed, tile, neighbours.col_prev, neighbours.col_next)


def _fused_scores_whole(
    patches: torch.Tensor, filters: torch.Tensor, rows: int, cols: int, columns: torch.Tensor
) -> torch.Tensor:
    """`_fused_scores` of the tile that holds every position, at the background `columns` (in
    column-major order), by shifted slices of the whole score matrix instead of gathers (a third
    of DeepFill v1's attention time at 512 x 512). Foreground positions stay in row-major order and
    background ones in column-major order throughout, so the matrix is never permuted: the first
    pass (row-major) shifts whole rows and columns, the second (column-major) is formed at
    `columns` only. Same sums in the same order, so the same bits."""
    size = rows * cols
    column_major = filters.view(rows, cols, -1).transpose(0, 1).reshape(size, -1)
    scores = _row_major_shift_sum(patches @ column_major.t(), rows, cols)
    return _column_major_shift_sum(scores, rows, cols, columns)


def _row_major_shift_sum(scores: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """s'(t, k) = s(t - 1, k - 1) + s(t, k) + s(t + 1, k + 1) along the row-major order of both
    sides, zero past either end, of `scores` whose rows t are in row-major order and columns k in
    column-major order. Row-major, the step before t is t - 1; before k = (r, c) it is k - rows, or
    (r - 1, cols - 1) where c is the first column; after it k + rows, or (r + 1, 0) where c is
    the last."""
    wrap = (cols - 1) * rows  # the last column's first position
    summed = scores.clone()
    summed[1:, rows:] += scores[:-1, :-rows]
    summed[1:, 1:rows] += scores[:-1, wrap : wrap + rows - 1]
    summed[:-1, :-rows] += scores[1:, rows:]
    summed[:-1, wrap:-1] += scores[1:, 1:rows]
    return summed


def _column_major_shift_sum(scores: torch.Tensor, rows: int, cols: int, columns: torch.Tensor) -> torch.Tensor:
    """`_row_major_shift_sum`'s sums along the column-major order of both sides, at the `columns`
    k only. Column-major, the step before t = (r, c) is t - cols, or (rows - 1, c - 1) where r is
    the top row; after it t + cols, or (0, c + 1) where r is the bottom row; before k, k - 1."""
    last = scores.shape[1] - 1
    if len(columns) == 0:
        return scores.new_zeros(len(scores), 0)

    def beside(step: int) -> torch.Tensor:
        """The columns `step` away from `columns`, zero where that falls outside."""
        shifted = columns + step  # ascending: only its first or last can fall outside
        found = scores.index_select(1, shifted.clamp(0, last))
        if shifted[0] < 0:
            found[:, 0] = 0
        if shifted[-1] > last:
            found[:, -1] = 0
        return found

    summed, before, after = scores.index_select(1, columns), beside(-1), beside(1)
    wrap = (rows - 1) * cols  # the bottom row's first position
    summed[cols:] += before[:-cols]
    summed[1:cols] += before[wrap : wrap + cols - 1]
    summed[:-cols] += after[cols:]
    summed[wrap:-1] += after[1:cols]
    return summed


def _with_neighbours(positions: torch.Tensor, prev: torch.Tensor, next_: torch.Tensor) -> torch.Tensor:
    size = len(prev) - 1
    found = torch.unique(torch.cat([positions, prev[positions], next_[positions]]))
    return found[found < size]


def _diagonal_sum(
    scores: torch.Tensor,
    rows: torch.Tensor,
    targets: torch.Tensor,
    prev: torch.Tensor,
    next_: torch.Tensor,
) -> torch.Tensor:
    """s'(t, k) = s(prev t, k - 1) + s(t, k) + s(next t, k + 1) for t in `targets`, k along the
    columns (zero past either end).

    `scores` holds s(p, .) for the positions `rows`, then a zero row, which "none" (index L)
    reads; the columns must be in the order that `prev` and `next_` follow.
    """
    size = len(prev) - 1
    row_of = torch.full((size + 1,), len(rows), device=scores.device)
    row_of[rows] = torch.arange(len(rows), device=scores.device)
    summed = scores.index_select(0, row_of[targets])
    summed[:, 1:] += scores.index_select(0, row_of[prev[targets]])[:, :-1]
    summed[:, :-1] += scores.index_select(0, row_of[next_[targets]])[:, 1:]
    return summed


# (length, constant channel, changing channel, rising) of the six hue ramps RY, YG, GC, CB, BM, MR
_WHEEL_RAMPS = ((15, 0, 1, True), (6, 1, 0, False), (4, 1, 2, True), (11, 2, 1, False),
                (13, 2, 0, True), (6, 0, 2, False))


def _colour_wheel(device: torch.device) -> torch.Tensor:
    """The Middlebury flow colour wheel: 55 x 3 RGB in [0, 1]."""
    segments = []
    for length, constant, changing, rising in _WHEEL_RAMPS:
        ramp = torch.floor(255 * torch.arange(length, dtype=torch.float64) / length)
        segment = torch.zeros(length, 3, dtype=torch.float64)
        segment[:, constant] = 255
        segment[:, changing] = ramp if rising else 255 - ramp
        segments.append(segment)
    return (torch.cat(segments) / 255).float().to(device)


def flow_to_image(flow: torch.Tensor) -> torch.Tensor:
    """Colour-code offsets N x 2 x h x w (row, column) as N x 3 x h x w RGB in [0, 1].

    Hue is the direction (atan2(-column, -row)), saturation the length relative to the longest
    offset of the image; zero offset is white. As the official `flow_to_image` except that each
    image is normalised by its own longest offset (the official code keeps a running maximum over
    the batch, so an image's colours depended on its neighbours).
    """
    u, v = flow[:, 0].float(), flow[:, 1].float()
    longest = torch.sqrt(u**2 + v**2).flatten(1).amax(dim=1).view(-1, 1, 1)
    longest = longest + torch.finfo(torch.float32).eps
    u, v = u / longest, v / longest
    radius = torch.sqrt(u**2 + v**2)[..., None]
    wheel = _colour_wheel(flow.device)
    position = (torch.atan2(-v, -u) / math.pi + 1) / 2 * (len(wheel) - 1)
    first = position.floor().long()
    fraction = (position - first)[..., None]
    colour = (1 - fraction) * wheel[first] + fraction * wheel[(first + 1) % len(wheel)]
    colour = torch.where(radius <= 1, 1 - radius * (1 - colour), 0.75 * colour)
    return colour.permute(0, 3, 1, 2)

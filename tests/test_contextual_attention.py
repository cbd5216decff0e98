"""Contextual attention (docs/architectures.md §3 steps 1-8): against a straight port of the official
full-matrix computation, exact under any tiling, and the two behaviours the paper describes
(copying from a matching background region, self-reconstruction). Also the flow colour wheel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import inpaint_cli.layers.contextual_attention as ca
from inpaint_cli.layers.contextual_attention import contextual_attention, flow_to_image


def official_attention(
    features: torch.Tensor, mask: torch.Tensor, scale: float, fuse: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official TF computation in PyTorch, one element (1 x C x H x W): full L x L scores,
    fuse by convolving the score image with a 3 x 3 identity (row-major, then both sides
    column-major), softmax, paste by conv_transpose2d / 4."""
    _, channels, height, width = features.shape
    h, w = height // 2, width // 2
    size = h * w
    raw = F.unfold(features, 4, padding=1, stride=2)[0].t().reshape(size, channels, 4, 4)
    small = features[:, :, ::2, ::2]
    patches = F.unfold(small, 3, padding=1)[0].t().reshape(size, channels, 3, 3)
    norms = patches.flatten(1).norm(dim=1).clamp_min(1e-4)
    scores = F.conv2d(small, patches / norms[:, None, None, None], padding=1)  # 1 x L(bg) x h x w
    y = scores[0].permute(1, 2, 0).reshape(1, 1, size, size)  # [foreground x background]
    if fuse:
        identity = torch.eye(3)[None, None]
        y = F.conv2d(y, identity, padding=1)
        y = y.view(h, w, h, w).permute(1, 0, 3, 2).reshape(1, 1, size, size)
        y = F.conv2d(y, identity, padding=1)
        y = y.view(w, h, w, h).permute(1, 0, 3, 2)
    y = y.reshape(size, size)
    windows = F.unfold(mask[:, :, ::2, ::2], 3, padding=1)[0]
    valid = (windows.mean(0) == 0).float()
    attention = torch.softmax(y * valid * scale, dim=1) * valid
    pasted = F.conv_transpose2d(attention.t().reshape(1, size, h, w), raw, stride=2, padding=1) / 4
    best = attention.argmax(dim=1)
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    offsets = torch.stack([best.view(h, w) // w - rows, best.view(h, w) % w - cols])
    return pasted, offsets


def _random_case(seed: int, batch: int = 2, channels: int = 4, height: int = 16, width: int = 12):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, channels, height, width, generator=generator)
    mask = torch.zeros(batch, 1, height, width)
    mask[0, :, 4:10, 2:8] = 1
    if batch > 1:
        mask[1, :, 8:14, 6:12] = 1
    return features, mask


@pytest.mark.parametrize("fuse", [True, False])
def test_matches_official_full_matrix_per_element_mask(fuse: bool) -> None:
    features, mask = _random_case(0)
    rebuilt, offsets = contextual_attention(features, mask, fuse=fuse)
    assert rebuilt.shape == features.shape and offsets.shape == (2, 2, 8, 6)
    for i in range(2):
        expected, expected_offsets = official_attention(features[i : i + 1], mask[i : i + 1], 10.0, fuse)
        torch.testing.assert_close(rebuilt[i : i + 1], expected, rtol=1e-5, atol=1e-5)
        assert torch.equal(offsets[i], expected_offsets)


@pytest.mark.parametrize("chunk_size", [1, 5, 20])
def test_tiled_equals_untiled_with_gradients(chunk_size: int) -> None:
    features, mask = _random_case(1)
    whole_input = features.clone().requires_grad_(True)
    tiled_input = features.clone().requires_grad_(True)
    whole, whole_offsets = contextual_attention(whole_input, mask)
    tiled, tiled_offsets = contextual_attention(tiled_input, mask, chunk_size=chunk_size)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    assert torch.equal(tiled_offsets, whole_offsets)
    weights = torch.randn_like(whole)
    (whole * weights).sum().backward()
    (tiled * weights).sum().backward()
    torch.testing.assert_close(tiled_input.grad, whole_input.grad, rtol=1e-4, atol=1e-5)


def test_whole_grid_fuse_equals_the_gathering_fuse_bit_for_bit() -> None:
    """The whole-grid fast path (shifted slices, a transpose) and the general tile fuse (gathers)
    add the same scores in the same order, on a grid that is not square."""
    generator = torch.Generator().manual_seed(5)
    rows, cols = 6, 9
    patches = torch.randn(rows * cols, 7, generator=generator)
    filters = torch.randn(rows * cols, 7, generator=generator)
    neighbours = ca._neighbours(rows, cols, torch.device("cpu"))
    gathered = ca._fused_scores(patches, filters, torch.arange(rows * cols), neighbours)
    every = torch.arange(rows * cols)
    assert torch.equal(ca._fused_scores_whole(patches, filters, rows, cols, every), gathered)
    some = torch.tensor([0, 1, 5, 6, 17, 30, 52, 53])  # the ends included: the second pass at them only
    assert torch.equal(ca._fused_scores_whole(patches, filters, rows, cols, some), gathered[:, some])


def test_the_softmax_over_background_columns_is_the_official_one() -> None:
    """Hole columns get logit 0 and weight 0 after the softmax (official); forming only the
    background columns gives the same weights, the hole columns' exp(0 - max) in the sum."""
    generator = torch.Generator().manual_seed(7)
    scores = torch.randn(5, 12, generator=generator)
    valid = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1], dtype=torch.float32)
    official = torch.softmax(scores * (valid * 10.0), dim=1) * valid
    background = valid.nonzero().squeeze(1)
    torch.testing.assert_close(ca._background_softmax(scores[:, background], 4, 10.0), official[:, background])
    torch.testing.assert_close(ca._background_softmax(scores.clone(), 0, 10.0), torch.softmax(scores * 10.0, dim=1))


def test_a_map_that_is_all_hole_pastes_nothing() -> None:
    features = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(8))
    rebuilt, offsets = contextual_attention(features, torch.ones(1, 1, 16, 16))
    assert torch.equal(rebuilt, torch.zeros_like(rebuilt))
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert torch.equal(offsets[0], torch.stack([-rows, -cols]))  # every position points at position 0


def test_memory_budget_tiles_are_exact() -> None:
    """A small `max_scores` forces the default tiling (a few positions per tile)."""
    features, mask = _random_case(2, batch=1)
    expected, expected_offsets = official_attention(features, mask, 10.0)
    rebuilt, offsets = contextual_attention(features, mask, max_scores=48 * 20)
    torch.testing.assert_close(rebuilt, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(offsets[0], expected_offsets)


def test_hole_copied_from_background_points_at_the_copy() -> None:
    features = torch.randn(1, 6, 32, 32, generator=torch.Generator().manual_seed(3))
    features[:, :, 16:32, 16:32] = features[:, :, 0:16, 0:16]  # shift of 8 at half resolution
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 22:26, 22:26] = 1  # half-resolution positions (11..12, 11..12)
    rebuilt, offsets = contextual_attention(features, mask)
    hole_offsets = offsets[0, :, 11:13, 11:13]
    assert torch.equal(hole_offsets, torch.full_like(hole_offsets, -8))
    # with a sharp softmax the hole is rebuilt from the copy's source
    sharp, _ = contextual_attention(features, mask, softmax_scale=1000.0)
    torch.testing.assert_close(sharp[..., 22:26, 22:26], features[..., 6:10, 6:10], rtol=1e-4, atol=1e-4)


def test_self_matching_reproduces_the_input() -> None:
    """No hole, sharp softmax: every position picks itself; pasting 4 x 4 patches at stride 2
    and dividing by 4 gives back the input inside, half of it on the border, a quarter at the
    corners (as the official code)."""
    features = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(4))
    rebuilt, offsets = contextual_attention(features, torch.zeros(1, 1, 16, 16), softmax_scale=1000.0)
    assert torch.equal(offsets, torch.zeros_like(offsets))
    coverage = torch.ones(16, 16)
    coverage[0, :] *= 0.5
    coverage[-1, :] *= 0.5
    coverage[:, 0] *= 0.5
    coverage[:, -1] *= 0.5
    torch.testing.assert_close(rebuilt, features * coverage, rtol=1e-5, atol=1e-5)


def test_odd_feature_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="even"):
        contextual_attention(torch.zeros(1, 2, 6, 5), torch.zeros(1, 1, 6, 5))


def test_flow_colours() -> None:
    flow = torch.tensor([[[[0.0, -2.0, 0.0, -1.0]], [[0.0, 0.0, 2.0, 0.0]]]])  # (row, col) pairs
    colours = flow_to_image(flow)[0, :, 0].t()
    torch.testing.assert_close(colours[0], torch.ones(3))  # zero offset: white
    torch.testing.assert_close(colours[1], torch.tensor([0.0, 209 / 255, 1.0]))  # up: wheel entry 27
    torch.testing.assert_close(colours[2], torch.tensor([1.0, 229.5 / 255, 0.0]))  # right: 13.5
    half_up = 1 - 0.5 * (1 - torch.tensor([0.0, 209 / 255, 1.0]))  # half the longest: toward white
    torch.testing.assert_close(colours[3], half_up)


def test_default_tiles_bound_the_score_matrix_at_2048_pixels() -> None:
    """A 2048 x 2048 image matches on a 256 x 256 grid (65,536 patches): each tile's haloed score
    rows stay near `DEFAULT_MAX_SCORES` elements instead of 65,536^2."""
    side = 256
    size = side * side
    neighbours = ca._neighbours(side, side, torch.device("cpu"))
    tiles = ca._tiles(side, side, ca._tile_positions(size, None, ca.DEFAULT_MAX_SCORES))
    covered = torch.zeros(side, side, dtype=torch.int64)
    for top, bottom, left, right in tiles:
        covered[top:bottom, left:right] += 1
    assert torch.equal(covered, torch.ones_like(covered))  # a partition of the grid
    for top, bottom, left, right in (tiles[0], tiles[len(tiles) // 2], tiles[-1]):
        rows = torch.arange(top, bottom)[:, None] * side + torch.arange(left, right)[None, :]
        needed = ca._with_neighbours(rows.reshape(-1), neighbours.col_prev, neighbours.col_next)
        computed = ca._with_neighbours(needed, neighbours.row_prev, neighbours.row_next)
        assert len(computed) * size <= 1.2 * ca.DEFAULT_MAX_SCORES


def test_tiles_without_needed_positions_are_skipped():
    torch.manual_seed(0)
    features = torch.rand(1, 8, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 2:6, 2:6] = 1
    needed = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    needed[..., :4, :4] = True
    skipped, skipped_offsets = contextual_attention(features, mask, chunk_size=4, needed=needed)
    computed, computed_offsets = contextual_attention(features, mask, chunk_size=4)
    assert torch.equal(skipped[..., 12:, 12:], torch.zeros_like(skipped[..., 12:, 12:]))
    assert torch.equal(skipped_offsets[..., 6:, 6:], torch.zeros_like(skipped_offsets[..., 6:, 6:]))
    torch.testing.assert_close(skipped[..., :6, :6], computed[..., :6, :6])
    assert torch.equal(skipped_offsets[..., :4, :4], computed_offsets[..., :4, :4])

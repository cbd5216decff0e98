"""Exemplar-based completion: multi-scale PatchMatch nearest-neighbour fields with voting.

Wexler, Shechtman and Irani, "Space-Time Completion of Video" (TPAMI 2007), fill a hole coarse to
fine by alternating two steps: every patch that overlaps the hole is matched to its most similar
patch lying wholly in the known region, then each hole pixel becomes the weighted mean of what the
patches covering it say it should be ("voting"; a patch weighs by its similarity and by
gamma^-distance of its centre from the known region). Barnes et al., "PatchMatch" (SIGGRAPH 2009),
find the matches fast from a random start: good offsets propagate to neighbours, and a random
search around the current match with halving radii finds better ones.

Vectorised over whole arrays: propagation is parallel, in the manner of jump flooding (Rong and Tan,
I3D 2006): every patch tries the offsets of the patches 2^k, ..., 2, 1 pixels away in four
directions, so one round carries a good offset across the hole as a sequential scan would. Patches
are compared by their leading principal components (as in He and Sun, "Computing nearest-neighbor
fields via propagation-assisted kd-trees", CVPR 2012), so one comparison reads a short vector. The
field of a level, upsampled, starts the next finer level, whose first estimate is a vote with it.

Random draws use torch's global generator: `fill.Inpainter` seeds it from `FillOptions.seed` for
every fill, so a fill is a function of the image, the hole and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from inpaint_cli.archs.base import ArchSpec, InpaintModel

MIN_SOURCES = 16  # a level with fewer wholly known patches is too coarse to copy from


@dataclass(frozen=True)
class PatchMatchConfig:
    patch_size: int = 7  # side of the compared patches (odd)
    components: int = 24  # principal components of a patch compared in place of its 3 p^2 values
    coarsest: int = 32  # the pyramid's smallest level keeps its shorter side at least this
    coarse_steps: int = 4  # match-and-vote rounds on every level but the finest
    finest_steps: int = 2  # match-and-vote rounds on the finest level
    gamma: float = 1.3  # Wexler's confidence decay: a patch centred d pixels into the hole weighs gamma^-d
    similarity_percentile: float = 75.0  # sigma^2 of the similarity weight exp(-D / 2 sigma^2)
    pca_samples: int = 4096  # known patches drawn to estimate the principal components
    fine_reach: int = 8  # longest propagation jump on the levels that start from a coarser field


class PatchMatchInpainter(InpaintModel):
    """Exemplar-based completion (Wexler et al. 2007 with PatchMatch, Barnes et al. 2009); no
    parameters, CPU (inputs on another device come back there)."""

    def __init__(self, config: PatchMatchConfig) -> None:
        super().__init__()
        if config.patch_size % 2 != 1:
            raise ValueError(f"patch_size must be odd, got {config.patch_size}")
        self.config = config

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # one thread: the work is many gathers of ~1e5 elements, where a second thread saves less
        # than its barriers cost (and on a busy machine, measured, six times more)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            filled = [
                _complete(picture.detach().float().cpu().clamp(0, 1), hole[0].detach().cpu() > 0.5, self.config)
                for picture, hole in zip(image, mask)
            ]
        finally:
            torch.set_num_threads(threads)
        return torch.stack(filled).to(device=image.device, dtype=image.dtype)


# ------------------------------------------------------------------------------------ the pyramid


def _downsample(image: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half size: a coarse pixel is hole if any of its (up to) four pixels is; a known one is the
    mean of its four known pixels, so no hole value leaks into the coarse known region."""
    known = (~hole).float()[None]
    weight = F.avg_pool2d(known[None], 2, ceil_mode=True)[0]
    total = F.avg_pool2d((image * known)[None], 2, ceil_mode=True)[0]
    coarse_hole = F.max_pool2d(hole.float()[None, None], 2, ceil_mode=True)[0, 0] > 0
    return total / weight.clamp_min(1e-6), coarse_hole


def _sources(hole: torch.Tensor, patch: int) -> torch.Tensor:
    """Grid-shaped bool: the patch at each top-left position lies wholly in the known region."""
    return F.max_pool2d(hole.float()[None, None], patch, stride=1)[0, 0] == 0


def _smooth_fill(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Telea's fast-marching fill (radius 3): the coarsest level's start and the fallback when no
    patch is wholly known."""
    rgb8 = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    bgr = cv2.inpaint(np.ascontiguousarray(rgb8[..., ::-1]), hole.numpy().astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    filled = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float() / 255
    return torch.where(hole, filled, image)


# ------------------------------------------------------------------------------ the search and vote


class _Field:
    """The nearest-neighbour field of one level. Patches are named by the flat index of their
    top-left pixel in the grid of patch positions ((H - p + 1) x (W - p + 1)); each target patch
    (one that overlaps the hole) holds the index of its matched source patch (one wholly known)
    and their descriptor distance."""

    def __init__(self, hole: torch.Tensor, patch: int, gamma: float) -> None:
        height, width = hole.shape
        self.patch = patch
        self.grid_h, self.grid_w = height - patch + 1, width - patch + 1
        source = _sources(hole, patch).flatten()
        self.sources = torch.nonzero(source).flatten()
        self.targets = torch.nonzero(~source).flatten()
        #: added to a candidate's distance: infinite unless the candidate is a source patch
        self.barrier = torch.where(source, 0.0, math.inf)
        #: target number of each grid position, -1 (the spare last entry of `offsets`) elsewhere
        self.slot = torch.full((self.grid_h * self.grid_w,), -1, dtype=torch.long)
        self.slot[self.targets] = torch.arange(len(self.targets))
        depth = cv2.distanceTransform(hole.numpy().astype(np.uint8), cv2.DIST_L2, 3)
        radius = patch // 2
        centre = (self.targets // self.grid_w + radius) * width + self.targets % self.grid_w + radius
        self.confidence_log = -torch.from_numpy(depth).flatten()[centre].double() * math.log(gamma)
        self.match = self.random_sources(len(self.targets))
        self.distance = torch.full((len(self.targets),), math.inf)

    def random_sources(self, count: int) -> torch.Tensor:
        return self.sources[torch.randint(len(self.sources), (count,))]

    def upsample_from(self, coarse: _Field) -> None:
        """Start from the coarse field: each target takes twice the offset of the coarse patch at
        its centre's coarse position; offsets landing off the source patches are drawn anew."""
        radius = self.patch // 2
        offset_y = torch.zeros(coarse.grid_h * coarse.grid_w, dtype=torch.long)
        offset_x = torch.zeros_like(offset_y)
        offset_y[coarse.targets] = coarse.match // coarse.grid_w - coarse.targets // coarse.grid_w
        offset_x[coarse.targets] = coarse.match % coarse.grid_w - coarse.targets % coarse.grid_w
        ty, tx = self.targets // self.grid_w, self.targets % self.grid_w
        cy = ((ty + radius) // 2 - radius).clamp(0, coarse.grid_h - 1)
        cx = ((tx + radius) // 2 - radius).clamp(0, coarse.grid_w - 1)
        at = cy * coarse.grid_w + cx
        sy = (ty + 2 * offset_y[at]).clamp(0, self.grid_h - 1)
        sx = (tx + 2 * offset_x[at]).clamp(0, self.grid_w - 1)
        match = sy * self.grid_w + sx
        lost = self.barrier[match].isinf()
        match[lost] = self.random_sources(int(lost.sum()))
        self.match = match

    def measure(self, descriptors: torch.Tensor) -> None:
        """Distances of the current matches (the targets' descriptors change with every vote)."""
        self.target_descriptors = descriptors[self.targets]
        self.distance = self._distance(descriptors, self.match)

    def _distance(self, descriptors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return (descriptors[candidates] - self.target_descriptors).square_().sum(1) + self.barrier[candidates]

    def consider(self, descriptors: torch.Tensor, candidates: torch.Tensor) -> None:
        """Take each candidate (flat index, clamped into the grid) that is a source patch closer
        than the current match. A candidate off its row wraps to another row: still a patch."""
        candidates = candidates.clamp_(0, len(self.barrier) - 1)
        distance = self._distance(descriptors, candidates)
        better = distance < self.distance
        self.match = torch.where(better, candidates, self.match)
        self.distance = torch.where(better, distance, self.distance)

    def search(self, descriptors: torch.Tensor, reach: int) -> None:
        """One PatchMatch round: jump-flooding propagation of the offsets of the targets `reach`,
        reach / 2, ..., 1 pixels away, then random search with radii halving from the grid's size
        down to one pixel."""
        step = 1 << max(reach.bit_length() - 1, 0)
        last = len(self.barrier) - 1
        while step >= 1:
            for flat_step in (step, -step, step * self.grid_w, -step * self.grid_w):
                neighbour = (self.targets - flat_step).clamp_(0, last)
                offsets = torch.cat([self.match - self.targets, torch.zeros(1, dtype=torch.long)])
                # a neighbour that is no target lends offset 0: the target itself, never a source
                self.consider(descriptors, self.targets + offsets[self.slot[neighbour]])
            step //= 2
        radius = max(self.grid_h, self.grid_w)
        while radius >= 1:
            jump = torch.randint(-radius, radius + 1, (2, len(self.targets)))
            self.consider(descriptors, self.match + jump[0] * self.grid_w + jump[1])
            radius //= 2


def _principal_components(image: torch.Tensor, hole: torch.Tensor, config: PatchMatchConfig) -> torch.Tensor:
    """Convolution kernels (K x 3 x p x p) projecting a patch on the leading principal components
    of known patches drawn at random."""
    patch = config.patch_size
    grid_w, width = hole.shape[1] - patch + 1, hole.shape[1]
    sources = torch.nonzero(_sources(hole, patch).flatten()).flatten()
    picked = sources[torch.randint(len(sources), (min(config.pca_samples, len(sources)),))]
    rows, cols = torch.meshgrid(torch.arange(patch), torch.arange(patch), indexing="ij")
    pixels = (picked // grid_w)[:, None] * width + (picked % grid_w)[:, None] + (rows * width + cols).flatten()
    patches = image.flatten(1)[:, pixels].permute(1, 0, 2).flatten(1).double()
    centred = patches - patches.mean(0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    components = min(config.components, vectors.shape[1])
    return vectors[:, -components:].T.float().reshape(components, 3, patch, patch).contiguous()


def _descriptors(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Every patch's projection (grid-flat x K)."""
    return F.conv2d(image[None], kernels)[0].flatten(1).T.contiguous()


def _vote(image: torch.Tensor, hole: torch.Tensor, field: _Field, weight_log: torch.Tensor) -> torch.Tensor:
    """Each hole pixel: the weighted mean, over the target patches covering it, of the pixel at the
    same place in their matched source patches."""
    channels, height, width = image.shape
    weight = (weight_log - weight_log.max()).clamp_min(-80).exp().float()[:, None, None]
    # rows of (r, g, b, 1): one gather brings a pixel's weighted colour and its weight
    pixels = torch.cat([image.flatten(1), torch.ones(1, height * width)]).T.contiguous()
    total = torch.zeros(height * width, channels + 1)
    cols = torch.arange(field.patch)
    source = field.match // field.grid_w * width + field.match % field.grid_w
    target = field.targets // field.grid_w * width + field.targets % field.grid_w
    for row in range(field.patch):  # one patch row at a time bounds the gathered block
        shift = row * width + cols
        gathered = pixels[(source[:, None] + shift).flatten()].view(len(source), field.patch, -1)
        total.index_add_(0, (target[:, None] + shift).flatten(), (gathered * weight).flatten(0, 1))
    inside = hole.flatten()
    voted = image.flatten(1).clone()
    voted[:, inside] = (total[inside, :channels] / total[inside, channels:]).T
    return voted.reshape(channels, height, width)


def _similarity_log(field: _Field, config: PatchMatchConfig) -> torch.Tensor:
    """log of exp(-D / 2 sigma^2), sigma^2 the distances' percentile (Wexler et al.'s weight)."""
    distance = field.distance.double()
    sigma2 = torch.quantile(distance, config.similarity_percentile / 100).clamp_min(1e-12)
    return -distance / (2 * sigma2)


# ----------------------------------------------------------------------------------- completion


def _complete(image: torch.Tensor, hole: torch.Tensor, config: PatchMatchConfig) -> torch.Tensor:
    """Fill `hole` (H x W bool) of `image` (3 x H x W in [0, 1])."""
    if not hole.any():
        return image
    patch = config.patch_size
    if min(hole.shape) < patch or not _sources(hole, patch).any():
        if hole.all():
            return torch.full_like(image, 0.5)
        return _smooth_fill(image, hole)
    levels = [(torch.where(hole, 0.0, image), hole)]
    while min((side + 1) // 2 for side in levels[-1][1].shape) >= max(config.coarsest, patch):
        coarse_image, coarse_hole = _downsample(*levels[-1])
        if int(_sources(coarse_hole, patch).sum()) < MIN_SOURCES:
            break
        levels.append((coarse_image, coarse_hole))
    kernels = _principal_components(*levels[0], config)  # the finest level's, used on all
    field = None
    for depth, (level_image, level_hole) in reversed(list(enumerate(levels))):
        coarse_field, field = field, _Field(level_hole, patch, config.gamma)
        if coarse_field is None:
            estimate = _smooth_fill(level_image, level_hole)
            reach = max(field.grid_h, field.grid_w)
        else:
            field.upsample_from(coarse_field)
            estimate = _vote(level_image, level_hole, field, field.confidence_log)
            reach = config.fine_reach
        for _ in range(config.finest_steps if depth == 0 else config.coarse_steps):
            descriptors = _descriptors(estimate, kernels)
            field.measure(descriptors)
            field.search(descriptors, reach)
            estimate = _vote(level_image, level_hole, field, field.confidence_log + _similarity_log(field, config))
    return estimate.clamp(0, 1)


SPECS = (
    ArchSpec(
        name="patchmatch",
        title="Wexler et al., TPAMI 2007 with PatchMatch, Barnes et al., SIGGRAPH 2009 (exemplar-based)",
        input_note="any H x W; copies patches of the known region",
        build_generator=PatchMatchInpainter,
        order=103,  # after the other classical methods
        configs={"default": PatchMatchConfig()},
        default_config="default",
        learned=False,
    ),
)

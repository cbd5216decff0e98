"""Training data: images decoded and resized once into a packed uint8 cache, then random crops,
flips and generated holes drawn per step from `numpy.random.default_rng([seed, step, k])`, so the
data of any step is a function of (seed, step) alone and a resumed run sees exactly what a straight
one would. Under data-parallel training each process keeps its own rows of that batch.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpaint_cli.errors import InpaintError
from inpaint_cli.io import IMAGE_EXTENSIONS, list_images
from inpaint_cli.masks import draw_mask

CACHE_VERSION = 1


def find_training_images(folders: Sequence[Path]) -> list[Path]:
    images: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise InpaintError(f"training data folder not found: {folder}")
        found = list_images(folder, recursive=True)
        if not found:
            raise InpaintError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
        images += found
    return images


def _resized(path: Path, shorter_side: int) -> np.ndarray | None:
    """The image scaled so its shorter side is `shorter_side`; None (with a one-line warning) for a
    file that cannot be decoded (not an image, truncated), so one bad file does not stop training."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = shorter_side / min(image.size)
            size = (max(shorter_side, round(image.width * scale)), max(shorter_side, round(image.height * scale)))
            return np.asarray(image.resize(size, Image.Resampling.BICUBIC))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        warnings.warn(f"skipped {path}: not a readable image ({error})", stacklevel=2)
        return None


@dataclass
class ImageCache:
    """All training images, resized so the shorter side is `shorter_side`, in one flat array."""

    pixels: np.ndarray  # flat uint8
    offsets: np.ndarray  # start of each image in `pixels`
    shapes: np.ndarray  # (n, 3): height, width, 3

    def __len__(self) -> int:
        return len(self.offsets)

    def image(self, index: int) -> np.ndarray:
        start, shape = int(self.offsets[index]), tuple(int(v) for v in self.shapes[index])
        return self.pixels[start : start + int(np.prod(shape))].reshape(shape)

    @classmethod
    def build(cls, paths: Sequence[Path], shorter_side: int, cache_dir: Path) -> ImageCache:
        """Load the cache for these files and side from `cache_dir`, building it if needed."""
        key = hashlib.sha256(
            json.dumps(
                [CACHE_VERSION, shorter_side]
                + [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
            ).encode()
        ).hexdigest()[:16]
        pixels_path = cache_dir / f"images-{shorter_side}-{key}.u8"
        index_path = cache_dir / f"images-{shorter_side}-{key}.json"
        if pixels_path.exists() and index_path.exists():
            index = json.loads(index_path.read_text())
            pixels = np.fromfile(pixels_path, dtype=np.uint8)
            return cls(pixels, np.array(index["offsets"]), np.array(index["shapes"]))
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            decoded = list(pool.map(lambda p: _resized(p, shorter_side), paths))
        images = [image for image in decoded if image is not None]
        if not images:
            raise InpaintError(f"none of the {len(paths)} training images could be read")
        if len(images) < len(paths):
            warnings.warn(f"training on {len(images)} of {len(paths)} images ({len(paths) - len(images)} unreadable)",
                          stacklevel=2)
        shapes = np.array([image.shape for image in images])
        offsets = np.concatenate([[0], np.cumsum([image.size for image in images])[:-1]])
        pixels = np.concatenate([image.reshape(-1) for image in images])
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = pixels_path.with_suffix(".tmp")
        pixels.tofile(temporary)
        os.replace(temporary, pixels_path)
        index_path.write_text(json.dumps({"offsets": offsets.tolist(), "shapes": shapes.tolist()}))
        return cls(pixels, offsets, shapes)


class BatchSampler:
    """Batches of (image crops, holes) as a pure function of (seed, step, substep); `rows` are the
    rows of each batch this process trains (its share under data-parallel training; default all)."""

    def __init__(
        self,
        cache: ImageCache,
        size: int,
        batch: int,
        mask_kinds: Sequence[tuple[str, float]],
        seed: int,
        rows: range | None = None,
    ) -> None:
        self.cache, self.size, self.batch, self.seed = cache, size, batch, seed
        self.rows = range(batch) if rows is None else rows
        self.kinds = [kind for kind, _ in mask_kinds]
        weights = np.array([weight for _, weight in mask_kinds], dtype=np.float64)
        self.kind_weights = weights / weights.sum()
        too_small = [i for i in range(len(cache)) if min(cache.shapes[i][:2]) < size]
        if too_small:
            raise InpaintError(f"{len(too_small)} cached images are smaller than the crop size {size}")

    def draw(self, step: int, substep: int = 0, rows: range | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The crops (N x H x W x 3 uint8) and holes (N x H x W bool) of `rows` (default: this
        process's) of the batch of (step, substep). The rows before them are drawn and dropped:
        one random stream runs through the batch, so a row is the same whoever draws it."""
        rows = self.rows if rows is None else rows
        rng = np.random.default_rng([self.seed, step, substep])
        crops = np.empty((len(rows), self.size, self.size, 3), dtype=np.uint8)
        holes = np.empty((len(rows), self.size, self.size), dtype=bool)
        for i in range(rows.stop):
            image = self.cache.image(int(rng.integers(len(self.cache))))
            top = int(rng.integers(image.shape[0] - self.size + 1))
            left = int(rng.integers(image.shape[1] - self.size + 1))
            crop = image[top : top + self.size, left : left + self.size]
            flipped = rng.random() < 0.5
            kind = self.kinds[int(rng.choice(len(self.kinds), p=self.kind_weights))]
            hole = draw_mask(kind, rng, self.size, self.size)
            if i >= rows.start:
                crops[i - rows.start] = crop[:, ::-1] if flipped else crop
                holes[i - rows.start] = hole
        return crops, holes

    def sample(self, step: int, substep: int = 0, rows: range | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`draw`'s rows as float tensors on the CPU."""
        return as_tensors(*self.draw(step, substep, rows))


def as_tensors(
    crops: np.ndarray, holes: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images N x 3 x H x W in [0, 1] (channels-last in memory) and masks N x 1 x H x W (1 = hole),
    converted on `device`, so only the uint8 crops cross to a GPU."""
    images = torch.from_numpy(crops).to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    masks = torch.from_numpy(holes).to(device, non_blocking=True).unsqueeze(1).float()
    return images, masks


_worker_sampler: BatchSampler | None = None  # each loader process's own copy


def _start_worker(sampler: BatchSampler) -> None:
    global _worker_sampler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the training loop's to handle
    _worker_sampler = sampler


def _draw_in_worker(step: int) -> tuple[np.ndarray, np.ndarray]:
    assert _worker_sampler is not None
    return _worker_sampler.draw(step)


class BatchPrefetcher:
    """Draws the batches of the coming steps while the current one trains: in one thread, or in
    `workers` processes (holes are drawn in Python, and one core cannot keep a GPU busy).
    Batches are a function of the step alone, so the number of workers never changes a run."""

    def __init__(self, sampler: BatchSampler, workers: int = 0) -> None:
        self._pool: Executor
        if workers > 0:
            self._pool = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(sampler,),
            )
            self._draw = _draw_in_worker
            self._ahead = 2 * workers
        else:
            self._pool = ThreadPoolExecutor(max_workers=1)
            self._draw = sampler.draw
            self._ahead = 1
        self._pending: dict[int, Future] = {}

    def get(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The crops and holes of `step`; the next steps' batches are queued behind it."""
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        for coming in range(step, step + self._ahead + 1):
            if coming not in self._pending:
                self._pending[coming] = self._pool.submit(self._draw, coming)
        return self._pending.pop(step).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

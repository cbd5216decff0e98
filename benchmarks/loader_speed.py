"""Training batches per second drawn by `inpaint train`'s prefetcher with 0 (one background thread)
and N loader processes (`--workers N`), measured in one run so the ratios are fair. Each batch is
random crops of the packed image cache plus generated holes, as the training loop draws them.

    python benchmarks/loader_speed.py --data ../shared/data/train --size 128 --batch 256 --workers 0 --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inpaint_cli.train.data import BatchPrefetcher, BatchSampler, ImageCache, find_training_images


def images_per_second(sampler: BatchSampler, workers: int, steps: int) -> float:
    prefetcher = BatchPrefetcher(sampler, workers)
    try:
        prefetcher.get(0)  # start-up (process spawn) is not counted
        started = time.perf_counter()
        for step in range(1, steps + 1):
            prefetcher.get(step)
        return steps * sampler.batch / (time.perf_counter() - started)
    finally:
        prefetcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--cache-side", type=int, default=160)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, action="append")
    parser.add_argument("--masks", action="append", help="hole kinds (default: box and irregular:10-60)")
    args = parser.parse_args()
    kinds = [(kind, 1.0) for kind in args.masks or ["box", "irregular:10-60"]]
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = ImageCache.build(find_training_images([args.data]), max(args.cache_side, args.size), Path(cache_dir))
        sampler = BatchSampler(cache, args.size, args.batch, kinds, seed=0)
        print("| loader | images/s | ratio |\n|---|---|---|")
        baseline = None
        for workers in args.workers or [0, 2]:
            rate = images_per_second(sampler, workers, args.steps)
            baseline = baseline or rate
            name = "one thread" if workers == 0 else f"{workers} process{'es' if workers > 1 else ''}"
            print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x |")


if __name__ == "__main__":
    main()

"""Hole L1 by depth in the hole: where a fill beats the harmonic fill, and where it falls behind.

Reads the fills that `inpaint eval --save-dir DIR` wrote and bins every hole pixel by its Euclidean
distance to the nearest known pixel (1 = touching the known region). For each mask set and method
it prints the mean absolute error of each bin (all channels, [0, 1] scale; the errors are pooled
over pixels, so "all" is the hole L1 of all pixels together, not the protocol's mean over images)
and the share of the hole's pixels in each bin. Give it the same --data, --masks, --limit, --size
and --seed as the evaluation:

    M=../shared/data/masks/nvidia-irregular
    inpaint eval --weights F --arch harmonic --blend none --data ../shared/data/eval --limit 24 \\
        --masks $M/10-20 --masks freeform --metric psnr --save-dir fills
    python weights/hole_depth.py fills --data ../shared/data/eval --limit 24 --masks $M/10-20 --masks freeform
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from inpaint_cli.evaluate import DEFAULT_SIZE, eval_masks, load_eval_images, saved_fill_path, saved_section_dir

#: upper edges of the depth bins, in pixels; the last bin is everything deeper
BIN_EDGES = (1.5, 2.5, 4.0, 8.0, 16.0)


def bin_labels() -> list[str]:
    lower = (0.0, *BIN_EDGES)
    return [f"{low:g}-{high:g}" for low, high in zip(lower, BIN_EDGES)] + [f">{BIN_EDGES[-1]:g}"]


def depth_bins(hole: np.ndarray) -> np.ndarray:
    """Bin index of every pixel of `hole` (bool H x W) by its distance to the nearest known pixel."""
    distance = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.digitize(distance, BIN_EDGES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fills", type=Path, help="the --save-dir of an `inpaint eval` run")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--masks", action="append", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = load_eval_images(args.data, args.size, args.limit)
    labels = bin_labels()
    for spec in args.masks:
        section, holes = eval_masks(spec, len(images), args.size, args.seed)
        folder = saved_section_dir(args.fills, section)
        if not folder.is_dir():
            raise SystemExit(f"hole_depth: error: no fills for mask set {section!r} in {args.fills}")
        bins = [depth_bins(hole) for hole in holes]
        print(f"\n{section}: " + " | ".join(labels) + " | all")
        for method in sorted(path for path in folder.iterdir() if path.is_dir()):
            error = np.zeros(len(labels))
            count = np.zeros(len(labels))
            for (name, original), hole, depth in zip(images, holes, bins):
                filled = np.asarray(Image.open(saved_fill_path(args.fills, section, method.name, name)).convert("RGB"))
                difference = np.abs(filled.astype(np.float64) - original).mean(axis=2) / 255
                error += np.bincount(depth[hole], difference[hole], minlength=len(labels))
                count += np.bincount(depth[hole], minlength=len(labels))
            cells = [f"{e / c:.4f} ({100 * c / count.sum():.0f} %)" if c else "-" for e, c in zip(error, count)]
            print(f"  {method.name:32s} " + " | ".join(cells) + f" | {error.sum() / count.sum():.4f}")


if __name__ == "__main__":
    main()

"""The README's comparison grid: each example photo with its mask, filled by every method.

Rows are the pictures in examples/ (each with its `<name>_mask.png`); columns are the input with the
hole checkered, each method's fill (by `inpaint fill`'s own pipeline, full resolution), and the
original. Each row shows the square around the hole, scaled to --cell pixels.

    python docs/comparison.py                       # telea, ns, harmonic and every bundled model
    python docs/comparison.py --weights runs/glcic-half/glcic-half.safetensors --out /tmp/grid.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from inpaint_cli.evaluate import show_hole
from inpaint_cli.fill import Inpainter, resolve_model
from inpaint_cli.io import list_images, read_image, read_mask
from inpaint_cli.registry import list_archs
from inpaint_cli.weights import read_manifest

ROOT = Path(__file__).resolve().parents[1]
GAP = 4
HEADER = 18


def _square_around(hole: np.ndarray) -> tuple[int, int, int]:
    """(top, left, side) of the square holding the hole's bounding box with a margin, inside the image."""
    rows, cols = np.nonzero(hole)
    height, width = hole.shape
    side = min(max(np.ptp(rows), np.ptp(cols)) * 3 // 2 + 32, height, width)
    top = int(np.clip((rows.min() + rows.max()) // 2 - side // 2, 0, height - side))
    left = int(np.clip((cols.min() + cols.max()) // 2 - side // 2, 0, width - side))
    return top, left, side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", default=[], help="extra weights files (repeatable)")
    parser.add_argument("--examples", type=Path, default=ROOT / "examples")
    parser.add_argument("--cell", type=int, default=200, help="side of each cell in pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "comparison.jpg")
    args = parser.parse_args()

    names = [*list_archs(learned=False), *read_manifest().get("models", {})]
    methods = [Inpainter(resolve_model(name, None)) for name in names]
    methods += [Inpainter(resolve_model(None, path)) for path in args.weights]
    columns = ["input", *(method.label for method in methods), "original"]
    pictures = list_images(args.examples)
    step = args.cell + GAP
    grid = np.full((HEADER + len(pictures) * step, len(columns) * step - GAP, 3), 255, np.uint8)
    for row, picture in enumerate(pictures):
        rgb = read_image(picture).rgb8
        hole = read_mask(next(args.examples.glob(f"{picture.stem}_mask.*")))
        hidden = rgb.copy()
        hidden[hole] = 0
        cells = [show_hole(rgb, hole), *(method(hidden, hole) for method in methods), rgb]
        top, left, side = _square_around(hole)
        for column, cell in enumerate(cells):
            crop = cv2.resize(cell[top : top + side, left : left + side], (args.cell, args.cell), interpolation=cv2.INTER_AREA)
            y, x = HEADER + row * step, column * step
            grid[y : y + args.cell, x : x + args.cell] = crop
    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(columns):
        draw.text((column * step + 3, 3), label, fill=(0, 0, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, quality=88)
    print(f"wrote {args.out} ({len(pictures)} pictures x {len(methods)} methods)")


if __name__ == "__main__":
    main()

"""Folder throughput of `inpaint fill DIR`: images per second with `--batch 1` and `--batch N`.
Prints a Markdown table for the README.

    python benchmarks/folder_speed.py --repeats 2          # 100 photos, 512 x 512, default model, --batch 1 and 8
    python benchmarks/folder_speed.py --batch 4 --batch 16 --count 32 --device cuda

The folder is made in a temporary directory: `--count` copies of the example astronaut resized to
`--size` (as `fill_speed.py` makes its photo), each shifted by a few pixels so that no two files
are alike, each with its own ~20 % irregular hole in X_mask.png beside it. Each run is the whole
`fill_planned` of the folder, as `inpaint fill DIR --mask DIR -o OUT --batch N` runs it: decoding,
holes, the network, Poisson blending where the model's post-processing is poisson, PNG writing.
A single fill before the runs warms the device up. Devices: the CPU, and CUDA when torch sees it.
With `--repeats K` the batch sizes run in turn K times and the best run of each is shown. The last
column counts the outputs, over all runs, that differ from the first `--batch 1` run's, byte for
byte (0 on the CPU).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fill_speed import _photo as example_photo


def make_folder(folder: Path, count: int, size: int) -> None:
    """`count` photos 0000.png ... and their masks 0000_mask.png."""
    import numpy as np
    from PIL import Image

    from inpaint_cli.masks import draw_mask

    photo = example_photo(size, size)
    for index in range(count):
        shifted = np.roll(photo, (3 * index, 5 * index), axis=(0, 1))
        hole = draw_mask("irregular:15-25", np.random.default_rng(index), size, size)
        Image.fromarray(shifted).save(folder / f"{index:04d}.png")
        Image.fromarray(hole.astype(np.uint8) * 255).save(folder / f"{index:04d}_mask.png")


def fill_folder(folder: Path, out: Path, inpainter, batch: int) -> float:
    """Seconds to fill `folder` into `out` with `batch` images per forward."""
    from inpaint_cli.errors import InpaintError
    from inpaint_cli.fill import fill_planned
    from inpaint_cli.masks import plan_fill

    started = time.perf_counter()
    failures = fill_planned(plan_fill(folder, folder, [], out), inpainter, batch=batch)
    seconds = time.perf_counter() - started
    if failures:
        raise InpaintError(failures[0])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes besides 1 (repeatable; default: 8)")
    parser.add_argument("--device", action="append", help="repeatable (default: cpu, and cuda when available)")
    parser.add_argument("--weights", help="weights file (default: the default model)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each batch size, in turn; the best is shown")
    args = parser.parse_args()
    import numpy as np
    import torch

    from inpaint_cli.fill import Inpainter, resolve_model
    from inpaint_cli.masks import draw_mask

    warm_up_hole = draw_mask("irregular:15-25", np.random.default_rng(args.count), args.size, args.size)
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    batches = [1] + [batch for batch in args.batch or [8] if batch != 1]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "photos"
        folder.mkdir()
        make_folder(folder, args.count, args.size)
        print(f"{args.count} photos of {args.size} x {args.size}, ~20 % irregular holes; torch threads:"
              f" {torch.get_num_threads()}\n")
        print("| device | model | --batch | images/s | seconds | outputs unlike --batch 1 |\n|---|---|---|---|---|---|")
        for device in devices:
            inpainter = Inpainter(resolve_model(None, args.weights, device), device)
            inpainter.fill(example_photo(args.size, args.size), warm_up_hole)
            seconds, unlike = {}, {}
            for repeat in range(args.repeats):  # the batch sizes in turn, so that load swings touch each alike
                for batch in batches:
                    out = Path(temporary) / f"{device}-{batch}-{repeat}"
                    seconds[batch] = min(seconds.get(batch, float("inf")), fill_folder(folder, out, inpainter, batch))
                    reference = Path(temporary) / f"{device}-1-0"
                    unlike[batch] = unlike.get(batch, 0) + sum(
                        (out / path.name).read_bytes() != path.read_bytes() for path in reference.iterdir())
            for batch in batches:
                print(f"| {device} | {inpainter.label} | {batch} | {args.count / seconds[batch]:.2f} | {seconds[batch]:.1f}"
                      f" | {unlike[batch]} |", flush=True)


if __name__ == "__main__":
    main()

"""Time `fill` for each architecture (default config; weights do not change the cost) at a given
size, and its peak memory, each in its own process. Prints a Markdown table for the README.

    python benchmarks/fill_speed.py --size 512 --repeats 3 [--device cpu] [--arch glcic ...]
    python benchmarks/fill_speed.py --size 2048 --repeats 1 --no-warmup --arch deepfill-v1:paper
    python benchmarks/fill_speed.py --size 512 --arch patchmatch --image photo.png

The image is random noise unless `--image` names a photo (resized and centre-cropped to the size):
the networks' cost does not depend on it, an exemplar method's (patchmatch) a little.

Peak RSS is the whole process's high-water mark (Python, torch and the model included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(arch: str, config: str | None, size: int, repeats: int, device: str, warmup: bool, image_path: str | None) -> dict:
    """Runs in a child process: build the model, fill a size x size image with a ~20 % hole."""
    import numpy as np
    import torch

    from inpaint_cli.fill import FillOptions, Inpainter, LoadedModel
    from inpaint_cli.masks import draw_mask
    from inpaint_cli.registry import get_arch

    spec = get_arch(arch)
    torch.manual_seed(0)
    model = spec.build_generator(spec.config(config)).eval()
    loaded = LoadedModel(model, spec, config, arch, {})
    inpainter = Inpainter(loaded, device, FillOptions(strategy="full" if not model.fixed_size else "auto", max_side=max(size, 1024)))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if image_path:  # the photo's central square, resized
        import cv2

        from inpaint_cli.io import read_image

        photo = read_image(image_path).rgb8
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        image = cv2.resize(photo[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
    hole = draw_mask("irregular:15-25", rng, size, size)
    if warmup:
        inpainter.fill(image, hole)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        inpainter.fill(image, hole)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"arch": arch, "config": config or spec.default_config, "seconds": sorted(times)[len(times) // 2],
            "peak_rss_mb": peak_mb, "hole": float(hole.mean()), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", action="append", help="arch or arch:config (repeatable; default: all)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed first fill")
    parser.add_argument("--image", help="a photo to fill (default: random noise)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        arch, _, config = args.child.partition(":")
        print(json.dumps(measure(arch, config or None, args.size, args.repeats, args.device, args.warmup, args.image)))
        return
    from inpaint_cli.registry import list_archs

    targets = args.arch or list_archs()
    print(f"fill of a {args.size}x{args.size} image, ~20 % irregular hole, device {args.device}, median of {args.repeats}\n")
    print("| arch | config | seconds | peak RSS (MB) |\n|---|---|---|---|")
    for target in targets:
        command = [sys.executable, __file__, "--child", target, "--size", str(args.size),
                   "--repeats", str(args.repeats), "--device", args.device] + ([] if args.warmup else ["--no-warmup"])
        command += ["--image", args.image] if args.image else []
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {target} | failed: {result.stderr.strip().splitlines()[-1]} | | |")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {row['arch']} | {row['config']} | {row['seconds']:.3f} | {row['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

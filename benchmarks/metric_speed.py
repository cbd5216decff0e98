"""Speed of the network metrics of `inpaint eval`: Inception pool3 feature extraction (FID, P-IDS,
U-IDS) in images/s, LPIPS in image pairs/s, and the set-level statistics (Fréchet distance, the
P-IDS/U-IDS linear SVM) on n x 2048 features. The networks are randomly initialised (speed does not
depend on the weights), so no backbone file is needed.

    python benchmarks/metric_speed.py --size 256 --images 64 --device cpu --set-size 148 --set-size 1480
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from inpaint_cli.feature_metrics import frechet_distance, inception_discriminative_scores
from inpaint_cli.layers.inception import FIDInceptionV3
from inpaint_cli.layers.lpips import LPIPS, LPIPSLinearLayers, build_lpips_backbone


def per_second(run, batches: list[torch.Tensor]) -> float:
    run(batches[0])  # warm-up (allocations, kernel selection) is not counted
    if batches[0].device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    if batches[0].device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(batch) for batch in batches) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set-size", type=int, action="append", help="n for the set-level statistics")
    args = parser.parse_args()
    torch.manual_seed(0)
    batches = [torch.rand(min(args.batch, args.images - start), 3, args.size, args.size, device=args.device)
               for start in range(0, args.images, args.batch)]
    inception = FIDInceptionV3().to(args.device).eval()
    print(f"| network ({args.size} x {args.size}, batch {args.batch}, {args.device}) | images/s |\n|---|---|")
    with torch.inference_mode():
        print(f"| Inception pool3 | {per_second(inception, batches):,.1f} |")
        for net in ("alex", "vgg"):
            metric = LPIPS(net, build_lpips_backbone(net), LPIPSLinearLayers(net)).to(args.device).eval()
            print(f"| LPIPS {net} (pairs) | {per_second(lambda b: metric(b, b.flip(0)), batches):,.1f} |")
    rs = np.random.RandomState(0)
    print("\n| n | FID s | P-IDS/U-IDS s |\n|---|---|---|")
    for n in args.set_size or [148]:
        real = np.maximum(0.5 * rs.standard_normal((n, 2048)) + 0.3, 0)
        fake = np.maximum(0.5 * rs.standard_normal((n, 2048)) + 0.32, 0)
        started = time.perf_counter()
        frechet_distance(real, fake)
        middle = time.perf_counter()
        inception_discriminative_scores(real, fake)
        print(f"| {n} | {middle - started:.2f} | {time.perf_counter() - middle:.2f} |")


if __name__ == "__main__":
    main()

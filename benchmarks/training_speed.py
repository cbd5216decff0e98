"""Images per second of one generator training step (forward + backward + Adam): the default
(contiguous) memory format, channels-last, and channels-last in bf16 autocast (what `inpaint train
--precision auto` picks on CPUs with AMX), measured in one run so the ratios are fair.

    python benchmarks/training_speed.py --arch glcic --config half --size 128 --batch 16
"""

from __future__ import annotations

import argparse
import time

import torch

from inpaint_cli.registry import get_arch


def images_per_second(arch: str, config: str, size: int, batch: int, steps: int, channels_last: bool, bf16: bool) -> float:
    spec = get_arch(arch)
    torch.manual_seed(0)
    generator = spec.build_generator(spec.config(config))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator = generator.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(generator.parameters(), 1e-4)
    image = torch.rand(batch, 3, size, size).contiguous(memory_format=memory_format)
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    mask = mask.contiguous(memory_format=memory_format)
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = (generator.inpaint(image, mask).float() - image).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return batch / min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="glcic")
    parser.add_argument("--config", default="half")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    variants = {
        "contiguous": (False, False),
        "channels-last": (True, False),
        "contiguous bf16": (False, True),
        "channels-last bf16": (True, True),
    }
    rates = {
        name: images_per_second(args.arch, args.config, args.size, args.batch, args.steps, channels_last, bf16)
        for name, (channels_last, bf16) in variants.items()
    }
    print(f"{args.arch} {args.config}, {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads (best of {args.steps})")
    for name, rate in rates.items():
        print(f"  {name:20s} {rate:6.1f} images/s  ({rate / rates['contiguous']:.2f}x)")


if __name__ == "__main__":
    main()

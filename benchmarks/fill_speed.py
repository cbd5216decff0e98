"""How close `inpaint fill` runs to the compute floor, and what big photos cost. Prints Markdown
tables for the README.

    python benchmarks/fill_speed.py                       # every bundled model and paper config, 512 x 512
    python benchmarks/fill_speed.py --model glcic --model deepfill-v1:paper --repeats 3
    python benchmarks/fill_speed.py --big                 # + a 12-megapixel JPEG and DeepFill at 2048 x 2048
    python benchmarks/fill_speed.py --precision bf16      # fills and networks in bf16 autocast

Latency table, one row per model, each measured in its own process on a photo (the example
astronaut, resized) with a ~20 % irregular hole (a centred box of a quarter of the image for the
paper's Context Encoder, which fills only that):
- fill: the whole `Inpainter.fill` (windows, padding, network, composite, and the blend of the
  model's post-processing: Poisson blending or the ramp);
- network: the bare forward passes of the exact inputs that fill sent the network (recorded);
- GFLOP: those forwards' floating-point operations, from torch's FlopCounterMode;
- floor: GFLOP at the rate a 3 x 3 convolution (64 -> 64 channels, 256 x 256, the faster of the
  contiguous and channels-last layouts) reaches in the same process just before, the best these
  cores do on the networks' main operation;
- own-shape arithmetic: the forward's convolutions, matrix products and FFTs replayed one by one,
  alone, at their own shapes; network / arithmetic is what the rest of the forward (activations,
  indexing, copies, normalisation) adds to them;
- (fill - blend) / network: the fill without the model's post-processing, against the network
  (what is left is windows, padding, quantising, compositing): each timed fill less its own
  blend's time inside it, the best of the repeats;
- fill / network and network / floor: the ratios; absolute times on a shared machine drift,
  ratios measured in one process hold. Each repeat measures the rate, the fill, the network and
  the blend in turn; each is the best of the repeats;
- blend: the model's post-processing (`blend.BLEND_FUNCTIONS`, where it has one) alone, on the
  exact inputs the fill sent it (recorded, as the network's).

Big photos (`--big`): a 4000 x 3000 JPEG with four holes covering 5 % filled by the default model
and by big-lama (random weights) under the default strategy, and a 2048 x 2048 photo filled by
DeepFill v1: wall time, CPU time (all threads) and peak RSS of the whole process (Python, torch and
the model included).

`bundled` rows load the released weights; `paper` rows build the paper config with random weights
(the cost does not depend on the weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.png"
CONV_SHAPE = (1, 64, 256, 256)  # the rate probe: a 3 x 3 convolution, 64 -> 64 channels


def _photo(width: int, height: int):
    """The example photo resized (cubic) to width x height, with a little noise so that a JPEG of
    it is as costly to decode as a camera's."""
    import cv2
    import numpy as np

    from inpaint_cli.io import read_image

    photo = cv2.resize(read_image(EXAMPLE).rgb8, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0, 2, photo.shape)
    return np.clip(photo + noise, 0, 255).astype(np.uint8)


def _load(model: str, device: str):
    """`bundled:ARCH` (the release) or `ARCH:CONFIG` (random weights) as a LoadedModel."""
    import torch

    from inpaint_cli.fill import LoadedModel, resolve_model
    from inpaint_cli.registry import get_arch

    kind, _, name = model.partition(":")
    if kind == "bundled":
        return resolve_model(name, None, device)
    spec = get_arch(kind)
    torch.manual_seed(0)
    return LoadedModel(spec.build_generator(spec.config(name)).eval(), spec, name, f"{kind}:{name}", {})


def _conv_gflops_per_second(repeats: int = 5) -> float:
    """The probe's rate in the faster of the two memory layouts (fills run channels-last)."""
    import torch

    flops = 2 * 9 * CONV_SHAPE[1] ** 2 * CONV_SHAPE[2] * CONV_SHAPE[3]
    times = []
    for layout in (torch.contiguous_format, torch.channels_last):
        convolution = torch.nn.Conv2d(CONV_SHAPE[1], CONV_SHAPE[1], 3, padding=1).eval().to(memory_format=layout)
        image = torch.rand(CONV_SHAPE).contiguous(memory_format=layout)
        with torch.inference_mode():
            convolution(image)
            for _ in range(repeats):
                started = time.perf_counter()
                convolution(image)
                times.append(time.perf_counter() - started)
    return flops / min(times) / 1e9


def _arithmetic_seconds(run_network, repeats: int, precision=contextlib.nullcontext) -> float:
    """The network's convolutions and matrix products, each replayed alone on random tensors of
    its recorded shapes and layouts, summed, best of `repeats` sums (as the network's own time is
    the best of its forwards: the sum of each operation's best would sit below any real run of
    them all, and more so the more operations a network has): what the network
    would take if everything around them cost nothing, at the rates these cores reach on its own
    layer shapes (narrow layers run slower than the 64-channel probe). The replays run under
    `precision()`, the autocast the network ran under: an operation recorded whole (einsum) may
    take operands of two dtypes that autocast casts inside it."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    # under inference mode the dispatch mode sees composite operations whole (conv2d, matmul);
    # an operation they call is not seen again
    arithmetic = {"conv2d", "convolution", "conv_transpose2d", "matmul", "mm", "addmm", "bmm", "baddbmm",
                  "linear", "einsum", "fft_rfftn", "fft_irfftn", "fft_rfft2", "fft_irfft2", "_fft_r2c", "_fft_c2r"}
    calls = []

    class Layout(NamedTuple):  # a tensor argument, replayed as random values of its shape and strides
        shape: tuple[int, ...]
        stride: tuple[int, ...]
        dtype: torch.dtype

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in arithmetic:
                calls.append((func, [Layout(a.shape, a.stride(), a.dtype) if isinstance(a, torch.Tensor) else a for a in args],
                              kwargs or {}))
            return func(*args, **(kwargs or {}))

    with torch.inference_mode(), precision(), Recorder():
        run_network()
    totals = [0.0] * repeats  # the replay of every operation, once per repeat
    with torch.inference_mode(), precision():
        for func, specs, keywords in calls:
            args = [torch.empty_strided(spec.shape, spec.stride, dtype=spec.dtype).normal_() if isinstance(spec, Layout)
                    else spec for spec in specs]
            func(*args, **keywords)  # warm, as the network is by the fill before it
            for repeat in range(repeats):
                started = time.perf_counter()
                func(*args, **keywords)
                totals[repeat] += time.perf_counter() - started
    return min(totals)


def measure_latency(model: str, size: int, repeats: int, device: str, precision: str = "auto") -> dict:
    """Runs in a child process; the fill and the bare network alike in `precision` (`--precision`)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inpaint_cli.blend import BLEND_FUNCTIONS
    from inpaint_cli.errors import InpaintError
    from inpaint_cli.fill import FillOptions, Inpainter
    from inpaint_cli.masks import draw_mask

    loaded = _load(model, device)
    inpainter = Inpainter(loaded, device, FillOptions(precision=precision))

    def in_precision():
        return torch.autocast(inpainter.device.type, inpainter.autocast or torch.bfloat16, enabled=inpainter.autocast is not None)

    image = _photo(size, size)
    hole = draw_mask("irregular:15-25", np.random.default_rng(0), size, size)
    network = inpainter.model
    recorded = []
    forward = network.inpaint

    def recording(batch, mask, **options):  # options: a pluralistic model's seed and truncation
        recorded.append((batch.clone(), mask.clone(), options))
        return forward(batch, mask, **options)

    network.inpaint = recording
    # the blend's own inputs too: the network's fill, which the blend corrects (blending the
    # finished fill again would find nothing to correct and converge at once)
    blend = BLEND_FUNCTIONS.get(inpainter.blend)
    blend_inputs = []

    def recording_blend(*arrays):
        blend_inputs.append(arrays)
        return blend(*arrays)

    if blend is not None:
        BLEND_FUNCTIONS[inpainter.blend] = recording_blend
    try:
        inpainter.fill(image, hole)  # warm-up, and the inputs the network sees
    except InpaintError:  # a model for centred holes only (the paper's Context Encoder): its hole
        recorded.clear()
        hole = np.zeros((size, size), bool)
        hole[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
        inpainter.fill(image, hole)
    network.inpaint = forward
    if blend is not None:
        BLEND_FUNCTIONS[inpainter.blend] = blend

    def run_network() -> None:
        for batch, mask, options in recorded:
            network.inpaint(batch, mask, **options)

    with torch.inference_mode(), in_precision(), FlopCounterMode(display=False) as counter:
        run_network()
    # interleaved, so that a change in the machine's load touches every measure alike
    rates, fills, forwards, blends, besides_blend = [], [], [], [], []
    blending = [0.0]  # the blend's own time inside the fill being timed

    def timed_blend(*arrays):
        started = time.perf_counter()
        try:
            return blend(*arrays)
        finally:
            blending[0] += time.perf_counter() - started

    for _ in range(repeats):
        rates.append(_conv_gflops_per_second())
        if blend is not None:
            BLEND_FUNCTIONS[inpainter.blend], blending[0] = timed_blend, 0.0
        started = time.perf_counter()
        inpainter.fill(image, hole)
        fills.append(time.perf_counter() - started)
        besides_blend.append(fills[-1] - blending[0])
        if blend is not None:
            BLEND_FUNCTIONS[inpainter.blend] = blend
        with torch.inference_mode(), in_precision():
            started = time.perf_counter()
            run_network()
            forwards.append(time.perf_counter() - started)
        if blend is not None:
            started = time.perf_counter()
            for arrays in blend_inputs:
                blend(*arrays)
            blends.append(time.perf_counter() - started)
    gflop, rate = counter.get_total_flops() / 1e9, max(rates)
    arithmetic = _arithmetic_seconds(run_network, repeats, in_precision)
    return {"model": model, "label": inpainter.label, "fill": min(fills), "network": min(forwards),
            "gflop": gflop, "conv_rate": rate, "floor": gflop / rate, "blend": min(blends, default=None),
            "besides_blend": min(besides_blend), "arithmetic": arithmetic,
            "batches": [tuple(batch.shape) for batch, _, _ in recorded], "hole": float(hole.mean()),
            "threads": torch.get_num_threads()}


#: --big rows: photo size and model (None: the default model); big-lama has random weights (the
#: official file is the user's) under the default strategy for a 12-megapixel photo, crop
BIG_PHOTOS = {"photo": ((4000, 3000), None), "big-lama": ((4000, 3000), "lama:big"),
              "deepfill": ((2048, 2048), "bundled:deepfill-v1")}


def measure_big(which: str, device: str) -> dict:
    """Runs in a child process: one of `BIG_PHOTOS`, filled once from the file (decode included)."""
    import tempfile

    import cv2
    import numpy as np

    from inpaint_cli.fill import Inpainter, resolve_model
    from inpaint_cli.io import read_image

    (width, height), model = BIG_PHOTOS[which]
    hole = np.zeros((height, width), np.uint8)
    for x, y, a, b, angle in ((0.18, 0.2, 0.065, 0.057, 20), (0.78, 0.27, 0.045, 0.1, -30),
                              (0.3, 0.77, 0.08, 0.05, 60), (0.72, 0.73, 0.057, 0.077, 0)):
        cv2.ellipse(hole, (int(x * width), int(y * height)), (int(a * width), int(b * height)), angle, 0, 360, 255, -1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        cv2.imwrite(str(path), _photo(width, height)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        loaded = resolve_model(None, None, device) if model is None else _load(model, device)
        inpainter = Inpainter(loaded, device)
        started, cpu = time.perf_counter(), time.process_time()
        image = read_image(path)
        inpainter.fill(image.rgb8, hole > 0)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {"which": which, "label": inpainter.label, "size": f"{width} x {height}", "hole": float((hole > 0).mean()),
            "strategy": inpainter.strategy_for(hole > 0), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(arguments: list[str]) -> dict | str:
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(result.stdout.strip().splitlines()[-1])


def default_models() -> list[str]:
    """Every bundled model, then every learned architecture's paper config (`paper`, LaMa's
    `fourier`: its first)."""
    from inpaint_cli.registry import get_arch, list_archs
    from inpaint_cli.weights import read_manifest

    bundled = [f"bundled:{arch}" for arch in read_manifest().get("models", {})]
    papers = []
    for arch in list_archs(learned=True):
        configs = get_arch(arch).configs
        papers.append(f"{arch}:{'paper' if 'paper' in configs else next(iter(configs))}")
    return bundled + papers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="the fills' and networks' --precision (auto: float32 on"
                        " the CPU; bf16: autocast, about 2x faster on CPUs with AVX-512 BF16 or AMX)")
    parser.add_argument("--model", action="append", help="bundled:ARCH or ARCH:CONFIG (repeatable; default: all)")
    parser.add_argument("--big", action="store_true", help="also the 12-megapixel photo (default model, big-lama)"
                        " and DeepFill at 2048 x 2048")
    parser.add_argument("--no-latency", dest="latency", action="store_false", help="skip the latency table")
    parser.add_argument("--threads", type=int, help="torch threads in the latency table (default: torch's own); on a"
                        " machine others load, 1 keeps each operation from waiting for a descheduled thread")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-big", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(measure_latency(args.child, args.size, args.repeats, args.device, args.precision)))
        return
    if args.child_big:
        print(json.dumps(measure_big(args.child_big, args.device)))
        return
    if args.latency:
        threads = f", {args.threads} thread(s)" if args.threads else ""
        print(f"{args.size} x {args.size} photo, ~20 % irregular hole, device {args.device}{threads}, precision"
              f" {args.precision}, best of {args.repeats}\n")
        print("| model | fill (s) | network (s) | GFLOP | floor (s) | fill / network | (fill - blend) / network"
              " | network / floor | own-shape arithmetic (s) | network / arithmetic | blend (s) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for model in args.model or default_models():
            threads = ["--threads", str(args.threads)] if args.threads else []
            row = _child(["--child", model, "--size", str(args.size), "--repeats", str(args.repeats), "--device", args.device,
                          "--precision", args.precision, *threads])
            if isinstance(row, str):
                print(f"| {model} | failed: {row} | | | | | | | | | |", flush=True)
                continue
            blend = "-" if row["blend"] is None else f"{row['blend']:.3f}"
            besides_blend = row["besides_blend"] / row["network"]
            print(f"| {row['label'] if model.startswith('bundled') else model} | {row['fill']:.3f} | {row['network']:.3f}"
                  f" | {row['gflop']:.1f} | {row['floor']:.3f} | {row['fill'] / row['network']:.2f} | {besides_blend:.2f}"
                  f" | {row['network'] / row['floor']:.2f} | {row['arithmetic']:.3f}"
                  f" | {row['network'] / row['arithmetic']:.2f} | {blend} |", flush=True)
            print(f"<!-- {json.dumps(row)} -->", file=sys.stderr, flush=True)
    if args.big:
        print("\n| photo | model | strategy | hole | wall (s) | CPU (s) | peak RSS (MB) |\n|---|---|---|---|---|---|---|")
        for which in BIG_PHOTOS:
            row = _child(["--child-big", which, "--device", args.device])
            if isinstance(row, str):
                print(f"| {which} | failed: {row} | | | | | |", flush=True)
                continue
            print(f"| {row['size']} JPEG | {row['label']} | {row['strategy']} | {row['hole']:.1%} | {row['seconds']:.1f}"
                  f" | {row['cpu_seconds']:.1f} | {row['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

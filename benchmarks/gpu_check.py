"""GPU readiness: fill and training throughput of every architecture in one run, printed as a
Markdown table for the README. `benchmarks/gpu_check.sh` sets a fresh machine up and calls this
with the time left of its 5 minutes.

    bash benchmarks/gpu_check.sh                      # CUDA, bf16: every row below
    python benchmarks/gpu_check.py --quick            # the CPU: three small configs at tiny sizes
    python benchmarks/gpu_check.py --model lama:fourier --model mat:paper --budget 120

Rows: every learned architecture's paper config (`fill_speed.default_models`: `paper`, LaMa's
first, `fourier`), then the small configs the project bundles or trains, all with random weights
(the cost does not depend on them). Columns:
- fill img/s: whole `Inpainter.fill`s, what `inpaint fill` runs (windows, the network in bf16
  autocast on CUDA, composite, the Poisson blend where the paper blends), of a photo (the example
  astronaut, `--fill-size` square) with a ~20 % irregular hole, one photo after another;
- network img/s: the fill's network step (`Inpainter._network`) on a batch of `--fill-batch`
  such photos at once (a fixed-input model: squares of its own size);
- train img/s: `Trainer.train_step`, the loop of `inpaint train` (the batch drawn ahead by
  `--workers` processes, the generator's and the critic's updates, the weight average where the
  recipe keeps one) in bf16 autocast at `--train-size` (a fixed-input network at its own size,
  the batch scaled to the same pixels per step), in the recipe's last phase (the adversarial one
  where there is one), with random-weight perceptual backbones where the recipe takes one;
  `--warmup` steps first, not timed;
- peak GPU memory: `torch.cuda.max_memory_allocated` of the network batch and of the training.

The run stops itself by `--budget` seconds: each measurement runs its count or its share of the
time left (at least once), and what no longer fits is listed as skipped.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fill_speed import EXAMPLE, _load, _photo, default_models

#: the small configs the project bundles (weights/) or trains, beside the paper configs
SMALL_CONFIGS = ("glcic:half-l1", "context-encoder:half-fc-rec-flat", "deepfill-v1:half", "deepfill-v2:half",
                 "pconv:seven-level-quarter", "aot-gan:quarter", "lama:quarter-l1")
QUICK_MODELS = ("glcic:half-l1", "context-encoder:half-fc-rec-flat", "lama:quarter-l1")
HOLE = "irregular:15-25"
TRAINING_STEPS = 100_000  # the run's nominal length: phases scale to it, the step starts at the last
MIN_SECONDS = 3.0  # a measurement is not started with less time than this left


@dataclass
class Settings:
    device: str
    fill_size: int
    fill_batch: int
    fills: int
    train_size: int
    train_batch: int
    warmup: int
    steps: int
    workers: int


#: option -> (default on a GPU, default with --quick, what it sets)
OPTIONS = {
    "device": ("cuda", "cpu", "torch device"),
    "fill_size": (512, 128, "side of the square photo filled"),
    "fill_batch": (16, 2, "photos in the network step's batch"),
    "fills": (8, 2, "whole fills timed"),
    "train_size": (256, 64, "training crop side (a fixed-input network trains at its own)"),
    "train_batch": (32, 2, "training batch at --train-size (scaled to the same pixels at another size)"),
    "warmup": (2, 1, "training steps run before the timed ones"),
    "steps": (6, 2, "training steps timed"),
    "workers": (8, 0, "processes drawing the training batches ahead (inpaint train --workers)"),
}


class Budget:
    """The seconds left until the run's deadline, shared among the measurements still to come."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def share(self, measurements: int) -> float:
        return max(self.left(), 0.0) / max(measurements, 1)


def _synchronise(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def _rate(run: Callable[[], object], images: int, count: int, seconds: float, device: str) -> float:
    """Images per second of `run` (each call handles `images`), called `count` times or until
    `seconds` have passed, at least once."""
    _synchronise(device)
    started, done = time.perf_counter(), 0
    while done < count and (done == 0 or time.perf_counter() - started < seconds):
        run()
        done += 1
    _synchronise(device)
    return done * images / (time.perf_counter() - started)


def _centred_box(side: int):
    import numpy as np

    hole = np.zeros((side, side), bool)
    hole[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = True
    return hole


def measure_fill(model: str, settings: Settings, seconds: float) -> dict:
    """Whole fills one after another, and the network step on a batch (see the module's doc)."""
    import cv2
    import numpy as np

    from inpaint_cli.archs.base import count_parameters
    from inpaint_cli.errors import InpaintError
    from inpaint_cli.fill import Inpainter
    from inpaint_cli.masks import draw_mask

    inpainter = Inpainter(_load(model, settings.device), settings.device)
    size = settings.fill_size
    photo, hole = _photo(size, size), draw_mask(HOLE, np.random.default_rng(0), size, size)
    centred_only = False
    try:
        inpainter.fill(photo, hole)  # warm-up
    except InpaintError:  # a model for centred holes only (the paper's Context Encoder)
        centred_only, hole = True, _centred_box(size)
        inpainter.fill(photo, hole)
    fill_rate = _rate(lambda: inpainter.fill(photo, hole), 1, settings.fills, seconds / 2, settings.device)
    side = inpainter.model.fixed_size or size
    square = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    holes = [_centred_box(side) if centred_only else draw_mask(HOLE, np.random.default_rng(k), side, side)
             for k in range(settings.fill_batch)]
    images = np.stack([np.where(h[..., None], np.uint8(0), square) for h in holes])
    _reset_peak(settings.device)
    inpainter._network(images, np.stack(holes))  # warm-up
    network_rate = _rate(lambda: inpainter._network(images, np.stack(holes)), len(images), 3, seconds / 2,
                         settings.device)
    return {"params": count_parameters(inpainter.model), "fill": fill_rate, "network": network_rate,
            "fill_batch": f"{len(images)} x {side}", "fill_peak": _peak_gib(settings.device)}


#: the perceptual backbone each recipe takes (`--backbone`), by architecture
PERCEPTUAL_BACKBONES = {"pconv": "vgg16", "aot-gan": "vgg19", "mat": "vgg19", "lama": "resnet50-dilated"}


def random_backbones(folder: Path, archs: set[str]) -> dict[str, str]:
    """Safetensors files of random-weight perceptual backbones for those of `archs` whose recipe
    takes one, by architecture: the loss costs the same with any weights."""
    from safetensors.torch import save_file

    from inpaint_cli.layers.perceptual import ResNet50Dilated, VGGFeatures

    builders = {"vgg16": lambda: VGGFeatures("vgg16"), "vgg19": lambda: VGGFeatures("vgg19"),
                "resnet50-dilated": ResNet50Dilated}
    files = {}
    for name in {PERCEPTUAL_BACKBONES[arch] for arch in archs if arch in PERCEPTUAL_BACKBONES}:
        files[name] = folder / f"{name}.safetensors"
        save_file({key: value.contiguous() for key, value in builders[name]().state_dict().items()}, files[name])
    return {arch: str(files[name]) for arch, name in PERCEPTUAL_BACKBONES.items() if name in files}


def measure_training(model: str, settings: Settings, data: Path, backbones: dict[str, str], seconds: float) -> dict:
    """Steps of the training loop in the recipe's last phase (see the module's doc)."""
    from inpaint_cli.registry import get_arch
    from inpaint_cli.train import TrainSettings, start_training

    arch, _, config = model.partition(":")
    spec = get_arch(arch)
    size = spec.recipe.required_size(spec.config(config)) or settings.train_size
    batch = max(2, round(settings.train_batch * (settings.train_size / size) ** 2))
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = TrainSettings(arch=arch, out_dir=out, data_dirs=[str(data)], config=config, size=size, batch=batch,
                            steps=TRAINING_STEPS, checkpoint_every=0, sample_every=0, backbone=backbones.get(arch))
        _reset_peak(settings.device)
        trainer = start_training(run, device=settings.device, precision="bf16", workers=settings.workers)
        trainer.step = sum(phase.steps for phase in trainer.phases[:-1])
        with trainer.prefetching():
            for _ in range(settings.warmup):
                trainer.train_step()
            rate = _rate(trainer.train_step, batch, settings.steps, seconds, settings.device)
        losses_complete = not any("no backbone weights given" in str(warning.message) for warning in caught)
        return {"train": rate, "train_batch": f"{batch} x {size}, {trainer.phase_at(trainer.step).name}",
                "train_peak": _peak_gib(settings.device), "losses_complete": losses_complete}


def _release_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _one_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0][:100]
    return f"{type(error).__name__}: {text}".replace("|", "/")


def _rate_text(rate: float) -> str:
    """One decimal, two significant digits below 1 image per second."""
    return f"{rate:,.1f}" if rate >= 1 else f"{rate:.2g}"


def _cells(model: str, fill: dict | str, train: dict | str) -> str:
    arch, _, config = model.partition(":")
    if isinstance(fill, str):
        params, fill_cells = "", [fill, "", ""]
    else:
        params = f"{fill['params'] / 1e6:.2f}"
        fill_cells = [_rate_text(fill["fill"]), _rate_text(fill["network"]), fill["fill_batch"]]
    if isinstance(train, str):
        train_cells = [train, ""]
    else:
        mark = "" if train["losses_complete"] else " †"
        train_cells = [_rate_text(train["train"]) + mark, train["train_batch"]]
    peaks = [None if isinstance(fill, str) else fill["fill_peak"], None if isinstance(train, str) else train["train_peak"]]
    peak = " / ".join("-" if value is None else f"{value:.1f}" for value in peaks)
    return "| " + " | ".join([arch, config, params, *fill_cells, *train_cells, peak]) + " |"


def _training_data(folder: Path) -> Path:
    """The example photos (not their masks), for the loader to crop from."""
    data = folder / "data"
    data.mkdir()
    for photo in EXAMPLE.parent.iterdir():
        if photo.suffix in (".png", ".jpg") and not photo.stem.endswith("_mask"):
            shutil.copy(photo, data / photo.name)
    return data


def run(models: list[str], settings: Settings, budget: Budget) -> None:
    import torch

    device_name = torch.cuda.get_device_name() if settings.device.startswith("cuda") else "CPU"
    print(f"{device_name}, torch {torch.__version__}, {torch.get_num_threads()} threads; fill {settings.fill_size} x"
          f" {settings.fill_size} ({HOLE.split(':')[0]} hole), training at {settings.train_size} in bf16 autocast,"
          f" {settings.workers} loader processes, random weights\n", flush=True)
    print("| arch | config | params (M) | fill img/s | network img/s | network batch | train img/s | train batch, phase"
          " | peak GPU GiB (network / train) |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    skipped, without_perceptual = [], False
    with tempfile.TemporaryDirectory() as folder:
        data = _training_data(Path(folder))
        backbones = random_backbones(Path(folder), {model.partition(':')[0] for model in models})
        for index, model in enumerate(models):
            results: list[dict | str] = []
            for kind in ("fill", "train"):
                left = 2 * (len(models) - index) - len(results)
                if budget.left() < MIN_SECONDS:
                    results.append("skipped: time budget")
                    skipped.append(f"{model} {kind}")
                    continue
                try:
                    if kind == "fill":
                        results.append(measure_fill(model, settings, budget.share(left)))
                    else:
                        results.append(measure_training(model, settings, data, backbones, budget.share(left)))
                except Exception as error:  # a row that fails says why; the others go on
                    results.append(f"failed: {_one_line(error)}")
                _release_memory(settings.device)
            print(_cells(model, *results), flush=True)
            without_perceptual |= isinstance(results[1], dict) and not results[1]["losses_complete"]
    if without_perceptual:
        print("\n† trained without its perceptual loss: the recipe takes a backbone that PERCEPTUAL_BACKBONES lacks")
    if skipped:
        print(f"\nskipped, past the {budget.seconds:.0f} s budget: {', '.join(skipped)}")
    print(f"\nmeasured in {budget.seconds - budget.left():.0f} s of a {budget.seconds:.0f} s budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CPU, tiny sizes, 1 + 2 steps, three small configs")
    parser.add_argument("--model", action="append", help="ARCH:CONFIG (repeatable; default: the paper and small configs)")
    parser.add_argument("--budget", type=float, default=270, help="seconds for the whole run (default 270)")
    for name, (default, quick, what) in OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default),
                            help=f"{what} (default {default}, {quick} with --quick)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))  # gpu_check.sh's timeout: clean up, exit as it would
    settings = Settings(**{name: value if (value := getattr(args, name)) is not None else defaults[args.quick]
                           for name, defaults in OPTIONS.items()})
    if settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            sys.exit("gpu_check: error: CUDA is not available to torch; --quick runs on the CPU")
    models = args.model or (list(QUICK_MODELS) if args.quick else
                            [m for m in default_models() if not m.startswith("bundled:")] + list(SMALL_CONFIGS))
    run(models, settings, Budget(args.budget))


if __name__ == "__main__":
    main()

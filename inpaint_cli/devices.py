"""Device selection shared by fill, eval and train."""

from __future__ import annotations

import torch

from inpaint_cli.errors import InpaintError
from inpaint_cli.options import PRECISIONS


def pick_device(name: str) -> torch.device:
    """`auto`: cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InpaintError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InpaintError("--device cuda asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InpaintError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InpaintError("--device mps asked for, but MPS is not available on this machine")
    return device


def fill_autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The mixed-precision dtype a fill runs its network in, None for float32.

    `auto` is bf16 on CUDA (also where torch emulates it: fp16's narrow range could overflow in a
    network trained in float32) and float32 elsewhere: on the CPU, the fills the bundled weights
    were measured with, the same bytes on every CPU. `bf16` on the CPU is up
    to 1.9x faster where the cores have AVX-512 BF16 or AMX, its fills a few levels off float32's
    (README, "Latency"); the others as `autocast_dtype`.
    """
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return autocast_dtype(device, precision)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The mixed-precision dtype to train in, None for float32.

    `auto` picks bf16 where the hardware runs it fast (CUDA with bf16, CPUs with AMX tiles: about
    2.6x on a 2-core Sapphire Rapids, benchmarks/training_speed.py), fp16 on older CUDA, else fp32.
    """
    if precision not in PRECISIONS:
        raise InpaintError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu":
        if precision == "fp16":
            raise InpaintError("--precision fp16 needs CUDA; on the CPU use bf16 or fp32")
        if precision == "bf16" or torch.cpu._is_amx_tile_supported():
            return torch.bfloat16
        return None
    if precision != "auto":
        raise InpaintError(f"--precision {precision} is supported on cuda and cpu, not {device.type}")
    return None

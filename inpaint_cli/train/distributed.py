"""Data-parallel training over the processes `torchrun` starts, on one machine or several.

`torchrun` describes the job in environment variables (RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address); `join` reads them and joins the process group: NCCL on CUDA, each process
on the GPU of its LOCAL_RANK, gloo on the CPU. Without them (or with one process) nothing here
runs and training is exactly the single-process loop.

`--batch` is the global batch: rank r trains rows [r * n, (r + 1) * n) of each step's batch, the
rows one process would draw (`BatchSampler`), and the processes' gradients are averaged before
every optimiser step, so N processes train the one-process run of the same global batch.

Gradients are averaged by `average_gradients` after each backward pass rather than by wrapping
the networks in `DistributedDataParallel`: the recipes call a network several times before one
backward (GLCIC's critic on real and completed images, then on crops), differentiate it twice
(LaMa's R1 and DeepFill v1's gradient penalty: DDP does not support double backward), and
leave it unused in some phases (GLCIC's critic-only phase, PConv's frozen encoder norms), each of
which clashes with DDP's one-forward-one-backward reducer. The cost is that the all-reduce (one
flat buffer per update) no longer overlaps the backward pass.

Batch norm must see the global batch for the run to be the one-process run: `synchronise_batch_norm`
swaps every batch-norm layer of the trained networks for `SynchronisedBatchNorm`, whose training
statistics are those of all processes' rows (torch's `SyncBatchNorm` runs on GPUs only, and its
backward cannot be differentiated again, which LaMa's R1 penalty through a batch-norm critic
needs). Frozen networks (perceptual backbones) and layers in eval mode use running statistics and
need nothing.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from inpaint_cli.errors import InpaintError

T = TypeVar("T")

#: how long a process waits for another's slow set-up (building the image cache of a big folder)
SETUP_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: global rank, number of processes, rank on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes checkpoints, exports, sample grids and the log."""
        return self.rank == 0

    def share(self, batch: int) -> range:
        """This process's rows of a global batch of `batch` images."""
        if batch % self.world:
            raise InpaintError(
                f"--batch {batch} does not split evenly over {self.world} processes: pass a multiple of {self.world}"
            )
        rows = batch // self.world
        return range(self.rank * rows, (self.rank + 1) * rows)


SINGLE_PROCESS = Ranks()
_setup_group: dist.ProcessGroup | None = None  # gloo, with a long timeout, for `main_first`


def launched_rank() -> int:
    """The rank torchrun gave this process (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def join(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes, if any; returns the ranks and the device this
    process trains on (under torchrun with CUDA: the GPU of its LOCAL_RANK)."""
    global _setup_group
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not dist.is_initialized() and world == 1:
        return SINGLE_PROCESS, device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index is not None and device.index != local_rank and world > 1:
            raise InpaintError(f"under torchrun each process trains on the GPU of its LOCAL_RANK: pass --device cuda, not {device}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise InpaintError(f"distributed training runs on CUDA GPUs or on the CPU, not on {device.type}")
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(dist.destroy_process_group)
    if _setup_group is None:
        _setup_group = dist.new_group(backend="gloo", timeout=SETUP_TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank), device


def main_first(ranks: Ranks, action: Callable[[], T]) -> T:
    """`action()` in every process, in turns: rank 0 first (it builds what is missing, e.g. the
    image cache), then the first process of every other machine (whose disk may not be rank 0's),
    then the rest, which find it built. Nothing is built by two processes at once."""
    if ranks.world == 1:
        return action()
    result: T | None = None
    for turn in (ranks.rank == 0, ranks.rank != 0 and ranks.local_rank == 0, ranks.local_rank != 0):
        if turn:
            result = action()
        dist.barrier(group=_setup_group)
    return result  # type: ignore[return-value]


def average_gradients(parameters: Iterable[nn.Parameter], world: int) -> None:
    """Replace every gradient by its mean over the processes (one all-reduce per dtype)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for parameter in parameters:
        if parameter.grad is not None:
            by_dtype.setdefault(parameter.grad.dtype, []).append(parameter.grad)
    for grads in by_dtype.values():
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= world
        start = 0
        for grad in grads:
            grad.copy_(flat[start : start + grad.numel()].view_as(grad))
            start += grad.numel()


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Logged figures averaged over the processes (each logs its own rows' losses)."""
    if not dist.is_initialized() or not values:
        return values
    keys = sorted(values)
    total = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return {key: float(value) / dist.get_world_size() for key, value in zip(keys, total.tolist())}


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce(SUM); its gradient is the same sum (every process's loss depends on the total),
    itself differentiable, so a gradient penalty can differentiate through it again."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverProcesses.apply(grad)


class SynchronisedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are the global batch's: each process's per-channel
    mean and variance are gathered and combined (law of total variance over equal shares), so
    every process normalises with what one process would compute over the whole batch, running
    statistics included. In eval mode it is plain batch norm. Same parameters and buffers as the
    layer it replaces, so checkpoints and exports are unchanged."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(input)
        world, rank = dist.get_world_size(), dist.get_rank()
        dims = [0, *range(2, input.dim())]
        variance, mean = torch.var_mean(input.float(), dim=dims, correction=0)
        own = torch.stack([mean, variance])
        shares = _SumOverProcesses.apply(
            torch.stack([own if r == rank else torch.zeros_like(own) for r in range(world)])
        )
        means, variances = shares[:, 0], shares[:, 1]
        mean = means.mean(0)
        variance = (variances + (means - mean) ** 2).mean(0)
        if self.track_running_stats:
            self._update_running_statistics(mean, variance, world * input.numel() // input.shape[1])
        shape = (1, -1) + (1,) * (input.dim() - 2)
        output = (input.float() - mean.view(shape)) * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output.to(input.dtype)

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, variance: torch.Tensor, count: int) -> None:
        """As `F.batch_norm`: an exponential average at `momentum` (None: a cumulative mean) of
        the mean and the unbiased variance."""
        self.num_batches_tracked += 1
        rate = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), rate)
        unbiased = variance * count / max(count - 1, 1)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), rate)


def synchronise_batch_norm(module: nn.Module) -> int:
    """Swap each batch-norm layer of `module` (in place) for a `SynchronisedBatchNorm` holding
    the same tensors; call before the optimiser is built. Returns the number of layers swapped."""
    swapped = 0
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SynchronisedBatchNorm):
            tensors = [*child.parameters(), *child.buffers()]
            synchronised = SynchronisedBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats,
                device=tensors[0].device if tensors else None,
            )
            synchronised.load_state_dict(child.state_dict())
            synchronised.train(child.training)
            for own, original in zip(synchronised.parameters(), child.parameters()):
                own.requires_grad_(original.requires_grad)
            setattr(module, name, synchronised)
            swapped += 1
        else:
            swapped += synchronise_batch_norm(child)
    return swapped

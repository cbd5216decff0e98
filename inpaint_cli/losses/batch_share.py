"""What a loss must know when data-parallel training (`inpaint_cli.train.distributed`) splits the
global batch over processes: each process holds rows `[rank * n, (rank + 1) * n)` of it, and
the processes' gradients are averaged.

A loss that is a mean over rows needs nothing: the mean of the processes' means is the global
mean. Two things do need care, and these functions give them their one-process values:
- a normaliser taken from the whole batch (a hole's area, a mask's mean): `mean_over_processes`;
- random numbers drawn per row inside a step (a gradient penalty's mix): `rand_per_row`.
In one process both are exactly what they replace, so a single-process run is unchanged.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    """A batch statistic (not differentiated) averaged over the processes; `value` itself in one.

    For a mean (a mask's mean) this is the global batch's. For a sum (a hole area) it is the
    global sum over the number of processes, which is what a process's own sum must be divided
    by: averaging the processes' gradients divides by that number again.
    """
    _, world = _rank_and_world()
    if world == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world


def rand_per_row(rows: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`torch.rand(rows)` for this process's rows: the global batch's draw, sliced, so every row
    gets the number it gets in one process and torch's RNG advances as it does there."""
    rank, world = _rank_and_world()
    return torch.rand(rows * world, device=device, dtype=dtype)[rank * rows : (rank + 1) * rows]

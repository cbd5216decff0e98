"""An exponential moving average of a network's weights (Polyak averaging), exported in place of
the last step's weights: it steadies fills that swing from one checkpoint to the next."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def _copy_of_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


class WeightAverage:
    """avg <- r avg + (1 - r) w after each update, r = min(decay, (1 + t) / (10 + t)) at update t
    (the warm-up of TensorFlow's ExponentialMovingAverage), so the first updates are not swamped
    by the starting weights. Integer buffers (batch-norm counters) are copied, not averaged."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"the weight-average decay must lie between 0 and 1, got {decay}")
        self.decay = decay
        self.updates = 0
        self.weights = _copy_of_weights(module)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        rate = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, tensor in module.state_dict().items():
            average = self.weights[name]
            if average.is_floating_point():
                average.lerp_(tensor.detach(), 1 - rate)
            else:
                average.copy_(tensor)

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """`module` holds the averaged weights inside the block and its own again after it."""
        own = _copy_of_weights(module)
        module.load_state_dict(self.weights)
        try:
            yield module
        finally:
            module.load_state_dict(own)

    def state(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": self.weights}

    def load(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, tensor in state["weights"].items():
            self.weights[name].copy_(tensor)

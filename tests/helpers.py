"""Helpers shared by the architecture tests (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inpaint_cli.archs.base import Phase, TrainingRecipe


def gradient_image(batch: int, size: int) -> torch.Tensor:
    """`batch` copies of a smooth size x size RGB ramp in [0, 1]: (x, y, (x + y) / 2)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, (x + y) / 2])[None].repeat(batch, 1, 1, 1)


def _detached(output: Any) -> Any:
    if isinstance(output, dict):
        return {key: value.detach() for key, value in output.items()}
    return output.detach()


def train_on_fixed_batch(
    recipe: TrainingRecipe,
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    phase: Phase,
    image: torch.Tensor,
    mask: torch.Tensor,
    steps: int,
) -> tuple[list[float], dict[str, float], Any]:
    """`steps` training steps as the loop runs them (one D update on the detached output, then
    one G update with D frozen) on one batch. Returns the `rec` log of every step, the last step's
    generator logs and its output."""
    history = []
    for _ in range(steps):
        output = recipe.generate(generator, image, mask)
        discriminator.requires_grad_(True)
        d_loss, _ = recipe.discriminator_loss(discriminator, image, mask, _detached(output))
        optimizers["discriminator"].zero_grad()
        d_loss.backward()
        optimizers["discriminator"].step()
        discriminator.requires_grad_(False)
        g_loss, logs = recipe.generator_loss(discriminator, image, mask, output, phase)
        optimizers["generator"].zero_grad()
        g_loss.backward()
        optimizers["generator"].step()
        history.append(logs["rec"])
    return history, logs, output

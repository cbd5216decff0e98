"""What every architecture provides: a generator with one `inpaint` interface, an `ArchSpec` that
registers it (defined, free of torch, in `inpaint_cli.registry`; re-exported here), and a
`TrainingRecipe` that the one training loop (`inpaint_cli.train`) drives.

Architectures know nothing of files, masks on disk or the CLI (diffusers' split of models from
pipelines); `inpaint_cli.fill` pads, windows and composites, `inpaint_cli.train` owns the loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inpaint_cli.registry import ArchSpec as ArchSpec  # re-exported: where every arch file imports it
from inpaint_cli.registry import ArrayFill


class InpaintModel(nn.Module):
    """Base class of every generator, classical methods included (wrapped).

    `inpaint(image, mask)` is the single inference interface: `image` is float N x 3 x H x W in
    [0, 1], `mask` is N x 1 x H x W with 1 = hole. It returns N x 3 x H x W in [0, 1] whose hole
    pixels are the fill (known pixels may differ: `fill.py` composites). Each architecture does its
    own normalisation inside. H and W must be multiples of `size_multiple`, or equal `fixed_size`
    where that is set; `fill.py` pads or windows to get there.
    """

    size_multiple: int = 1
    fixed_size: int | None = None
    #: fixed-size models: the window side `fill.py` gives a hole, as a multiple of the hole's extent
    #: (the share of the window the holes took in training)
    window_per_hole: float = 2.0
    min_size: int = 1  # smallest side the network accepts; fill.py pads smaller inputs up to it

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ArrayInpainter(InpaintModel):
    """A method that fills uint8 arrays (`ArchSpec.fill_array`: the classical ones) as an
    `InpaintModel`, one image at a time on the CPU; inputs on another device come back there.
    `inpaint fill` and `inpaint eval` call the array function directly, without torch."""

    def __init__(self, fill_array: ArrayFill, config: Any) -> None:
        super().__init__()
        self.fill_array, self.config = fill_array, config

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        holes = mask.detach().cpu() > 0.5
        filled = [
            torch.from_numpy(np.ascontiguousarray(self.fill_array(self.config, rgb, hole)))
            for rgb, hole in zip(pixels.permute(0, 2, 3, 1).numpy(), holes[:, 0].numpy())
        ]
        out = torch.stack(filled).permute(0, 3, 1, 2).float() / 255
        return out.to(device=image.device, dtype=image.dtype)


@dataclass(frozen=True)
class Phase:
    """One stage of a training schedule (e.g. GLCIC's completion-only, discriminator-only, joint)."""

    name: str
    steps: int | None  # None: runs until training ends
    train_generator: bool = True
    train_discriminator: bool = False


@dataclass(frozen=True)
class TrainOptions:
    """What the user chose on `inpaint train` that a recipe needs to know."""

    size: int  # square training crop
    batch: int
    steps: int  # total steps over all phases
    lr: float | None = None  # None: the recipe's own learning rates
    phase_steps: tuple[int, ...] | None = None  # explicit lengths of all phases but the last
    backbone: str | None = None  # safetensors file of a pretrained backbone (perceptual losses)


#: what `inpaint train` passes a recipe when no flag says otherwise (`TrainSettings`' defaults)
DEFAULT_TRAIN_OPTIONS = TrainOptions(size=128, batch=16, steps=20_000)


Logs = dict[str, float]


class TrainingRecipe(ABC):
    """An architecture's training: discriminator, optimisers, phases, masks and losses.

    The loop calls, per step: `generate` once (with gradients when the generator trains), then
    `critic_steps` times `discriminator_loss` (the first on the detached output, later ones on new
    batches), then `generator_loss`. Everything that draws random numbers uses torch's global RNG,
    which the loop seeds from (seed, step), so a resumed run repeats a straight one exactly.
    Under data-parallel training each process holds a share of the batch: random numbers drawn
    per row and normalisers taken from the whole batch go through `inpaint_cli.losses.batch_share`.
    Discriminators return logits (autocast rejects BCELoss after a sigmoid).
    """

    #: training-mask kinds (names understood by `inpaint_cli.masks.draw_mask`) and their weights
    mask_kinds: tuple[tuple[str, float], ...] = (("box", 1.0),)
    #: discriminator updates per generator update
    critic_steps: int = 1
    #: clip each network's gradient norm to this before its optimiser steps (LaMa: 1)
    grad_clip_norm: float | None = None
    #: the paper's moving average of the generator, exported when `--ema` is not given (Co-ModGAN
    #: and MAT export G_ema); None: the last step's weights
    default_ema_decay: float | None = None

    def __init__(self, config: Any, options: TrainOptions) -> None:
        self.config = config
        self.options = options

    @abstractmethod
    def phases(self) -> list[Phase]:
        """The schedule; lengths scale with `options.steps` unless `options.phase_steps` is set."""

    @classmethod
    def required_size(cls, config: Any) -> int | None:
        """The one `options.size` this config trains at (a fixed-input network), or None: any."""
        return None

    def build_discriminator(self) -> nn.Module | None:
        """The critic(s) training uses (None: none); `inpaint models` reports the same through
        `inpaint_cli.registry.critics_for`."""
        return None

    def enter_phase(
        self, phase: Phase, generator: InpaintModel, optimizers: dict[str, torch.optim.Optimizer]
    ) -> None:
        """Called before the first step run in `phase`, also after a resume inside it (idempotent):
        e.g. PConv's fine-tuning lowers the learning rate and freezes the encoder's batch norm."""

    @abstractmethod
    def optimizers(
        self, generator: nn.Module, discriminator: nn.Module | None
    ) -> dict[str, torch.optim.Optimizer]:
        """Keys `generator` and, where there is one, `discriminator`."""

    def adam(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        lr: float,
        discriminator_lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> dict[str, torch.optim.Optimizer]:
        """Adam for each network. `options.lr` (`--lr`), when set, replaces the generator's `lr`
        and scales the discriminator's rate by the same factor, keeping the recipe's ratio."""
        scale = self.options.lr / lr if self.options.lr else 1.0
        optimizers = {"generator": torch.optim.Adam(generator.parameters(), lr * scale, betas=betas)}
        if discriminator is not None:
            rate = (lr if discriminator_lr is None else discriminator_lr) * scale
            optimizers["discriminator"] = torch.optim.Adam(discriminator.parameters(), rate, betas=betas)
        return optimizers

    def generate(self, generator: InpaintModel, image: torch.Tensor, mask: torch.Tensor) -> Any:
        """The generator's training output; default: `inpaint` (override for multi-stage nets)."""
        return generator.inpaint(image, mask)

    def prediction(self, output: Any) -> torch.Tensor:
        """The final fill (N x 3 x H x W in [0, 1], uncomposited) from `generate`'s output."""
        return output

    def discriminator_loss(
        self, discriminator: nn.Module, image: torch.Tensor, mask: torch.Tensor, output: Any
    ) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    @abstractmethod
    def generator_loss(
        self,
        discriminator: nn.Module | None,
        image: torch.Tensor,
        mask: torch.Tensor,
        output: Any,
        phase: Phase,
    ) -> tuple[torch.Tensor, Logs]:
        """The generator's loss in `phase` (adversarial terms only where the phase uses them)."""

    def scaled_phases(self, defaults: tuple[int, ...], names: tuple[str, ...], flags) -> list[Phase]:
        """Phases whose lengths are `defaults` scaled to `options.steps` (or `options.phase_steps`).

        `defaults` are the paper's lengths of all phases (the last one included), `flags` the
        (train_generator, train_discriminator) pair of each; the last phase runs to the end.
        """
        total = self.options.steps
        if self.options.phase_steps is not None:
            lengths = list(self.options.phase_steps)
            if len(lengths) != len(defaults) - 1:
                raise ValueError(
                    f"{len(defaults) - 1} phase lengths expected ({', '.join(names[:-1])}),"
                    f" got {len(lengths)}"
                )
        else:
            paper_total = sum(defaults)
            lengths = [round(total * d / paper_total) for d in defaults[:-1]]
        phases = [
            Phase(name, steps, *flag) for name, steps, flag in zip(names, lengths, flags)
        ]
        phases.append(Phase(names[-1], None, *flags[-1]))
        return phases


def count_parameters(module: nn.Module | None) -> int:
    """Learnable parameters (spectral-norm vectors and other buffers excluded)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters())

"""The one training loop for every architecture; each supplies its `TrainingRecipe`.

Every step reseeds torch from (seed, step) and draws its batch from (seed, step): resuming from a
checkpoint repeats a straight run exactly. Under torchrun the processes split each step's batch and
average their gradients (`inpaint_cli.train.distributed`); rank 0 alone writes to the run folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from inpaint_cli.archs.base import DEFAULT_TRAIN_OPTIONS, Phase, TrainingRecipe, TrainOptions
from inpaint_cli.checkpoint import load_training_state, training_state_exists
from inpaint_cli.devices import autocast_dtype, pick_device
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, get_config
from inpaint_cli.train.data import BatchPrefetcher, BatchSampler, ImageCache, as_tensors, find_training_images
from inpaint_cli.train.distributed import average_gradients, join, main_first, mean_over_ranks, synchronise_batch_norm
from inpaint_cli.train.ema import WeightAverage
from inpaint_cli.train.export import export, exported_weights
from inpaint_cli.train.state import (
    CHECKPOINT_DIR,
    LOG_FILE,
    restore_checkpoint,
    save_checkpoint,
    warm_start,
)

CHANNELS_LAST = torch.channels_last
PREVIEW_STREAM = 999_999  # the substep whose batch the sample grids show (never a training batch)


@dataclass
class TrainSettings:
    """Everything `inpaint train` decides; stored in the checkpoint so `--resume` needs no flags."""

    arch: str
    out_dir: str
    data_dirs: list[str]
    config: str | None = None
    size: int = DEFAULT_TRAIN_OPTIONS.size
    batch: int = DEFAULT_TRAIN_OPTIONS.batch
    steps: int = DEFAULT_TRAIN_OPTIONS.steps
    lr: float | None = None
    phase_steps: list[int] | None = None
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 50
    cache_side: int = 256  # images are resized so their shorter side is this, then cropped
    backbone: str | None = None
    masks: list[str] | None = None  # training-hole kinds ("kind" or "kind@weight"); default: the recipe's
    init_weights: str | None = None  # warm start the generator from a release file
    ema_decay: float | None = None  # export a moving average of the generator's weights (None: its own)
    data_note: str = ""  # what the data is and its terms, for the export's metadata
    license: str = "the terms of the training data"
    extra: dict[str, Any] = field(default_factory=dict)

    def train_options(self) -> TrainOptions:
        """What the recipe is told of these settings."""
        return TrainOptions(
            size=self.size,
            batch=self.batch,
            steps=self.steps,
            lr=self.lr,
            phase_steps=tuple(self.phase_steps) if self.phase_steps else None,
            backbone=self.backbone,
        )


@dataclass
class TrainResult:
    step: int
    export_path: Path
    history: list[dict[str, float]]  # the logged rows


def _seed_step(seed: int, step: int) -> None:
    state = np.random.SeedSequence([seed, step]).generate_state(1)[0]
    torch.manual_seed(int(state))


def sample_grid(image: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor) -> np.ndarray:
    """Rows of [input with the hole in white | completed | original] as uint8 H x W x 3."""
    shown = image * (1 - mask) + mask
    completed = image * (1 - mask) + filled * mask
    rows = [torch.cat([s, c, o], dim=2) for s, c, o in zip(shown, completed, image)]
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    return (grid.permute(1, 2, 0).cpu().float().numpy() * 255).round().astype(np.uint8)


class Trainer:
    """Owns the networks, optimisers and data of one run; `run()` trains to `settings.steps`.

    Checkpoints and warm starts are `inpaint_cli.train.state`, release files `inpaint_cli.train.export`.
    """

    def __init__(
        self,
        settings: TrainSettings,
        device: str = "auto",
        progress: Callable[[int, int, str, dict[str, float]], None] | None = None,
        precision: str = "auto",
        workers: int = 0,
    ) -> None:
        self.settings = settings
        self.ranks, self.device = join(pick_device(device))
        self.precision = precision
        self.workers = workers  # loader processes (0: one thread); they never change the batches
        self.progress = progress
        self.spec = get_arch(settings.arch)
        if not self.spec.learned or self.spec.recipe is None:
            raise InpaintError(f"{settings.arch} has no weights to train")
        self.config_name = settings.config or self.spec.default_config
        self.config = get_config(self.spec, self.config_name)
        self.options = settings.train_options()
        self.out_dir = Path(settings.out_dir)
        self.export_path = self.out_dir / f"{settings.arch}-{self.config_name}.safetensors"
        self._build()
        self.step = 0
        self.wall_time = 0.0
        self.history: list[dict[str, float]] = []
        self._entered_phase: Phase | None = None  # the phase `recipe.enter_phase` last prepared
        self._prefetcher: BatchPrefetcher | None = None  # draws the coming batches while `run` trains

    def _build(self) -> None:
        torch.manual_seed(self.settings.seed)
        try:
            self.recipe: TrainingRecipe = self.spec.recipe(self.config, self.options)
            self.phases = self.recipe.phases()
        except ValueError as error:
            raise InpaintError(str(error)) from None
        # channels-last convolutions run about 20 % faster on the CPU (benchmarks/training_speed.py)
        self.generator = self._network(self.spec.build_generator(self.recipe.config))
        multiple, minimum = self.generator.size_multiple, self.generator.min_size
        if self.settings.size % multiple or self.settings.size < minimum:  # before anything is written
            raise InpaintError(f"{self.spec.name} trains on sizes that are multiples of {multiple} (at least {minimum}),"
                               f" got --size {self.settings.size}")
        self.warm_start: dict[str, Any] | None = None  # where the generator started: see `start_from`
        self._start_average()
        discriminator = self.recipe.build_discriminator()
        self.discriminator = None if discriminator is None else self._network(discriminator)
        self.optimizers = self.recipe.optimizers(self.generator, self.discriminator)
        self.autocast_dtype = autocast_dtype(self.device, self.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        rows = self.ranks.share(self.settings.batch)
        paths = find_training_images([Path(d) for d in self.settings.data_dirs])
        side = max(self.settings.cache_side, self.settings.size)
        cache = main_first(self.ranks, lambda: ImageCache.build(paths, side, self.out_dir / "cache"))
        self.image_count = len(cache)  # the readable ones
        mask_kinds = self.recipe.mask_kinds
        if self.settings.masks:
            mask_kinds = tuple(_parse_mask_choice(text) for text in self.settings.masks)
        self.sampler = BatchSampler(cache, self.settings.size, self.settings.batch, mask_kinds, self.settings.seed, rows)

    def _network(self, network: nn.Module) -> nn.Module:
        """A network on the device; under data parallelism with its batch norm synchronised, so
        its statistics are the global batch's, as in one process (GLCIC, the Context Encoder,
        PConv and LaMa have batch norm; DeepFill v1, v2 and AOT-GAN none)."""
        network = network.to(self.device, memory_format=CHANNELS_LAST)
        if self.ranks.world > 1:
            synchronise_batch_norm(network)
        return network

    def _start_average(self) -> None:
        self.average: WeightAverage | None = None
        decay = self.settings.ema_decay if self.settings.ema_decay is not None else self.recipe.default_ema_decay
        if decay is not None:
            try:
                self.average = WeightAverage(self.generator, decay)
            except ValueError as error:
                raise InpaintError(str(error)) from None

    def phase_at(self, step: int) -> Phase:
        start = 0
        for phase in self.phases:
            if phase.steps is None or step < start + phase.steps:
                return phase
            start += phase.steps
        return self.phases[-1]

    # -- state and release -----------------------------------------------------------------------

    def start_from(self, location: str) -> None:
        """Warm start from a release file (`state.warm_start`); the average restarts from it."""
        warm_start(self, location)
        self._start_average()

    def restore(self, state: dict[str, Any]) -> None:
        restore_checkpoint(self, state)

    def save(self) -> None:
        """Checkpoint (rank 0) and export (every process takes part: an averaged export's batch-norm
        statistics are estimated over the global batches; rank 0 writes)."""
        if self.ranks.main:
            save_checkpoint(self)
        self.export()

    def export(self) -> Path:
        return export(self)

    # -- the step --------------------------------------------------------------------------------

    def autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _update(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.ranks.world > 1:
            average_gradients((p for group in optimizer.param_groups for p in group["params"]), self.ranks.world)
        if self.recipe.grad_clip_norm is not None:
            self.scaler.unscale_(optimizer)
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(parameters, self.recipe.grad_clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def train_step(self) -> dict[str, float]:
        _seed_step(self.settings.seed, self.step)
        phase = self.phase_at(self.step)
        if phase is not self._entered_phase:
            self.recipe.enter_phase(phase, self.generator, self.optimizers)
            self._entered_phase = phase
        image, mask = self._batch(self.step)
        self.generator.train(phase.train_generator)
        logs: dict[str, float] = {}
        with _batch_norm_fits(self.settings):
            with self.autocast(), torch.set_grad_enabled(phase.train_generator):
                output = self.recipe.generate(self.generator, image, mask)
            if phase.train_discriminator and self.discriminator is not None:
                logs.update(self._train_discriminator(image, mask, output))
            if phase.train_generator:
                logs.update(self._train_generator(image, mask, output, phase))
        self.step += 1
        return logs

    def _train_discriminator(self, image: torch.Tensor, mask: torch.Tensor, output: Any) -> dict[str, float]:
        """`critic_steps` updates: the first on this step's output, later ones on new batches."""
        self.discriminator.requires_grad_(True)
        for substep in range(self.recipe.critic_steps):
            if substep == 0:
                d_image, d_mask, d_output = image, mask, _detached(output)
            else:
                d_image, d_mask = as_tensors(*self.sampler.draw(self.step, substep), device=self.device)
                with self.autocast(), torch.no_grad():
                    d_output = self.recipe.generate(self.generator, d_image, d_mask)
            with self.autocast():
                d_loss, d_logs = self.recipe.discriminator_loss(self.discriminator, d_image, d_mask, d_output)
            self._update("discriminator", d_loss)
        return d_logs

    def _train_generator(self, image: torch.Tensor, mask: torch.Tensor, output: Any, phase: Phase) -> dict[str, float]:
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        with self.autocast():
            g_loss, g_logs = self.recipe.generator_loss(self.discriminator, image, mask, output, phase)
        self._update("generator", g_loss)
        if self.average is not None:
            self.average.update(self.generator)
        return g_logs

    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of `step` on the device, drawn ahead by the prefetcher while `run` trains."""
        if self._prefetcher is None:
            return as_tensors(*self.sampler.draw(step), device=self.device)
        return as_tensors(*self._prefetcher.get(step), device=self.device)

    def write_samples(self) -> Path:
        """A fixed preview batch (the same every time) filled by the exported weights in eval mode."""
        image, mask = self.sampler.sample(step=0, substep=PREVIEW_STREAM, rows=range(min(4, self.settings.batch)))
        image, mask = image.to(self.device), mask.to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad(), self.autocast(), exported_weights(self):
            filled = self.recipe.prediction(self.recipe.generate(self.generator, image, mask)).float()
        self.generator.train(was_training)
        path = self.out_dir / "samples" / f"step-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample_grid(image, mask, filled)).save(path)
        return path

    # -- the loop --------------------------------------------------------------------------------

    @contextmanager
    def prefetching(self) -> Iterator[None]:
        """Within it, `train_step` takes batches that `workers` processes (or a thread) drew ahead."""
        self._prefetcher = BatchPrefetcher(self.sampler, self.workers)
        try:
            yield
        finally:
            self._prefetcher.close()
            self._prefetcher = None

    def run(self, time_limit_s: float | None = None) -> TrainResult:
        """Train to `settings.steps`, or until `time_limit_s` of wall time has passed (then the
        checkpoint and export of the step reached are written, and `--resume` continues)."""
        settings = self.settings
        totals: dict[str, float] = {}
        count, window_start = 0, time.perf_counter()
        deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        with self.prefetching():
            while self.step < settings.steps and not self._past(deadline):
                started = time.perf_counter()
                logs = self.train_step()
                self.wall_time += time.perf_counter() - started
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
                if self.step % settings.log_every == 0 or self.step == settings.steps:
                    self._log(totals, count, time.perf_counter() - window_start)
                    totals, count, window_start = {}, 0, time.perf_counter()
                if self.progress is not None and self.ranks.main:
                    self.progress(self.step, settings.steps, self.phase_at(self.step - 1).name, self.history[-1] if self.history else {})
                if settings.sample_every and self.step % settings.sample_every == 0 and self.ranks.main:
                    self.write_samples()
                if settings.checkpoint_every and self.step % settings.checkpoint_every == 0:
                    self.save()
            self.save()
        return TrainResult(self.step, self.export_path, self.history)

    def _past(self, deadline: float | None) -> bool:
        """Whether the time limit has passed, for every process alike (any process's clock decides)."""
        if deadline is None:
            return False
        return mean_over_ranks({"past": float(time.monotonic() >= deadline)}, self.device)["past"] > 0

    def _log(self, totals: dict[str, float], count: int, elapsed: float) -> None:
        """One row of the losses' means over the last `count` steps (and over the processes), kept
        and appended to the log by rank 0."""
        means = mean_over_ranks({k: v / count for k, v in totals.items()}, self.device)
        row = {"step": self.step, **means}
        row["images_per_s"] = count * self.settings.batch / max(elapsed, 1e-9)
        self.history.append(row)
        if self.ranks.main:
            with (self.out_dir / LOG_FILE).open("a") as log:
                log.write(json.dumps({"phase": self.phase_at(self.step - 1).name, **row}) + "\n")


def _parse_mask_choice(text: str) -> tuple[str, float]:
    """"kind" or "kind@weight" -> (kind, weight), the kind checked against the generators."""
    from inpaint_cli.masks import draw_mask

    kind, _, weight = text.partition("@")
    try:
        draw_mask(kind, np.random.default_rng(0), 64, 64)
        return kind, float(weight or 1)
    except ValueError:
        raise InpaintError(f"bad --masks {text!r}: expected KIND or KIND@WEIGHT with a known kind") from None


def _detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (tuple, list)):
        return type(output)(_detached(item) for item in output)
    if isinstance(output, dict):
        return {key: _detached(value) for key, value in output.items()}
    return output


@contextmanager
def _batch_norm_fits(settings: TrainSettings) -> Iterator[None]:
    """torch's refusal of a batch-norm layer that sees one value per channel (a batch of one
    whose crop the network shrinks to a single position) as one clear error."""
    try:
        yield
    except ValueError as error:
        if "more than 1 value per channel" not in str(error):
            raise
        raise InpaintError(f"--batch {settings.batch} with --size {settings.size} leaves a batch-norm layer one value "
                           "per channel to normalise; raise --batch or --size") from None


#: settings a `--resume` may change: none of them alters what the steps compute (exports and sample
#: grids draw their own batches and leave the training state as it was)
RESUME_CHANGES = ("steps", "checkpoint_every", "sample_every")


def start_training(
    settings: TrainSettings,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: Callable[[int, int, str, dict[str, float]], None] | None = None,
    resume_changes: Mapping[str, int] | None = None,
    precision: str = "auto",
    workers: int = 0,
) -> Trainer:
    """A ready Trainer: fresh (the output folder must hold no checkpoint) or resumed from it, with
    `resume_changes` (of `RESUME_CHANGES`) replacing the stored settings."""
    checkpoint = Path(settings.out_dir) / CHECKPOINT_DIR
    if resume:
        state = load_training_state(checkpoint)
        stored = TrainSettings(**state["settings"])
        if stored.arch != settings.arch:
            raise InpaintError(f"{checkpoint} holds a {stored.arch} run, not {settings.arch}")
        if set(resume_changes or {}) - set(RESUME_CHANGES):
            raise ValueError(f"a resume changes only {', '.join(RESUME_CHANGES)}, not {sorted(resume_changes)}")
        stored = replace(stored, **(resume_changes or {}))
        trainer = Trainer(stored, device=device, progress=progress, precision=precision, workers=workers)
        trainer.restore(state)
        return trainer
    if training_state_exists(checkpoint):
        raise InpaintError(f"{settings.out_dir} already holds a training run; pass --resume to continue it or pick another --out")
    trainer = Trainer(settings, device=device, progress=progress, precision=precision, workers=workers)
    if settings.init_weights:
        trainer.start_from(settings.init_weights)
    return trainer

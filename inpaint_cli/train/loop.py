"""The one training loop for every architecture; each supplies its `TrainingRecipe`.

Model setup (`_build`) and data sampling (`BatchSampler`) are kept apart from the step so that
DistributedDataParallel can wrap them later. Every step reseeds torch from (seed, step) and draws
its batch from (seed, step): resuming from a checkpoint repeats a straight run exactly.
"""

from __future__ import annotations

import json
import platform
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from inpaint_cli.archs.base import Phase, TrainingRecipe, TrainOptions
from inpaint_cli.checkpoint import export_release, load_release, load_training_state, save_training_state, training_state_exists
from inpaint_cli.devices import autocast_dtype, pick_device
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, get_config
from inpaint_cli.train.data import BatchPrefetcher, BatchSampler, ImageCache, as_tensors, find_training_images
from inpaint_cli.train.ema import WeightAverage

CHECKPOINT_DIR = "checkpoint"
CHANNELS_LAST = torch.channels_last
PREVIEW_STREAM = 999_999  # the substep whose batch the sample grids show (never a training batch)
BATCH_NORM_STREAM = 1_000_000  # first substep of the batches an export's batch-norm statistics come from
BATCH_NORM_IMAGES = 2048  # fewer (256) left a Context Encoder's statistics noisy enough to cost 0.1 dB
#: training figures of a warm-start source kept in the export's lineage
LINEAGE_KEYS = ("config", "step", "image_size", "batch", "hardware", "wall_time_s")


@dataclass
class TrainSettings:
    """Everything `inpaint train` decides; stored in the checkpoint so `--resume` needs no flags."""

    arch: str
    out_dir: str
    data_dirs: list[str]
    config: str | None = None
    size: int = 128
    batch: int = 16
    steps: int = 20_000
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


@dataclass
class TrainResult:
    step: int
    export_path: Path
    history: list[dict[str, float]]  # the logged rows


def _seed_step(seed: int, step: int) -> None:
    state = np.random.SeedSequence([seed, step]).generate_state(1)[0]
    torch.manual_seed(int(state))


def _phase_at(phases: list[Phase], step: int) -> Phase:
    start = 0
    for phase in phases:
        if phase.steps is None or step < start + phase.steps:
            return phase
        start += phase.steps
    return phases[-1]


def _hardware(device: torch.device, dtype: torch.dtype | None) -> str:
    precision = "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), {precision}"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, {precision}"


def sample_grid(image: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor) -> np.ndarray:
    """Rows of [input with the hole in white | completed | original] as uint8 H x W x 3."""
    shown = image * (1 - mask) + mask
    completed = image * (1 - mask) + filled * mask
    rows = [torch.cat([s, c, o], dim=2) for s, c, o in zip(shown, completed, image)]
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    return (grid.permute(1, 2, 0).cpu().float().numpy() * 255).round().astype(np.uint8)


class Trainer:
    """Owns the networks, optimisers and data of one run; `run()` trains to `settings.steps`."""

    def __init__(
        self,
        settings: TrainSettings,
        device: str = "auto",
        progress: Callable[[int, int, str, dict[str, float]], None] | None = None,
        precision: str = "auto",
        workers: int = 0,
    ) -> None:
        self.settings = settings
        self.device = pick_device(device)
        self.precision = precision
        self.workers = workers  # loader processes (0: one thread); they never change the batches
        self.progress = progress
        self.spec = get_arch(settings.arch)
        if not self.spec.learned or self.spec.recipe is None:
            raise InpaintError(f"{settings.arch} has no weights to train")
        self.config_name = settings.config or self.spec.default_config
        self.config = get_config(self.spec, self.config_name)
        self.options = TrainOptions(
            size=settings.size,
            batch=settings.batch,
            steps=settings.steps,
            lr=settings.lr,
            phase_steps=tuple(settings.phase_steps) if settings.phase_steps else None,
            backbone=settings.backbone,
        )
        self.out_dir = Path(settings.out_dir)
        self.export_path = self.out_dir / f"{settings.arch}-{self.config_name}.safetensors"
        self._build()
        self.step = 0
        self.wall_time = 0.0
        self.history: list[dict[str, float]] = []
        self._prefetcher: BatchPrefetcher | None = None  # draws the coming batches while `run` trains

    def _build(self) -> None:
        torch.manual_seed(self.settings.seed)
        try:
            self.recipe: TrainingRecipe = self.spec.recipe(self.config, self.options)
            self.phases = self.recipe.phases()
        except ValueError as error:
            raise InpaintError(str(error)) from None
        # channels-last convolutions run about 20 % faster on the CPU (benchmarks/training_speed.py)
        self.generator = self.spec.build_generator(self.recipe.config).to(self.device, memory_format=CHANNELS_LAST)
        self.warm_start: dict[str, Any] | None = None  # where the generator started: see `start_from`
        self._start_average()
        discriminator = self.recipe.build_discriminator()
        if discriminator is not None:
            discriminator = discriminator.to(self.device, memory_format=CHANNELS_LAST)
        self.discriminator = discriminator
        self.optimizers = self.recipe.optimizers(self.generator, self.discriminator)
        self.autocast_dtype = autocast_dtype(self.device, self.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        paths = find_training_images([Path(d) for d in self.settings.data_dirs])
        self.image_count = len(paths)
        side = max(self.settings.cache_side, self.settings.size)
        cache = ImageCache.build(paths, side, self.out_dir / "cache")
        mask_kinds = self.recipe.mask_kinds
        if self.settings.masks:
            mask_kinds = tuple(_parse_mask_choice(text) for text in self.settings.masks)
        self.sampler = BatchSampler(cache, self.settings.size, self.settings.batch, mask_kinds, self.settings.seed)

    def _start_average(self) -> None:
        self.average: WeightAverage | None = None
        if self.settings.ema_decay is not None:
            try:
                self.average = WeightAverage(self.generator, self.settings.ema_decay)
            except ValueError as error:
                raise InpaintError(str(error)) from None

    @contextmanager
    def _exported_weights(self, own_statistics: bool = False) -> Iterator[None]:
        """The generator holds the weights that are exported inside: the average, where kept, and
        with `own_statistics` batch-norm statistics of its own. The averaged running statistics
        belong to the weights the average passed through, not to the average (SWA's `update_bn`,
        Izmailov et al. 2018); sample grids make do with them, exports re-estimate them."""
        if self.average is None:
            yield
            return
        with self.average.applied(self.generator):
            if own_statistics:
                self._estimate_batch_norm_statistics()
            yield

    @torch.no_grad()
    def _estimate_batch_norm_statistics(self) -> None:
        """Running statistics re-estimated as plain means over fixed batches of about 2,048 images."""
        norms = [m for m in self.generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not norms:
            return
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative mean
        was_training = self.generator.training
        self.generator.train()
        for index in range(-(-BATCH_NORM_IMAGES // self.settings.batch)):
            image, mask = as_tensors(*self.sampler.draw(0, BATCH_NORM_STREAM + index), device=self.device)
            with self._autocast():
                self.recipe.generate(self.generator, image, mask)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        self.generator.train(was_training)

    # -- state -----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        nets = {"generator": self.generator.state_dict()}
        if self.discriminator is not None:
            nets["discriminator"] = self.discriminator.state_dict()
        state = {
            "settings": asdict(self.settings),
            "step": self.step,
            "phase": _phase_at(self.phases, self.step).name,
            "wall_time_s": self.wall_time,
            "nets": nets,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": _rng_states(),
            "history": self.history,
            "warm_start": self.warm_start,
        }
        if self.average is not None:
            state["weight_average"] = self.average.state()
        return state

    def start_from(self, location: str) -> None:
        """Warm start: the generator's weights from a release file of the same architecture (any
        config with the same tensors), whose training figures (and its own warm start,
        recursively) are kept so the export records the whole lineage."""
        warm, _, config_name, metadata = load_release(location, self.spec.name)
        try:
            self.generator.load_state_dict(warm.state_dict())
        except RuntimeError:
            raise InpaintError(
                f"--init-weights {location}: its {config_name} tensors do not fit the {self.config_name} config"
            ) from None
        earlier = json.loads(metadata.get("training_json", "{}")).get("warm_start")
        self.warm_start = {key: metadata.get(key) for key in LINEAGE_KEYS} | {"file": Path(location).name, "warm_start": earlier}
        self._start_average()  # from the warm-start weights

    def save(self) -> None:
        save_training_state(self.state(), self.out_dir / CHECKPOINT_DIR)
        self.export()

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["nets"]["generator"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["nets"]["discriminator"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None and "weight_average" in state:
            self.average.load(state["weight_average"])
        _set_rng_states(state["rng"])
        self.warm_start = state.get("warm_start")
        self.step = int(state["step"])
        self.wall_time = float(state["wall_time_s"])
        self.history = list(state["history"])
        log_path = self.out_dir / "log.jsonl"
        if log_path.exists():  # drop rows logged after the checkpoint: they are trained again
            rows = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            log_path.write_text("".join(f"{row}\n" for row in rows))

    def export(self) -> Path:
        data_names = ", ".join(f"{Path(d).name}" for d in self.settings.data_dirs)
        info = {
            "step": str(self.step),
            "image_size": str(self.settings.size),
            "batch": str(self.settings.batch),
            "seed": str(self.settings.seed),
            "data": self.settings.data_note or f"{self.image_count} images from {data_names}",
            "hardware": _hardware(self.device, self.autocast_dtype),
            "wall_time_s": f"{self.wall_time:.0f}",
            "license": self.settings.license,
            "training_json": json.dumps(
                {k: v for k, v in asdict(self.settings).items() if k not in ("out_dir", "extra")}
                | {"warm_start": self.warm_start}
            ),
        }
        was_training = self.generator.training
        self.generator.eval()
        with self._exported_weights(own_statistics=True):
            export_release(self.generator, self.spec, self.config_name, self.recipe.config, self.export_path, info)
        self.generator.train(was_training)
        return self.export_path

    # -- the step --------------------------------------------------------------------------------

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _update(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.recipe.grad_clip_norm is not None:
            self.scaler.unscale_(optimizer)
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(parameters, self.recipe.grad_clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def train_step(self) -> dict[str, float]:
        _seed_step(self.settings.seed, self.step)
        phase = _phase_at(self.phases, self.step)
        if phase is not getattr(self, "_entered_phase", None):
            self.recipe.enter_phase(phase, self.generator, self.optimizers)
            self._entered_phase = phase
        image, mask = self._batch(self.step)
        self.generator.train(phase.train_generator)
        logs: dict[str, float] = {}
        with self._autocast(), torch.set_grad_enabled(phase.train_generator):
            output = self.recipe.generate(self.generator, image, mask)
        if phase.train_discriminator and self.discriminator is not None:
            self.discriminator.requires_grad_(True)
            for substep in range(self.recipe.critic_steps):
                if substep == 0:
                    d_image, d_mask, d_output = image, mask, _detached(output)
                else:
                    d_image, d_mask = as_tensors(*self.sampler.draw(self.step, substep), device=self.device)
                    with self._autocast(), torch.no_grad():
                        d_output = self.recipe.generate(self.generator, d_image, d_mask)
                with self._autocast():
                    d_loss, d_logs = self.recipe.discriminator_loss(self.discriminator, d_image, d_mask, d_output)
                self._update("discriminator", d_loss)
            logs.update(d_logs)
        if phase.train_generator:
            if self.discriminator is not None:
                self.discriminator.requires_grad_(False)
            with self._autocast():
                g_loss, g_logs = self.recipe.generator_loss(self.discriminator, image, mask, output, phase)
            self._update("generator", g_loss)
            if self.average is not None:
                self.average.update(self.generator)
            logs.update(g_logs)
        self.step += 1
        return logs

    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of `step` on the device, drawn ahead by the prefetcher while `run` trains."""
        if self._prefetcher is None:
            return as_tensors(*self.sampler.draw(step), device=self.device)
        return as_tensors(*self._prefetcher.get(step), device=self.device)

    def write_samples(self) -> Path:
        """A fixed preview batch (the same every time) filled by the exported weights in eval mode."""
        image, mask = self.sampler.sample(step=0, substep=PREVIEW_STREAM)
        image, mask = image[:4].to(self.device), mask[:4].to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad(), self._autocast(), self._exported_weights():
            filled = self.recipe.prediction(self.recipe.generate(self.generator, image, mask)).float()
        self.generator.train(was_training)
        path = self.out_dir / "samples" / f"step-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample_grid(image, mask, filled)).save(path)
        return path

    def run(self) -> TrainResult:
        settings = self.settings
        self._prefetcher = BatchPrefetcher(self.sampler, self.workers)
        totals: dict[str, float] = {}
        count, window_start = 0, time.perf_counter()
        log_path = self.out_dir / "log.jsonl"
        try:
            while self.step < settings.steps:
                started = time.perf_counter()
                logs = self.train_step()
                self.wall_time += time.perf_counter() - started
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
                if self.step % settings.log_every == 0 or self.step == settings.steps:
                    elapsed = time.perf_counter() - window_start
                    row = {"step": self.step, **{k: v / count for k, v in totals.items()}}
                    row["images_per_s"] = count * settings.batch / max(elapsed, 1e-9)
                    self.history.append(row)
                    with log_path.open("a") as log:
                        log.write(json.dumps({"phase": _phase_at(self.phases, self.step - 1).name, **row}) + "\n")
                    totals, count, window_start = {}, 0, time.perf_counter()
                if self.progress is not None:
                    self.progress(self.step, settings.steps, _phase_at(self.phases, self.step - 1).name, self.history[-1] if self.history else {})
                if settings.sample_every and self.step % settings.sample_every == 0:
                    self.write_samples()
                if settings.checkpoint_every and self.step % settings.checkpoint_every == 0:
                    self.save()
            self.save()
        finally:
            self._prefetcher.close()
            self._prefetcher = None
        return TrainResult(self.step, self.export_path, self.history)


def _parse_mask_choice(text: str) -> tuple[str, float]:
    """"kind" or "kind@weight" -> (kind, weight), the kind checked against the generators."""
    from inpaint_cli.masks import draw_mask

    kind, _, weight = text.partition("@")
    try:
        draw_mask(kind, np.random.default_rng(0), 64, 64)
        return kind, float(weight or 1)
    except ValueError:
        raise InpaintError(f"bad --masks {text!r}: expected KIND or KIND@WEIGHT with a known kind") from None


def _rng_states() -> dict[str, Any]:
    """RNG states of python, numpy, torch and CUDA (the loop reseeds per step; saved for fidelity)."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "python": list(random.getstate()),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _detached(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (tuple, list)):
        return type(output)(_detached(item) for item in output)
    if isinstance(output, dict):
        return {key: _detached(value) for key, value in output.items()}
    return output


def start_training(
    settings: TrainSettings,
    *,
    resume: bool = False,
    device: str = "auto",
    progress: Callable[[int, int, str, dict[str, float]], None] | None = None,
    steps_override: int | None = None,
    precision: str = "auto",
    workers: int = 0,
) -> Trainer:
    """A ready Trainer: fresh (the output folder must hold no checkpoint) or resumed from it."""
    checkpoint = Path(settings.out_dir) / CHECKPOINT_DIR
    if resume:
        state = load_training_state(checkpoint)
        stored = TrainSettings(**state["settings"])
        if stored.arch != settings.arch:
            raise InpaintError(f"{checkpoint} holds a {stored.arch} run, not {settings.arch}")
        if steps_override is not None:
            stored = replace(stored, steps=steps_override)
        trainer = Trainer(stored, device=device, progress=progress, precision=precision, workers=workers)
        trainer.restore(state)
        return trainer
    if training_state_exists(checkpoint):
        raise InpaintError(f"{settings.out_dir} already holds a training run; pass --resume to continue it or pick another --out")
    trainer = Trainer(settings, device=device, progress=progress, precision=precision, workers=workers)
    if settings.init_weights:
        trainer.start_from(settings.init_weights)
    return trainer

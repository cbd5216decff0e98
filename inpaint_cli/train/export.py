"""A run's release file: the exported weights (the moving average where one is kept, with batch-norm
statistics re-estimated for them) and the metadata that records how they were trained."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from inpaint_cli.checkpoint import export_release
from inpaint_cli.train.data import as_tensors

if TYPE_CHECKING:
    from inpaint_cli.train.loop import Trainer, TrainSettings

BATCH_NORM_STREAM = 1_000_000  # first substep of the batches an export's batch-norm statistics come from
BATCH_NORM_IMAGES = 2048  # fewer (256) left a Context Encoder's statistics noisy enough to cost 0.1 dB


def export(trainer: Trainer) -> Path:
    """Write the release file of the trainer's current step (eval mode, exported weights). Every
    process calls it (batch-norm statistics are estimated over the global batch); rank 0 writes."""
    was_training = trainer.generator.training
    trainer.generator.eval()
    with exported_weights(trainer, own_statistics=True):
        if trainer.ranks.main:
            export_release(
                trainer.generator, trainer.spec, trainer.config_name, trainer.recipe.config, trainer.export_path,
                release_metadata(trainer),
            )
    trainer.generator.train(was_training)
    return trainer.export_path


def release_metadata(trainer: Trainer) -> dict[str, str]:
    """The training figures a release records: step, data, hardware, time, settings, lineage."""
    settings = trainer.settings
    data_names = ", ".join(f"{Path(d).name}" for d in settings.data_dirs)
    return {
        "step": str(trainer.step),
        "image_size": str(settings.size),
        "batch": str(settings.batch),
        "seed": str(settings.seed),
        "data": settings.data_note or f"{trainer.image_count} images from {data_names}",
        "hardware": hardware_note(trainer.device, trainer.autocast_dtype, trainer.ranks.world),
        "wall_time_s": f"{trainer.wall_time:.0f}",
        "license": settings.license,
        "training_json": json.dumps(
            {k: v for k, v in asdict(settings).items() if k not in ("out_dir", "extra")}
            | shared_file_names(settings)
            | {"warm_start": trainer.warm_start}
        ),
    }


def shared_file_names(settings: TrainSettings) -> dict[str, object]:
    """The settings that name files and folders, by name alone: an export is shared, and where
    its trainer kept the data, the warm start and the backbone is the trainer's own business."""
    return {
        "data_dirs": [Path(folder).name for folder in settings.data_dirs],
        "init_weights": settings.init_weights and Path(settings.init_weights).name,
        "backbone": settings.backbone and Path(settings.backbone).name,
    }


def hardware_note(device: torch.device, dtype: torch.dtype | None, processes: int = 1) -> str:
    """E.g. "NVIDIA H100 (CUDA), bfloat16 autocast", with "8 processes x " before it under torchrun."""
    precision = "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"
    if device.type == "cuda":
        note = f"{torch.cuda.get_device_name(device)} (CUDA), {precision}"
    else:
        note = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, {precision}"
    return note if processes == 1 else f"{processes} processes x {note}"


@contextmanager
def exported_weights(trainer: Trainer, own_statistics: bool = False) -> Iterator[None]:
    """The generator holds the weights that are exported inside: the average, where kept, and
    with `own_statistics` batch-norm statistics of its own. The averaged running statistics
    belong to the weights the average passed through, not to the average (SWA's `update_bn`,
    Izmailov et al. 2018); sample grids make do with them, exports re-estimate them."""
    if trainer.average is None:
        yield
        return
    with trainer.average.applied(trainer.generator):
        if own_statistics:
            estimate_batch_norm_statistics(trainer)
        yield


@torch.no_grad()
def estimate_batch_norm_statistics(trainer: Trainer) -> None:
    """Running statistics re-estimated as plain means over fixed batches of about 2,048 images.

    Only the norms that train: those a recipe holds in eval mode (PConv's fine-tuning freezes the
    encoder's) normalised every step with their stored statistics, so those stay."""
    generator = trainer.generator
    was_training = generator.training
    generator.train()
    norms = [
        m for m in generator.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.training
    ]
    if not norms:
        generator.train(was_training)
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean
    for index in range(-(-BATCH_NORM_IMAGES // trainer.settings.batch)):
        image, mask = as_tensors(*trainer.sampler.draw(0, BATCH_NORM_STREAM + index), device=trainer.device)
        with trainer.autocast():
            trainer.recipe.generate(generator, image, mask)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    generator.train(was_training)

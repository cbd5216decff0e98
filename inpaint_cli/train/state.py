"""A run's state: the checkpoint `--resume` continues from, and the warm start `--init-weights`
begins with.

The checkpoint holds the networks, optimisers, gradient scaler, weight average, RNG states,
history and the settings themselves (so a resume needs no flags); `inpaint_cli.checkpoint` writes
it as JSON plus safetensors. Rows of `log.jsonl` logged after the checkpoint are dropped on resume:
those steps are trained again.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from inpaint_cli.checkpoint import load_release, save_training_state
from inpaint_cli.errors import InpaintError

if TYPE_CHECKING:
    from inpaint_cli.train.loop import Trainer

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "log.jsonl"
#: training figures of a warm-start source kept in the export's lineage
LINEAGE_KEYS = ("config", "step", "image_size", "batch", "hardware", "wall_time_s")


def save_checkpoint(trainer: Trainer) -> None:
    """Write the trainer's state to `out_dir/checkpoint` (replacing the previous one)."""
    save_training_state(checkpoint_state(trainer), trainer.out_dir / CHECKPOINT_DIR)


def checkpoint_state(trainer: Trainer) -> dict[str, Any]:
    nets = {"generator": trainer.generator.state_dict()}
    if trainer.discriminator is not None:
        nets["discriminator"] = trainer.discriminator.state_dict()
    state = {
        "settings": asdict(trainer.settings),
        "step": trainer.step,
        "phase": trainer.phase_at(trainer.step).name,
        "wall_time_s": trainer.wall_time,
        "nets": nets,
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        "scaler": trainer.scaler.state_dict(),
        "rng": rng_states(),
        "history": trainer.history,
        "warm_start": trainer.warm_start,
    }
    if trainer.average is not None:
        state["weight_average"] = trainer.average.state()
    return state


def restore_checkpoint(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put a freshly built trainer back where `state` left off."""
    trainer.generator.load_state_dict(state["nets"]["generator"])
    if trainer.discriminator is not None:
        trainer.discriminator.load_state_dict(state["nets"]["discriminator"])
    for name, optimizer in trainer.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    if trainer.average is not None and "weight_average" in state:
        trainer.average.load(state["weight_average"])
    set_rng_states(state["rng"])
    trainer.warm_start = state.get("warm_start")
    trainer.step = int(state["step"])
    trainer.wall_time = float(state["wall_time_s"])
    trainer.history = list(state["history"])
    if trainer.ranks.main:
        truncate_log(trainer.out_dir / LOG_FILE, trainer.step)


def truncate_log(path: Path, step: int) -> None:
    """Drop the rows of `path` logged after `step`: they are trained again."""
    if path.exists():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(f"{row}\n" for row in rows))


def warm_start(trainer: Trainer, location: str) -> None:
    """The generator's weights from a release file of the same architecture (any config with the
    same tensors), whose training figures (and its own warm start, recursively) are kept so the
    export records the whole lineage."""
    warm, _, config_name, metadata = load_release(location, trainer.spec.name)
    try:
        trainer.generator.load_state_dict(warm.state_dict())
    except RuntimeError:
        raise InpaintError(
            f"--init-weights {location}: its {config_name} tensors do not fit the {trainer.config_name} config"
        ) from None
    trainer.warm_start = release_lineage(location, metadata)


def release_lineage(location: str | Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The training figures of the release file at `location` (with `metadata`) that a file started
    from it keeps, its own warm start nested inside."""
    earlier = json.loads(metadata.get("training_json", "{}")).get("warm_start")
    lineage = {key: metadata.get(key) for key in LINEAGE_KEYS}
    return lineage | {"file": Path(location).name, "warm_start": earlier}


def rng_states() -> dict[str, Any]:
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


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])

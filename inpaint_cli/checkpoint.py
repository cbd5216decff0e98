"""Weights on disk: release files (generator only, 16-bit, metadata of docs/design.md "Checkpoints"),
training checkpoints (everything needed to resume exactly) and `hf://` resolution.

Nothing is ever unpickled: tensors live in safetensors files, everything else in JSON.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from inpaint_cli import __version__
from inpaint_cli.archs.base import ArchSpec, InpaintModel
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch
from inpaint_cli.weights import FORMAT, read_metadata  # read without torch: `inpaint models`

HF_PREFIX = "hf://"
#: largest error float16 may introduce, relative to the tensor's largest magnitude, before the
#: tensor is kept in float32 (a tensor that lives near float16's underflow, such as tiny batch-norm
#: variances, fails it; a weight tensor whose few tiny entries become subnormals does not)
FLOAT16_TOLERANCE = 1e-3
#: largest change of the probe image's fill ([0, 1] scale) float16 storage may cause before the whole
#: release is kept in float32: one grey level (AOT-GAN's gate normalisation can amplify rounding)
FLOAT16_FILL_TOLERANCE = 1 / 255
#: side of the fixed probe image the storage dtype's effect is measured on (fixed-size models use theirs)
PROBE_SIDE = 128


def _release_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float16 where it round-trips within FLOAT16_TOLERANCE of the tensor's scale, else float32;
    non-floating tensors unchanged."""
    if not tensor.is_floating_point():
        return tensor.dtype
    value = tensor.detach().float()
    half = value.half().float()
    if not torch.isfinite(half).all():
        return torch.float32
    scale = value.abs().max()
    if (half - value).abs().max() > FLOAT16_TOLERANCE * scale:
        return torch.float32
    return torch.float16


def probe_image(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed test image (smooth colour gradients with fine stripes, 1 x 3 x side x side in
    [0, 1]) and its centred square hole, half the side."""
    y, x = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij")
    stripes = 0.08 * torch.sin(0.9 * x + 1.7 * y)
    image = torch.stack([
        0.5 + 0.35 * torch.sin(x / 9) * torch.cos(y / 13) + stripes,
        0.2 + 0.6 * x / side - stripes,
        0.8 - 0.6 * y / side + stripes,
    ]).clamp(0, 1)[None]
    mask = torch.zeros(1, 1, side, side)
    mask[..., side // 4: side - side // 4, side // 4: side - side // 4] = 1
    return image, mask


def output_change(generator: InpaintModel, original: dict[str, torch.Tensor], stored: dict[str, torch.Tensor]) -> float:
    """Largest change of the hole's fill on `probe_image` between the float32 weights and the stored
    ones, both loaded into `generator` (a CPU model of their architecture, changed in place)."""
    reference = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in original.items()}
    generator.eval()
    side = generator.fixed_size or PROBE_SIDE
    side = max(math.ceil(side / generator.size_multiple) * generator.size_multiple, generator.min_size)
    image, mask = probe_image(side)
    fills = []
    for weights in (reference, stored):
        generator.load_state_dict({name: tensor.to(reference[name].dtype) for name, tensor in weights.items()})
        with torch.inference_mode(), torch.random.fork_rng():
            torch.manual_seed(0)  # the same noise and latents for both (MAT, Co-ModGAN)
            fills.append(generator.inpaint(image, mask).float().clamp(0, 1))
    return float(((fills[0] - fills[1]).abs() * mask).max())


def _umask() -> int:
    """The process's file-creation mask (read by setting it, and set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _follow_umask(path: str | Path, directory: bool = False) -> None:
    """Give a file made by `tempfile` (0600, folders 0700) the mode the umask gives new files (and
    folders), as `open` would: exports, checkpoints and fill outputs all end up alike."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_save_safetensors(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None
) -> None:
    """Write to a temporary file beside `path`, then rename: no partial file after a crash. The
    file's mode follows the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata=dict(metadata or {}))
        _follow_umask(temporary)  # safetensors, too, creates its files 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_release(
    generator: InpaintModel,
    spec: ArchSpec,
    config_name: str,
    config: Any,
    path: Path,
    info: Mapping[str, Any],
) -> None:
    """Save the generator as a release file. `info` fills the training keys of the metadata
    (step, image_size, batch, seed, data, hardware, wall_time_s, eval_json, license).

    Tensors are stored in float16 where they round-trip (`_release_dtype`), unless that moves the
    probe image's fill by more than FLOAT16_FILL_TOLERANCE: then every tensor stays float32. The
    change is recorded as `float16_fill_change` (grey levels)."""
    weights = {name: tensor.detach().cpu() for name, tensor in generator.state_dict().items()}
    tensors = {name: tensor.to(_release_dtype(tensor)) for name, tensor in weights.items()}
    change = output_change(copy.deepcopy(generator).cpu(), weights, tensors)
    if change > FLOAT16_FILL_TOLERANCE:
        tensors = weights
    metadata = {
        "format": FORMAT,
        "arch": spec.name,
        "config": config_name,
        "config_json": json.dumps(asdict(config), sort_keys=True),
        "created": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "version": __version__,
        "float16_fill_change": f"{change * 255:.3f}",
    }
    for key, value in info.items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    atomic_save_safetensors(tensors, path, metadata)


def resolve_weights(location: str | Path) -> Path:
    """A local path as is; `hf://owner/repo/path/in/repo.safetensors[@revision]` through
    huggingface_hub's cache (HF_HUB_OFFLINE, tokens and HF_HOME behave as that library says)."""
    text = str(location)
    if not text.startswith(HF_PREFIX):
        return Path(text).expanduser()
    match = re.fullmatch(r"hf://([^/@]+)/([^/@]+)/([^@]+?)(?:@([^@/]+))?", text)
    if not match:
        raise InpaintError(f"malformed {text!r}: expected hf://owner/repo/path/file.safetensors[@revision]")
    owner, repo, filename, revision = match.groups()
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(f"{owner}/{repo}", filename, revision=revision))
    except LocalEntryNotFoundError:
        raise InpaintError(f"{text}: not in the local Hugging Face cache and the hub is unreachable or offline") from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise InpaintError(f"{text}: cannot download ({type(error).__name__}: {error})") from None


def load_release(
    location: str | Path,
    arch: str | None = None,
    config_name: str | None = None,
    device: torch.device | str = "cpu",
) -> tuple[InpaintModel, ArchSpec, str, dict[str, str]]:
    """Build the generator a release file describes and load it, checking everything on the way.

    `arch`/`config_name`, where given, must agree with the file's metadata.
    """
    path = resolve_weights(location)
    metadata = read_metadata(path)
    if arch is not None and metadata["arch"] != arch:
        raise InpaintError(f"{path}: weights are for {metadata['arch']!r}, not {arch!r}")
    if config_name is not None and metadata["config"] != config_name:
        raise InpaintError(
            f"{path}: weights are for {metadata['arch']} config {metadata['config']!r}, not {config_name!r}"
        )
    spec = get_arch(metadata["arch"])
    try:
        config = spec.config_from_dict(json.loads(metadata["config_json"]))
    except (ValueError, TypeError) as error:
        raise InpaintError(f"{path}: unusable config_json ({error})") from None
    generator = spec.build_generator(config)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise InpaintError(f"{path}: truncated or corrupt tensors ({error})") from None
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise InpaintError(f"{path}: does not match {spec.name} {metadata['config']}: {'; '.join(parts)}")
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise InpaintError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)}, "
                f"{spec.name} {metadata['config']} needs {tuple(expected[name].shape)}"
            )
    generator.load_state_dict(
        {name: tensor.to(expected[name].dtype) for name, tensor in tensors.items()}
    )
    generator.eval().to(device)
    return generator, spec, metadata["config"], metadata


# ----------------------------------------------------------------------------------------------
# Training checkpoints: tensors in state.safetensors, the rest (with tensor references) in JSON.


def _split_tensors(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by a reference, collecting the tensors."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu()
        return {"__tensor__": prefix}
    if isinstance(value, Mapping):
        if all(isinstance(key, str) for key in value):
            return {key: _split_tensors(item, f"{prefix}.{key}", tensors) for key, item in value.items()}
        return {"__items__": [[key, _split_tensors(item, f"{prefix}.{key}", tensors)] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_split_tensors(item, f"{prefix}.{index}", tensors) for index, item in enumerate(value)]
    return value


def _join_tensors(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if set(value) == {"__items__"}:
            return {key: _join_tensors(item, tensors) for key, item in value["__items__"]}
        return {key: _join_tensors(item, tensors) for key, item in value.items()}
    if isinstance(value, list):
        return [_join_tensors(item, tensors) for item in value]
    return value


# A checkpoint folder is replaced by a swap whose every intermediate state on disk holds a
# complete checkpoint: the new one is built in `.NAME.new`, the current one is renamed `.NAME.old`,
# the new one renamed `NAME`, the old one removed. `recover_training_state` finishes or undoes an
# interrupted swap (SIGKILL, power loss) by keeping the newest complete checkpoint among `NAME`
# and its hidden siblings `.NAME.*` (earlier versions staged in `.NAME.<random>`).


def _staging(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.new")


def _retired(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') contents to the disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _complete_step(directory: Path) -> int | None:
    """The step of the checkpoint in `directory` if it is complete (its JSON parses and the
    safetensors file holds every tensor the JSON names), else None."""
    try:
        skeleton = json.loads((directory / "state.json").read_text())
        with safe_open(str(directory / "state.safetensors"), framework="pt") as handle:
            stored = set(handle.keys())
    except (OSError, ValueError, SafetensorError):
        return None
    names: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if set(value) == {"__tensor__"}:
                names.add(value["__tensor__"])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(skeleton)
    if not names <= stored or not isinstance(skeleton, dict):
        return None
    step = skeleton.get("step", 0)
    return step if isinstance(step, int) else 0


def recover_training_state(directory: Path) -> bool:
    """Leave the newest complete checkpoint (highest step; on a tie `directory`, then `.NAME.new`)
    among `directory` and its hidden siblings `.NAME.*` in `directory`, and remove the siblings:
    an interrupted swap, finished or undone. True when a complete checkpoint is there afterwards."""
    siblings = sorted(
        (folder for folder in directory.parent.glob(f".{directory.name}.*") if folder.is_dir()),
        key=lambda folder: (folder != _staging(directory), folder.name),
    )
    candidates = []
    for rank, folder in enumerate([directory, *siblings]):
        step = _complete_step(folder) if folder.is_dir() else None
        if step is not None:
            candidates.append((step, -rank, folder))
    newest = max(candidates, key=lambda item: item[:2])[2] if candidates else None
    if newest is not None and newest != directory:
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(newest, directory)
        _fsync(directory.parent)
    for leftover in siblings:
        shutil.rmtree(leftover, ignore_errors=True)
    return newest is not None


def training_state_exists(directory: Path) -> bool:
    """Whether `directory` holds a training run (complete after recovering an interrupted swap,
    or present though corrupt: never silently replaced by a fresh run)."""
    if not directory.parent.is_dir():
        return False
    return recover_training_state(directory) or directory.exists()


def save_training_state(state: Mapping[str, Any], directory: Path) -> None:
    """Write `state` (nested dicts of tensors, numbers, strings) as state.safetensors + state.json.

    Crash-safe: at every moment the disk holds a complete checkpoint, the previous or the new one,
    that `load_training_state` finds (see `recover_training_state`). Modes follow the umask.
    """
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split_tensors(state, "state", tensors)
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover_training_state(directory)
    staging, retired = _staging(directory), _retired(directory)
    staging.mkdir()
    try:
        _follow_umask(staging, directory=True)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(staging / "state.safetensors"))
        _follow_umask(staging / "state.safetensors")
        (staging / "state.json").write_text(json.dumps(skeleton))
        for file in (staging / "state.safetensors", staging / "state.json", staging):
            _fsync(file)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if directory.exists():
        os.replace(directory, retired)
    os.replace(staging, directory)
    _fsync(directory.parent)
    shutil.rmtree(retired, ignore_errors=True)


def load_training_state(directory: Path) -> dict[str, Any]:
    """The checkpoint in `directory`, after recovering an interrupted swap (`recover_training_state`)."""
    with _checkpoint_errors(directory):
        skeleton = json.loads((directory / "state.json").read_text())
        tensors = load_file(str(directory / "state.safetensors"))
    return _join_tensors(skeleton, tensors)


def load_training_settings(directory: Path) -> dict[str, Any]:
    """The settings stored with the checkpoint in `directory`, without reading its tensors."""
    with _checkpoint_errors(directory):
        settings = json.loads((directory / "state.json").read_text())["settings"]
        if not isinstance(settings, dict):
            raise ValueError("its settings are not a mapping")
    return settings


@contextlib.contextmanager
def _checkpoint_errors(directory: Path) -> Iterator[None]:
    """Recover an interrupted swap in `directory` first; a missing or corrupt checkpoint read in
    the block is one clear error."""
    if directory.parent.is_dir():
        recover_training_state(directory)
    try:
        yield
    except FileNotFoundError:
        raise InpaintError(f"{directory}: no training checkpoint there (state.json + state.safetensors)") from None
    except (SafetensorError, ValueError, KeyError) as error:
        raise InpaintError(f"{directory}: corrupt training checkpoint ({error})") from None

"""`inpaint convert`: official pretrained weights -> release files our generators load.

`convert` reads the tensors of a file without running anything from it (`containers`,
`safe_pickle`), recognises which official model they are from key names and shapes (`official`,
and one module per architecture declaring `OFFICIAL`), maps them onto our generator's state_dict,
checks every tensor, and casts them to the storage dtype. `write_converted` saves the result as a
release file, with the metadata of a training export plus `converted_from`, `source`, `license`
and `official_model`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inpaint_cli import __version__
from inpaint_cli.archs.base import ArchSpec
from inpaint_cli.checkpoint import FORMAT, atomic_save_safetensors, output_change, resolve_weights
from inpaint_cli.convert.containers import Container, read_container
from inpaint_cli.convert.official import OfficialModel, official_models
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, get_config

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Converted:
    """A converted model, ready to be written."""

    official: OfficialModel
    spec: ArchSpec
    config_name: str
    config: Any  # the arch's config dataclass, official conventions applied
    container: str  # the Container kind it was read from
    tensors: dict[str, torch.Tensor]  # our generator's state_dict, in the storage dtype
    metadata: dict[str, str]
    dtype: str
    #: largest change of the fixed test image's fill (hole pixels, [0, 1] scale) caused by storing
    #: the weights in `dtype` rather than float32; None for float32
    output_change: float | None


def convert(
    source: str | Path, *, arch: str | None = None, config: str | None = None, dtype: str = "float32"
) -> Converted:
    """Read `source` (a file, a TF checkpoint folder or prefix, or hf://owner/repo/path[@revision]),
    recognise the official model (or take the one `arch`/`config` name) and map it onto ours.
    Every error is one InpaintError line naming the file."""
    if dtype not in DTYPES:
        raise InpaintError(f"unknown --dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    path = resolve_weights(source)
    try:
        kind, official, tensors = _read_official(path, arch, config)
    except InpaintError as error:
        raise InpaintError(f"{path.name}: {error}") from None
    spec = get_arch(official.arch)
    model_config = dataclasses.replace(get_config(spec, official.config), **official.config_overrides)
    stored = {name: _stored(tensor, DTYPES[dtype]) for name, tensor in tensors.items()}
    change = None if dtype == "float32" else output_change(spec.build_generator(model_config), tensors, stored)
    metadata = {
        "format": FORMAT,
        "arch": spec.name,
        "config": official.config,
        "config_json": json.dumps(dataclasses.asdict(model_config), sort_keys=True),
        "created": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "version": __version__,
        "official_model": official.name,
        "converted_from": f"{path.name} sha256:{sha256_of(path)}",
        "source": official.source,
        "license": official.license,
        "data": official.data,
        "storage_dtype": dtype,
    }
    return Converted(official, spec, official.config, model_config, kind, stored, metadata, dtype, change)


def _read_official(path: Path, arch: str | None, config: str | None) -> tuple[str, OfficialModel, dict[str, torch.Tensor]]:
    """The container kind, the official model and our state_dict; the file's other tensors
    (discriminators, loss networks) are freed on return."""
    container = read_container(path)
    official = choose_official(container, arch, config)
    return container.kind, official, official.to_state_dict(container.tensors)


def choose_official(container: Container, arch: str | None, config: str | None) -> OfficialModel:
    """The official model the container holds: the one that recognises its tensors among those
    `arch`/`config` allow; where these narrow the choice to one model, that one (its mapping then
    names what does not fit)."""
    if not container.tensors:
        raise InpaintError("the file holds no tensors")
    candidates = [m for m in official_models() if container.kind in m.containers]
    if arch is not None:
        candidates = [m for m in candidates if m.arch == arch]
    if config is not None:
        candidates = [m for m in candidates if m.config == config]
    if not candidates:
        wanted = " ".join(part for part in (arch, config and f"config {config}") if part)
        known = ", ".join(f"{m.arch} {m.config}" for m in official_models() if container.kind in m.containers)
        raise InpaintError(f"no official {wanted} model comes as a {container.kind} (known for it: {known or 'none'})")
    recognised = [m for m in candidates if m.recognise(container.tensors)]
    if len(recognised) == 1:
        return recognised[0]
    if len(recognised) > 1:
        raise InpaintError(
            f"matches several official models ({', '.join(m.name for m in recognised)}): pass --arch and --config"
        )
    if arch is not None and len(candidates) == 1:
        return candidates[0]
    first = next(iter(container.tensors))
    shape = list(container.tensors[first].shape)
    names = ", ".join(m.name for m in candidates)
    raise InpaintError(
        f"unrecognised model: its {len(container.tensors)} tensors (the first {first} {shape}) are none of "
        f"{names}; pass --arch/--config to force one"
    )


def _stored(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Floating tensors in the storage dtype (float16 keeps float32 where a value would overflow);
    counters unchanged."""
    if not tensor.is_floating_point():
        return tensor.contiguous()
    stored = tensor.to(dtype).contiguous()
    if dtype == torch.float16 and not torch.isfinite(stored).all() and torch.isfinite(tensor).all():
        return tensor.float().contiguous()
    return stored


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a checkpoint folder's files in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else _checkpoint_files(path)
    for file in files:
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _checkpoint_files(path: Path) -> list[Path]:
    """The file itself, or the files of a TF checkpoint prefix (`<prefix>.index`, `<prefix>.data-*`)."""
    if path.is_file():
        return [path]
    return sorted(path.parent.glob(f"{path.name}.*"))


def describe(converted: Converted) -> list[str]:
    """What `inpaint convert` reports: the model found, the storage dtype's effect, the terms."""
    lines = [f"converted {converted.official.name} ({converted.container}) to {converted.spec.name} "
             f"{converted.config_name}: {len(converted.tensors)} tensors in {converted.dtype}"]
    if converted.output_change is not None:
        lines.append(f"{converted.dtype} storage moves the test image's fill by up to "
                     f"{converted.output_change * 255:.1f} grey levels")
    return [*lines, f"licence: {converted.metadata['license']}"]


def default_output(converted: Converted, source: str | Path) -> Path:
    """`<arch>-<config>.safetensors` beside the input (in the current folder for hf:// inputs)."""
    name = f"{converted.spec.name}-{converted.config_name}.safetensors"
    text = str(source)
    return Path(name) if text.startswith("hf://") else Path(text).expanduser().parent / name


def check_target(out: Path, overwrite: bool) -> None:
    """Raise InpaintError unless `out` can be written (call before converting, to fail early)."""
    if out.suffix != ".safetensors":
        raise InpaintError(f"{out}: the converted file must end in .safetensors")
    if out.is_dir():
        raise InpaintError(f"{out} is a directory, expected an output file name")
    if out.exists() and not overwrite:
        raise InpaintError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise InpaintError(f"output folder {out.parent} does not exist")


def write_converted(converted: Converted, out: Path, overwrite: bool = False) -> Path:
    """Save as a release file: temporary file then rename, never over an existing file unless `overwrite`."""
    check_target(out, overwrite)
    atomic_save_safetensors(converted.tensors, out, converted.metadata)
    return out


def convert_file(
    source: str | Path,
    output: Path | None = None,
    *,
    arch: str | None = None,
    config: str | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    install: bool = False,
    default: bool = False,
) -> tuple[Converted, Path, Path | None]:
    """`inpaint convert`: check the output (and the installed name) before the work, convert,
    write to `output` (default: `default_output`), and with `install` copy the file into the
    installed weights folder (`weights.install`). Returns the conversion, the file written and
    the installed file (None without `install`)."""
    from inpaint_cli.weights import check_install, install as install_file

    if output is not None:
        check_target(output, overwrite)
        if install:
            check_install(output.name, overwrite)
    converted = convert(source, arch=arch, config=config, dtype=dtype)
    written = write_converted(converted, output or default_output(converted, source), overwrite)
    installed = install_file(written, default=default, overwrite=overwrite) if install else None
    return converted, written, installed

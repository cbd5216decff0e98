"""The registry of official pretrained models `inpaint convert` knows, discovered like the
architectures' `SPECS`: every module of `inpaint_cli.convert` may define `OFFICIAL`, a tuple of
`OfficialModel`. Also the check every mapping ends with: the tensors against our generator's
`state_dict`, naming the first missing, unexpected or misshapen tensor.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, get_config


@dataclass(frozen=True)
class OfficialModel:
    """One published set of official weights and how it becomes our generator's state_dict."""

    name: str  # e.g. "big-lama": recorded as `official_model`
    arch: str  # our --arch name
    config: str  # our config name
    source: str  # the official repository URL
    license: str  # the terms the official weights come with
    containers: tuple[str, ...]  # Container kinds it comes in (`containers.py`)
    recognise: Callable[[Mapping[str, torch.Tensor]], bool]  # from key names (and shapes) only
    #: official tensors -> our generator's state_dict; raises InpaintError naming the first
    #: missing, unexpected or misshapen tensor
    to_state_dict: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]
    #: config fields reproducing the official conventions (padding, ranges, channel order)
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    data: str = ""  # what it was trained on, for the `data` metadata


@cache
def official_models() -> tuple[OfficialModel, ...]:
    """Every `OFFICIAL` entry of the modules of this package, by module name."""
    import inpaint_cli.convert as package

    models: list[OfficialModel] = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        models += getattr(module, "OFFICIAL", ())
    names = [model.name for model in models]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise RuntimeError(f"official models registered twice: {', '.join(sorted(duplicates))}")
    return tuple(models)


@cache
def expected_tensors(arch: str, config: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of every tensor of our generator's state_dict, built on the meta device."""
    spec = get_arch(arch)
    with torch.device("meta"):
        generator = spec.build_generator(get_config(spec, config))
    return {name: (tuple(tensor.shape), tensor.dtype) for name, tensor in generator.state_dict().items()}


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    return f"[{', '.join(str(size) for size in shape)}]"


def check_state_dict(
    tensors: Mapping[str, torch.Tensor], arch: str, config: str, official_prefix: str = ""
) -> dict[str, torch.Tensor]:
    """`tensors` (our names) in our generator's order, checked against it: every tensor present,
    none unexpected, every shape right, floating where ours is. Errors name the file's key
    (`official_prefix` + our name) where names are shared."""
    expected = expected_tensors(arch, config)
    checked: dict[str, torch.Tensor] = {}
    for name, (shape, dtype) in expected.items():
        if name not in tensors:
            raise InpaintError(f"missing tensor {official_prefix}{name} (shape {shape_text(shape)})")
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise InpaintError(
                f"tensor {official_prefix}{name} has shape {shape_text(tensor.shape)}, expected {shape_text(shape)}"
            )
        if tensor.is_floating_point() != dtype.is_floating_point:
            raise InpaintError(f"tensor {official_prefix}{name} is {tensor.dtype}, expected {dtype}")
        checked[name] = tensor
    unexpected = [name for name in tensors if name not in expected]
    if unexpected:
        raise InpaintError(f"unexpected tensor {official_prefix}{unexpected[0]} for {arch} {config}")
    return checked

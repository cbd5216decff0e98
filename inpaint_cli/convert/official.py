"""The registry of official pretrained models (placeholder: the `convert` helper owns this file)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class OfficialModel:
    name: str
    arch: str
    config: str
    source: str
    license: str
    containers: tuple[str, ...]
    recognise: Callable[[dict[str, torch.Tensor]], bool]
    to_state_dict: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    config_overrides: Mapping[str, Any] = field(default_factory=dict)

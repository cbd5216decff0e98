"""Official Lua Torch `nn` networks (Torch7 files read by `torch7.read_t7_tensors`) onto our
PyTorch generators, layer by layer in order.

Both Lua networks and ours list the same layers in the same order, so the i-th parameterised Lua
module (convolution, full convolution, batch norm) fills our i-th parameterised module; Torch's
layouts are PyTorch's (`nn.SpatialFullConvolution` weights are `[in, out, k, k]` as
`ConvTranspose2d`'s), so no tensor is permuted. Every tensor's presence and shape is checked, and
batch norms must use Torch's default epsilon, which PyTorch's `BatchNorm2d` shares.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from inpaint_cli.errors import InpaintError

CONV, BATCH_NORM = "conv", "batch-norm"
TENSORS = {CONV: ("weight", "bias"), BATCH_NORM: ("weight", "bias", "running_mean", "running_var")}
TORCH_BATCH_NORM_EPS = 1e-5


def _kind(module: nn.Module) -> str | None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return CONV
    if isinstance(module, nn.BatchNorm2d):
        return BATCH_NORM
    return None


def _tensor(tensors: dict[str, torch.Tensor], key: str, shape: torch.Size) -> torch.Tensor:
    if key not in tensors:
        raise InpaintError(f"missing tensor {key!r}")
    value = tensors[key]
    if value.shape != shape:
        # nn before 2016 stored convolution weights flattened, [out, in * kH * kW]
        if key.endswith(".weight") and value.dim() == 2 and value.numel() == shape.numel():
            return value.reshape(shape).float()
        raise InpaintError(f"tensor {key!r} has shape {list(value.shape)}, expected {list(shape)}")
    return value.float()


def lua_state_dict(
    tensors: dict[str, torch.Tensor],
    lua_layers: list[tuple[str, str]],
    build: Callable[[], nn.Module],
) -> dict[str, torch.Tensor]:
    """Our state dict from the official tensors. `lua_layers` names the Lua modules with
    parameters, in order, with their kind (CONV or BATCH_NORM); `build` makes our generator
    (built on the meta device: only names and shapes are read)."""
    with torch.device("meta"):
        model = build()
    ours = [(name, module) for name, module in model.named_modules() if _kind(module)]
    if [_kind(m) for _, m in ours] != [kind for _, kind in lua_layers]:
        raise RuntimeError("the official layer list does not match the architecture's layers")
    state: dict[str, torch.Tensor] = {}
    for (lua_path, kind), (name, module) in zip(lua_layers, ours):
        for tensor_name in TENSORS[kind]:
            expected = getattr(module, tensor_name).shape
            state[f"{name}.{tensor_name}"] = _tensor(tensors, f"{lua_path}.{tensor_name}", expected)
        if kind == BATCH_NORM:
            eps = tensors.get(f"{lua_path}.eps")
            if eps is not None and abs(float(eps) - TORCH_BATCH_NORM_EPS) > 1e-12:
                raise InpaintError(f"{lua_path}.eps is {float(eps)}, expected {TORCH_BATCH_NORM_EPS}")
            state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    return state


def has_shapes(tensors: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether every key of `shapes` is present with that shape (recognition)."""
    return all(key in tensors and tuple(tensors[key].shape) == shape for key, shape in shapes.items())

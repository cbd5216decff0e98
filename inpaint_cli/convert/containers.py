"""Reading the tensors out of the files official weights come in, recognised by their content
(magic bytes, zip members, pickle contents), never by their names, and without running anything
from them:

- "lightning-ckpt": a `torch.save` zip whose dict has a `state_dict` (PyTorch Lightning), read with
  `safe_pickle`; only the tensors of `state_dict` are read from disk.
- "state-dict": a dict of tensors, from a `torch.save` zip (`safe_pickle`) or a legacy
  `torch.save` file (`torch.load(weights_only=True)`).
- "torchscript": a `torch.jit.save` archive; the module tree in its `data.pkl` is rebuilt from
  placeholders by `safe_pickle` and its tensors named by attribute path (`model.generator.model.1...`).
  TorchScript code in the archive is never loaded.
- "tf-checkpoint": a TF1 tensor bundle (a folder, its `.index` file or its prefix; `tf_bundle`).
- "torch7": a Torch7 binary file (`torch7`).
- "network-pickle": a StyleGAN2-ADA network pickle (MAT's `Places_512_FullData.pkl`): a plain
  pickle of a dict whose `G_ema` (the released network; `G` and `D` are dropped) is a tree of
  `torch_utils.persistence` objects. Read with `safe_pickle` (the source code they carry is never
  run) and walked like `Module.state_dict()`; its tensors are named `G_ema.<state_dict name>`.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inpaint_cli.convert.safe_pickle import (
    LEGACY_MAGIC,
    CorruptStorage,
    Inert,
    RefusedPickle,
    RestrictedUnpickler,
    StorageRef,
    TensorRecord,
    load_pickle,
)
from inpaint_cli.errors import InpaintError

ZIP_MAGIC = b"PK\x03\x04"
NOT_A_CONTAINER = (
    "not a weights container I know (a torch.save file, a TorchScript archive, a TF checkpoint or a Torch7 file)"
)
#: a Torch7 binary file starts with the type tag of its root object: 3 (table) or 4 (torch object)
TORCH7_TAGS = (struct.pack("<i", 3), struct.pack("<i", 4))
#: the magic number closing every TF table file (`.index` of a tensor bundle)
TF_TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)
#: the network a StyleGAN2-ADA snapshot releases (the exponential average of G)
NETWORK_PICKLE_KEY = "G_ema"
#: deeper module trees than this are refused (a hostile pickle may nest or loop)
MAX_MODULE_DEPTH = 64


@dataclass
class Container:
    """What a file holds: its kind (above) and every tensor, by name."""

    kind: str
    tensors: dict[str, torch.Tensor]


def read_container(path: Path) -> Container:
    """Recognise the container of `path` from its content and read its tensors."""
    if _is_tf_checkpoint(path):
        from inpaint_cli.convert.tf_bundle import read_tf_checkpoint

        return Container("tf-checkpoint", read_tf_checkpoint(path))
    if not path.is_file():
        raise InpaintError("file not found")
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == ZIP_MAGIC:
        return _read_zip(path)
    if head in TORCH7_TAGS:
        from inpaint_cli.convert.torch7 import read_t7_tensors

        return Container("torch7", read_t7_tensors(path))
    return _read_legacy(path)


def _is_tf_checkpoint(path: Path) -> bool:
    if path.is_dir():
        return True
    if not path.exists():
        return Path(f"{path}.index").is_file()
    if path.stat().st_size < len(TF_TABLE_MAGIC):
        return False
    with path.open("rb") as handle:
        handle.seek(-len(TF_TABLE_MAGIC), 2)
        return handle.read() == TF_TABLE_MAGIC


# -------------------------------------------------------------------------------- torch.save zips


def _read_zip(path: Path) -> Container:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InpaintError(f"truncated or corrupt zip archive ({error})") from None
    with archive:
        names = archive.namelist()
        pickles = [name for name in names if re.fullmatch(r"[^/]+/data\.pkl", name)]
        if len(pickles) != 1:
            raise InpaintError("a zip archive, but not a PyTorch file (no <archive>/data.pkl)")
        root = pickles[0].split("/")[0]
        byteorder = f"{root}/byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise InpaintError("big-endian PyTorch files are not supported")
        structure = load_pickle(_read_member(archive, pickles[0]))
        if f"{root}/constants.pkl" in names or any(name.startswith(f"{root}/code/") for name in names):
            kind, records = "torchscript", dict(_module_tensors(structure, ""))
        else:
            kind, tree = _tensor_tree(structure)
            records = dict(_leaves(tree, TensorRecord))
        return Container(kind, _materialise(records, archive, root))


def _tensor_tree(structure: Any) -> tuple[str, Mapping]:
    """The kind of a `torch.save` file and the dict holding its tensors."""
    if isinstance(structure, Mapping) and isinstance(structure.get("state_dict"), Mapping):
        return "lightning-ckpt", structure["state_dict"]
    if isinstance(structure, Mapping):
        return "state-dict", structure
    raise InpaintError(f"a PyTorch file holding a {type(structure).__name__}, not a dict of tensors")


def _leaves(value: Any, leaf_type: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Values of `leaf_type` in nested dicts and lists, named by their dotted path."""
    if isinstance(value, leaf_type):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, leaf_type, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, leaf_type, f"{prefix}.{index}" if prefix else str(index))


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InpaintError(f"truncated or corrupt zip member {name} ({error})") from None


def _module_tensors(value: Any, prefix: str) -> Iterator[tuple[str, TensorRecord]]:
    """Parameters and buffers of a TorchScript module tree: each module is a placeholder whose
    state is the dict of its attributes (tensors and submodules)."""
    if not (isinstance(value, Inert) and isinstance(value.state, Mapping)):
        return
    for name, item in value.state.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(item, TensorRecord):
            yield path, item
        else:
            yield from _module_tensors(item, path)


def _materialise(records: dict[str, TensorRecord], archive: zipfile.ZipFile, root: str) -> dict[str, torch.Tensor]:
    """Read the storages of `records` and build each tensor on its own memory."""
    if not records:
        raise InpaintError("the file holds no tensors")
    storages: dict[str, torch.Tensor] = {}
    handed_out: set[str] = set()
    tensors: dict[str, torch.Tensor] = {}
    for key, record in records.items():
        storage = storages.get(record.storage.key)
        if storage is None:
            storage = storages[record.storage.key] = _read_storage(archive, root, record.storage)
        try:
            tensor = storage.as_strided(record.size, record.stride, record.offset)
        except RuntimeError:
            raise InpaintError(f"tensor {key} lies outside its storage (truncated or corrupt file)") from None
        whole = record.offset == 0 and tensor.numel() == storage.numel() and tensor.is_contiguous()
        if not whole or record.storage.key in handed_out:
            tensor = tensor.clone()
        handed_out.add(record.storage.key)
        tensors[key] = tensor
    return tensors


def _read_storage(archive: zipfile.ZipFile, root: str, storage: StorageRef) -> torch.Tensor:
    name = f"{root}/data/{storage.key}"
    try:
        size = archive.getinfo(name).file_size
    except KeyError:
        raise InpaintError(f"storage {name} is missing") from None
    expected = storage.numel * torch.empty((), dtype=storage.dtype).element_size()
    if size != expected:
        raise InpaintError(f"storage {name} has {size} bytes, its tensors need {expected}")
    if not size:
        return torch.empty(0, dtype=storage.dtype)
    return torch.frombuffer(bytearray(_read_member(archive, name)), dtype=storage.dtype)


# ----------------------------------------------------------------------------- legacy torch.save


def _read_legacy(path: Path) -> Container:
    """A pre-zip `torch.save` file: pickles (a magic number, the protocol, system information, the
    object) then the storages. The pickles are first read with `safe_pickle` (a hostile one is
    refused there, a file that is no pickle at all is named so), then the file with torch's own
    weights-only loader."""
    with path.open("rb") as handle:
        try:
            first = RestrictedUnpickler(handle).load()
        except (RefusedPickle, CorruptStorage):
            raise
        except Exception:  # any error of the unpickler on the first bytes: not a pickle
            raise InpaintError(NOT_A_CONTAINER) from None
        if isinstance(first, Mapping) and NETWORK_PICKLE_KEY in first:
            return _network_pickle(first[NETWORK_PICKLE_KEY])
        if first != LEGACY_MAGIC:
            raise InpaintError("a pickle, but not a PyTorch file (use torch.save's format)")
        try:
            for _ in range(3):
                RestrictedUnpickler(handle).load()
        except RefusedPickle:
            raise
        except Exception as error:
            raise _corrupt(error) from None
    try:
        structure = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types here; each becomes one line
        raise _corrupt(error) from None
    kind, tree = _tensor_tree(structure)
    tensors = dict(_leaves(tree, torch.Tensor))
    if not tensors:
        raise InpaintError("the file holds no tensors")
    return Container(kind, tensors)


def _network_pickle(network: Any) -> Container:
    """The tensors of a StyleGAN2-ADA snapshot's `G_ema`, copied out of the pickle's memory."""
    tensors = {name: tensor.clone() for name, tensor in _persistent_tensors(network, NETWORK_PICKLE_KEY, 0)}
    if not tensors:
        raise InpaintError("the file holds no tensors")
    return Container("network-pickle", tensors)


def _persistent_tensors(module: Any, path: str, depth: int) -> Iterator[tuple[str, torch.Tensor]]:
    """`Module.state_dict()` of a module rebuilt as placeholders (state = its `__dict__`):
    parameters, persistent buffers, then submodules, each by dotted name."""
    state = module.state if isinstance(module, Inert) else None
    if not isinstance(state, Mapping) or depth > MAX_MODULE_DEPTH:
        raise InpaintError(f"{path} is not a network module (or nests too deep)")
    skipped = state.get("_non_persistent_buffers_set")
    skipped = skipped if isinstance(skipped, (set, frozenset, list, tuple)) else ()
    for group in ("_parameters", "_buffers", "_modules"):
        entries = state.get(group) or {}
        if not isinstance(entries, Mapping):
            raise InpaintError(f"{path}.{group} is not a dict")
        for name, value in entries.items():
            if value is None or (group == "_buffers" and name in skipped):
                continue
            if group == "_modules":
                yield from _persistent_tensors(value, f"{path}.{name}", depth + 1)
            elif isinstance(value, torch.Tensor):
                yield f"{path}.{name}", value
            else:
                raise InpaintError(f"{path}.{name} is not a tensor")


def _corrupt(error: Exception) -> InpaintError:
    first_line = re.sub(r"\x1b\[[0-9;]*m", "", str(error).strip()).split("\n")[0][:200]
    return InpaintError(f"truncated or corrupt PyTorch file ({type(error).__name__}: {first_line})")

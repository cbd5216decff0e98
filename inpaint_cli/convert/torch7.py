"""A reader of Torch7's binary serialisation (`torch.save` of Lua Torch, `.t7`) that keeps the
numbers and tensors and never runs anything from the file.

Format (torch7 `File.lua` `writeObject`, `generic/Tensor.c` and `generic/Storage.c` `write`,
binary mode: little-endian, 4-byte ints, 8-byte longs): each value is an int32 type tag, then
- nil (0): nothing; number (1): float64; boolean (5): int32; string (2): int32 length + bytes;
- table (3): int32 reference index (a repeated index refers back to the object already read), int32
  entry count, then that many key and value objects;
- torch object (4): reference index, a version string "V <n>" and the class name (before version
  1 only the class name); a `torch.*Tensor` then holds nDimension (int32), sizes and strides
  (int64 each), a 1-based storage offset (int64) and its storage object; a `torch.*Storage`
  holds its element count (int64) and the raw elements; any other class (an `nn` module) holds
  one table of its fields;
- functions (6, 7, 8, serialised Lua bytecode) are refused: weights never need them.

The result is flat: a tensor or number is named by its path of table keys from the root, string
keys joined by dots and integer keys in brackets, e.g. `model.modules[1].weight` for GLCIC's
`{model = nn.Sequential, mean = ...}`; a root that is an object rather than a plain table (the
Context Encoder's `nn.Sequential`) is called `net`, so its first convolution's weight is
`net.modules[1].modules[1].weight`. Numbers become 0-d float64 tensors (a module's `eps`, a Lua
table of means); tensors without elements (the cleared `output`, `gradInput` buffers), strings and booleans
are skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch

from inpaint_cli.errors import InpaintError

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5
FUNCTIONS = (6, 7, 8)
ROOT_OBJECT_NAME = "net"

#: storage element type of each tensor / storage class name (without the `Tensor`/`Storage` suffix)
ELEMENT_TYPES: dict[str, torch.dtype] = {
    "torch.Float": torch.float32,
    "torch.Double": torch.float64,
    "torch.Half": torch.float16,
    "torch.Byte": torch.uint8,
    "torch.Char": torch.int8,
    "torch.Short": torch.int16,
    "torch.Int": torch.int32,
    "torch.Long": torch.int64,
    "torch.Cuda": torch.float32,
    "torch.CudaDouble": torch.float64,
    "torch.CudaHalf": torch.float16,
    "torch.CudaByte": torch.uint8,
    "torch.CudaChar": torch.int8,
    "torch.CudaShort": torch.int16,
    "torch.CudaInt": torch.int32,
    "torch.CudaLong": torch.int64,
}


class _Malformed(Exception):
    """A structural error, reported with the file's name by `read_t7_tensors`."""


@dataclass
class LuaObject:
    """A torch object that is neither tensor nor storage (an `nn` module): its class and fields."""

    class_name: str
    fields: dict[Any, Any] = field(default_factory=dict)


@dataclass
class LuaTable:
    entries: dict[Any, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.memo: dict[int, Any] = {}

    def _take(self, count: int) -> bytes:
        if count < 0 or self.handle.tell() + count > self.size:
            raise _Malformed("truncated: data ends before the object does")
        return self.handle.read(count)

    def int32(self) -> int:
        return struct.unpack("<i", self._take(4))[0]

    def int64(self) -> int:
        return struct.unpack("<q", self._take(8))[0]

    def string(self) -> bytes:
        return self._take(self.int32())

    def read(self) -> Any:
        tag = self.int32()
        if tag == NIL:
            return None
        if tag == NUMBER:
            return struct.unpack("<d", self._take(8))[0]
        if tag == BOOLEAN:
            return self.int32() == 1
        if tag == STRING:
            return self.string()
        if tag in FUNCTIONS:
            raise _Malformed("holds a serialised Lua function, which is refused (weights never need one)")
        if tag not in (TABLE, TORCH):
            raise _Malformed(f"unknown type tag {tag}")
        index = self.int32()
        if index in self.memo:
            return self.memo[index]
        if tag == TABLE:
            table = LuaTable()
            self.memo[index] = table  # registered first: a table may contain itself
            for _ in range(self._count(self.int32())):
                key = self.read()
                table.entries[_hashable(key)] = self.read()
            return table
        return self._torch_object(index)

    def _count(self, count: int) -> int:
        if count < 0 or count > self.size:
            raise _Malformed(f"implausible entry count {count}")
        return count

    def _torch_object(self, index: int) -> Any:
        version = self.string()
        class_name = (self.string() if version.startswith(b"V ") else version).decode("ascii", "replace")
        if class_name.endswith("Storage"):
            storage = self._storage(class_name)
            self.memo[index] = storage
            return storage
        if class_name.endswith("Tensor"):
            tensor = self._tensor(class_name)
            self.memo[index] = tensor
            return tensor
        obj = LuaObject(class_name)
        self.memo[index] = obj
        fields = self.read()
        if isinstance(fields, LuaTable):
            obj.fields = fields.entries
        return obj

    def _element_type(self, class_name: str, suffix: str) -> torch.dtype:
        dtype = ELEMENT_TYPES.get(class_name[: -len(suffix)])
        if dtype is None:
            raise _Malformed(f"unsupported class {class_name}")
        return dtype

    def _storage(self, class_name: str) -> torch.Tensor:
        dtype = self._element_type(class_name, "Storage")
        count = self.int64()
        item = torch.empty((), dtype=dtype).element_size()
        if count < 0 or self.handle.tell() + count * item > self.size:
            raise _Malformed(f"truncated: a {class_name} of {count} elements runs past the end of the file")
        buffer = bytearray(self._take(count * item))
        return torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype=dtype)

    def _tensor(self, class_name: str) -> torch.Tensor | None:
        dtype = self._element_type(class_name, "Tensor")
        dimensions = self.int32()
        if not 0 <= dimensions <= 64:
            raise _Malformed(f"a {class_name} with {dimensions} dimensions")
        sizes = [self.int64() for _ in range(dimensions)]
        strides = [self.int64() for _ in range(dimensions)]
        offset = self.int64() - 1
        storage = self.read()
        if dimensions == 0 or storage is None:
            return None  # an empty tensor (cleared buffers)
        if not isinstance(storage, torch.Tensor) or storage.dtype != dtype:
            raise _Malformed(f"a {class_name} whose storage is not a matching storage")
        if any(s < 0 for s in sizes) or any(s < 0 for s in strides) or offset < 0:
            raise _Malformed(f"a {class_name} with negative sizes, strides or offset")
        if 0 in sizes:
            return None
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides))
        if last >= storage.numel():
            raise _Malformed(f"a {class_name} of size {sizes} reaches past its storage of {storage.numel()}")
        return torch.as_strided(storage, sizes, strides, offset).contiguous()


def _hashable(key: Any) -> Any:
    """Table keys: strings decoded, integral numbers as ints; other keys (tables) kept by identity."""
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    if isinstance(key, float) and key.is_integer():
        return int(key)
    if isinstance(key, (str, int, float, bool)) or key is None:
        return key
    return ("object", id(key))


def _flatten(value: Any, name: str, out: dict[str, torch.Tensor], active: set[int]) -> None:
    if isinstance(value, torch.Tensor):
        out[name] = value
    elif isinstance(value, float):
        out[name] = torch.tensor(value, dtype=torch.float64)
    elif isinstance(value, (LuaTable, LuaObject)):
        if id(value) in active:  # a cycle (e.g. a module pointing at its container)
            return
        active.add(id(value))
        entries = value.entries if isinstance(value, LuaTable) else value.fields
        for key, item in entries.items():
            if isinstance(key, str):
                _flatten(item, f"{name}.{key}" if name else key, out, active)
            elif isinstance(key, int):
                _flatten(item, f"{name}[{key}]", out, active)
        active.discard(id(value))


def read_t7_object(path: Path) -> Any:
    """The root object of a Torch7 binary file: `LuaTable`, `LuaObject`, tensor or plain value."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            reader = _Reader(handle, size)
            root = reader.read()
    except OSError as error:
        raise InpaintError(f"{path}: cannot read ({error.strerror})") from None
    except _Malformed as error:
        raise InpaintError(f"{path}: not a usable Torch7 file: {error}") from None
    except RecursionError:
        raise InpaintError(f"{path}: not a usable Torch7 file: nested too deeply") from None
    return root


def read_t7_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor and number of a Torch7 binary file by its flat name (module docstring)."""
    root = read_t7_object(path)
    out: dict[str, torch.Tensor] = {}
    _flatten(root, "" if isinstance(root, LuaTable) else ROOT_OBJECT_NAME, out, set())
    return out

"""A reader of TensorFlow 1's V2 checkpoints (the tensor-bundle format of `tf.train.Saver`),
without TensorFlow and without running anything from the files.

A checkpoint is a prefix `P` with `P.index` and `P.data-0000K-of-0000N`. The index is a LevelDB
table (SSTable): data blocks of prefix-compressed key/value entries with a restart array, an index
block of separator keys and block handles, and a 48-byte footer ending in a magic number. Its
value for the empty key is a `BundleHeaderProto`; every other key is a tensor name whose value is a
`BundleEntryProto` (dtype, shape, shard, offset and size of the raw little-endian bytes in shard
`K`). TensorFlow writes the blocks uncompressed; snappy-compressed blocks are refused.
Reference: TensorFlow `core/util/tensor_bundle/tensor_bundle.{h,cc}`, `core/lib/io/table*`,
`core/protobuf/tensor_bundle.proto`; LevelDB `doc/table_format.md`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from inpaint_cli.errors import InpaintError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1

#: TensorFlow `DataType` enum values -> torch dtypes (string and resource tensors are skipped)
DTYPES: dict[int, torch.dtype] = {
    1: torch.float32,
    2: torch.float64,
    3: torch.int32,
    4: torch.uint8,
    5: torch.int16,
    6: torch.int8,
    9: torch.int64,
    10: torch.bool,
    14: torch.bfloat16,
    19: torch.float16,
}
DT_STRING = 7


class _Corrupt(Exception):
    """A structural error inside the index, reported with the file's name by the caller."""


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    """The unsigned LEB128 integer at `position` and the position after it."""
    result = shift = 0
    while True:
        if position >= len(buffer) or shift > 63:
            raise _Corrupt("truncated or overlong varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _proto_fields(buffer: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a serialised protobuf message: varints as ints, length-delimited
    fields as bytes, fixed32/fixed64 as ints."""
    position = 0
    while position < len(buffer):
        tag, position = _varint(buffer, position)
        field, wire_type = tag >> 3, tag & 7
        value: int | bytes
        if wire_type == 0:
            value, position = _varint(buffer, position)
        elif wire_type == 1:
            value, position = int.from_bytes(buffer[position : position + 8], "little"), position + 8
        elif wire_type == 2:
            length, position = _varint(buffer, position)
            value, position = buffer[position : position + length], position + length
        elif wire_type == 5:
            value, position = int.from_bytes(buffer[position : position + 4], "little"), position + 4
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire_type}")
        if position > len(buffer):
            raise _Corrupt("truncated protobuf message")
        yield field, value


@dataclass(frozen=True)
class BundleEntry:
    """The fields of a `BundleEntryProto` the reader needs."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    sliced: bool  # a partitioned variable (`slices`), whose bytes live under other keys


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_entry(buffer: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    shape: list[int] = []
    sliced = False
    for field, value in _proto_fields(buffer):
        if field == 1 and isinstance(value, int):
            dtype = value
        elif field == 2 and isinstance(value, bytes):  # TensorShapeProto: repeated dim = 2
            for shape_field, dim in _proto_fields(value):
                if shape_field == 2 and isinstance(dim, bytes):
                    sizes = [v for f, v in _proto_fields(dim) if f == 1 and isinstance(v, int)]
                    shape.append(_signed64(sizes[0]) if sizes else 0)
        elif field == 3 and isinstance(value, int):
            shard = value
        elif field == 4 and isinstance(value, int):
            offset = _signed64(value)
        elif field == 5 and isinstance(value, int):
            size = _signed64(value)
        elif field == 7:
            sliced = True
    return BundleEntry(dtype, tuple(shape), shard, offset, size, sliced)


def _block(table: bytes, handle: bytes, position: int = 0) -> tuple[bytes, int]:
    """The contents of the block whose `BlockHandle` (offset, size varints) starts at `position`
    of `handle`, and the position after the handle."""
    offset, position = _varint(handle, position)
    size, position = _varint(handle, position)
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise _Corrupt(f"a block handle points past the end of the file ({end} > {len(table)})")
    compression = table[end]
    if compression == SNAPPY_COMPRESSION:
        raise _Corrupt("snappy-compressed blocks are not supported (TensorFlow writes them uncompressed)")
    if compression != NO_COMPRESSION:
        raise _Corrupt(f"unknown block compression type {compression}")
    return table[offset:end], position


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs of a table block: each entry stores the length of the key prefix it
    shares with the previous key, the rest of the key and the value; a restart array of uint32
    offsets and their count end the block."""
    if len(block) < 4:
        raise _Corrupt("a block is shorter than its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise _Corrupt("a block's restart array is larger than the block")
    position, key = 0, b""
    while position < end:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        if shared > len(key) or position + unshared + value_length > end:
            raise _Corrupt("a block entry runs past its block")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + value_length]
        position += value_length


def read_index(table: bytes) -> dict[str, bytes]:
    """Every key of an SSTable and its value, in order."""
    if len(table) < FOOTER_SIZE:
        raise _Corrupt(f"{len(table)} bytes is shorter than a table footer")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise _Corrupt("no table magic number at the end (not a TF checkpoint index, or truncated)")
    _, position = _varint(footer, 0)  # metaindex handle: TF writes an empty metaindex
    _, position = _varint(footer, position)
    index_block, _ = _block(table, footer, position)
    entries: dict[str, bytes] = {}
    for _, handle in _block_entries(index_block):
        data_block, _ = _block(table, handle)
        for key, value in _block_entries(data_block):
            entries[key.decode("utf-8", errors="replace")] = value
    return entries


def checkpoint_prefix(path: Path) -> Path:
    """The prefix of the checkpoint named by a folder (by its `checkpoint` file, else its one `.index`),
    an `.index` or `.data-*` file, or the prefix itself."""
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            found = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(errors="replace"), re.M)
            if found:  # the named prefix, or its name in this folder (a moved or downloaded folder)
                named = Path(found.group(1))
                for prefix in (path / named, path / named.name):
                    if prefix.with_name(prefix.name + ".index").is_file():
                        return prefix
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            raise InpaintError(f"{path}: expected one TF checkpoint (*.index) in the folder, found {len(indexes)}")
        return indexes[0].with_suffix("")
    if path.suffix == ".index":
        return path.with_suffix("")
    data = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", path.name)
    if data:
        return path.with_name(data.group(1))
    return path


def read_tf_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Every numeric tensor of a TF1 V2 checkpoint (name -> tensor in TF's own layout, e.g. HWIO
    kernels). `path` is the checkpoint folder, its `.index` file or its prefix. Raises
    `InpaintError` with one line on a missing, truncated or malformed file."""
    prefix = checkpoint_prefix(Path(path))
    index_path = prefix.with_name(prefix.name + ".index")
    try:
        table = index_path.read_bytes()
    except OSError as error:
        raise InpaintError(f"{index_path}: cannot read the checkpoint index ({error.strerror})") from None
    try:
        entries = read_index(table)
        header = dict(_proto_fields(entries.pop("", b"")))
        parsed = {name: parse_entry(value) for name, value in entries.items()}
    except _Corrupt as error:
        raise InpaintError(f"{index_path}: {error}") from None
    if header.get(2, 0) != 0:
        raise InpaintError(f"{index_path}: a big-endian checkpoint is not supported")
    shards = header.get(1, 1)
    if not isinstance(shards, int) or shards < 1:
        raise InpaintError(f"{index_path}: bad shard count {shards!r}")
    tensors: dict[str, torch.Tensor] = {}
    handles: dict[int, BinaryIO] = {}
    try:
        for name, entry in parsed.items():
            tensor = _read_tensor(prefix, shards, name, entry, handles)
            if tensor is not None:
                tensors[name] = tensor
    finally:
        for handle in handles.values():
            handle.close()
    return tensors


def _read_tensor(
    prefix: Path, shards: int, name: str, entry: BundleEntry, handles: dict[int, BinaryIO]
) -> torch.Tensor | None:
    if entry.dtype == DT_STRING:
        return None
    if entry.sliced:
        raise InpaintError(f"{prefix}: tensor {name!r} is partitioned into slices, which is not supported")
    dtype = DTYPES.get(entry.dtype)
    if dtype is None:
        raise InpaintError(f"{prefix}: tensor {name!r} has unsupported TF dtype {entry.dtype}")
    if not 0 <= entry.shard < shards:
        raise InpaintError(f"{prefix}: tensor {name!r} names shard {entry.shard} of {shards}")
    if any(d < 0 for d in entry.shape):
        raise InpaintError(f"{prefix}: tensor {name!r} has an unknown shape {list(entry.shape)}")
    numel = 1
    for d in entry.shape:
        numel *= d
    expected = numel * torch.empty((), dtype=dtype).element_size()
    if entry.size != expected or entry.offset < 0:
        raise InpaintError(
            f"{prefix}: tensor {name!r} of shape {list(entry.shape)} stores {entry.size} bytes, expected {expected}"
        )
    data_path = prefix.with_name(f"{prefix.name}.data-{entry.shard:05d}-of-{shards:05d}")
    if entry.shard not in handles:
        try:
            handles[entry.shard] = data_path.open("rb")
        except OSError as error:
            raise InpaintError(f"{data_path}: cannot read the checkpoint data ({error.strerror})") from None
    handle = handles[entry.shard]
    handle.seek(entry.offset)
    buffer = bytearray(entry.size)
    if handle.readinto(buffer) != entry.size:
        raise InpaintError(f"{data_path}: truncated: tensor {name!r} ends past the end of the file")
    if not buffer:
        return torch.empty(entry.shape, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype).reshape(entry.shape)

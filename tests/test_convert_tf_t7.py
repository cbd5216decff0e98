"""The TF1 tensor-bundle and Torch7 readers, and the DeepFill, GLCIC and Context Encoder mappings.

Fake official files are written here, in the real containers, by small writers of the formats
(TF `tensor_bundle` + LevelDB table; Torch7 `File.lua` binary), from the official key lists in
tests/data/official-keys (derived from the official code): every key, random values, random
batch-norm statistics, plus the extra variables real files carry.
"""

from __future__ import annotations

import ast
import json
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.archs.context_encoder import CONFIGS as CE_CONFIGS
from inpaint_cli.archs.context_encoder import ContextEncoder
from inpaint_cli.archs.deepfill_v1 import CONFIGS as V1_CONFIGS
from inpaint_cli.archs.deepfill_v1 import DeepFillV1
from inpaint_cli.archs.deepfill_v2 import CONFIGS as V2_CONFIGS
from inpaint_cli.archs.deepfill_v2 import DeepFillV2
from inpaint_cli.archs.glcic import CONFIGS as GLCIC_CONFIGS
from inpaint_cli.archs.glcic import CompletionNetwork
from inpaint_cli.checkpoint import load_release
from inpaint_cli.convert import context_encoder as ce_convert
from inpaint_cli.convert import convert, default_output, write_converted
from inpaint_cli.convert import deepfill as deepfill_convert
from inpaint_cli.convert import glcic as glcic_convert
from inpaint_cli.convert.tf_bundle import TABLE_MAGIC, read_tf_checkpoint
from inpaint_cli.convert.torch7 import read_t7_tensors
from inpaint_cli.errors import InpaintError
from inpaint_cli.layers.contextual_attention import align_corners_nearest
from inpaint_cli.layers.conv_activation import tf_same_pad

KEYS = Path(__file__).parent / "data" / "official-keys"


def key_rows(name: str) -> list[list[str]]:
    lines = (KEYS / name).read_text().splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


# --- a TF1 V2 checkpoint writer (tensor_bundle.cc + LevelDB table format) -----------------------

TF_DTYPES = {torch.float32: 1, torch.float64: 2, torch.int32: 3, torch.int64: 9, torch.float16: 19}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def proto_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def table_block(entries: list[tuple[bytes, bytes]], restart_interval: int = 4) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def write_tf_checkpoint(
    prefix: Path, tensors: dict[str, torch.Tensor], block_entries: int = 16, compression: int = 0
) -> None:
    """`prefix.index` and `prefix.data-00000-of-00001` as `tf.train.Saver` (V2) writes them."""
    data, entries = bytearray(), []
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        raw = tensor.numpy().tobytes()
        shape = b"".join(proto_field(2, proto_field(1, d)) for d in tensor.shape)
        entry = proto_field(1, TF_DTYPES[tensor.dtype]) + proto_field(2, shape)
        entry += proto_field(4, len(data)) + proto_field(5, len(raw)) + b"\x35" + b"\0\0\0\0"  # crc32c
        entries.append((name.encode(), entry))
        data += raw
    header = proto_field(1, 1) + proto_field(3, proto_field(1, 1))  # num_shards, version
    entries.insert(0, (b"", header))
    table, index = bytearray(), []
    for start in range(0, len(entries), block_entries):
        chunk = entries[start : start + block_entries]
        block = table_block(chunk)
        index.append((chunk[-1][0], varint(len(table)) + varint(len(block))))
        table += block + bytes([compression]) + b"\0\0\0\0"
    metaindex = table_block([])
    meta_handle = varint(len(table)) + varint(len(metaindex))
    table += metaindex + b"\0" * 5
    index_block = table_block(index, restart_interval=1)
    index_handle = varint(len(table)) + varint(len(index_block))
    table += index_block + b"\0" * 5
    handles = meta_handle + index_handle
    table += handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", TABLE_MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(table))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


# --- a Torch7 binary writer (torch7 File.lua writeObject) ----------------------------------------

T7_CLASSES = {torch.float32: "torch.Float", torch.float64: "torch.Double", torch.int64: "torch.Long"}


@dataclass
class LuaModule:
    class_name: str
    fields: dict[str, Any] = field(default_factory=dict)


class T7Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.references: dict[int, int] = {}

    def int32(self, value: int) -> None:
        self.out += struct.pack("<i", value)

    def string(self, value: str | bytes) -> None:
        raw = value.encode() if isinstance(value, str) else value
        self.int32(len(raw))
        self.out += raw

    def _reference(self, value: object) -> bool:
        """Write the reference index; True if the object was already written."""
        if id(value) in self.references:
            self.int32(self.references[id(value)])
            return True
        self.references[id(value)] = len(self.references) + 1
        self.int32(self.references[id(value)])
        return False

    def write(self, value: Any) -> None:
        if value is None:
            self.int32(0)
        elif isinstance(value, bool):
            self.int32(5)
            self.int32(int(value))
        elif isinstance(value, (int, float)):
            self.int32(1)
            self.out += struct.pack("<d", float(value))
        elif isinstance(value, (str, bytes)):
            self.int32(2)
            self.string(value)
        elif isinstance(value, (dict, list)):
            self.int32(3)
            if self._reference(value):
                return
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value, 1))
            self.int32(len(items))
            for key, item in items:
                self.write(key)
                self.write(item)
        elif isinstance(value, LuaModule):
            self.int32(4)
            if self._reference(value):
                return
            self.string("V 1")
            self.string(value.class_name)
            self.write(value.fields)
        elif isinstance(value, torch.Tensor):
            self.int32(4)
            if self._reference(value):
                return
            self.string("V 1")
            self.string(T7_CLASSES[value.dtype] + "Tensor")
            empty = value.numel() == 0  # Torch's empty tensors have no dimension and no storage
            self.int32(0 if empty else value.dim())
            for number in () if empty else (*value.shape, *value.stride()):
                self.out += struct.pack("<q", number)
            self.out += struct.pack("<q", value.storage_offset() + 1)
            storage = value.untyped_storage()
            if empty:
                self.int32(0)
                return
            self.int32(4)
            if self._reference(storage):
                return
            self.string("V 1")
            self.string(T7_CLASSES[value.dtype] + "Storage")
            count = storage.nbytes() // value.element_size()
            self.out += struct.pack("<q", count)
            self.out += torch.empty(0, dtype=value.dtype).set_(storage, 0, (count,), (1,)).numpy().tobytes()
        else:
            raise TypeError(type(value))


def write_t7(path: Path, root: Any) -> None:
    writer = T7Writer()
    writer.write(root)
    path.write_bytes(bytes(writer.out))


def lua_module(class_name: str, tensors: dict[str, torch.Tensor]) -> LuaModule:
    """An nn module as `torch.save` leaves it: parameters, empty buffers, flags and names."""
    fields: dict[str, Any] = {"train": False, "_type": "torch.FloatTensor", "output": torch.empty(0)}
    fields.update(tensors)
    if "weight" in tensors:
        fields["gradWeight"] = torch.zeros_like(tensors["weight"])
    if "running_var" in tensors:
        fields.update(eps=1e-5, momentum=0.1, affine=True)
    return LuaModule(class_name, fields)


def random_tensor(name: str, shape: list[int], generator: torch.Generator) -> torch.Tensor:
    """Random values; batch-norm variances positive, scales near 1."""
    if name == "running_var":
        return torch.rand(shape, generator=generator) + 0.5
    if name == "weight" and len(shape) == 1:
        return 1 + 0.1 * torch.randn(shape, generator=generator)
    return 0.05 * torch.randn(shape, generator=generator)


def fake_t7_network(rows: list[list[str]], seed: int = 0) -> tuple[dict[str, LuaModule], dict[str, torch.Tensor]]:
    """Every module of a key list ({lua_path: module}) and every tensor ({lua_path.tensor: value})."""
    generator = torch.Generator().manual_seed(seed)
    classes: dict[str, str] = {}
    values: dict[str, torch.Tensor] = {}
    for lua_path, _, class_name, _, tensor, shape in rows:
        classes[lua_path] = class_name.split()[0]
        if tensor != "-":
            values[f"{lua_path}.{tensor}"] = random_tensor(tensor, ast.literal_eval(shape), generator)
    modules = {
        path: lua_module(name, {k[len(path) + 1 :]: v for k, v in values.items() if k.rsplit(".", 1)[0] == path})
        for path, name in classes.items()
    }
    for lua_path, module in modules.items():  # containers list their children
        children = [m for p, m in modules.items() if p.startswith(lua_path + ".modules[") and p.count("[") == lua_path.count("[") + 1]
        if children:
            module.fields["modules"] = children
    return modules, values


def reference_network(rows: list[list[str]], modules: dict[str, LuaModule]) -> nn.Module:
    """The official network rebuilt from the key list's classes and configs, independently of our
    architectures: nested `nn.Sequential`s indexed as the list's `pytorch_index`."""

    def build(lua_path: str, class_name: str, config: str) -> nn.Module:
        fields = modules[lua_path].fields
        settings = dict(item.split("=") for item in config.split()) if config != "-" else {}
        k, s, p, d = (int(settings.get(key, default)) for key, default in (("k", 1), ("s", 1), ("p", 0), ("d", 1)))
        if class_name in ("nn.SpatialConvolution", "nn.SpatialDilatedConvolution"):
            layer: nn.Module = nn.Conv2d(fields["weight"].shape[1], fields["weight"].shape[0], k, s, p, d)
        elif class_name == "nn.SpatialFullConvolution":
            layer = nn.ConvTranspose2d(fields["weight"].shape[0], fields["weight"].shape[1], k, s, p)
        elif class_name == "nn.SpatialBatchNormalization":
            layer = nn.BatchNorm2d(fields["weight"].shape[0], eps=fields["eps"])
        else:
            simple = {"nn.ReLU": nn.ReLU(), "nn.Sigmoid": nn.Sigmoid(), "nn.Tanh": nn.Tanh(), "nn.LeakyReLU": nn.LeakyReLU(0.2)}
            return simple[class_name] if class_name in simple else nn.Sequential()
        with torch.no_grad():
            for name, value in fields.items():
                if isinstance(value, torch.Tensor) and hasattr(layer, name) and value.numel():
                    getattr(layer, name).copy_(value)
        return layer

    root = nn.Sequential()
    for lua_path, index, class_name, config, _, _ in rows:
        *parents, last = index.split(".")
        container = root
        for part in parents:
            container = container[int(part)]
        if len(container) == int(last):
            container.append(build(lua_path, class_name.split()[0], config))
    return root.eval()


# --- the readers ----------------------------------------------------------------------------------


def test_tf_bundle_reads_every_dtype_across_many_blocks(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    tensors = {f"scope/layer{i:03d}/kernel": torch.randn(3, 3, 2, i % 5 + 1, generator=generator) for i in range(70)}
    tensors.update(
        {
            "a/double": torch.randn(4, dtype=torch.float64, generator=generator),
            "a/int": torch.arange(-3, 4, dtype=torch.int32),
            "a/step": torch.tensor(123456789012, dtype=torch.int64),
            "a/half": torch.randn(2, 3, generator=generator).half(),
            "a/empty": torch.zeros(0, 3),
        }
    )
    write_tf_checkpoint(tmp_path / "snap-7", tensors, block_entries=5)
    # as released: the prefix in `checkpoint` is the path on the authors' machine
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/author/logs/snap-7"\n')
    for location in (tmp_path, tmp_path / "snap-7.index", tmp_path / "snap-7"):
        read = read_tf_checkpoint(location)
        assert sorted(read) == sorted(tensors)
        for name, value in tensors.items():
            assert read[name].dtype == value.dtype and read[name].shape == value.shape
            assert torch.equal(read[name], value), name


def test_tf_bundle_broken_files_give_one_line_naming_the_problem(tmp_path: Path) -> None:
    tensors = {"x/a": torch.ones(4, 4), "x/b": torch.ones(8, 8)}
    write_tf_checkpoint(tmp_path / "ck", tensors)
    data = tmp_path / "ck.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])  # x/a (64 bytes) complete, x/b cut
    with pytest.raises(InpaintError, match=r"truncated: tensor 'x/b'") as error:
        read_tf_checkpoint(tmp_path / "ck")
    assert "\n" not in str(error.value)
    index = tmp_path / "ck.index"
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(InpaintError, match="no table magic number"):
        read_tf_checkpoint(tmp_path / "ck")
    write_tf_checkpoint(tmp_path / "snappy", tensors, compression=1)
    with pytest.raises(InpaintError, match="snappy-compressed blocks are not supported"):
        read_tf_checkpoint(tmp_path / "snappy.index")
    with pytest.raises(InpaintError, match="cannot read the checkpoint index"):
        read_tf_checkpoint(tmp_path / "absent")


def test_t7_reader_names_tensors_by_lua_path_and_skips_the_rest(tmp_path: Path) -> None:
    storage_owner = torch.arange(20, dtype=torch.float32)
    strided = storage_owner[2:14].view(3, 4)[:, ::2]  # offset 2, strides (4, 2)
    conv = lua_module("nn.SpatialConvolution", {"weight": torch.randn(2, 3, 3, 3), "bias": torch.randn(2)})
    shared = LuaModule("nn.Linear", {"weight": strided, "index": torch.tensor([1, 5], dtype=torch.int64)})
    net = LuaModule("nn.Sequential", {"modules": [conv, shared, shared], "name": "net"})
    net.fields["self"] = net  # a cycle
    write_t7(tmp_path / "table.t7", {"model": net, "mean": [0.25, 0.5, 0.75], "flag": True, "nothing": None})
    read = read_t7_tensors(tmp_path / "table.t7")
    assert torch.equal(read["model.modules[1].weight"], conv.fields["weight"])
    assert torch.equal(read["model.modules[2].weight"], torch.tensor([[2.0, 4], [6, 8], [10, 12]]))
    assert torch.equal(read["model.modules[3].index"], torch.tensor([1, 5]))
    assert [read[f"mean[{i}]"].item() for i in (1, 2, 3)] == [0.25, 0.5, 0.75]
    assert not {"model.modules[1].output", "model.modules[1].train", "model.name", "flag"} & set(read)
    write_t7(tmp_path / "object.t7", net)
    assert torch.equal(read_t7_tensors(tmp_path / "object.t7")["net.modules[1].bias"], conv.fields["bias"])


def test_t7_reader_refuses_functions_and_truncation(tmp_path: Path) -> None:
    writer = T7Writer()
    for number in (3, 1, 1):  # table, reference 1, one entry
        writer.int32(number)
    writer.write("hook")
    writer.int32(6)  # a function object, reference 2
    writer.int32(2)
    writer.string(b"\x1bLJ bytecode")
    (tmp_path / "function.t7").write_bytes(bytes(writer.out))
    with pytest.raises(InpaintError, match="Lua function, which is refused"):
        read_t7_tensors(tmp_path / "function.t7")
    write_t7(tmp_path / "big.t7", {"weight": torch.randn(100, 100)})
    cut = tmp_path / "cut.t7"
    cut.write_bytes((tmp_path / "big.t7").read_bytes()[:2000])
    with pytest.raises(InpaintError, match="truncated") as error:
        read_t7_tensors(cut)
    assert "\n" not in str(error.value)


# --- DeepFill ----------------------------------------------------------------------------------------


def fake_deepfill_checkpoint(version: int, folder: Path) -> dict[str, torch.Tensor]:
    """A TF checkpoint folder with every generator variable of the key list, plus discriminator,
    Adam slots and step counters; returns the generator variables."""
    generator = torch.Generator().manual_seed(version)
    variables = {
        name: 0.05 * torch.randn(ast.literal_eval(shape), generator=generator)
        for name, shape, _, _ in key_rows(f"deepfill_v{version}_inpaint_net.tsv")
    }
    extra = {f"{name}/Adam": torch.zeros_like(value) for name, value in list(variables.items())[:6]}
    extra["discriminator/sn_patch_gan/conv1/kernel"] = torch.randn(5, 5, 4, 64, generator=generator)
    extra["discriminator/sn_patch_gan/conv1/kernel_sn/u"] = torch.randn(1, 64, generator=generator)
    extra["beta1_power"] = torch.tensor(0.5)
    extra["global_step"] = torch.tensor(1000, dtype=torch.int64)
    write_tf_checkpoint(folder / "snap-1000", {**variables, **extra}, block_entries=64)
    (folder / "checkpoint").write_text('model_checkpoint_path: "snap-1000"\n')
    return variables


@pytest.mark.parametrize("version", [1, 2])
def test_deepfill_fake_official_checkpoint_converts_and_fills(version: int, tmp_path: Path) -> None:
    variables = fake_deepfill_checkpoint(version, tmp_path)
    tensors = read_tf_checkpoint(tmp_path)
    models = {m.name: m for m in deepfill_convert.OFFICIAL}
    official = models[f"deepfill-v{version}"]
    assert official.recognise(tensors)
    assert not models[f"deepfill-v{3 - version}"].recognise(tensors)
    state = official.to_state_dict(tensors)
    assert {deepfill_convert.tf_name(key) for key in state} == set(variables)
    for key, value in state.items():
        source = variables[deepfill_convert.tf_name(key)]
        assert torch.equal(value, source.permute(3, 2, 0, 1) if source.dim() == 4 else source), key
    build = (DeepFillV1, V1_CONFIGS) if version == 1 else (DeepFillV2, V2_CONFIGS)
    config = build[1][official.config]
    assert all(getattr(config, name) == value for name, value in official.config_overrides.items())
    network = build[0](config).eval()
    network.load_state_dict(state, strict=True)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:44, 16:40] = 1
    with torch.no_grad():
        filled = network.inpaint(image, mask)
    assert filled.shape == image.shape and torch.isfinite(filled).all()
    assert filled[mask.expand_as(filled) > 0].std() > 1e-3  # the random network does fill


def test_deepfill_wrong_shape_and_missing_variable_name_the_variable(tmp_path: Path) -> None:
    variables = fake_deepfill_checkpoint(2, tmp_path)
    tensors = read_tf_checkpoint(tmp_path)
    official = deepfill_convert.OFFICIAL[1]
    wrong = dict(tensors, **{"inpaint_net/conv5/kernel": torch.zeros(3, 3, 96, 96)})
    with pytest.raises(InpaintError, match=r"'inpaint_net/conv5/kernel' has shape \[3, 3, 96, 96\], expected \[3, 3, 96, 192\]"):
        official.to_state_dict(wrong)
    missing = {k: v for k, v in tensors.items() if k != "inpaint_net/allconv16/bias"}
    with pytest.raises(InpaintError, match="missing TF variable 'inpaint_net/allconv16/bias'"):
        official.to_state_dict(missing)
    assert len(variables) == 84


def test_tf_same_padding_and_align_corners_resize_follow_tensorflow() -> None:
    # TF 'SAME', stride 2, k 3 on an even size: 0 before, 1 after; stride 1: symmetric
    x = torch.randn(1, 2, 8, 6)
    assert torch.equal(tf_same_pad(x, 3, 2, 1), F.pad(x, (0, 1, 0, 1)))
    assert torch.equal(tf_same_pad(x, 3, 1, 4), F.pad(x, (4, 4, 4, 4)))
    odd = torch.randn(1, 1, 7, 7)
    assert torch.equal(tf_same_pad(odd, 3, 2, 1), F.pad(odd, (1, 1, 1, 1)))
    # indices read by tf.compat.v1.image.resize_nearest_neighbor(align_corners=True), TF 2.21
    tf_indices = {
        (64, 32): [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51,
                   53, 55, 57, 59, 61, 63],
        (40, 20): [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39],
        (24, 6): [0, 5, 9, 14, 18, 23],
    }
    for (size, new), expected in tf_indices.items():
        ramp = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1).expand(1, 1, size, 3)
        assert align_corners_nearest(ramp, (new, 3))[0, 0, :, 0].long().tolist() == expected


def test_deepfill_official_config_pads_as_tf_and_reads_bgr() -> None:
    torch.manual_seed(0)
    tiny = V2_CONFIGS["tiny"]
    ours = DeepFillV2(tiny).eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.normal_(0, 0.3)
    tf_rgb = DeepFillV2(replace(tiny, tf_compatible=True)).eval()
    tf_bgr = DeepFillV2(replace(tiny, tf_compatible=True, channel_order="bgr")).eval()
    for network in (tf_rgb, tf_bgr):
        network.load_state_dict(ours.state_dict())
    x = torch.randn(1, 4, 8, 8)
    layer, conv = tf_bgr.coarse.conv2_downsample, tf_bgr.coarse.conv2_downsample.conv
    with torch.no_grad():
        expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
        assert torch.equal(conv(layer.pad(x)), expected)
        theirs = ours.coarse.conv2_downsample  # PyTorch's symmetric padding, by the convolution
        assert not torch.allclose(theirs.conv(theirs.pad(x)), expected)
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    with torch.no_grad():
        bgr = tf_bgr.inpaint(image, mask)
        rgb_of_flipped = tf_rgb.inpaint(image.flip(1), mask).flip(1)
        assert torch.equal(bgr, rgb_of_flipped)
        assert not torch.allclose(bgr, tf_rgb.inpaint(image, mask))


# --- GLCIC and the Context Encoder -----------------------------------------------------------------


def test_glcic_fake_official_t7_matches_the_official_network(tmp_path: Path) -> None:
    rows = key_rows("glcic_completionnet_places2.tsv")
    modules, values = fake_t7_network(rows)
    model = LuaModule("nn.Sequential", {"modules": [modules[f"model.modules[{i}]"] for i in range(1, 51)]})
    mean = [0.4560, 0.4472, 0.4155]
    write_t7(tmp_path / "completionnet_places2.t7", {"model": model, "mean": mean})
    tensors = read_t7_tensors(tmp_path / "completionnet_places2.t7")
    assert set(values) <= set(tensors)
    (official,) = glcic_convert.OFFICIAL
    assert official.recognise(tensors)
    state = official.to_state_dict(tensors)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 6072131 + 3
    network = CompletionNetwork(GLCIC_CONFIGS[official.config]).eval()
    network.load_state_dict(state, strict=True)
    assert torch.allclose(network.mean_pixel.flatten(), torch.tensor(mean))
    reference = reference_network(rows, modules)
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 1, 32, 40)
    mask[..., 8:24, 12:30] = 1
    with torch.no_grad():
        expected = reference(torch.cat([(image - torch.tensor(mean).view(1, 3, 1, 1)) * (1 - mask), mask], 1))
        filled = network.inpaint(image, mask)
    assert (filled - expected).abs().max() < 1e-5


def test_glcic_bad_files_name_the_key(tmp_path: Path) -> None:
    rows = key_rows("glcic_completionnet_places2.tsv")
    modules, _ = fake_t7_network(rows)
    modules["model.modules[10]"].fields["weight"] = torch.zeros(256, 128, 3)
    model = LuaModule("nn.Sequential", {"modules": [modules[f"model.modules[{i}]"] for i in range(1, 51)]})
    write_t7(tmp_path / "bad.t7", {"model": model, "mean": [0.5, 0.5, 0.5]})
    (official,) = glcic_convert.OFFICIAL
    with pytest.raises(InpaintError, match=r"'model.modules\[10\].weight' has shape \[256, 128, 3\], expected \[256, 128, 3, 3\]"):
        official.to_state_dict(read_t7_tensors(tmp_path / "bad.t7"))
    write_t7(tmp_path / "nomean.t7", {"model": model})
    tensors = read_t7_tensors(tmp_path / "nomean.t7")
    tensors["model.modules[10].weight"] = torch.zeros(256, 128, 3, 3)
    with pytest.raises(InpaintError, match=r"missing 'mean\[1\]'"):
        official.to_state_dict(tensors)


@pytest.mark.slow
def test_context_encoder_fake_official_t7_matches_the_official_network(tmp_path: Path) -> None:
    rows = key_rows("context-encoder_inpaintCenter.tsv")
    modules, values = fake_t7_network(rows)
    net = LuaModule("nn.Sequential", {"modules": [modules[f"net.modules[{i}]"] for i in range(1, 18)]})
    write_t7(tmp_path / "paris_inpaintCenter.t7", net)
    tensors = read_t7_tensors(tmp_path / "paris_inpaintCenter.t7")
    assert set(values) <= set(tensors)
    (official,) = ce_convert.OFFICIAL
    assert official.recognise(tensors) and not glcic_convert.OFFICIAL[0].recognise(tensors)
    network = ContextEncoder(CE_CONFIGS[official.config]).eval()
    network.load_state_dict(official.to_state_dict(tensors), strict=True)
    reference = reference_network(rows, modules)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 50:70, 40:60] = 1
    official_input = image * 2 - 1  # test.lua: [-1, 1], the 56 x 56 centre set to the mean colour
    for channel, value in enumerate((117, 104, 123)):
        official_input[:, channel, 36:92, 36:92] = 2 * value / 255 - 1
    with torch.no_grad():
        expected = reference(official_input)
        region, _ = network.predict(image, mask)
    assert (region - expected).abs().max() < 1e-4  # float32 sums over 8,192-wide dot products


# --- through `convert`: recognised from the contents, written, loaded as a release ----------------


def test_convert_takes_a_deepfill_tf_checkpoint_folder_to_a_release(tmp_path: Path) -> None:
    folder = tmp_path / "release_places2_256"
    folder.mkdir()
    variables = fake_deepfill_checkpoint(2, folder)
    converted = convert(folder)  # no --arch: recognised from the variables
    assert (converted.official.name, converted.container, converted.spec.name) == ("deepfill-v2", "tf-checkpoint", "deepfill-v2")
    for key, value in converted.tensors.items():
        source = variables[deepfill_convert.tf_name(key)]
        assert torch.equal(value, source.permute(3, 2, 0, 1) if source.dim() == 4 else source), key
    out = write_converted(converted, tmp_path / "deepfill-v2.safetensors")
    model, spec, config_name, metadata = load_release(out)
    assert metadata["converted_from"].startswith("release_places2_256 sha256:")
    assert metadata["license"] == converted.official.license and metadata["source"] == converted.official.source
    stored_config = json.loads(metadata["config_json"])
    assert all(stored_config[name] == value for name, value in converted.official.config_overrides.items())
    # the release fills as the official-convention network built by hand from the variables
    reference = DeepFillV2(replace(V2_CONFIGS[config_name], **converted.official.config_overrides)).eval()
    reference.load_state_dict({key: v.permute(3, 2, 0, 1) if v.dim() == 4 else v
                               for key, v in ((key, variables[deepfill_convert.tf_name(key)]) for key in converted.tensors)})
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    with torch.no_grad():
        assert torch.equal(model.inpaint(image, mask), reference.inpaint(image, mask))


def test_convert_takes_a_glcic_t7_file_to_a_release(tmp_path: Path) -> None:
    rows = key_rows("glcic_completionnet_places2.tsv")
    modules, _ = fake_t7_network(rows, seed=5)
    model = LuaModule("nn.Sequential", {"modules": [modules[f"model.modules[{i}]"] for i in range(1, 51)]})
    mean = [0.43, 0.45, 0.41]
    write_t7(tmp_path / "completionnet_places2.t7", {"model": model, "mean": mean})
    converted = convert(tmp_path / "completionnet_places2.t7")
    assert (converted.official.name, converted.container, converted.spec.name) == ("glcic-completionnet", "torch7", "glcic")
    out = write_converted(converted, default_output(converted, tmp_path / "completionnet_places2.t7"))
    assert out == tmp_path / f"glcic-{converted.config_name}.safetensors"
    network, _, _, metadata = load_release(out)
    assert metadata["official_model"] == "glcic-completionnet" and metadata["storage_dtype"] == "float32"
    image = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(6))
    mask = torch.zeros(1, 1, 32, 40)
    mask[..., 8:24, 12:30] = 1
    with torch.no_grad():
        expected = reference_network(rows, modules)(torch.cat([(image - torch.tensor(mean).view(1, 3, 1, 1)) * (1 - mask), mask], 1))
        assert (network.inpaint(image, mask) - expected).abs().max() < 1e-5

"""`inpaint_cli.convert`: official weights in their real containers, built here at test time with
every key of the official lists and random values, converted and checked tensor by tensor; hostile
pickles refused without running anything; broken files named in one line.

Key lists: AOT-GAN's generator and the dropped discriminators come from `tests/data/official-keys/`
(derived from the official code). LaMa's generator lists (989 keys for big-lama, 521 for
lama-fourier) are our `lama` `big` / `fourier` state_dict names under `generator.`; they equal the
official lists, names, shapes and order (checked when the converter was written; the counts and a
few official names are asserted below).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from inpaint_cli.archs.aot_gan import CONFIGS as AOT_CONFIGS
from inpaint_cli.archs.aot_gan import AOTGenerator
from inpaint_cli.archs.lama import CONFIGS as LAMA_CONFIGS
from inpaint_cli.archs.lama import LaMaGenerator
import inpaint_cli.checkpoint as checkpoint_module
from inpaint_cli.checkpoint import load_release, probe_image
from inpaint_cli.convert import convert, default_output, write_converted
from inpaint_cli.convert.containers import LEGACY_MAGIC
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, Inpainter, resolve_model

KEYS = Path(__file__).parent / "data" / "official-keys"


def official_keys(name: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """An official key list: name -> (shape, dtype)."""
    keys = {}
    for line in (KEYS / f"{name}.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        keys[key] = (tuple(json.loads(shape)), getattr(torch, dtype))
    return keys


def lama_keys(config: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    with torch.device("meta"):
        generator = LaMaGenerator(LAMA_CONFIGS[config])
    return {f"generator.{name}": (tuple(t.shape), t.dtype) for name, t in generator.state_dict().items()}


#: scale of the random weights (times 1 / sqrt(fan-in)), small enough that the fills do not saturate
WEIGHT_GAIN = 0.7


def random_tensors(keys: dict[str, tuple[tuple[int, ...], torch.dtype]], seed: int) -> dict[str, torch.Tensor]:
    """Random values for every key: small weights, random batch-norm statistics and counters."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (shape, dtype) in keys.items():
        if not dtype.is_floating_point:
            tensors[name] = torch.randint(0, 100_000, shape, generator=generator, dtype=dtype)
        elif name.endswith("running_var"):
            tensors[name] = torch.rand(shape, generator=generator) + 0.5
        elif name.endswith(("running_mean", "bias")):
            tensors[name] = torch.randn(shape, generator=generator) * 0.1
        elif len(shape) == 1 and name.endswith(".weight"):  # batch-norm scales
            tensors[name] = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:
            fan_in = max(1, int(np.prod(shape[1:])))
            tensors[name] = torch.randn(shape, generator=generator) * (WEIGHT_GAIN / fan_in**0.5)
    return tensors


# ------------------------------------------------------------------ stand-ins for foreign classes

MARKER_ENV = "INPAINT_TEST_MARKER"


def _touch_marker(*args) -> None:
    Path(os.environ[MARKER_ENV]).touch()


def stand_in_modules() -> dict[str, types.ModuleType]:
    """Modules named like OmegaConf's and Lightning's (with their parent packages), whose classes
    would touch a marker file if the reader ever imported them and rebuilt an object (it must not)."""
    modules: dict[str, types.ModuleType] = {}
    for module_name, class_names in {
        "omegaconf.dictconfig": ("DictConfig",),
        "omegaconf.base": ("ContainerMetadata", "Metadata"),
        "omegaconf.nodes": ("AnyNode",),
        "pytorch_lightning.callbacks.model_checkpoint": ("ModelCheckpoint",),
    }.items():
        module = types.ModuleType(module_name)
        for class_name in class_names:
            cls = type(class_name, (), {"__module__": module_name, "__setstate__": _touch_marker,
                                        "__init__": lambda self, **state: self.__dict__.update(state)})
            setattr(module, class_name, cls)
        modules[module_name] = module
        parts = module_name.split(".")
        for depth in range(1, len(parts)):
            modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
    return modules


def save_lightning_checkpoint(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """A PyTorch-Lightning 1.2.9-style best.ckpt: the state_dict beside OmegaConf hyper-parameters,
    callback states keyed by a class, numpy scalars, a path and optimizer states."""
    modules = stand_in_modules()
    with pytest.MonkeyPatch.context() as patch:
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        dictconfig = modules["omegaconf.dictconfig"]
        base = modules["omegaconf.base"]
        node = modules["omegaconf.nodes"].AnyNode(_val="ffc_resnet", _metadata=base.Metadata(ref_type=object))
        hyper = dictconfig.DictConfig(
            _content={"generator": node, "kind": "default"},
            _metadata=base.ContainerMetadata(object_type=dict, key_type=str, flags={}),
        )
        first_weight = next(v for v in state_dict.values() if v.is_floating_point())
        checkpoint = {
            "epoch": 39,
            "global_step": 1_000_000,
            "pytorch-lightning_version": "1.2.9",
            "state_dict": OrderedDict(state_dict),
            "callbacks": {modules["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint: {
                "best_model_score": np.float64(0.25), "dirpath": PurePosixPath("/experiments/big-lama/models")}},
            "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros_like(first_weight)}},
                                  "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "params": [0]}]}],
            "lr_schedulers": [],
            "hparams_name": "kwargs",
            "hyper_parameters": hyper,
            "hparams_type": dictconfig.DictConfig,
        }
        torch.save(checkpoint, path)
    assert not {name for name in sys.modules if name.startswith(("omegaconf", "pytorch_lightning"))}


class TorchScriptWrapper(nn.Module):
    """IOPaint's `big-lama.pt` layout: `model.generator` inside a traced `forward(image, mask)`."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        predicted = self.model.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * predicted + (1 - mask) * image


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def fourier_tensors() -> dict[str, torch.Tensor]:
    keys = lama_keys("fourier") | official_keys("lama_discriminator_drop")
    return random_tensors(keys, seed=1)


@pytest.fixture(scope="module")
def fourier_ckpt(tmp_path_factory, fourier_tensors) -> Path:
    path = tmp_path_factory.mktemp("lama-fourier") / "best.ckpt"
    save_lightning_checkpoint(path, fourier_tensors)
    return path


@pytest.fixture(scope="module")
def aot_tensors() -> dict[str, torch.Tensor]:
    return random_tensors(official_keys("aot-gan_G"), seed=2)


@pytest.fixture(scope="module")
def aot_file(tmp_path_factory, aot_tensors) -> Path:
    path = tmp_path_factory.mktemp("aot-gan") / "G0000000.pt"
    torch.save(OrderedDict(aot_tensors), path)
    return path


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


def assert_lands(out: Path, official: dict[str, torch.Tensor], prefix: str, dtype: torch.dtype = torch.float32) -> None:
    """Every official tensor of the generator is in `out` under its name less `prefix`, exactly
    (in `dtype`), and nothing else is."""
    wanted = {name[len(prefix):]: tensor for name, tensor in official.items() if name.startswith(prefix)}
    with safe_open(str(out), framework="pt") as handle:
        assert set(handle.keys()) == set(wanted)
        for name, tensor in wanted.items():
            stored = handle.get_tensor(name)
            expected = tensor.to(dtype) if tensor.is_floating_point() else tensor
            assert stored.dtype == expected.dtype, name
            assert torch.equal(stored, expected), name


def reference_fill(generator: nn.Module, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The generator's composited fill of a uint8 image, computed directly."""
    image = torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]
    with torch.no_grad():
        output = generator.eval().inpaint(image * (1 - mask), mask)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    return np.where(hole[..., None], (output * 255).round().astype(np.uint8), rgb8)


def assert_fills_like(out: Path, generator: nn.Module, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`out`, loaded as `fill --weights` loads it, fills like `generator`; known pixels are kept."""
    options = FillOptions(blend="none", strategy="full")
    filled, _ = Inpainter(resolve_model(None, str(out)), options=options).fill(rgb8, hole)
    assert np.array_equal(filled[~hole], rgb8[~hole])
    difference = np.abs(filled.astype(int) - reference_fill(generator, rgb8, hole).astype(int))
    assert difference.max() <= 1
    assert np.abs(filled[hole].astype(int) - rgb8[hole].astype(int)).mean() > 1  # the hole was filled
    return filled


def _box_hole(height: int, width: int) -> np.ndarray:
    hole = np.zeros((height, width), bool)
    hole[height // 4: height // 2, width // 3: 2 * width // 3] = True
    return hole


# --------------------------------------------------------------------------------- containers


def test_lama_key_lists_are_the_official_ones():
    big, fourier = lama_keys("big"), lama_keys("fourier")
    assert len(big) == 989 and len(fourier) == 521
    assert sum(name.endswith("num_batches_tracked") for name in big) == 152
    assert big["generator.model.22.conv2.ffc.convg2g.fu.conv_layer.weight"][0] == (384, 384, 1, 1)
    assert big["generator.model.24.weight"][0] == (512, 256, 3, 3)  # ConvTranspose2d: [in, out, kH, kW]
    assert fourier["generator.model.4.ffc.convl2g.weight"][0] == (384, 256, 3, 3)
    assert fourier["generator.model.25.weight"][0] == (3, 64, 7, 7)


def test_lightning_checkpoint_keeps_the_generator_and_runs_nothing(fourier_ckpt, fourier_tensors, tmp_path, marker, smooth_image):
    with pytest.MonkeyPatch.context() as patch:
        for name, module in stand_in_modules().items():  # importable now: the reader must still not use them
            patch.setitem(sys.modules, name, module)
        patch.setattr(torch, "load", _forbidden)
        patch.setattr(torch.jit, "load", _forbidden)
        converted = convert(fourier_ckpt)
    assert not marker.exists()
    assert (converted.official.name, converted.container, converted.spec.name, converted.config_name) == (
        "lama-fourier", "lightning-ckpt", "lama", "fourier")
    out = write_converted(converted, tmp_path / "lama-fourier.safetensors")
    assert_lands(out, fourier_tensors, "generator.")
    metadata = load_release(out)[3]
    assert metadata["official_model"] == "lama-fourier"
    assert metadata["converted_from"].startswith("best.ckpt sha256:") and len(metadata["converted_from"]) == 17 + 64
    assert metadata["source"] == "https://github.com/advimman/lama" and "Apache-2.0" in metadata["license"]
    assert json.loads(metadata["config_json"])["blocks"] == 9
    generator = LaMaGenerator(LAMA_CONFIGS["fourier"])
    generator.load_state_dict({k.removeprefix("generator."): v for k, v in fourier_tensors.items() if k.startswith("generator.")})
    image = np.ascontiguousarray(smooth_image[:64, :64])
    assert_fills_like(out, generator, image, _box_hole(64, 64))


def _forbidden(*args, **kwargs):
    raise AssertionError("the converter must not call torch.load / torch.jit.load on this file")


def test_torchscript_archive_is_read_without_jit_load(tmp_path, fourier_tensors, smooth_image):
    """IOPaint publishes big-lama this way; lama-fourier keeps the test light, the layout is the same."""
    official = {k: v for k, v in fourier_tensors.items() if k.startswith("generator.")}
    generator = LaMaGenerator(LAMA_CONFIGS["fourier"]).eval()
    generator.load_state_dict({k.removeprefix("generator."): v for k, v in official.items()})
    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    traced = torch.jit.trace(TorchScriptWrapper(generator), example, check_trace=False)
    path = tmp_path / "lama-fourier.pt"
    traced.save(str(path))
    names = zipfile.ZipFile(path).namelist()
    assert any(name.endswith("/constants.pkl") for name in names)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.jit, "load", _forbidden)
        patch.setattr(torch, "load", _forbidden)
        converted = convert(path)
    assert (converted.official.name, converted.container) == ("lama-fourier", "torchscript")
    out = write_converted(converted, default_output(converted, path))
    assert out == tmp_path / "lama-fourier.safetensors"
    assert_lands(out, {f"model.{k}": v for k, v in official.items()}, "model.generator.")
    image = np.ascontiguousarray(smooth_image[:48, :64])
    assert_fills_like(out, generator, image, _box_hole(48, 64))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_plain_state_dict(aot_tensors, tmp_path, zipped, smooth_image):
    path = tmp_path / "G0000000.pt"
    torch.save(OrderedDict(aot_tensors), path, _use_new_zipfile_serialization=zipped)
    converted = convert(path)
    assert (converted.official.name, converted.container, converted.config_name) == ("aot-gan", "state-dict", "paper")
    out = write_converted(converted, tmp_path / "aot.safetensors")
    assert_lands(out, aot_tensors, "")
    generator = AOTGenerator(AOT_CONFIGS["paper"])
    generator.load_state_dict(aot_tensors)
    assert_fills_like(out, generator, np.ascontiguousarray(smooth_image[:64, :64]), _box_hole(64, 64))


def test_storage_dtypes_and_the_change_they_cause(aot_file, aot_tensors, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "PROBE_SIDE", 64)  # 128 in use; smaller keeps the test light
    assert convert(aot_file).output_change is None
    reference = AOTGenerator(AOT_CONFIGS["paper"]).eval()
    reference.load_state_dict(aot_tensors)
    image, mask = probe_image(64)
    changes = {}
    for dtype in ("float16", "bfloat16"):
        converted = convert(aot_file, dtype=dtype)
        out = write_converted(converted, tmp_path / f"{dtype}.safetensors")
        assert_lands(out, aot_tensors, "", getattr(torch, dtype))
        # the change reported is what the written file does to the probe image
        stored, _, _, metadata = load_release(out)
        assert metadata["storage_dtype"] == dtype
        with torch.no_grad():
            moved = ((stored.inpaint(image, mask) - reference.inpaint(image, mask)).abs() * mask).max().item()
        assert converted.output_change == pytest.approx(moved, abs=1e-6)
        changes[dtype] = converted.output_change
    assert 0 < changes["float16"] < changes["bfloat16"]
    with pytest.raises(InpaintError, match="unknown --dtype 'int8'"):
        convert(aot_file, dtype="int8")


def test_write_refuses_to_overwrite(aot_file, tmp_path):
    converted = convert(aot_file)
    out = tmp_path / "aot.safetensors"
    out.write_bytes(b"keep me")
    with pytest.raises(InpaintError, match="exists; pass --overwrite"):
        write_converted(converted, out)
    assert out.read_bytes() == b"keep me"
    write_converted(converted, out, overwrite=True)
    assert load_release(out)[3]["arch"] == "aot-gan"
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------ hostile pickles


class Hostile:
    """Pickles as a call of `function(*args)`."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def hostile_payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that would create `marker` if loaded plainly."""
    command = f"touch {marker}"
    return {
        "os.system": pickle.dumps({"w": Hostile(os.system, command)}, protocol=2),
        "exec": pickle.dumps({"w": Hostile(exec, f"open({str(marker)!r}, 'w').close()")}, protocol=2),
        "eval": pickle.dumps({"w": Hostile(eval, f"open({str(marker)!r}, 'w').close()")}, protocol=2),
        "subprocess.Popen": pickle.dumps({"w": Hostile(subprocess.Popen, ["touch", str(marker)])}, protocol=2),
        # builtins.getattr(builtins.__import__('os'), 'system')('touch marker'), written by hand
        "getattr": (
            b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + command.encode() + b"\ntR."
        ),
    }


def replace_member(path: Path, suffix: str, data: bytes) -> None:
    """Rewrite the zip at `path` with the member ending in `suffix` replaced by `data`."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, content in members:
            target.writestr(info, data if info.filename.endswith(suffix) else content)


@pytest.mark.parametrize("payload", ["os.system", "exec", "eval", "subprocess.Popen", "getattr"])
@pytest.mark.parametrize("container", ["raw-pickle", "legacy-torch", "torch-zip", "torchscript"])
def test_hostile_pickle_is_refused_and_nothing_runs(payload, container, tmp_path, marker, aot_tensors):
    data = hostile_payloads(marker)[payload]
    path = tmp_path / "weights.ckpt"
    if container == "raw-pickle":
        path.write_bytes(data)
    elif container == "legacy-torch":  # torch.save's pre-zip layout: magic, protocol, system info, then the object
        header = [LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}]
        path.write_bytes(b"".join(pickle.dumps(value, protocol=2) for value in header) + data)
    elif container == "torch-zip":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
        replace_member(path, "/data.pkl", data)
    else:
        torch.jit.script(nn.Linear(2, 2)).save(str(path))
        replace_member(path, "/data.pkl", data)
    out = tmp_path / "out.safetensors"
    with pytest.raises(InpaintError) as error:
        write_converted(convert(path), out)
    message = str(error.value)
    assert "\n" not in message and message.startswith("weights.ckpt: refused")
    assert {"os.system": "system", "exec": "builtins.exec", "eval": "builtins.eval",
            "subprocess.Popen": "subprocess.Popen", "getattr": "builtins.getattr"}[payload] in message
    assert not marker.exists() and not out.exists()


# ------------------------------------------------------------------------------ broken files


def test_truncated_files_are_named(fourier_ckpt, aot_tensors, tmp_path):
    truncated = tmp_path / "best.ckpt"
    truncated.write_bytes(fourier_ckpt.read_bytes()[: fourier_ckpt.stat().st_size // 2])
    with pytest.raises(InpaintError, match=r"^best\.ckpt: truncated or corrupt zip archive"):
        convert(truncated)
    legacy = tmp_path / "legacy.pt"
    buffer = io.BytesIO()
    torch.save(aot_tensors, buffer, _use_new_zipfile_serialization=False)
    legacy.write_bytes(buffer.getvalue()[:5000])
    with pytest.raises(InpaintError, match=r"^legacy\.pt: truncated or corrupt PyTorch file"):
        convert(legacy)


def test_missing_key_is_named(fourier_tensors, aot_tensors, tmp_path):
    lightning = tmp_path / "best.ckpt"
    save_lightning_checkpoint(lightning, {k: v for k, v in fourier_tensors.items() if k != "generator.model.7.conv2.ffc.convg2l.weight"})
    with pytest.raises(InpaintError, match=r"^best\.ckpt: missing tensor generator\.model\.7\.conv2\.ffc\.convg2l\.weight \(shape \[128, 384, 3, 3\]\)$"):
        convert(lightning)
    plain = tmp_path / "G.pt"
    torch.save({k: v for k, v in aot_tensors.items() if k != "middle.3.fuse.1.bias"}, plain)
    with pytest.raises(InpaintError, match=r"^G\.pt: missing tensor middle\.3\.fuse\.1\.bias \(shape \[256\]\)$"):
        convert(plain)


def test_counters_may_be_absent(fourier_tensors, tmp_path):
    path = tmp_path / "best.ckpt"
    save_lightning_checkpoint(path, {k: v for k, v in fourier_tensors.items() if not k.endswith("num_batches_tracked")})
    converted = convert(path)
    counters = [name for name in converted.tensors if name.endswith("num_batches_tracked")]
    assert len(counters) == 80 and all(converted.tensors[name].item() == 0 for name in counters)


def test_wrong_shape_and_unexpected_tensor_are_named(aot_tensors, fourier_tensors, tmp_path):
    path = tmp_path / "G.pt"
    torch.save(aot_tensors | {"decoder.4.weight": torch.zeros(3, 64, 5, 5)}, path)
    with pytest.raises(InpaintError, match=r"^G\.pt: tensor decoder\.4\.weight has shape \[3, 64, 5, 5\], expected \[3, 64, 3, 3\]$"):
        convert(path)
    torch.save(aot_tensors | {"middle.8.fuse.1.bias": torch.zeros(256)}, path)
    with pytest.raises(InpaintError, match=r"unexpected tensor middle\.8\.fuse\.1\.bias for aot-gan paper"):
        convert(path)


def test_unrecognised_model_and_forced_arch(tmp_path):
    path = tmp_path / "D0000000.pt"
    torch.save(random_tensors(official_keys("aot-gan_D_drop"), seed=4), path)
    with pytest.raises(InpaintError, match=r"^D0000000\.pt: unrecognised model: its 14 tensors \(the first conv\.0\.weight_orig \[64, 3, 4, 4\]\) are none of .*aot-gan"):
        convert(path)
    with pytest.raises(InpaintError, match=r"^D0000000\.pt: missing tensor encoder\.1\.weight"):
        convert(path, arch="aot-gan")
    with pytest.raises(InpaintError, match="no official glcic model comes as a state-dict"):
        convert(path, arch="glcic")


def test_not_a_container_and_missing_file(tmp_path, examples_dir):
    with pytest.raises(InpaintError, match=r"^astronaut\.png: not a weights container"):
        convert(examples_dir / "astronaut.png")
    with pytest.raises(InpaintError, match=r"^nowhere\.ckpt: file not found"):
        convert(tmp_path / "nowhere.ckpt")


# ------------------------------------------------------------------------ the acceptance


@pytest.mark.slow
def test_fake_big_lama_best_ckpt_converts_and_fills_512(tmp_path, marker, examples_dir):
    """A best.ckpt built from the official big-lama key list (with the discriminator beside it)
    converts and fills a 512 x 512 photo as `fill --weights` does."""
    import cv2

    official = random_tensors(lama_keys("big") | official_keys("lama_discriminator_drop"), seed=5)
    path = tmp_path / "best.ckpt"
    save_lightning_checkpoint(path, official)
    converted = convert(path)
    assert (converted.official.name, converted.config_name) == ("big-lama", "big")
    out = write_converted(converted, default_output(converted, path))
    assert_lands(out, official, "generator.")
    assert not marker.exists()
    photo = cv2.cvtColor(cv2.imread(str(examples_dir / "astronaut.png")), cv2.COLOR_BGR2RGB)
    photo = np.ascontiguousarray(cv2.resize(photo, (512, 512), interpolation=cv2.INTER_AREA))
    generator = LaMaGenerator(LAMA_CONFIGS["big"])
    generator.load_state_dict({k.removeprefix("generator."): v for k, v in official.items() if k.startswith("generator.")})
    assert_fills_like(out, generator, photo, _box_hole(512, 512))

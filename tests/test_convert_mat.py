"""`inpaint convert` for MAT: IOPaint's weights-only state_dict and the official StyleGAN2-ADA
network pickle, built here at test time. The paper configs use tensors of the right shapes whose
values are one number per key (stride-0 storage: cheap, and every landing place is checkable);
the tiny config gets a real random network that is converted and filled. Hostile network
pickles are refused without running anything.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import inpaint_cli.convert as convert_package
from inpaint_cli.archs.mat import CONFIGS, MATGenerator, build_discriminator
from inpaint_cli.checkpoint import load_release
from inpaint_cli.convert import convert, write_converted
from inpaint_cli.convert.mat import NOISE, official_mat
from inpaint_cli.convert.official import expected_tensors, official_models
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, Inpainter, resolve_model

NAMES = Path(__file__).parent / "data" / "mat_G_ema_iopaint_names.tsv"  # IOPaint's G_ema (no noise)
MARKER_ENV = "INPAINT_TEST_MARKER"


def iopaint_keys() -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in NAMES.read_text().splitlines():
        if not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            keys[key] = tuple(json.loads(shape))
    return keys


def numbered(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Tensor i of the right shape holds the number i everywhere (one stored element)."""
    return {key: torch.tensor(float(i)).expand(shape) for i, (key, shape) in enumerate(keys.items())}


def ours(config: str, noise: bool = True) -> dict[str, tuple[int, ...]]:
    return {key: shape for key, (shape, _) in expected_tensors("mat", config).items() if noise or not NOISE.search(key)}


@pytest.fixture
def marker(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


@pytest.fixture
def tiny_official(monkeypatch):
    """The registry plus tiny-config MAT models (with and without noise), as official ones."""
    extra = (official_mat("mat-tiny-test", "tiny", "test"), official_mat("mat-tiny-nonoise", "tiny", "test", noise=False))
    monkeypatch.setattr(convert_package, "official_models", lambda: official_models() + extra)


@pytest.fixture(scope="module")
def tiny_generator() -> MATGenerator:
    """A random tiny MAT whose noise strengths are not 0 (so dropping them changes the output)."""
    torch.manual_seed(3)
    generator = MATGenerator(CONFIGS["tiny"]).eval()
    with torch.no_grad():
        for name, tensor in generator.named_parameters():
            if name.endswith("noise_strength"):
                tensor.fill_(0.3)
            elif name.endswith("bias"):
                tensor.normal_(0, 0.1)
        generator.mapping.w_avg.normal_()
    return generator


def seeded_output(generator: MATGenerator, seed: int = 5) -> torch.Tensor:
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 32:96, 40:100] = 1
    with torch.no_grad():
        return generator.inpaint(image * (1 - mask), mask, seed=seed)


def load_converted(out: Path) -> MATGenerator:
    generator, spec, config, _metadata = load_release(out)
    assert (spec.name, config) == ("mat", "tiny")
    return generator.eval()


# ------------------------------------------------------------------------ IOPaint's state_dict


def test_iopaint_names_are_ours_less_the_noise():
    keys = iopaint_keys()
    assert len(keys) == 465
    assert keys == ours("paper", noise=False)
    assert len(ours("paper")) - len(keys) == 22  # 11 noise strengths and 11 noise maps


@pytest.mark.parametrize("zipped", [True, False])
def test_iopaint_state_dict_lands_and_gets_zero_noise(tmp_path, zipped):
    official = numbered(iopaint_keys())
    path = tmp_path / "Places_512_FullData_G.pth"
    torch.save(OrderedDict(official), path, _use_new_zipfile_serialization=zipped)
    converted = convert(path)
    assert (converted.official.name, converted.config_name, converted.container) == ("mat-512-iopaint", "paper", "state-dict")
    assert converted.metadata["source"] == "https://github.com/fenglinglwb/MAT"
    assert "research purposes only" in converted.metadata["license"]
    assert list(converted.tensors) == list(expected_tensors("mat", "paper"))
    for i, key in enumerate(official):
        landed = converted.tensors[key]
        assert landed.shape == official[key].shape and bool((landed == i).all()), key
    noise = {key: t for key, t in converted.tensors.items() if NOISE.search(key)}
    assert len(noise) == 22 and all(not t.any() for t in noise.values())


@pytest.mark.parametrize(
    ("config", "name"), [("paper", "mat-512"), ("paper-256", "mat-256")]
)
def test_full_state_dict_picks_the_resolution(tmp_path, config, name):
    keys = ours(config)
    path = tmp_path / "G_ema.pth"
    torch.save(numbered(keys), path)
    converted = convert(path)
    assert (converted.official.name, converted.config_name) == (name, config)
    for i, key in enumerate(keys):
        assert float(converted.tensors[key].flatten()[0]) == i and converted.tensors[key].shape == keys[key]


def test_missing_key_and_wrong_shape_are_named(tmp_path):
    keys = iopaint_keys()
    tensors = numbered(keys)
    del tensors["synthesis.dec.Dec_64x64.conv1.conv.affine.weight"]
    path = tmp_path / "G.pth"
    torch.save(tensors, path)
    with pytest.raises(InpaintError, match=r"^G.pth: missing tensor synthesis\.dec\.Dec_64x64\.conv1\.conv\.affine\.weight"):
        convert(path)
    tensors = numbered(keys)
    tensors["synthesis.to_square.weight"] = torch.zeros(3, 3)
    torch.save(tensors, path)
    with pytest.raises(InpaintError, match=r"tensor synthesis\.to_square\.weight has shape \[3, 3\], expected \[256, 512\]"):
        convert(path)


def test_partial_noise_names_the_first_missing_noise(tmp_path):
    tensors = numbered(ours("paper"))
    del tensors["synthesis.dec.Dec_128x128.conv0.noise_const"]
    path = tmp_path / "G.pth"
    torch.save(tensors, path)
    with pytest.raises(InpaintError, match=r"missing tensor synthesis\.dec\.Dec_128x128\.conv0\.noise_const"):
        convert(path)


@pytest.mark.slow
def test_tiny_weights_only_file_fills_as_the_network_without_noise(tmp_path, tiny_official, tiny_generator):
    state = {k: v for k, v in tiny_generator.state_dict().items() if not NOISE.search(k)}
    path = tmp_path / "G.pth"
    torch.save(state, path)
    converted = convert(path)
    assert converted.official.name == "mat-tiny-nonoise"
    out = write_converted(converted, tmp_path / "mat.safetensors")
    loaded = load_converted(out)
    # IOPaint's network: the same one with no noise; our zero strengths reproduce it exactly,
    # whatever the (unused) noise maps hold
    reference = copy.deepcopy(tiny_generator)
    for module in reference.modules():
        if getattr(module, "use_noise", False):
            module.noise_strength.data.zero_()
    filled = seeded_output(loaded)
    assert torch.equal(filled, seeded_output(reference))
    assert not torch.equal(filled, seeded_output(tiny_generator))  # the noise did matter
    # through `fill --weights`: known pixels kept, the hole filled
    rgb8 = (np.random.default_rng(1).random((128, 128, 3)) * 255).astype(np.uint8)
    hole = np.zeros((128, 128), bool)
    hole[40:90, 30:100] = True
    result, _ = Inpainter(resolve_model(None, str(out)), options=FillOptions(blend="none")).fill(rgb8, hole)
    assert np.array_equal(result[~hole], rgb8[~hole])
    assert np.abs(result[hole].astype(int) - rgb8[hole].astype(int)).mean() > 1


# -------------------------------------------------------------- the StyleGAN2-ADA network pickle


def marker_function(module: str, qualname: str):
    """A function pickled as `module.qualname` that would touch the marker if ever called."""

    def touch(*args):
        Path(os.environ[MARKER_ENV]).touch()

    touch.__module__, touch.__qualname__, touch.__name__ = module, qualname, qualname
    return touch


class EasyDict(dict):
    """`dnnlib.util.EasyDict` (stand-in)."""

    __module__ = "dnnlib.util"


def stand_in_modules() -> dict[str, types.ModuleType]:
    """`torch_utils.persistence` and `dnnlib.util` as the official repository names them; the
    reconstruct function would touch the marker if the reader ever called it (it must not)."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = marker_function("torch_utils.persistence", "_reconstruct_persistent_obj")
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = EasyDict
    return {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
            "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}


MODULE_STATE = ("training", "_parameters", "_buffers", "_non_persistent_buffers_set", "_modules",
                "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_state_dict_hooks")


class PersistencePickler(pickle.Pickler):
    """Pickles our modules as `torch_utils.persistence` does the official ones: a call of
    `_reconstruct_persistent_obj(meta)` with the class's module source (here, code that would
    touch the marker) and the module's state; torch.nn containers pickle as themselves."""

    def __init__(self, file, protocol: int, extra_state: dict | None = None) -> None:
        super().__init__(file, protocol=protocol)
        self.extra_state = extra_state or {}

    def reducer_override(self, obj):
        if not isinstance(obj, nn.Module) or type(obj).__module__.startswith("torch.nn"):
            return NotImplemented
        state = {key: obj.__dict__[key] for key in MODULE_STATE if key in obj.__dict__}
        state["_init_kwargs"] = EasyDict(activation=nn.GELU, img_resolution=np.int64(128), **self.extra_state)
        meta = {"type": "class", "version": 6, "class_name": type(obj).__name__, "state": state,
                "module_src": f"open({os.environ[MARKER_ENV]!r}, 'w').close()"}
        return sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (meta,)


def save_network_pickle(path: Path, generator: nn.Module, protocol: int, extra_state: dict | None = None) -> None:
    """A StyleGAN2-ADA snapshot: G, D, G_ema, the training set's kwargs and no augment pipe."""
    with pytest.MonkeyPatch.context() as patch:
        for name, module in stand_in_modules().items():
            patch.setitem(sys.modules, name, module)
        snapshot = {
            "training_set_kwargs": EasyDict(path="places/data_large", resolution=np.int64(512), xflip=True),
            "G": copy.deepcopy(generator),
            "D": build_discriminator(CONFIGS["tiny"]),
            "G_ema": generator,
            "augment_pipe": None,
        }
        with path.open("wb") as handle:
            PersistencePickler(handle, protocol, extra_state).dump(snapshot)


@pytest.mark.parametrize("protocol", [3, 4])
def test_network_pickle_converts_without_running_its_code(tmp_path, marker, tiny_official, tiny_generator, protocol):
    path = tmp_path / "Places_512_FullData.pkl"
    save_network_pickle(path, tiny_generator, protocol)
    assert b"_reconstruct_persistent_obj" in path.read_bytes() and not marker.exists()
    converted = convert(path)
    assert not marker.exists()
    assert (converted.official.name, converted.container) == ("mat-tiny-test", "network-pickle")
    expected = tiny_generator.state_dict()
    assert list(converted.tensors) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(converted.tensors[key], tensor), key
    out = write_converted(converted, tmp_path / "mat.safetensors")
    loaded = load_converted(out).state_dict()
    assert all(torch.equal(loaded[key], tensor) for key, tensor in expected.items())


def test_paper_network_pickle_is_recognised(tmp_path, marker):
    with torch.device("meta"):
        generator = MATGenerator(CONFIGS["paper"])
    numbers = numbered(ours("paper"))
    generator.load_state_dict(numbers, assign=True)
    path = tmp_path / "Places_512_FullData.pkl"
    with pytest.MonkeyPatch.context() as patch:
        for name, module in stand_in_modules().items():
            patch.setitem(sys.modules, name, module)
        with path.open("wb") as handle:
            PersistencePickler(handle, 4).dump({"G_ema": generator, "augment_pipe": None})
    converted = convert(path)
    assert (converted.official.name, converted.config_name, converted.container) == ("mat-512", "paper", "network-pickle")
    for i, key in enumerate(numbers):
        assert float(converted.tensors[key].flatten()[0]) == i, key
    assert not marker.exists()


class Hostile:
    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def test_hostile_network_pickle_is_refused(tmp_path, marker, tiny_generator):
    path = tmp_path / "Places_512_FullData.pkl"
    save_network_pickle(path, tiny_generator, 4, {"payload": Hostile(os.system, f"touch {marker}")})
    with pytest.raises(InpaintError) as error:
        convert(path)
    assert str(error.value).startswith("Places_512_FullData.pkl: refused") and "system" in str(error.value)
    assert not marker.exists()


def test_hostile_inline_storage_is_refused(tmp_path, marker):
    """A storage's inline `torch.save` bytes are unpickled by the same restricted reader."""
    header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    payload = header + pickle.dumps(Hostile(os.system, f"touch {marker}"), protocol=2)
    load_from_bytes = marker_function("torch.storage", "_load_from_bytes")
    path = tmp_path / "evil.pkl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.storage, "_load_from_bytes", load_from_bytes)
        data = pickle.dumps({"G_ema": {"w": Hostile(load_from_bytes, payload)}}, protocol=4)
    path.write_bytes(data)
    with pytest.raises(InpaintError, match=r"^evil.pkl: refused: its pickle calls (posix|os)\.system"):
        convert(path)
    assert not marker.exists()


def test_broken_network_pickles_are_named(tmp_path, tiny_generator, tiny_official, marker):
    path = tmp_path / "net.pkl"
    save_network_pickle(path, tiny_generator, 4)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InpaintError) as error:
        convert(path)
    assert "\n" not in str(error.value) and str(error.value).startswith("net.pkl: ")
    # a module that contains itself
    path.write_bytes(pickle.dumps({"G_ema": _looping_module()}, protocol=4))
    with pytest.raises(InpaintError, match="nests too deep"):
        convert(path)
    # no G_ema
    path.write_bytes(pickle.dumps({"G": 1}, protocol=4))
    with pytest.raises(InpaintError, match="not a PyTorch file"):
        convert(path)
    assert not marker.exists()


def _looping_module() -> nn.ModuleList:
    module = nn.ModuleList()
    module._modules["self"] = module
    return module

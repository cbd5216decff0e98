"""`inpaint convert` for Co-ModGAN's PyTorch port (zengxianyu/co-mod-gan-pytorch `_net_G_ema.pth`).

`tests/data/official-keys/co-mod-gan_port_G_ema.tsv` lists the port's `Generator` state_dict at
512 (180 tensors, 79,792,231 parameters), taken from the port's classes built on the meta device.
The mapping was checked against the port's own forward pass (a 128 config, random weights, the
port's CUDA ops replaced by reference code, our G_4x4 without its E[2] and no dropout, as the port
runs): the raw outputs agree to 2e-6, and by 1.0 without the `Conv0_up` kernel flip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import inpaint_cli.convert as convert_package
from inpaint_cli.archs.co_mod_gan import CONFIGS, CoModGANGenerator
from inpaint_cli.convert import convert, write_converted
from inpaint_cli.convert.co_mod_gan import official_port, our_name
from inpaint_cli.convert.official import expected_tensors, official_models
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, Inpainter, resolve_model

KEYS = Path(__file__).parent / "data" / "official-keys" / "co-mod-gan_port_G_ema.tsv"
#: our tensors the port does not store: constant blur filters, noise maps, the average w
NOT_IN_PORT = ("resample_filter", "noise_const", "w_avg")


def port_keys() -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in KEYS.read_text().splitlines():
        if not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            keys[key] = tuple(json.loads(shape))
    return keys


def test_every_port_tensor_has_its_place():
    keys = port_keys()
    assert len(keys) == 180
    assert sum(int(np.prod(shape)) for key, shape in keys.items() if not key.endswith(".kernel")) == 79_792_231
    mapped = {key: our_name(key) for key in keys}
    assert sum(value is None for value in mapped.values()) == 21  # the blur kernels
    ours = expected_tensors("co-mod-gan", "paper")
    names = [value[0] for value in mapped.values() if value is not None]
    assert len(set(names)) == len(names) == 159
    assert set(names) == {key for key in ours if not key.endswith(NOT_IN_PORT)}


def test_fake_port_file_lands(tmp_path):
    keys = port_keys()
    # one number per tensor (stride-0, cheap); ramps where the layout changes
    values = {key: torch.tensor(i / 100).expand(shape) for i, (key, shape) in enumerate(keys.items())}
    for key in ("G_synthesis.G_64x64.Conv0_up.conv.weight", "G_synthesis.G_64x64.Conv1.conv.weight",
                "G_synthesis.G_4x4.ToRGB.bias"):
        values[key] = torch.randn(keys[key])
    path = tmp_path / "co-mod-gan-places2-050000_net_G_ema.pth"
    torch.save(values, path)
    converted = convert(path)
    assert (converted.official.name, converted.config_name) == ("co-mod-gan-512-port", "paper")
    assert converted.metadata["source"] == "https://github.com/zengxianyu/co-mod-gan-pytorch"
    landed = converted.tensors
    up = "G_synthesis.G_64x64.Conv0_up.conv.weight"
    assert torch.equal(landed["synthesis.G_64x64.conv0.conv.weight"], values[up].flip([3, 4]))
    conv1 = "G_synthesis.G_64x64.Conv1.conv.weight"
    assert torch.equal(landed["synthesis.G_64x64.conv1.conv.weight"], values[conv1])
    assert torch.equal(landed["synthesis.G_4x4.toRGB.bias"], values["G_synthesis.G_4x4.ToRGB.bias"].reshape(3))
    noise = "G_synthesis.G_128x128.Conv1.noise.weight"
    assert landed["synthesis.G_128x128.conv1.noise_strength"].shape == () and float(
        landed["synthesis.G_128x128.conv1.noise_strength"]) == float(values[noise])
    assert torch.equal(landed["synthesis.E_512x512.Conv1_down.weight"], values["G_synthesis.E.512x512.Conv1_down.1.weight"])
    assert torch.equal(landed["mapping.fc3.bias"], values["G_mapping.G_mapping.Dense3.bias"])
    for key, value in values.items():
        if (target := our_name(key)) is not None:
            assert torch.equal(landed[target[0]], target[1](value)), key
    assert torch.isfinite(landed["mapping.w_avg"]).all() and landed["mapping.w_avg"].abs().sum() > 0


def test_unknown_and_missing_port_tensors_are_named(tmp_path):
    values = {key: torch.zeros(()).expand(shape) for key, shape in port_keys().items()}
    path = tmp_path / "G.pth"
    torch.save(values | {"G_synthesis.G_8x8.Conv1.extra": torch.zeros(1)}, path)
    with pytest.raises(InpaintError, match=r"^G.pth: unexpected tensor G_synthesis\.G_8x8\.Conv1\.extra"):
        convert(path)
    del values["G_synthesis.G_8x8.Conv1.activate.bias"]
    torch.save(values, path)
    with pytest.raises(InpaintError, match=r"missing tensor synthesis\.G_8x8\.conv1\.bias"):
        convert(path)


#: our name -> the port's (regex substitutions, applied in order; the first match wins)
TO_PORT = [
    (r"mapping\.fc(\d+)\.", r"G_mapping.G_mapping.Dense\1."),
    (r"synthesis\.E_(\d+x\d+)\.FromRGB\.weight", r"G_synthesis.E.\1_0.FromRGB.0.weight"),
    (r"synthesis\.E_(\d+x\d+)\.FromRGB\.bias", r"G_synthesis.E.\1_0.FromRGB.1.bias"),
    (r"synthesis\.E_(\d+x\d+)\.(Conv0|Conv)\.weight", r"G_synthesis.E.\1.\2.0.weight"),
    (r"synthesis\.E_(\d+x\d+)\.(Conv0|Conv)\.bias", r"G_synthesis.E.\1.\2.1.bias"),
    (r"synthesis\.E_(\d+x\d+)\.Conv1_down\.weight", r"G_synthesis.E.\1.Conv1_down.1.weight"),
    (r"synthesis\.E_(\d+x\d+)\.Conv1_down\.bias", r"G_synthesis.E.\1.Conv1_down.2.bias"),
    (r"synthesis\.E_4x4\.Dense0\.", r"G_synthesis.E.4x4.Dense0."),
    (r"synthesis\.G_4x4\.fc\.", r"G_synthesis.G_4x4.Dense."),
    (r"synthesis\.(G_\d+x\d+)\.toRGB\.conv\.affine\.", r"G_synthesis.\1.ToRGB.conv.modulation."),
    (r"synthesis\.(G_\d+x\d+)\.toRGB\.", r"G_synthesis.\1.ToRGB."),
    (r"synthesis\.(G_\d+x\d+)\.(conv\d?)\.conv\.affine\.", r"G_synthesis.\1.{\2}.conv.modulation."),
    (r"synthesis\.(G_\d+x\d+)\.(conv\d?)\.conv\.weight", r"G_synthesis.\1.{\2}.conv.weight"),
    (r"synthesis\.(G_\d+x\d+)\.(conv\d?)\.noise_strength", r"G_synthesis.\1.{\2}.noise.weight"),
    (r"synthesis\.(G_\d+x\d+)\.(conv\d?)\.bias", r"G_synthesis.\1.{\2}.activate.bias"),
]
PORT_LAYERS = {"{conv}": "Conv", "{conv0}": "Conv0_up", "{conv1}": "Conv1"}


def to_port(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our tensors under the port's names and layouts (the inverse of the conversion); the port's
    blur kernels are added, our tensors it does not store are left out."""
    port = {}
    for key, tensor in state.items():
        if key.endswith(NOT_IN_PORT):
            continue
        pattern, template = next((p, t) for p, t in TO_PORT if re.match(p, key))
        name = re.sub(pattern, template, key)
        for ours, theirs in PORT_LAYERS.items():
            name = name.replace(ours, theirs)
        if name.endswith("Conv0_up.conv.weight"):
            tensor = tensor.flip([3, 4])
        elif name.endswith("noise.weight"):
            tensor = tensor.reshape(1)
        elif name.endswith("ToRGB.bias"):
            tensor = tensor.reshape(1, -1, 1, 1)
        port[name] = tensor
    port["G_synthesis.G_8x8.Conv0_up.conv.blur.kernel"] = torch.ones(4, 4)
    return port


@pytest.fixture
def tiny_port(monkeypatch):
    extra = (official_port("co-mod-gan-tiny-test", "tiny", "test"),)
    monkeypatch.setattr(convert_package, "official_models", lambda: official_models() + extra)


def test_tiny_port_file_converts_and_fills(tmp_path, tiny_port):
    torch.manual_seed(4)
    generator = CoModGANGenerator(CONFIGS["tiny"]).eval()
    with torch.no_grad():
        for name, tensor in generator.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                tensor.normal_(0, 0.1)
    state = generator.state_dict()
    path = tmp_path / "net_G_ema.pth"
    torch.save(to_port(state), path)
    converted = convert(path)
    assert converted.official.name == "co-mod-gan-tiny-test"
    for key, tensor in state.items():
        if not key.endswith(("noise_const", "w_avg")):
            assert torch.equal(converted.tensors[key], tensor), key
    assert not any(t.any() for k, t in converted.tensors.items() if k.endswith("noise_const"))
    # w_avg: the mean w of many z
    z = torch.randn(4096, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean_w = generator.mapping(z, update_w_avg=False)[:, 0].mean(dim=0)
    torch.testing.assert_close(converted.tensors["mapping.w_avg"], mean_w)
    out = write_converted(converted, tmp_path / "comod.safetensors")
    rgb8 = (np.random.default_rng(2).random((128, 128, 3)) * 255).astype(np.uint8)
    hole = np.zeros((128, 128), bool)
    hole[30:100, 40:90] = True
    filled, _ = Inpainter(resolve_model(None, str(out)), options=FillOptions(blend="none")).fill(rgb8, hole)
    assert np.array_equal(filled[~hole], rgb8[~hole])
    assert np.abs(filled[hole].astype(int) - rgb8[hole].astype(int)).mean() > 1

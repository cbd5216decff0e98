"""Release files and training checkpoints: round trips, 16-bit storage, metadata, validation, hf://."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
from inpaint_cli.checkpoint import (
    FORMAT,
    export_release,
    load_release,
    load_training_state,
    read_metadata,
    save_training_state,
)
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch

INFO = {"step": "12", "image_size": "64", "batch": "4", "seed": "0", "data": "synthetic", "license": "test"}


def _export(path: Path, config: str = "tiny") -> CompletionNetwork:
    torch.manual_seed(0)
    generator = CompletionNetwork(CONFIGS[config]).eval()
    with torch.no_grad():  # BN running statistics with a tiny variance, which float16 cannot hold well
        generator.layers[0][1].running_var.uniform_(1e-7, 1e-6)
        generator.layers[0][0].weight[0, 0, 0, 0] = 3e-8  # trained weights have entries this small
    export_release(generator, get_arch("glcic"), config, CONFIGS[config], path, INFO)
    return generator


def test_float16_storage_is_kept_only_where_the_fill_does_not_change(tmp_path, monkeypatch):
    """The recorded change is the probe fill's, and a change above the tolerance keeps float32."""
    import inpaint_cli.checkpoint as checkpoint

    path = tmp_path / "glcic-tiny.safetensors"
    original = _export(path)
    loaded, _, _, metadata = load_release(path)
    image, mask = checkpoint.probe_image(checkpoint.PROBE_SIDE)
    with torch.no_grad():
        moved = ((loaded.inpaint(image, mask) - original.inpaint(image, mask)).abs() * mask).max().item()
    assert 0 < float(metadata["float16_fill_change"]) == pytest.approx(moved * 255, abs=1e-3)
    assert {t.dtype for t in load_file(str(path)).values()} >= {torch.float16}
    monkeypatch.setattr(checkpoint, "FLOAT16_FILL_TOLERANCE", moved / 2)
    _export(path)
    assert {t.dtype for t in load_file(str(path)).values() if t.is_floating_point()} == {torch.float32}


def test_release_round_trip_keeps_outputs_and_metadata(tmp_path):
    path = tmp_path / "glcic-tiny.safetensors"
    original = _export(path)
    loaded, spec, config, metadata = load_release(path)
    assert spec.name == "glcic" and config == "tiny"
    assert metadata["format"] == FORMAT and metadata["step"] == "12" and metadata["data"] == "synthetic"
    assert json.loads(metadata["config_json"])["width"] == CONFIGS["tiny"].width
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    with torch.no_grad():
        difference = (loaded.inpaint(image, mask) - original.inpaint(image, mask)).abs().max()
    assert difference < 5e-3  # float16 weights


def test_release_stores_float16_unless_it_loses_precision(tmp_path):
    path = tmp_path / "w.safetensors"
    _export(path)
    tensors = load_file(str(path))
    assert tensors["layers.0.0.weight"].dtype == torch.float16  # its one tiny entry is no reason for 32 bits
    assert tensors["layers.0.1.running_var"].dtype == torch.float32  # 1e-7 underflows float16
    assert tensors["layers.0.1.num_batches_tracked"].dtype == torch.int64


def test_agreeing_and_disagreeing_names(tmp_path):
    path = tmp_path / "w.safetensors"
    _export(path)
    load_release(path, "glcic", "tiny")
    with pytest.raises(InpaintError, match="for 'glcic', not 'deepfill-v1'"):
        load_release(path, "deepfill-v1")
    with pytest.raises(InpaintError, match="config 'tiny', not 'half'"):
        load_release(path, "glcic", "half")


def test_corrupt_files_are_reported(tmp_path):
    good = tmp_path / "good.safetensors"
    _export(good)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a safetensors file at all" * 10)
    with pytest.raises(InpaintError, match="not a readable safetensors file"):
        load_release(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InpaintError, match="truncated|not a readable"):
        load_release(truncated)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(InpaintError, match="not an inpaint-cli weights file"):
        load_release(plain)
    with pytest.raises(InpaintError, match="not found"):
        load_release(tmp_path / "missing.safetensors")


def test_wrong_tensors_are_named(tmp_path):
    path = tmp_path / "w.safetensors"
    _export(path)
    tensors, metadata = load_file(str(path)), read_metadata(path)
    bad_shape = dict(tensors)
    bad_shape["layers.0.0.weight"] = torch.zeros(3, 3)
    save_file(bad_shape, str(tmp_path / "shape.safetensors"), metadata=metadata)
    with pytest.raises(InpaintError, match=r"layers\.0\.0\.weight has shape \(3, 3\)"):
        load_release(tmp_path / "shape.safetensors")
    last_weight = [k for k in tensors if k.endswith(".weight")][-1]
    missing = {k: v for k, v in tensors.items() if k != last_weight}
    save_file(missing, str(tmp_path / "missing.safetensors"), metadata=metadata)
    with pytest.raises(InpaintError, match="missing 1 tensors"):
        load_release(tmp_path / "missing.safetensors")


def test_hf_paths_resolve_offline_from_the_local_cache(tmp_path, monkeypatch):
    """A hub cache laid out as huggingface_hub writes it; HF_HUB_OFFLINE keeps the network out."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--inpaint-weights"
    snapshot = repo / "snapshots" / commit / "release"
    snapshot.mkdir(parents=True)
    _export(snapshot / "glcic-tiny.safetensors")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    model, spec, config, _ = load_release("hf://someone/inpaint-weights/release/glcic-tiny.safetensors")
    assert spec.name == "glcic" and config == "tiny"
    model, *_ = load_release(f"hf://someone/inpaint-weights/release/glcic-tiny.safetensors@{commit}")
    with pytest.raises(InpaintError, match="not in the local Hugging Face cache"):
        load_release("hf://someone/inpaint-weights/release/other.safetensors")
    with pytest.raises(InpaintError, match="malformed"):
        load_release("hf://just-a-name")


def test_training_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    model(torch.rand(4, 3)).sum().backward()
    optimizer.step()
    state = {"step": 7, "nets": {"g": model.state_dict()}, "opt": optimizer.state_dict(), "note": [1.5, "x"]}
    save_training_state(state, tmp_path / "checkpoint")
    save_training_state(state, tmp_path / "checkpoint")  # replacing an existing one
    restored = load_training_state(tmp_path / "checkpoint")
    assert restored["step"] == 7 and restored["note"] == [1.5, "x"]
    assert torch.equal(restored["nets"]["g"]["weight"], model.weight)
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(restored["opt"])
    assert torch.equal(fresh.state[model.weight]["exp_avg"], optimizer.state[model.weight]["exp_avg"])
    assert fresh.param_groups[0]["betas"][0] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # no staging leftovers

"""The weights `--arch NAME` loads: the bundled manifest and the installed folder."""

import json

from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
from inpaint_cli.checkpoint import export_release
from inpaint_cli.fill import resolve_model
from inpaint_cli.registry import get_arch
from inpaint_cli.weights import installed_dir, installed_files, read_manifest, weights_for, write_manifest


def _release(path):
    export_release(CompletionNetwork(CONFIGS["tiny"]), get_arch("glcic"), "tiny", CONFIGS["tiny"], path, {})
    return path


def test_an_installed_release_wins_over_the_bundled_one(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    _release(bundled / "glcic-tiny.safetensors")
    write_manifest(bundled, {"default": "telea", "models": {"glcic": "glcic-tiny.safetensors"}})
    monkeypatch.setenv("INPAINT_WEIGHTS", str(bundled))
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    assert installed_dir() == tmp_path / "home" / "weights" and installed_files() == []
    assert weights_for("glcic") == bundled / "glcic-tiny.safetensors"  # nothing installed
    assert weights_for("lama") is None
    installed = tmp_path / "home" / "weights"
    installed.mkdir(parents=True)
    _release(installed / "mine.safetensors")
    assert weights_for("glcic") == installed / "mine.safetensors"
    assert resolve_model("glcic", None).label == "glcic"
    assert weights_for("deepfill-v1") is None


def test_manifest_round_trip_and_its_absence(tmp_path):
    assert read_manifest(tmp_path) == {"default": "telea", "models": {}}
    read_manifest(tmp_path)["models"]["glcic"] = "x"  # a fresh dict each time
    assert read_manifest(tmp_path)["models"] == {}
    write_manifest(tmp_path, {"default": "glcic-tiny.safetensors", "models": {"glcic": "glcic-tiny.safetensors"}})
    assert json.loads((tmp_path / "manifest.json").read_text())["default"] == "glcic-tiny.safetensors"
    assert read_manifest(tmp_path)["models"] == {"glcic": "glcic-tiny.safetensors"}
    assert [path.name for path in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left

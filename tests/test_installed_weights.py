"""`inpaint convert` on the command line and the installed weights folder: a converted official
file, installed, is what `--arch NAME` loads (and, with `--default`, a bare `inpaint fill`);
`fill` names the file it used; `inpaint models` lists installed files. Also `--dilate`,
`--feather` and `masks preview` through the command line.

The commands run in-process (Typer's runner), which costs no interpreter or torch start-up.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_convert import official_keys, random_tensors
from typer.testing import CliRunner

from inpaint_cli.catalog import catalog, render_catalog
from inpaint_cli.checkpoint import export_release
from inpaint_cli.cli import app
from inpaint_cli.convert.aot_gan import OFFICIAL as aot_gan_official
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, Inpainter, resolve_model
from inpaint_cli.masks import grow_hole, preview_hole
from inpaint_cli.registry import get_arch
from inpaint_cli.weights import (
    bundled_weights,
    default_model,
    install,
    installed_dir,
    read_manifest,
    weights_for,
    write_manifest,
)

RECT = "16,12,24,20"  # x, y, w, h of the hole in the 48 x 64 test photo


def run(*args: str | Path) -> tuple[int, str, str]:
    """`inpaint ARGS` in-process: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def rect_hole(height: int = 48, width: int = 64) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    hole[12:32, 16:40] = True
    return hole


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty INPAINT_HOME (the bundled weights stay the repository's)."""
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def aot_official(tmp_path_factory) -> Path:
    """A fake official AOT-GAN generator `G0000000.pt`: every official key, random values."""
    path = tmp_path_factory.mktemp("aot-gan") / "G0000000.pt"
    torch.save(OrderedDict(random_tensors(official_keys("aot-gan_G"), seed=3)), path)
    return path


@pytest.fixture
def photo(tmp_path, smooth_image) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.ascontiguousarray(smooth_image[:48, :64])).save(path)
    return path


def test_convert_install_then_arch_loads_the_installed_file(home, aot_official, photo, tmp_path, monkeypatch):
    code, _, err = run("fill", photo, "--rect", RECT, "--arch", "aot-gan", "-o", tmp_path / "before.png")
    assert code == 0 and err.splitlines()[0] == f"using {bundled_weights('aot-gan')}"  # nothing installed yet
    # where nothing is bundled (an empty bundled folder) and nothing installed, the error names the way
    # to weights: DeepFill v2's official file converts; PConv has no official file, so training it is
    (tmp_path / "empty").mkdir()
    write_manifest(tmp_path / "empty", {"default": "", "models": {}})
    with monkeypatch.context() as patched:
        patched.setenv("INPAINT_WEIGHTS", str(tmp_path / "empty"))
        code, _, err = run("fill", photo, "--rect", RECT, "--arch", "deepfill-v2", "-o", tmp_path / "none.png")
        assert code == 1 and "no bundled weights for deepfill-v2" in err
        assert "`inpaint convert FILE --install`" in err
        code, _, err = run("fill", photo, "--rect", RECT, "--arch", "pconv", "-o", tmp_path / "none.png")
        assert code == 1 and "no bundled weights for pconv" in err and "convert" not in err

    converted = tmp_path / "aot-gan-paper.safetensors"
    code, _, err = run("convert", aot_official, "-o", converted, "--install")
    assert code == 0, err
    installed = home / "weights" / converted.name
    assert err.splitlines()[0].startswith("converted aot-gan (state-dict) to aot-gan paper: ")
    assert f"wrote {converted}" in err.splitlines() and f"installed {installed}" in err.splitlines()
    assert any(line.startswith("licence: ") for line in err.splitlines())
    assert installed.read_bytes() == converted.read_bytes()
    assert read_manifest(home / "weights")["models"] == {"aot-gan": converted.name}
    assert read_manifest(home / "weights")["default"] == ""  # no --default: the bundled default stays

    out = tmp_path / "filled.png"
    code, stdout, err = run("fill", photo, "--rect", RECT, "--arch", "aot-gan", "-o", out, "--json")
    assert code == 0, err
    assert err.splitlines() == [f"using {installed}"]  # the installed file, not the bundled one
    (record,) = [json.loads(line) for line in stdout.splitlines()]  # --json: only records on stdout
    assert record["hole_pixels"] == int(rect_hole().sum())
    # the fill is the installed network's: the same as loading that file by hand
    source = np.asarray(Image.open(photo).convert("RGB"))
    expected = Inpainter(resolve_model(None, str(installed))).fill(source, rect_hole())[0]
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expected)

    again = tmp_path / "again.safetensors"
    again.write_bytes(converted.read_bytes())
    install(again)
    assert weights_for("aot-gan") == home / "weights" / "again.safetensors"  # the last installed wins
    code, _, err = run("convert", aot_official, "-o", converted)
    assert code == 1 and err.strip() == f"error: {converted} exists; pass --overwrite to replace it"


def test_install_default_is_what_a_bare_fill_uses_and_models_lists_it(home, aot_official, photo, tmp_path, monkeypatch):
    monkeypatch.setattr("inpaint_cli.catalog.architecture_rows", lambda: [])  # the slow counts, not at stake
    bundled_default = default_model()
    code, _, err = run("convert", aot_official, "-o", tmp_path / "aot.safetensors", "--install", "--default")
    assert code == 0, err
    installed = home / "weights" / "aot.safetensors"
    assert f"installed {installed} as the default model" in err.splitlines()
    assert default_model() == str(installed) != bundled_default
    code, _, err = run("fill", photo, "--rect", RECT, "-o", tmp_path / "filled.png")
    assert code == 0 and err.splitlines()[0] == f"using {installed}", err

    code, stdout, err = run("models", "--json")
    assert code == 0, err
    document = json.loads(stdout)
    assert document["default"] == "aot.safetensors"
    (row,) = document["installed"]
    assert row["arch"] == "aot-gan" and row["config"] == "paper" and row["from"] == "aot-gan" and row["default"]
    assert row["license"] == aot_gan_official[0].license  # the official terms travel with the file
    assert not any(item["default"] for item in document["bundled"])  # the installed default replaces it
    titles = [getattr(shown, "title", None) for shown in render_catalog(catalog())]
    assert f"Installed weights ({installed_dir()}; preferred over the bundled ones)" in titles


def test_default_without_install_is_a_usage_error(home, aot_official, tmp_path):
    code, _, err = run("convert", aot_official, "--default")
    assert code == 2 and "--default needs --install" in err
    code, _, err = run("convert", aot_official, "--dtype", "int8")  # refused while parsing, before torch is needed
    assert code == 2 and "'int8' is not one of 'float32', 'float16', 'bfloat16'" in err
    assert not (home / "weights").exists() and not (aot_official.parent / "aot-gan-paper.safetensors").exists()


def _release(path: Path, seed: int) -> Path:
    from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork

    torch.manual_seed(seed)
    export_release(CompletionNetwork(CONFIGS["tiny"]), get_arch("glcic"), "tiny", CONFIGS["tiny"], path, {})
    return path


def test_install_refuses_a_different_file_of_the_same_name(home, tmp_path):
    first = _release(tmp_path / "a" / "glcic.safetensors", seed=0)
    second = _release(tmp_path / "b" / "glcic.safetensors", seed=1)
    assert install(first) == home / "weights" / "glcic.safetensors"
    assert install(first) == home / "weights" / "glcic.safetensors"  # the same file again: fine
    with pytest.raises(InpaintError, match="a different .*glcic.safetensors is already installed; pass --overwrite"):
        install(second)
    assert (home / "weights" / "glcic.safetensors").read_bytes() == first.read_bytes()
    install(second, overwrite=True)
    assert (home / "weights" / "glcic.safetensors").read_bytes() == second.read_bytes()
    assert sorted(p.name for p in (home / "weights").iterdir()) == ["glcic.safetensors", "manifest.json"]  # no temporaries
    assert (home / "weights" / "glcic.safetensors").stat().st_mode & 0o777 == 0o666 & ~_umask()  # as the umask says


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# ---------------------------------------------------------------- --dilate, --feather, masks preview


def test_fill_dilate_and_feather_keep_pixels_outside_the_grown_hole(photo, tmp_path):
    out = tmp_path / "filled.png"
    code, _, err = run("fill", photo, "--rect", RECT, "--arch", "telea", "--dilate", "3", "--feather", "2", "-o", out)
    assert code == 0, err
    source = np.asarray(Image.open(photo).convert("RGB"))
    filled = np.asarray(Image.open(out).convert("RGB"))
    grown = grow_hole(rect_hole(), 3)
    assert np.array_equal(filled[~grown], source[~grown])  # bit for bit outside the grown hole
    assert (filled[grown & ~rect_hole()] != source[grown & ~rect_hole()]).any()  # the ring was filled too
    options = FillOptions(dilate=3, feather=2)
    assert np.array_equal(filled, Inpainter(resolve_model("telea", None), options=options).fill(source, rect_hole())[0])
    for option in ("--dilate", "--feather"):
        code, _, err = run("fill", photo, "--rect", RECT, option, "-1")
        assert code == 2 and option in err


def test_eval_passes_dilate_and_feather_to_the_evaluation_only(monkeypatch, tmp_path):
    seen = {}

    def evaluate_methods(archs, weights, data_dir, masks, metrics, **options):
        seen.update(options)
        raise InpaintError("stop here")

    monkeypatch.setattr("inpaint_cli.evaluate.evaluate_methods", evaluate_methods)
    code, _, err = run("eval", "--data", tmp_path, "--arch", "telea", "--dilate", "4", "--feather", "2")
    assert code == 1 and err.strip() == "error: stop here"
    assert (seen["dilate"], seen["feather"]) == (4, 2)


def test_masks_preview_tints_the_grown_hole_and_keeps_the_rest(photo, tmp_path):
    mask = tmp_path / "mask.png"
    Image.fromarray(np.where(rect_hole(), 255, 0).astype(np.uint8)).save(mask)
    code, _, err = run("masks", "preview", photo, "--mask", mask, "--dilate", "2")
    target = tmp_path / "photo.preview.png"
    grown = grow_hole(rect_hole(), 2)
    assert code == 0 and err.strip() == f"wrote {target} ({int(grown.sum())} hole pixels tinted)"
    source = np.asarray(Image.open(photo).convert("RGB"))
    shown = np.asarray(Image.open(target).convert("RGB"))
    assert np.array_equal(shown, preview_hole(source, grown))
    assert np.array_equal(shown[~grown], source[~grown]) and (shown[grown] != source[grown]).all(axis=1).any()
    before = target.read_bytes()
    code, _, err = run("masks", "preview", photo, "--rect", RECT)
    assert code == 1 and "exists; pass --overwrite" in err and target.read_bytes() == before
    # the generators keep their command line: `inpaint masks KIND` is `inpaint masks generate KIND`
    code, _, err = run("masks", "box", "--count", "2", "--size", "32", "--out", tmp_path / "boxes")
    assert code == 0 and sorted(p.name for p in (tmp_path / "boxes").iterdir()) == ["00000.png", "00001.png"]

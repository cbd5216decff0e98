"""Bundled weights (weights/manifest.json): each file loads, matches its declared architecture and
config, changes only hole pixels, and beats Telea on a box hole in the example photos (so a broken
export fails CI). With no weights bundled, the parametrised tests are reported as skipped."""

import json

import numpy as np
import pytest

from inpaint_cli.checkpoint import read_metadata
from inpaint_cli.fill import Inpainter, read_manifest, resolve_model, weights_dir
from inpaint_cli.io import read_image
from inpaint_cli.metrics import psnr

BUNDLED = sorted(read_manifest().get("models", {}).items())


def test_manifest_default_is_a_registered_method_or_a_bundled_file():
    manifest = read_manifest()
    default = manifest["default"]
    if default.endswith(".safetensors"):
        assert default in manifest["models"].values()
    else:
        assert resolve_model(default, None).spec.name == default


@pytest.mark.parametrize("arch,file", BUNDLED)
def test_bundled_file_matches_its_declaration(arch, file):
    metadata = read_metadata(weights_dir() / file)
    assert metadata["arch"] == arch
    assert file == f"{arch}-{metadata['config']}.safetensors"
    json.loads(metadata["config_json"])
    json.loads(metadata["eval_json"])
    for key in ("step", "image_size", "batch", "data", "hardware", "wall_time_s", "license"):
        assert metadata[key]


@pytest.mark.parametrize("arch,file", BUNDLED)
def test_bundled_model_changes_only_the_hole_and_beats_telea_on_boxes(arch, file, examples_dir):
    model = Inpainter(resolve_model(arch, None))
    telea = Inpainter(resolve_model("telea", None))
    wins = 0
    names = ["astronaut", "chelsea", "coffee"]
    for name in names:
        rgb = read_image(examples_dir / f"{name}.png").rgb8[:256, :256]
        hole = np.zeros(rgb.shape[:2], bool)
        hole[96:160, 80:176] = True
        filled = model(rgb, hole)
        assert np.array_equal(filled[~hole], rgb[~hole])
        scores = [psnr(rgb / 255, out / 255, hole) for out in (filled, telea(rgb, hole))]
        wins += scores[0] > scores[1]
    assert wins >= 2, f"{arch} beat Telea on only {wins} of {len(names)} example boxes"

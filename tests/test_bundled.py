"""Bundled weights (weights/manifest.json): each file loads, matches its declared architecture and
config, changes only hole pixels, and beats Telea on a box hole in the example photos (so a broken
export fails CI). With no weights bundled, the parametrised tests are reported as skipped."""

import json

import numpy as np
import pytest

from inpaint_cli.checkpoint import read_metadata
from inpaint_cli.evaluate import load_eval_images, result_from_json
from inpaint_cli.fill import FillOptions, Inpainter, blended_label, resolve_model
from inpaint_cli.masks import draw_mask, eval_rng
from inpaint_cli.metrics import psnr
from inpaint_cli.registry import get_arch
from inpaint_cli.release import CLASSICAL
from inpaint_cli.weights import read_manifest, weights_dir

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
    # `--arch NAME`, `train --arch NAME` and the star of `inpaint models` all mean this config
    assert metadata["config"] == get_arch(arch).default_config
    json.loads(metadata["config_json"])
    # the release's own row of its table is labelled with the post-processing `--blend auto` applies
    result = result_from_json(metadata["eval_json"])
    own = [label for label in result.methods if label not in CLASSICAL]
    blend = Inpainter(resolve_model(arch, None)).blend
    assert own == [blended_label(file.removesuffix(".safetensors"), blend)]
    for key in ("step", "image_size", "batch", "data", "hardware", "wall_time_s", "license"):
        assert metadata[key]


@pytest.mark.parametrize("arch,file", BUNDLED)
def test_bundled_model_changes_only_the_hole_and_beats_telea_on_boxes(arch, file, examples_dir):
    """The example photos at the protocol's scale with its boxes (seeds 0-3: 16 fills). A broken
    export wins none and falls several dB behind; a sound one wins some and keeps level on average
    (per-photo PSNR differences of a few dB either way are normal on four photos). The bare
    network, without its post-processing: Poisson blending alone (the harmonic fill) beats Telea."""
    model = Inpainter(resolve_model(arch, None), options=FillOptions(blend="none"))
    telea = Inpainter(resolve_model("telea", None))
    images = load_eval_images(examples_dir, 256)
    differences = []
    for seed in range(4):
        for index, (_, rgb) in enumerate(images):
            hole = draw_mask("box", eval_rng(seed, index, "box"), 256, 256)
            hidden = np.where(hole[..., None], 0, rgb).astype(np.uint8)
            filled = model(hidden, hole)
            assert np.array_equal(filled[~hole], rgb[~hole])
            mine, theirs = (psnr(rgb / 255, out / 255, hole) for out in (filled, telea(hidden, hole)))
            differences.append(mine - theirs)
    wins = sum(d > 0 for d in differences)
    assert wins >= 4, f"{arch} beat Telea on only {wins} of {len(differences)} example boxes"
    assert np.mean(differences) > -0.5, f"{arch} is {-np.mean(differences):.2f} dB behind Telea on the example boxes"

"""Co-ModGAN and MAT train through the real loop at their tiny fixed size, export, and the export
fills only hole pixels, differently for each seed (docs/architectures.md §8, §9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_cli.checkpoint import load_release
from inpaint_cli.fill import Inpainter, LoadedModel
from inpaint_cli.train import TrainSettings, start_training


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:mat. no backbone weights")
@pytest.mark.parametrize("arch", ["co-mod-gan", "mat"])
def test_tiny_config_trains_exports_and_fills(arch, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:128, 0:144].astype(np.float64)
    for index in range(4):
        colours = rng.uniform(40, 215, size=(2, 3))
        blend = 0.5 + 0.5 * np.sin(x / rng.uniform(6, 20) + y / rng.uniform(8, 30))
        image = colours[0] * blend[..., None] + colours[1] * (1 - blend[..., None])
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"p{index}.png")
    settings = TrainSettings(arch=arch, out_dir=str(tmp_path / "run"), data_dirs=[str(folder)], config="tiny",
                             size=128, batch=2, steps=1, checkpoint_every=0, sample_every=0, log_every=1, cache_side=128)
    result = start_training(settings).run()
    assert result.step == 1 and {"d", "r1", "adv"} <= set(result.history[0])
    assert all(np.isfinite(v) for v in result.history[0].values())
    model, spec, config, metadata = load_release(result.export_path)
    assert (spec.name, config) == (arch, "tiny")
    image = np.asarray(Image.open(folder / "p0.png")).copy()
    hole = np.zeros(image.shape[:2], bool)
    hole[40:80, 30:90] = True
    filled, _ = Inpainter(LoadedModel(model, spec, config, arch, metadata)).fill(image, hole)
    assert np.array_equal(filled[~hole], image[~hole]) and not np.array_equal(filled[hole], image[hole])
    tensor = torch.from_numpy(image[:128, :128]).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(hole[:128, :128])[None, None].float()
    with torch.no_grad():
        samples = [model.inpaint(tensor, mask, seed=seed) for seed in (0, 1, 2)]
    assert all(not torch.equal(a, b) for i, a in enumerate(samples) for b in samples[i + 1 :])

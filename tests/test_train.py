"""The training loop: every registered architecture trains (tiny config) and its export fills;
the loss falls; a resumed run equals a straight one."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_cli.checkpoint import load_release
from inpaint_cli.devices import autocast_dtype
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import Inpainter, LoadedModel
from inpaint_cli.archs.base import TrainOptions
from inpaint_cli.registry import get_arch, list_archs
from inpaint_cli.train import TrainSettings, start_training
from inpaint_cli.train.data import BatchPrefetcher, BatchSampler, ImageCache, as_tensors, find_training_images
from inpaint_cli.train.ema import WeightAverage
from inpaint_cli.train.export import BATCH_NORM_IMAGES, BATCH_NORM_STREAM


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Eight smooth, textured 96 x 112 pictures (stripes and gradients of random colours)."""
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:96, 0:112].astype(np.float64)
    for index in range(8):
        colours = rng.uniform(40, 215, size=(2, 3))
        blend = 0.5 + 0.5 * np.sin(x / rng.uniform(6, 20) + y / rng.uniform(8, 30))
        image = colours[0] * blend[..., None] + colours[1] * (1 - blend[..., None])
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


def _settings(folder, out, arch, **overrides):
    values = dict(arch=arch, out_dir=str(out), data_dirs=[str(folder)], config="tiny", size=64, batch=2,
                  steps=6, checkpoint_every=0, sample_every=0, log_every=3, cache_side=64)
    values.update(overrides)
    return TrainSettings(**values)


@pytest.mark.slow
@pytest.mark.parametrize("arch", list_archs(learned=True))
def test_every_architecture_trains_and_its_export_fills(arch, image_folder, tmp_path):
    spec = get_arch(arch)
    size = spec.recipe.required_size(spec.config("tiny")) or 64  # a fixed-input network's own window
    trainer = start_training(_settings(image_folder, tmp_path / arch, arch, size=size, cache_side=max(size, 64)))
    result = trainer.run()
    assert result.step == 6
    assert all(np.isfinite(v) for row in result.history for v in row.values())
    model, spec, config, metadata = load_release(result.export_path)
    assert (spec.name, config, metadata["step"]) == (arch, "tiny", "6")
    assert json.loads(metadata["training_json"])["size"] == size
    image = np.asarray(Image.open(image_folder / "p0.png"))[:64, :64].copy()
    hole = np.zeros((64, 64), bool)
    hole[20:40, 16:44] = True
    filled, _ = Inpainter(LoadedModel(model, spec, config, arch, metadata)).fill(image, hole)
    assert np.array_equal(filled[~hole], image[~hole])


def test_reconstruction_loss_falls(tmp_path):
    """One picture (random crops and flips of it): the completion network learns its colours."""
    folder = tmp_path / "one"
    folder.mkdir()
    y, x = np.mgrid[0:80, 0:96]
    picture = np.stack([60 + x, 200 - y, 120 + 0 * x], axis=-1).astype(np.uint8)
    Image.fromarray(picture).save(folder / "only.png")
    settings = _settings(folder, tmp_path / "run", "glcic", steps=40, log_every=10, phase_steps=[40, 0], lr=3e-3, batch=4)
    history = start_training(settings).run().history
    first, last = history[0]["rec"], history[-1]["rec"]
    assert last < 0.5 * first, history


def test_resume_repeats_a_straight_run_exactly(image_folder, tmp_path, monkeypatch):
    # phases 3 (completion) + 2 (discriminator) + joint: the resume point falls inside phase 2.
    # Each export re-estimates batch-norm statistics: on 64 images here, not 2,048 (1,024 forward
    # passes per export at batch 2 made this the suite's slowest test); the next test covers them
    monkeypatch.setattr("inpaint_cli.train.export.BATCH_NORM_IMAGES", 64)
    common = dict(steps=8, phase_steps=[3, 2], ema_decay=0.9)
    straight = start_training(_settings(image_folder, tmp_path / "straight", "glcic", **common))
    straight.run()
    halves = start_training(_settings(image_folder, tmp_path / "halves", "glcic", **common))
    halves.settings.steps = 4
    halves.run()
    # the second half draws its batches in two loader processes: the same batches; and it writes a
    # checkpoint, an export and a sample grid after every step: the same arithmetic
    changes = dict(steps=8, checkpoint_every=1, sample_every=1)
    resumed = start_training(_settings(image_folder, tmp_path / "halves", "glcic", **common), resume=True, resume_changes=changes, workers=2)
    assert resumed.step == 4 and (resumed.settings.checkpoint_every, resumed.settings.sample_every) == (1, 1)
    resumed.run()
    for name, tensor in straight.generator.state_dict().items():
        torch.testing.assert_close(resumed.generator.state_dict()[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    for name, tensor in straight.discriminator.state_dict().items():
        torch.testing.assert_close(resumed.discriminator.state_dict()[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    # the generator stepped 3 + 3 times (not in the discriminator phase): the export is the average
    assert resumed.average.updates == straight.average.updates == 6
    exported, _, _, metadata = load_release(resumed.export_path)
    assert json.loads(metadata["training_json"])["ema_decay"] == 0.9
    for name, tensor in straight.average.weights.items():
        torch.testing.assert_close(resumed.average.weights[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # batch-norm statistics are the average's own (next test)
        scale = 1e-3 * float(tensor.abs().max()) + 1e-6 if tensor.is_floating_point() else 0.0  # 16-bit release
        torch.testing.assert_close(exported.state_dict()[name].to(tensor.dtype), tensor, rtol=0, atol=scale, msg=name)
    own = resumed.generator.state_dict()
    assert any(not torch.equal(own[name], tensor) for name, tensor in straight.average.weights.items())


def test_an_averaged_export_carries_batch_norm_statistics_of_its_own_weights(image_folder, tmp_path):
    # a high rate, so the weights the average passed through differ from the average
    trainer = start_training(_settings(image_folder, tmp_path / "run", "glcic", steps=6, phase_steps=[6, 0], lr=3e-2, ema_decay=0.5, batch=16))
    trainer.run()
    exported, _, _, _ = load_release(trainer.export_path)
    norms = {name: module for name, module in exported.named_modules() if isinstance(module, torch.nn.BatchNorm2d)}
    assert norms
    stored = {name: (norm.running_mean.clone(), norm.running_var.clone()) for name, norm in norms.items()}
    # the statistics of the exported weights, measured afresh on the export's fixed batches
    for norm in norms.values():
        norm.reset_running_stats()
        norm.momentum = None
    exported.float().train()
    with torch.no_grad():
        for index in range(-(-BATCH_NORM_IMAGES // 16)):
            image, mask = as_tensors(*trainer.sampler.draw(0, BATCH_NORM_STREAM + index))
            trainer.recipe.generate(exported, image, mask)
    averaged = trainer.average.weights
    for name, norm in norms.items():
        mean, var = stored[name]
        torch.testing.assert_close(mean.float(), norm.running_mean, rtol=1e-2, atol=2e-3, msg=name)
        torch.testing.assert_close(var.float(), norm.running_var, rtol=1e-2, atol=2e-3, msg=name)
    # ... which the running statistics averaged alongside the weights are not
    assert any(
        not torch.allclose(averaged[f"{name}.running_var"].float(), norm.running_var, rtol=0.05, atol=1e-2)
        for name, norm in norms.items()
    )


def test_an_export_keeps_the_statistics_of_norms_the_recipe_froze(image_folder, tmp_path, monkeypatch):
    """PConv fine-tunes with its encoder's batch norm frozen (eval mode): every fine-tuning step
    normalised with the stored statistics, so the export keeps them and re-estimates the others."""
    monkeypatch.setattr("inpaint_cli.train.export.BATCH_NORM_IMAGES", 16)
    # two steps with every norm training (their statistics move off 0 and 1), then fine-tuning
    trainer = start_training(_settings(image_folder, tmp_path / "run", "pconv", steps=4, phase_steps=[2], ema_decay=0.5, lr=1e-2))
    trainer.run()
    exported = load_release(trainer.export_path)[0].state_dict()
    averaged = trainer.average.weights
    statistics = [name for name in averaged if name.endswith(("running_mean", "running_var"))]
    frozen = [name for name in statistics if name.startswith("encoder.")]
    assert frozen and len(frozen) < len(statistics)
    for name in frozen:
        assert not torch.equal(averaged[name], torch.full_like(averaged[name], float(name.endswith("var"))))
        torch.testing.assert_close(exported[name].float(), averaged[name], rtol=1e-3, atol=1e-4, msg=name)
    assert all(not torch.allclose(exported[name].float(), averaged[name], rtol=1e-3, atol=1e-4)
               for name in statistics if name not in frozen)


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetched_batches_are_the_steps_own(image_folder, workers):
    cache = ImageCache.build(find_training_images([image_folder]), 64, image_folder.parent / "cache")
    sampler = BatchSampler(cache, 48, 3, [("box", 1.0), ("irregular:10-60", 1.0)], seed=4)
    prefetcher = BatchPrefetcher(sampler, workers)
    try:
        for step in (0, 1, 2, 7, 3):  # a jump ahead and one back, as after a resume
            crops, holes = prefetcher.get(step)
            expected_crops, expected_holes = sampler.draw(step)
            assert np.array_equal(crops, expected_crops) and np.array_equal(holes, expected_holes)
        assert not np.array_equal(crops, sampler.draw(4)[0])
    finally:
        prefetcher.close()
    images, masks = as_tensors(crops, holes)
    assert images.shape == (3, 3, 48, 48) and images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal((images * 255).round().to(torch.uint8), torch.from_numpy(crops).permute(0, 3, 1, 2))
    assert torch.equal(masks[:, 0].bool(), torch.from_numpy(holes))


def test_weight_average_follows_its_warm_up_and_leaves_the_network_its_own_weights():
    layer = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(layer.weight)
    average = WeightAverage(layer, decay=0.5)
    torch.nn.init.ones_(layer.weight)
    remaining = 1.0
    for update in range(1, 6):
        average.update(layer)
        remaining *= min(0.5, (1 + update) / (10 + update))  # share of the starting weights left
    torch.testing.assert_close(average.weights["weight"], torch.full((1, 2), 1 - remaining))
    with average.applied(layer):
        torch.testing.assert_close(layer.weight.detach(), torch.full((1, 2), 1 - remaining))
    assert torch.equal(layer.weight.detach(), torch.ones(1, 2))
    with pytest.raises(ValueError, match="between 0 and 1"):
        WeightAverage(layer, decay=1.0)


def test_an_existing_run_is_never_overwritten(image_folder, tmp_path):
    start_training(_settings(image_folder, tmp_path / "run", "glcic", steps=2)).run()
    with pytest.raises(InpaintError, match="already holds a training run"):
        start_training(_settings(image_folder, tmp_path / "run", "glcic", steps=2))


def test_bad_training_requests(image_folder, tmp_path):
    with pytest.raises(InpaintError, match="no weights to train"):
        start_training(_settings(image_folder, tmp_path / "a", "telea"))
    with pytest.raises(InpaintError, match="not found"):
        start_training(TrainSettings(arch="glcic", out_dir=str(tmp_path / "b"), data_dirs=[str(tmp_path / "none")], config="tiny"))
    with pytest.raises(InpaintError, match="no training checkpoint"):
        start_training(_settings(image_folder, tmp_path / "d", "glcic"), resume=True)
    with pytest.raises(InpaintError, match="phase lengths expected"):
        start_training(_settings(image_folder, tmp_path / "e", "glcic", phase_steps=[1]))


def test_a_warm_start_keeps_its_lineage_and_resumes_without_its_source(image_folder, tmp_path):
    first = start_training(_settings(image_folder, tmp_path / "first", "glcic", steps=2))
    first.run()
    source = tmp_path / "source.safetensors"
    first.export_path.rename(source)
    warm = start_training(_settings(image_folder, tmp_path / "warm", "glcic", steps=2, init_weights=str(source)))
    started, _, _, _ = load_release(source)
    for name, tensor in started.state_dict().items():
        torch.testing.assert_close(warm.generator.state_dict()[name], tensor, msg=name)
    warm.run()
    source.unlink()  # a resume needs only the run's own checkpoint
    resumed = start_training(_settings(image_folder, tmp_path / "warm", "glcic"), resume=True, resume_changes={"steps": 3})
    resumed.run()
    _, _, _, metadata = load_release(resumed.export_path)
    training = json.loads(metadata["training_json"])
    lineage = training["warm_start"]
    assert (lineage["file"], lineage["step"], lineage["image_size"], lineage["warm_start"]) == ("source.safetensors", "2", "64", None)
    # files and folders by name: the trainer's paths stay on the trainer's machine
    assert (training["data_dirs"], training["init_weights"]) == ([image_folder.name], "source.safetensors")
    assert str(tmp_path) not in metadata["training_json"]
    assert metadata["step"] == "3"
    with pytest.raises(InpaintError, match="tensors do not fit the quarter config"):
        start_training(_settings(image_folder, tmp_path / "misfit", "glcic", config="quarter", init_weights=str(resumed.export_path)))


def test_precision_choices():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") is torch.bfloat16
    expected = torch.bfloat16 if torch.cpu._is_amx_tile_supported() else None
    assert autocast_dtype(cpu, "auto") is expected
    with pytest.raises(InpaintError, match="fp16 needs CUDA"):
        autocast_dtype(cpu, "fp16")
    with pytest.raises(InpaintError, match="unknown precision"):
        autocast_dtype(cpu, "half")


def test_unreadable_images_are_skipped_with_a_warning(image_folder, tmp_path):
    """A text file named .png and a truncated JPEG among the pictures: each is skipped with a
    warning naming it, and the run trains on (and records) the readable ones."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for path in sorted(image_folder.iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "notes.png").write_text("not an image")
    Image.open(image_folder / "p0.png").save(folder / "cut.jpg", quality=90)
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:300])
    with pytest.warns(UserWarning) as caught:
        trainer = start_training(_settings(folder, tmp_path / "run", "glcic", steps=1))
    messages = [str(warning.message) for warning in caught]
    assert any("notes.png" in message for message in messages) and any("cut.jpg" in message for message in messages)
    assert any("training on 3 of 5 images" in message for message in messages)
    assert trainer.image_count == 3


def test_a_size_the_network_cannot_take_is_refused_before_the_run_folder(image_folder, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InpaintError, match="multiples of 4.*--size 50"):
        start_training(_settings(image_folder, out, "glcic", size=50))
    assert not out.exists()


def test_the_papers_weight_average_is_exported_without_ema(image_folder, tmp_path):
    """Co-ModGAN and MAT export G_ema (half-life ema_kimg thousand images) when --ema is not given;
    GLCIC exports its last weights, and --ema still overrides."""
    from inpaint_cli.losses.stylegan2 import ema_beta

    spec = get_arch("co-mod-gan")
    settings = _settings(image_folder, tmp_path / "comod", "co-mod-gan", size=128, cache_side=128)
    comod = start_training(settings)
    assert comod.average is not None
    assert comod.average.decay == pytest.approx(ema_beta(2, spec.config("tiny").ema_kimg))
    assert start_training(_settings(image_folder, tmp_path / "glcic", "glcic")).average is None
    chosen = start_training(_settings(image_folder, tmp_path / "chosen", "co-mod-gan", size=128, cache_side=128, ema_decay=0.9))
    assert chosen.average.decay == 0.9


@pytest.mark.parametrize("arch", ["deepfill-v1", "deepfill-v2", "aot-gan", "lama"])
def test_reconstruction_phase_is_opt_in(arch: str, recwarn) -> None:
    """The papers train adversarially from step 0; `--phase-steps N` puts N reconstruction-only
    steps first, whose loss is the reconstruction alone even with the critic at hand."""
    from helpers import gradient_image

    spec = get_arch(arch)
    config = spec.config("tiny")
    default = spec.recipe(config, TrainOptions(size=64, batch=2, steps=1000)).phases()
    assert [(p.steps, p.train_discriminator) for p in default] == [(0, False), (None, True)]
    recipe = spec.recipe(config, TrainOptions(size=64, batch=2, steps=1000, phase_steps=(40,)))
    reconstruction, adversarial = recipe.phases()
    assert (reconstruction.name, reconstruction.steps, reconstruction.train_discriminator) == ("reconstruction", 40, False)
    assert (adversarial.steps, adversarial.train_discriminator) == (None, True)
    torch.manual_seed(0)
    generator, critic = spec.build_generator(config), recipe.build_discriminator()
    image = gradient_image(2, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    output = recipe.generate(generator, image, mask)
    loss, logs = recipe.generator_loss(critic, image, mask, output, reconstruction)
    assert not {"adv", "fm"} & set(logs) and loss.item() == pytest.approx(logs["rec"])
    _, logs = recipe.generator_loss(critic, image, mask, output, adversarial)
    assert "adv" in logs


def test_a_time_limit_stops_with_a_checkpoint_that_resumes(image_folder, tmp_path, monkeypatch):
    """`--time-limit`: the run stops when the clock passes it, checkpointed and exported at the step
    reached, and `--resume` carries on from there to the stored steps."""
    clock = iter(range(1000))  # each reading one second later: the 2.5 s limit passes at the third check
    monkeypatch.setattr("inpaint_cli.train.loop.time.monotonic", lambda: float(next(clock)))
    trainer = start_training(_settings(image_folder, tmp_path / "run", "glcic", steps=8, checkpoint_every=100))
    assert trainer.run(time_limit_s=2.5).step == 2
    assert load_release(trainer.export_path)[3]["step"] == "2"
    resumed = start_training(_settings(image_folder, tmp_path / "run", "glcic"), resume=True)
    assert (resumed.step, resumed.run().step) == (2, 8)

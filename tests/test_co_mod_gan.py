"""Co-ModGAN: counts of the official TF networks, co-modulated stochastic fills, the recipe
(docs/architectures.md §8, §11)."""

from __future__ import annotations

import pytest
import torch

from inpaint_cli.archs.base import Phase, TrainOptions, count_parameters
from inpaint_cli.archs.co_mod_gan import (
    CONFIGS,
    CoModGANConfig,
    CoModGANGenerator,
    CoModGANRecipe,
    build_discriminator,
)

#: a few-thousand-parameter network with every part of the paper's, for fast CPU tests
MICRO = CoModGANConfig(resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16)
JOINT = Phase("joint", None, train_generator=True, train_discriminator=True)


def _meta(config):
    with torch.device("meta"):
        return CoModGANGenerator(config), build_discriminator(config)


def test_paper_counts_part_by_part():
    generator, discriminator = _meta(CONFIGS["paper"])
    assert count_parameters(generator) == 79_792_231
    assert count_parameters(discriminator) == 28_982_913
    assert len(list(generator.parameters())) == 159 and len(list(discriminator.parameters())) == 43
    synthesis = generator.synthesis
    assert count_parameters(generator.mapping) == 2_101_248
    encoder = sum(count_parameters(m) for name, m in synthesis.named_children() if name.startswith("E_"))
    assert encoder == 31_952_000
    assert count_parameters(synthesis.E_4x4.Dense0) == 8_389_632
    parts = {"G_4x4": 12_332_036, "G_8x8": 7_081_989, "G_64x64": 7_081_989, "G_128x128": 3_344_645,
             "G_256x256": 1_229_957, "G_512x512": 504_389}
    assert {name: count_parameters(getattr(synthesis, name)) for name in parts} == parts
    assert generator.mapping.num_ws == 16
    noise_maps = [b for name, b in generator.named_buffers() if name.endswith("noise_const")]
    assert len(noise_maps) == 15 and sum(b.numel() for b in noise_maps) == 699_024
    assert count_parameters(discriminator.Dis[0]) == 320


@pytest.mark.parametrize(
    ("config", "generator_count", "discriminator_count"),
    [
        (CONFIGS["comod-small-256"], 5_629_378, 1_806_273),
        (CONFIGS["comod-tiny-128"], 1_379_965, 444_929),
        (CoModGANConfig(resolution=256), 79_177_378, 28_864_257),
        (CoModGANConfig(resolution=1024), 80_044_364, 29_012_545),
    ],
)
def test_other_resolutions_and_the_small_configs(config, generator_count, discriminator_count):
    generator, discriminator = _meta(config)
    assert (count_parameters(generator), count_parameters(discriminator)) == (generator_count, discriminator_count)
    assert CONFIGS["tiny"] == CONFIGS["comod-tiny-128"]
    if config.resolution == 128:
        assert count_parameters(generator.mapping) == 132_096


def test_paper_shapes_on_the_meta_device():
    generator, discriminator = _meta(CONFIGS["paper"])
    assert (generator.fixed_size, generator.size_multiple, generator.min_size) == (512, 512, 512)
    with torch.device("meta"):
        filled = generator.inpaint(torch.zeros(1, 3, 512, 512), torch.zeros(1, 1, 512, 512))
        assert tuple(filled.shape) == (1, 3, 512, 512)
        assert tuple(discriminator(filled, filled[:, :1]).shape) == (1, 1)


def test_fills_are_seeded_and_the_official_dropout_is_on_in_eval():
    torch.manual_seed(0)
    generator = CoModGANGenerator(MICRO).eval()
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:20] = 1
    with torch.no_grad():
        first, again = generator.inpaint(image, mask, seed=1), generator.inpaint(image, mask, seed=1)
        other = generator.inpaint(image, mask, seed=2)
        assert torch.equal(first, again) and not torch.equal(first, other)
        ws = generator.mapping(torch.randn(1, 16))
        known, signed = 1 - mask, image * 2 - 1
        torch.manual_seed(5)
        a = generator(signed, known, ws, "none")
        torch.manual_seed(6)
        b = generator(signed, known, ws, "none")
        assert not torch.equal(a, b)  # same w, no noise: only the dropout on x_global differs
        # truncation 0: w is w_avg, whatever z
        torch.manual_seed(5)
        c = generator(signed, known, generator.mapping(torch.randn(1, 16), 0.0), "none")
        torch.manual_seed(5)
        d = generator(signed, known, generator.mapping(torch.randn(1, 16), 0.0), "none")
        assert torch.equal(c, d)


def test_recipe_hyperparameters_and_checks():
    options = TrainOptions(size=32, batch=4, steps=10)
    recipe = CoModGANRecipe(MICRO, options)
    generator, discriminator = CoModGANGenerator(MICRO), recipe.build_discriminator()
    optimizers = recipe.optimizers(generator, discriminator)
    g, d = optimizers["generator"].param_groups[0], optimizers["discriminator"].param_groups[0]
    assert g["lr"] == pytest.approx(0.0016) and g["betas"][1] == pytest.approx(0.99199, abs=1e-5)
    assert d["lr"] == pytest.approx(0.002 * 16 / 17) and d["betas"][1] == pytest.approx(0.99058, abs=1e-5)
    assert g["betas"][0] == 0 and g["eps"] == 1e-8
    assert recipe.default_ema_decay == pytest.approx(0.5 ** (4 / 10_000))
    with pytest.raises(ValueError, match="--size 32"):
        CoModGANRecipe(MICRO, TrainOptions(size=64, batch=4, steps=10))
    with pytest.raises(ValueError, match="divisible by 4"):
        CoModGANRecipe(MICRO, TrainOptions(size=32, batch=6, steps=10))


def _image_and_mask(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([x, y, (x + y) / 2])[None].repeat(batch, 1, 1, 1)
    mask = torch.zeros(batch, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : size // 2] = 1
    return image, mask


def check_adversarial_training_moves_both_losses(recipe, generator, steps: int = 4, d_steps: int = 4) -> None:
    """D alone on one fixed batch: its loss falls; then G alone against that D: its loss falls.
    R1 runs on the first D step and every `r1_interval`-th after it."""
    torch.manual_seed(0)
    size = generator.fixed_size
    image, mask = _image_and_mask(recipe.options.batch, size)
    discriminator = recipe.build_discriminator()
    optimizers = recipe.optimizers(generator, discriminator)
    output = {k: v.detach() for k, v in recipe.generate(generator, image, mask).items()}
    d_losses, r1_steps = [], []
    for step in range(d_steps):
        loss, logs = recipe.discriminator_loss(discriminator, image, mask, output)
        optimizers["discriminator"].zero_grad()
        loss.backward()
        optimizers["discriminator"].step()
        d_losses.append(logs["d"])
        if "r1" in logs:
            r1_steps.append(step)
    assert d_losses[-1] < d_losses[0], d_losses
    assert r1_steps == list(range(0, d_steps, recipe.config.r1_interval))
    discriminator.requires_grad_(False)
    g_losses = []
    for _ in range(steps):
        torch.manual_seed(1)  # the same z and random draws each step: only the weights change
        loss, logs = recipe.generator_loss(discriminator, image, mask, recipe.generate(generator, image, mask), JOINT)
        optimizers["generator"].zero_grad()
        loss.backward()
        optimizers["generator"].step()
        g_losses.append(logs["adv"])
    assert g_losses[-1] < g_losses[0], g_losses


def test_adversarial_training_moves_both_losses():
    torch.manual_seed(0)
    recipe = CoModGANRecipe(MICRO, TrainOptions(size=32, batch=4, steps=10))
    check_adversarial_training_moves_both_losses(recipe, CoModGANGenerator(MICRO), d_steps=17)

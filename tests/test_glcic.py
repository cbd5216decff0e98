"""GLCIC (docs/architectures.md §2): parameter counts, shapes, the hole-centred local patch."""

import dataclasses

import pytest
import torch

from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork, ContextDiscriminator, GLCICRecipe
from inpaint_cli.layers.crops import crop, hole_patch_corners


def test_paper_parameter_counts():
    with torch.device("meta"):
        generator = CompletionNetwork(CONFIGS["paper"])
        critic = ContextDiscriminator(CONFIGS["paper"])
    assert count_parameters(generator) == 6_072_131
    assert count_parameters(critic.global_branch) == 25_808_384
    assert count_parameters(critic.local_branch) == 19_253_248
    assert count_parameters(critic.head) == 2_049
    assert count_parameters(critic) == 45_063_681


def test_without_mask_channel_drops_first_layer_weights():
    from dataclasses import replace

    with torch.device("meta"):
        generator = CompletionNetwork(replace(CONFIGS["paper"], mask_channel=False))
    assert count_parameters(generator) == 6_070_531


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80), (100, 36)])
def test_output_shape_follows_input(height, width):
    generator = CompletionNetwork(CONFIGS["tiny"]).eval()
    image, mask = torch.rand(2, 3, height, width), torch.zeros(2, 1, height, width)
    output = generator.inpaint(image, mask)
    assert output.shape == (2, 3, height, width)
    assert 0 <= output.min() and output.max() <= 1


def test_paper_bottleneck_shape():
    generator = CompletionNetwork(CONFIGS["quarter"]).eval()
    encoder = generator.layers[:12]
    features = encoder(torch.rand(1, 4, 64, 96))
    assert features.shape == (1, 64, 16, 24)  # width 16 -> 4 * 16 channels at H/4 x W/4


def test_hole_content_does_not_reach_the_network():
    generator = CompletionNetwork(CONFIGS["tiny"]).eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:24] = 1
    other = image.clone()
    other[..., 8:20, 10:24] = torch.rand(1, 3, 12, 14)
    assert torch.equal(generator.inpaint(image, mask), generator.inpaint(other, mask))


def test_local_patch_is_centred_on_the_hole_and_clamped():
    images = torch.arange(64 * 64, dtype=torch.float32).view(1, 1, 64, 64).repeat(2, 3, 1, 1)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 20:30, 24:34] = 1  # centre (25, 29)
    mask[1, :, 0:6, 58:64] = 1  # corner: clamped inside
    patches = crop(images, hole_patch_corners(mask, 32), 32)
    assert patches.shape == (2, 3, 32, 32)
    assert patches[0, 0, 0, 0] == images[0, 0, 25 - 16, 29 - 16]
    assert patches[1, 0, 0, 0] == images[1, 0, 0, 32]


def test_discriminator_follows_training_size():
    options = TrainOptions(size=96, batch=2, steps=10)
    recipe = GLCICRecipe(CONFIGS["tiny"], options)
    critic = recipe.build_discriminator()
    logits = critic(torch.rand(2, 3, 96, 96), torch.rand(2, 3, 48, 48))
    assert logits.shape == (2, 1)


def test_phases_scale_the_paper_schedule():
    recipe = GLCICRecipe(CONFIGS["tiny"], TrainOptions(size=64, batch=2, steps=1000))
    phases = recipe.phases()
    assert [p.name for p in phases] == ["completion", "discriminator", "joint"]
    assert [p.steps for p in phases] == [180, 20, None]  # 90k : 10k : 400k
    assert [(p.train_generator, p.train_discriminator) for p in phases] == [(True, False), (False, True), (True, True)]
    explicit = GLCICRecipe(CONFIGS["tiny"], TrainOptions(size=64, batch=2, steps=1000, phase_steps=(5, 7))).phases()
    assert [p.steps for p in explicit] == [5, 7, None]


@pytest.mark.parametrize(("reconstruction", "expected"), [("mse", 0.5**2 * 2 / 3), ("l1", 0.5 * 2 / 3)])
def test_reconstruction_loss_is_over_the_hole_only(reconstruction, expected):
    """Hole of 4 pixels; the output is off by 0.5 in two of three channels there, and by 1 outside."""
    config = dataclasses.replace(CONFIGS["tiny"], reconstruction=reconstruction)
    recipe = GLCICRecipe(config, TrainOptions(size=64, batch=1, steps=10))
    image = torch.zeros(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:4, 2:4] = 1
    output = torch.ones(1, 3, 8, 8)
    output[:, :2, 2:4, 2:4] = 0.5
    output[:, 2, 2:4, 2:4] = 0.0
    loss, logs = recipe.generator_loss(None, image, mask, output, recipe.phases()[0])
    assert loss.item() == pytest.approx(expected) and logs["rec"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="reconstruction must be"):
        GLCICRecipe(dataclasses.replace(config, reconstruction="l2"), TrainOptions(size=64, batch=1, steps=10))


def test_half_l1_differs_from_half_only_in_its_loss():
    assert dataclasses.replace(CONFIGS["half-l1"], reconstruction="mse") == CONFIGS["half"]

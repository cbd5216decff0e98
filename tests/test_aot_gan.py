"""AOT-GAN: AOT block, generator, SM-PatchGAN and recipe (docs/architectures.md §6)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import gradient_image, train_on_fixed_batch
from safetensors.torch import save_file
from torch import nn

from inpaint_cli.archs.aot_gan import (
    CONFIGS,
    AOTGANRecipe,
    AOTGenerator,
    build_discriminator,
    gaussian_blur,
)
from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.layers.aot_block import AOTBlock, aot_layer_norm, gated_residual
from inpaint_cli.layers.perceptual import VGGFeatures


def test_paper_parameter_counts_and_official_names():
    with torch.device("meta"):
        generator = AOTGenerator(CONFIGS["paper"])
        discriminator = build_discriminator(CONFIGS["paper"])
    assert count_parameters(generator) == 15_200_835
    assert count_parameters(discriminator) == 2_763_777
    assert count_parameters(generator.middle[0]) == 1_770_240
    state = generator.state_dict()
    assert len(state) == 108  # the official G0000000.pt key list
    expected = {
        "encoder.1.weight": (64, 4, 7, 7),
        "encoder.5.bias": (256,),
        "middle.7.block03.1.weight": (64, 256, 3, 3),
        "middle.0.gate.1.weight": (256, 256, 3, 3),
        "decoder.0.conv.weight": (128, 256, 3, 3),
        "decoder.4.weight": (3, 64, 3, 3),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert generator.middle[7].block03[1].dilation == (8, 8)


def test_paper_shapes_on_the_meta_device():
    with torch.device("meta"):
        generator = AOTGenerator(CONFIGS["paper"])
        discriminator = build_discriminator(CONFIGS["paper"])
        filled = generator.inpaint(torch.zeros(1, 3, 512, 680), torch.zeros(1, 1, 512, 680))
        assert tuple(filled.shape) == (1, 3, 512, 680)
        assert tuple(discriminator(torch.zeros(1, 3, 256, 256)).shape) == (1, 1, 30, 30)
        assert tuple(discriminator(torch.zeros(1, 3, 512, 680)).shape) == (1, 1, 62, 83)


@pytest.mark.parametrize(("size", "logits"), [((64, 64), (6, 6)), ((48, 80), (4, 8))])
def test_tiny_shapes(size, logits):
    torch.manual_seed(0)
    generator = AOTGenerator(CONFIGS["tiny"]).eval()
    discriminator = build_discriminator(CONFIGS["tiny"]).eval()
    image, mask = torch.rand(2, 3, *size), torch.zeros(2, 1, *size)
    with torch.no_grad():
        filled = generator.inpaint(image, mask)
        assert filled.shape == image.shape and 0 <= filled.min() and filled.max() <= 1
        assert tuple(discriminator(image).shape) == (2, 1, *logits)


def test_too_small_input_is_a_clear_error():
    generator = AOTGenerator(CONFIGS["tiny"])
    assert generator.min_size == 36  # rate 8 reflection pad at 1/4 scale
    with pytest.raises(ValueError, match="at least 36 x 36"):
        generator.inpaint(torch.rand(1, 3, 32, 64), torch.zeros(1, 1, 32, 64))
    with pytest.raises(ValueError, match="at least 36 px"):
        AOTGANRecipe(CONFIGS["tiny"], TrainOptions(size=32, batch=2, steps=10))


def test_layer_norm_by_hand():
    features = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 2, 2)
    std = math.sqrt(5 / 3)  # unbiased: sum of squared deviations 5, over n - 1 = 3
    expected = torch.tensor([5 * (2 * (v - 1.5) / std - 1) for v in (0, 1, 2, 3)]).view(1, 1, 2, 2)
    assert torch.allclose(aot_layer_norm(features), expected, atol=1e-5)
    assert torch.equal(aot_layer_norm(torch.zeros(1, 2, 3, 3)), torch.full((1, 2, 3, 3), -5.0))


def test_gated_residual():
    x, update = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    assert torch.equal(gated_residual(x, update, torch.zeros_like(x)), x)
    assert torch.equal(gated_residual(x, update, torch.ones_like(x)), update)
    assert torch.allclose(gated_residual(x, update, torch.full_like(x, 0.25)), 0.75 * x + 0.25 * update)


def test_block_mixes_through_its_gate():
    torch.manual_seed(0)
    block = AOTBlock(8, (1, 2, 4, 8))
    nn.init.zeros_(block.gate[1].weight)
    nn.init.zeros_(block.gate[1].bias)  # constant gate map -> layer norm -5 -> sigmoid(-5)
    x = torch.randn(1, 8, 12, 12)
    fused = block.fuse(torch.cat([branch(x) for branch in block.branches()], dim=1))
    gate = torch.sigmoid(torch.tensor(-5.0))
    assert torch.allclose(block(x), x * (1 - gate) + fused * gate, atol=1e-6)


def test_gaussian_blur_target():
    impulse = torch.zeros(1, 1, 41, 41)
    impulse[..., 20, 20] = 1
    blurred = gaussian_blur(impulse, 11, 2.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)  # normalised kernel
    assert torch.allclose(blurred, blurred.flip(-1))
    assert torch.allclose(blurred, blurred.transpose(-1, -2))
    assert blurred[..., 20, 20].item() == pytest.approx(blurred.max().item())


class _ConstantCritic(nn.Module):
    """Logits `value` everywhere on a coarse grid (a stand-in for a trained D)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x[:, :1, ::8, ::8], self.value)


def _recipe(**overrides) -> AOTGANRecipe:
    config = dataclasses.replace(CONFIGS["tiny"], **overrides)
    with pytest.warns(UserWarning, match="style and perceptual"):
        return AOTGANRecipe(config, TrainOptions(size=64, batch=2, steps=10))


@pytest.mark.parametrize(("labels", "real_value"), [("paper", 1.0), ("code", 0.0)])
def test_smgan_label_conventions(labels, real_value):
    recipe = _recipe(smgan_labels=labels)
    image, mask = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    output = image * 2 - 1
    # no hole: a D answering "real" everywhere is perfect under its convention
    d_loss, _ = recipe.discriminator_loss(_ConstantCritic(real_value), image, mask, output)
    assert d_loss.item() == pytest.approx(0.0, abs=1e-6)
    mask[..., 16:48, 16:48] = 1
    d_loss, _ = recipe.discriminator_loss(_ConstantCritic(real_value), image, mask, output)
    assert d_loss.item() > 0.01  # now the hole should be flagged
    g_loss, logs = recipe.generator_loss(_ConstantCritic(1.0), image, mask, output, recipe.phases()[-1])
    assert logs["adv"] == pytest.approx(0.0, abs=1e-6)  # G's target is 1 in both conventions
    _, logs = recipe.generator_loss(_ConstantCritic(0.0), image, mask, output, recipe.phases()[-1])
    assert logs["adv"] == pytest.approx(1.0)


def test_unknown_label_convention_is_rejected():
    with pytest.raises(ValueError, match="smgan_labels"):
        AOTGANRecipe(dataclasses.replace(CONFIGS["tiny"], smgan_labels="nope"), TrainOptions(64, 2, 10))


def test_reconstruction_falls_over_training_steps():
    torch.manual_seed(0)
    recipe = _recipe()
    generator = AOTGenerator(recipe.config).train()
    discriminator = recipe.build_discriminator().train()
    optimizers = recipe.optimizers(generator, discriminator)
    assert optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    phase = recipe.phases()[-1]
    image = gradient_image(2, 40)
    mask = torch.zeros(2, 1, 40, 40)
    mask[..., 10:26, 12:28] = 1
    history, logs, output = train_on_fixed_batch(
        recipe, generator, discriminator, optimizers, phase, image, mask, steps=20
    )
    assert {"rec", "adv"} <= set(logs)
    assert history[-1] < 0.75 * history[0]
    prediction = recipe.prediction(output)
    assert prediction.shape == image.shape and 0 <= prediction.min() and prediction.max() <= 1


def test_backbone_file_adds_style_and_perceptual_terms(tmp_path, recwarn):
    torch.manual_seed(0)
    path = tmp_path / "vgg19.safetensors"
    save_file(VGGFeatures("vgg19").state_dict(), str(path))
    recipe = AOTGANRecipe(CONFIGS["tiny"], TrainOptions(size=48, batch=1, steps=10, backbone=str(path)))
    assert not recwarn.list
    image, mask = torch.rand(1, 3, 48, 48), torch.zeros(1, 1, 48, 48)
    mask[..., 8:30, 8:30] = 1
    output = recipe.generate(AOTGenerator(recipe.config), image, mask)
    loss, logs = recipe.generator_loss(_ConstantCritic(0.5), image, mask, output, recipe.phases()[-1])
    assert logs["perceptual"] > 0 and logs["style"] > 0
    expected = logs["rec"] + 0.01 * logs["adv"] + 0.1 * logs["perceptual"] + 250 * logs["style"]
    assert loss.item() == pytest.approx(expected, rel=1e-4)

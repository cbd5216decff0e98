"""DeepFill v1 and v2 (docs/architectures.md §3, §4): paper parameter counts, shapes at several sizes,
the gated convolution, spatial discounting, the local critic's patch, and short training runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import gradient_image, train_on_fixed_batch

from inpaint_cli.archs import deepfill_v1, deepfill_v2
from inpaint_cli.archs._deepfill import spatial_discount
from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.layers.crops import hole_patch_corners
from inpaint_cli.layers.gated_conv import GatedConv2d
from inpaint_cli.registry import critics_for

MODULES = {"deepfill-v1": deepfill_v1, "deepfill-v2": deepfill_v2}


def _spec(name: str):
    return MODULES[name].SPECS[0]


def test_v1_paper_parameter_counts() -> None:
    spec = _spec("deepfill-v1")
    with torch.device("meta"):
        generator = spec.build_generator(spec.config("paper"))
        critics = critics_for(spec, spec.config("paper"), TrainOptions(size=256, batch=1, steps=1))
    assert count_parameters(generator) == 3_601_542
    assert count_parameters(generator.coarse) + count_parameters(generator.coarse_rgb) == 1_448_227
    assert count_parameters(critics.local_critic) == 4_339_329
    assert count_parameters(critics.global_critic) == 2_733_441


def test_v2_paper_parameter_counts() -> None:
    spec = _spec("deepfill-v2")
    with torch.device("meta"):
        generator = spec.build_generator(spec.config("paper"))
    # on the CPU: spectral norm's power iterations are slow on the meta device
    discriminator = critics_for(spec, spec.config("paper"))
    with torch.no_grad():
        scores = discriminator(torch.zeros(1, 3, 256, 256), torch.zeros(1, 1, 256, 256))
    assert count_parameters(generator) == 4_052_478
    assert count_parameters(generator.coarse) + count_parameters(generator.coarse_rgb) == 1_631_151
    assert count_parameters(discriminator) == 5_946_816
    assert scores.shape == (1, 256 * 4 * 4)


def test_stage_two_inputs() -> None:
    """v1's refinement sees composite + ones + mask (5 channels), v2's the composite only."""
    with torch.device("meta"):
        v1 = _spec("deepfill-v1").build_generator(deepfill_v1.CONFIGS["tiny"])
        v2 = _spec("deepfill-v2").build_generator(deepfill_v2.CONFIGS["tiny"])
    assert v1.hallucination.xconv1.conv.in_channels == 5
    assert v1.attention_encoder.pmconv1.conv.in_channels == 5
    assert v2.hallucination.xconv1.conv.in_channels == 3
    assert v2.coarse.conv1.conv.in_channels == 5


def test_gated_conv_halves_its_width() -> None:
    torch.manual_seed(0)
    layer = GatedConv2d(3, 8, 3, activation=torch.nn.ELU())
    x = torch.randn(1, 3, 6, 6)
    y = layer(x)
    raw = F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1)
    assert layer.out_channels == 4 and y.shape == (1, 4, 6, 6)
    torch.testing.assert_close(y, F.elu(raw[:, :4]) * torch.sigmoid(raw[:, 4:]))


@pytest.mark.parametrize("name", ["deepfill-v1", "deepfill-v2"])
@pytest.mark.parametrize("size", [(64, 64), (64, 96), (128, 200)])
def test_tiny_fill_shapes(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    spec = _spec(name)
    generator = spec.build_generator(spec.config("tiny")).eval()
    assert generator.size_multiple == 8
    image = torch.rand(2, 3, *size)
    mask = torch.zeros(2, 1, *size)
    mask[0, :, 8:40, 16:48] = 1
    mask[1, :, -24:, -40:] = 1
    with torch.inference_mode():
        filled, flow = generator.inpaint_with_attention(image, mask)
        plain = generator.inpaint(image, mask)
    assert filled.shape == (2, 3, *size) and flow.shape == (2, 3, *size)
    assert torch.equal(filled, plain)
    assert 0 <= float(filled.min()) and float(filled.max()) <= 1
    assert 0 <= float(flow.min()) and float(flow.max()) <= 1


def test_size_not_multiple_of_eight_is_rejected() -> None:
    generator = _spec("deepfill-v2").build_generator(deepfill_v2.CONFIGS["tiny"])
    with pytest.raises(ValueError, match="multiples of 8"):
        generator.inpaint(torch.rand(1, 3, 60, 64), torch.zeros(1, 1, 60, 64))


def test_spatial_discount_hand_computed() -> None:
    """gamma^l, l = chessboard distance to the nearest known pixel - 1, known pixels 0."""
    mask = torch.zeros(1, 1, 7, 9)
    mask[..., 1:6, 1:8] = 1  # 5 x 7 hole
    g = 0.5
    hole = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 1],
            [1, g, g, g, g, g, 1],
            [1, g, g**2, g**2, g**2, g, 1],
            [1, g, g, g, g, g, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ]
    )
    expected = torch.zeros(7, 9)
    expected[1:6, 1:8] = hole
    torch.testing.assert_close(spatial_discount(mask, g)[0, 0], expected)
    # a known pixel inside the hole resets the distance around it (the paper's definition)
    mask[..., 3, 4] = 0
    expected[1:6, 1:8] = torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 1],
            [1, g, 1, 1, 1, g, 1],
            [1, g, 1, 0, 1, g, 1],
            [1, g, 1, 1, 1, g, 1],
            [1, 1, 1, 1, 1, 1, 1],
        ]
    )
    torch.testing.assert_close(spatial_discount(mask, g)[0, 0], expected)


def test_local_patch_centred_on_hole_and_clamped() -> None:
    mask = torch.zeros(3, 1, 64, 64)
    mask[0, :, 20:30, 10:40] = 1  # centre (25, 25): patch 32 -> (9, 9)
    mask[1, :, 56:64, 0:6] = 1  # near the corner: clamped to (32, 0)
    corners = hole_patch_corners(mask, 32)
    assert corners == [(9, 9), (32, 0), (16, 16)]  # empty mask: the centre


def test_v1_critics_scale_with_training_size() -> None:
    config = deepfill_v1.CONFIGS["tiny"]
    recipe = deepfill_v1.DeepFillV1Recipe(config, TrainOptions(size=64, batch=2, steps=1))
    critics = recipe.build_discriminator()
    assert (critics.global_critic.input_size, critics.local_critic.input_size) == (64, 32)
    with pytest.raises(ValueError, match="multiples of 32"):
        deepfill_v1.DeepFillV1Recipe(config, TrainOptions(size=48, batch=2, steps=1))


def test_optimisers_follow_the_official_configs() -> None:
    options = TrainOptions(size=64, batch=2, steps=1)
    for module, betas in ((deepfill_v1, (0.5, 0.9)), (deepfill_v2, (0.5, 0.999))):
        config = module.CONFIGS["tiny"]
        spec = module.SPECS[0]
        for lr, expected in ((None, 1e-4), (3e-4, 3e-4)):
            recipe = spec.recipe(config, TrainOptions(size=64, batch=2, steps=1, lr=lr))
            optimizers = recipe.optimizers(spec.build_generator(config), recipe.build_discriminator())
            for optimizer in optimizers.values():
                assert optimizer.param_groups[0]["lr"] == expected
                assert optimizer.param_groups[0]["betas"] == betas
    assert deepfill_v1.DeepFillV1Recipe.critic_steps == 5
    assert deepfill_v2.DeepFillV2Recipe.critic_steps == 1
    assert spec.recipe(config, options).mask_kinds == (("deepfill-v2", 1.0),)


@pytest.mark.parametrize("name", ["deepfill-v1", "deepfill-v2"])
def test_reconstruction_falls_on_a_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    spec = _spec(name)
    config = spec.config("tiny")
    recipe = spec.recipe(config, TrainOptions(size=32, batch=2, steps=25, lr=1e-3))
    generator = spec.build_generator(config)
    critics = recipe.build_discriminator()
    optimizers = recipe.optimizers(generator, critics)
    phase = recipe.phases()[-1]
    image = 0.6 + 0.4 * gradient_image(2, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 8:20, 4:16] = 1
    mask[1, :, 16:28, 14:30] = 1
    history, logs, output = train_on_fixed_batch(
        recipe, generator, critics, optimizers, phase, image, mask, steps=25
    )
    assert "adv" in logs
    assert sum(history[-3:]) < 0.7 * sum(history[:3]), history
    assert recipe.prediction(output).shape == image.shape


@pytest.mark.parametrize("module", [deepfill_v1, deepfill_v2], ids=["v1", "v2"])
def test_inference_skips_attention_far_from_the_hole_without_changing_the_fill(module):
    """In eval mode attention tiles beyond the later layers' reach of the hole are skipped: the
    hole's pixels are the same as with every tile computed, pixels far away are not."""
    config_class = module.DeepFillV1Config if module is deepfill_v1 else module.DeepFillV2Config
    spec_config = next(spec for spec in module.SPECS).config("tiny")
    assert isinstance(spec_config, config_class)
    torch.manual_seed(0)
    model = next(spec for spec in module.SPECS).build_generator(spec_config)
    model.attention.chunk_size = 4  # many small tiles: most lie far from the hole
    image = torch.rand(1, 3, 192, 192)
    mask = torch.zeros(1, 1, 192, 192)
    mask[..., 8:30, 10:28] = 1
    with torch.no_grad():
        skipped, skipped_flow = model.eval().inpaint_with_attention(image, mask)
        computed, computed_flow = model.train().inpaint_with_attention(image, mask)
    hole = mask.bool().expand_as(skipped)
    torch.testing.assert_close(skipped[hole], computed[hole], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(skipped_flow[hole], computed_flow[hole])


def _v1_to_v2_module():
    """`weights/deepfill_v1_to_v2.py`, the bundled DeepFill v2's warm start (a script, not a module)."""
    path = Path(__file__).resolve().parents[1] / "weights" / "deepfill_v1_to_v2.py"
    spec = importlib.util.spec_from_file_location("deepfill_v1_to_v2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_v1_weights_map_onto_v2_exactly_where_the_architectures_agree() -> None:
    """The coarse stage of the mapped v2 computes v1's (the open gates' 1/2 undone by the next
    layer); stage 2's first convolutions fold v1's ones channel into the bias (exact away from the
    border) and drop its mask channel."""
    torch.manual_seed(0)
    v1 = deepfill_v1.DeepFillV1(deepfill_v1.CONFIGS["tiny"])  # cnum 8: v2 needs 16 for the same features
    with torch.no_grad():
        for conv in v1.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.bias.uniform_(-0.3, 0.3)
    v2 = deepfill_v2.DeepFillV2(deepfill_v2.DeepFillV2Config(channels=16))
    _v1_to_v2_module().map_v1_to_v2(v1, v2)
    image = gradient_image(1, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:26] = 1
    stage_input = torch.cat([(image * 2 - 1) * (1 - mask), torch.ones_like(mask), mask], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(v2.coarse_rgb(v2.coarse(stage_input)), v1.coarse_rgb(v1.coarse(stage_input)))
        assert (v2.coarse.conv1(stage_input) * 2 - v1.coarse.conv1(stage_input)).abs().max() < 1e-6
        composite = stage_input[:, :3]
        v1_refine = v1.hallucination.xconv1(torch.cat([composite, torch.ones_like(mask), torch.zeros_like(mask)], 1))
        v2_refine = v2.hallucination.xconv1(composite) * 2
        torch.testing.assert_close(v2_refine[..., 2:-2, 2:-2], v1_refine[..., 2:-2, 2:-2])
        assert (v2_refine[..., :2, :] - v1_refine[..., :2, :]).abs().max() > 1e-3  # the ones channel's border
    gates = v2.coarse.conv5.conv
    assert gates.weight[gates.out_channels // 2:].abs().sum() == 0 and gates.bias[gates.out_channels // 2:].abs().sum() == 0

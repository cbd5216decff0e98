"""Partial convolution, the PConv U-Net and its training recipe (docs/architectures.md §5)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from inpaint_cli.archs.base import Phase, TrainOptions, count_parameters
from inpaint_cli.archs.pconv import CONFIGS, PConvRecipe, PConvUNet, total_variation
from inpaint_cli.layers.partial_conv import PartialConv2d
from inpaint_cli.layers.perceptual import VGGFeatures
from inpaint_cli.registry import get_arch


def _conv(in_channels=1, out_channels=1, kernel=3, padding=0, bias=True) -> PartialConv2d:
    conv = PartialConv2d(in_channels, out_channels, kernel, padding=padding, bias=bias)
    torch.manual_seed(0)
    torch.nn.init.normal_(conv.weight)
    if bias:
        torch.nn.init.normal_(conv.bias)
    return conv


# ------------------------------------------------------------------------ partial convolution


def test_all_known_input_equals_a_plain_convolution():
    conv = _conv(2, 3, padding=0)
    x = torch.randn(1, 2, 6, 7)
    out, new_valid = conv(x, torch.ones(1, 1, 6, 7))
    assert torch.allclose(out, F.conv2d(x, conv.weight, conv.bias), atol=1e-5)
    assert torch.equal(new_valid, torch.ones(1, 1, 4, 5))


def test_zero_padding_counts_as_hole_at_the_border():
    conv = _conv(1, 1, padding=1)
    x = torch.randn(1, 1, 5, 5)
    out, _ = conv(x, torch.ones(1, 1, 5, 5))
    raw = F.conv2d(x, conv.weight, None, padding=1)
    bias = conv.bias.item()
    assert torch.allclose(out[..., 2, 2], raw[..., 2, 2] + bias, atol=1e-5)  # interior: plain
    assert torch.allclose(out[..., 0, 0], raw[..., 0, 0] * 9 / 4 + bias, atol=1e-5)  # corner: 4 of 9
    assert torch.allclose(out[..., 0, 2], raw[..., 0, 2] * 9 / 6 + bias, atol=1e-5)  # edge: 6 of 9


def test_all_hole_window_outputs_exactly_zero_and_stays_a_hole():
    conv = _conv(1, 2, padding=1)
    valid = torch.ones(1, 1, 7, 7)
    valid[..., 1:6, 1:6] = 0  # a 5 x 5 hole: the 3 x 3 windows at its centre see no valid pixel
    x = torch.full((1, 1, 7, 7), 1000.0)  # garbage in the hole must not matter
    out, new_valid = conv(x, valid)
    assert torch.equal(out[..., 2:5, 2:5], torch.zeros(1, 2, 3, 3))  # bias not added either
    assert torch.equal(new_valid[..., 2:5, 2:5], torch.zeros(1, 1, 3, 3))
    assert new_valid[..., 1, 1].item() == 1.0  # one valid neighbour is enough


def test_ratio_renormalisation_by_hand():
    conv = PartialConv2d(1, 1, 3, bias=True)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.5)
    x = torch.full((1, 1, 3, 3), 2.0)
    valid = torch.zeros(1, 1, 3, 3)
    valid[0, 0, 0, :] = 1  # 3 valid of 9
    out, new_valid = conv(x, valid)
    # raw (without bias) = 3 * 2 = 6, scaled by 9 / 3, then + bias
    assert out.item() == pytest.approx(6 * 9 / 3 + 0.5)
    assert new_valid.item() == 1.0


def test_per_channel_mask_counts_every_channel():
    conv = PartialConv2d(2, 1, 3, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 2, 3, 3)
    valid = torch.stack([torch.ones(3, 3), torch.zeros(3, 3)]).unsqueeze(0)  # channel 1 all hole
    out, _ = conv(x, valid)
    assert out.item() == pytest.approx(9 * 18 / 9)  # 9 valid entries of a 2 x 3 x 3 window


def test_premasked_parts_equal_their_join_with_a_per_channel_mask():
    """The decoder's skip join: each part counted by its own mask, convolved by its own slice of the
    weights, equals the partial conv of the joined features with one mask channel per channel."""
    conv = _conv(5, 4, padding=1)
    torch.manual_seed(1)
    upsampled, skip = torch.randn(2, 2, 9, 8), torch.randn(2, 3, 9, 8)
    upsampled_valid, skip_valid = torch.ones(2, 1, 9, 8), torch.ones(2, 1, 9, 8)
    upsampled_valid[..., 1:8, 0:6] = 0  # different holes in the two halves, one hiding a window
    skip_valid[..., 2:9, 1:5] = 0
    joined_valid = torch.cat([upsampled_valid.expand(-1, 2, -1, -1), skip_valid.expand(-1, 3, -1, -1)], dim=1)
    expected, expected_valid = conv(torch.cat([upsampled, skip], dim=1), joined_valid)
    out, valid = conv.forward_premasked([(upsampled * upsampled_valid, upsampled_valid), (skip * skip_valid, skip_valid)])
    assert torch.equal(valid, expected_valid) and 0 < valid.mean() < 1
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (out[expected_valid.expand_as(out) == 0] == 0).all()


# ----------------------------------------------------------------------------------- network


def test_paper_parameter_count_and_conventions():
    with torch.device("meta"):
        assert count_parameters(PConvUNet(CONFIGS["paper"])) == 32_865_236
        naoto = dataclasses.replace(CONFIGS["paper"], bias=False)  # bias on the last layer only
        assert count_parameters(PConvUNet(naoto)) == 32_859_732
        seven = dataclasses.replace(CONFIGS["seven-level"], bias=False)
        assert count_parameters(PConvUNet(seven)) == 25_779_796  # naoto layer_size=7, learnable
        paper = PConvUNet(CONFIGS["paper"])
        out = paper.inpaint(torch.zeros(1, 3, 512, 768), torch.zeros(1, 1, 512, 768))
    assert paper.size_multiple == 256 and tuple(out.shape) == (1, 3, 512, 768)


def test_every_config_is_registered_with_its_size_multiple():
    spec = get_arch("pconv")
    assert {"paper", "tiny"} <= set(spec.configs) and spec.default_config in spec.configs
    assert PConvUNet(spec.config("tiny")).size_multiple == 8


@pytest.mark.parametrize("size", [(64, 64), (64, 128), (96, 40)])
def test_tiny_output_shapes_and_range(size):
    torch.manual_seed(0)
    net = PConvUNet(CONFIGS["tiny"]).eval()
    mask = torch.zeros(2, 1, *size)
    mask[..., 8:30, 8:30] = 1
    with torch.no_grad():
        out = net.inpaint(torch.rand(2, 3, *size), mask)
    assert out.shape == (2, 3, *size) and 0 <= out.min() and out.max() <= 1


def test_hole_pixels_of_the_input_never_reach_the_output():
    torch.manual_seed(0)
    net = PConvUNet(CONFIGS["tiny"]).eval()
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:40, 20:50] = 1
    scribbled = torch.where(mask.bool(), torch.rand(1, 3, 64, 64), image)
    with torch.no_grad():
        assert torch.equal(net.inpaint(image, mask), net.inpaint(scribbled, mask))


def test_total_variation_by_hand():
    image = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    assert total_variation(image, None).item() == pytest.approx((1 + 2) / 2 + (3 + 4) / 2)
    top_row = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert total_variation(image, top_row).item() == pytest.approx(1 / 2)


# ------------------------------------------------------------------------------------ recipe


def _recipe(steps: int = 40) -> PConvRecipe:
    with pytest.warns(UserWarning, match="perceptual and style"):
        return PConvRecipe(CONFIGS["tiny"], TrainOptions(size=64, batch=2, steps=steps))


def test_phases_and_finetune_state():
    recipe = _recipe(steps=100)
    train, finetune = recipe.phases()
    assert (train.name, train.steps, finetune.name, finetune.steps) == ("train", 75, "finetune", None)
    assert not train.train_discriminator and recipe.build_discriminator() is None
    net = PConvUNet(recipe.config)
    optimizers = recipe.optimizers(net, None)
    recipe.enter_phase(finetune, net, optimizers)
    assert optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2.5e-4)
    net.train()
    assert not net.encoder[1].norm.training and net.decoder[0].norm.training
    before = net.encoder[1].norm.running_mean.clone()
    net.inpaint(torch.rand(2, 3, 64, 64), torch.zeros(2, 1, 64, 64))
    assert torch.equal(net.encoder[1].norm.running_mean, before)  # frozen statistics
    recipe.enter_phase(train, net, optimizers)
    assert optimizers["generator"].param_groups[0]["lr"] == pytest.approx(1e-3)
    assert net.train().encoder[1].norm.training


def test_reconstruction_falls_over_training_steps():
    torch.manual_seed(0)
    recipe = _recipe()
    net = PConvUNet(recipe.config).train()
    optimizer = recipe.optimizers(net, None)["generator"]
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    image = torch.stack([x, y, (x + y) / 2]).expand(2, 3, 32, 32).contiguous()
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 10:22] = 1
    phase = Phase("train", None)
    history = []
    for _ in range(25):
        output = recipe.generate(net, image, mask)
        loss, logs = recipe.generator_loss(None, image, mask, output, phase)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(logs["rec"])
    assert set(logs) >= {"rec", "valid", "hole", "tv"}
    assert history[-1] < 0.5 * history[0]
    assert recipe.prediction(output).shape == image.shape


def test_backbone_file_adds_perceptual_and_style_terms(tmp_path, recwarn):
    torch.manual_seed(0)
    path = tmp_path / "vgg16.safetensors"
    save_file(VGGFeatures("vgg16").state_dict(), str(path))
    options = TrainOptions(size=32, batch=1, steps=10, backbone=str(path))
    recipe = PConvRecipe(CONFIGS["tiny"], options)
    assert not recwarn.list  # nothing dropped, nothing to warn about
    net = PConvUNet(recipe.config)
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    output = recipe.generate(net, image, mask)
    loss, logs = recipe.generator_loss(None, image, mask, output, Phase("train", None))
    assert logs["perceptual"] > 0 and logs["style"] > 0
    expected = logs["rec"] + 0.1 * logs["tv"] + 0.05 * logs["perceptual"] + 120 * logs["style"]
    assert loss.item() == pytest.approx(expected, rel=1e-4)

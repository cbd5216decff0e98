"""MAT: counts of the official networks, official tensor names, mask-aware attention, seeded
two-stage fills, the two-head recipe (docs/architectures.md §9, §11)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from test_co_mod_gan import check_adversarial_training_moves_both_losses

import inpaint_cli.archs.mat as mat
from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.archs.mat import (
    CONFIGS,
    MATConfig,
    MATGenerator,
    MATRecipe,
    PartialConv,
    WindowAttention,
    build_discriminator,
    shifted_window_mask,
)
from inpaint_cli.layers.perceptual import VGGFeatures
from inpaint_cli.losses.stylegan2 import mat_perceptual_loss

#: the smallest MAT (it needs 128 x 128): every part of the paper's, few channels
MICRO = MATConfig(
    resolution=128, dim=12, num_heads=2, depths=(2, 2, 1, 2, 2), channel_base=512, channel_max=8, z_dim=16, w_dim=16
)
NAMES = Path(__file__).parent / "data" / "mat_G_ema_iopaint_names.tsv"  # IOPaint's G_ema (no noise)


def _meta(config):
    with torch.device("meta"):
        return MATGenerator(config), build_discriminator(config)


def test_paper_counts_part_by_part():
    generator, discriminator = _meta(CONFIGS["paper"])
    assert count_parameters(generator) == 61_562_518
    assert count_parameters(discriminator) == 36_231_618
    assert (count_parameters(discriminator.main), count_parameters(discriminator.stage1)) == (28_982_913, 7_248_705)
    s = generator.synthesis
    parts = {"first_stage": 12_063_865, "enc": 14_123_328, "to_square": 131_328, "to_style": 7_604_736, "dec": 25_538_013}
    assert {name: count_parameters(getattr(s, name)) for name in parts} == parts
    stage1 = s.first_stage
    assert [count_parameters(t) for t in stage1.tran] == [942_660, 1_559_880, 1_885_320, 1_559_880, 1_234_440]
    assert count_parameters(stage1.tran[0].blocks[0]) == 325_440
    assert count_parameters(stage1.dec_conv[0]) == 876_243
    assert count_parameters(s.dec.Dec_16x16) == 6_295_044
    assert count_parameters(generator.mapping) == 2_101_248
    assert len(list(generator.parameters())) == 403 and len(list(discriminator.parameters())) == 86
    assert (len(generator.state_dict()), len(discriminator.state_dict())) == (487, 132)
    buffers = dict(generator.named_buffers())
    kinds = {kind: [n for n in buffers if n.endswith(kind)] for kind in ("resample_filter", "attn_mask", "noise_const")}
    assert [len(v) for v in kinds.values()] == [68, 4, 11]
    assert sum(buffers[n].numel() for n in kinds["attn_mask"]) == 1_048_576
    assert sum(buffers[n].numel() for n in kinds["noise_const"]) == 698_624
    assert generator.mapping.num_ws == 12


@pytest.mark.parametrize(
    ("name", "generator_count", "discriminator_count", "stage1_count", "states"),
    [
        ("paper-256", 59_779_834, 36_083_330, 10_895_842, (442, 116)),
        ("mat-small-256", 6_809_790, 2_258_594, None, None),
        ("mat-tiny-128", 1_524_342, 556_546, 613_027, None),
    ],
)
def test_256_and_the_small_configs(name, generator_count, discriminator_count, stage1_count, states):
    generator, discriminator = _meta(CONFIGS[name])
    assert (count_parameters(generator), count_parameters(discriminator)) == (generator_count, discriminator_count)
    if stage1_count:
        assert count_parameters(generator.synthesis.first_stage) == stage1_count
    if states:
        assert (len(generator.state_dict()), len(discriminator.state_dict())) == states
    if name == "paper-256":
        assert count_parameters(discriminator.main) == 28_864_257
        assert count_parameters(generator.synthesis.enc) == 14_013_056
        assert count_parameters(generator.synthesis.dec) == 25_033_624
    if name == "mat-tiny-128":
        assert (count_parameters(discriminator.main), count_parameters(discriminator.stage1)) == (444_929, 111_617)
        assert CONFIGS["tiny"] == CONFIGS["mat-tiny-128"]


def test_official_g_ema_names_and_shapes():
    """IOPaint's weights-only G_ema (465 entries) loads by name with equal shapes; the official
    G_ema's 22 extra entries are the stage-2 noise strengths and maps."""
    expected = {}
    for line in NAMES.read_text().splitlines()[1:]:
        key, shape, _ = line.split("\t")
        expected[key] = tuple(ast.literal_eval(shape))
    assert len(expected) == 465
    generator, _ = _meta(CONFIGS["paper"])
    ours = {key: tuple(value.shape) for key, value in generator.state_dict().items()}
    assert {key: ours.get(key) for key in expected} == expected
    extra = sorted(set(ours) - set(expected))
    assert len(extra) == 22 and all(k.startswith("synthesis.dec.") and "noise_" in k for k in extra)


def test_shifted_window_mask_separates_the_regions_after_the_roll():
    mask = shifted_window_mask(8, 4, 2)  # 4 windows of 16 tokens
    assert mask.shape == (4, 16, 16)
    assert mask[0].eq(0).all()  # the top-left window holds one region
    assert set(mask.unique().tolist()) == {-100.0, 0.0}
    # the bottom-right window mixes 4 regions of 4 tokens: 4 x 4 x 4 zero pairs
    assert int(mask[3].eq(0).sum()) == 64
    assert torch.equal(mask, mask.transpose(1, 2))


def test_partial_conv_ratio_and_mask_update_by_hand():
    torch.manual_seed(0)
    conv = PartialConv(1, 1)
    x = torch.randn(1, 1, 5, 5)
    valid = torch.zeros(1, 1, 5, 5)
    valid[..., 2, 2] = 1
    out, new_valid = conv(x, valid)
    expected = torch.zeros(1, 1, 5, 5)
    expected[..., 1:4, 1:4] = 1
    assert torch.equal(new_valid, expected)
    raw = conv.conv(x)
    torch.testing.assert_close(out, raw * 9 * expected)  # one valid input under each 3 x 3 window


def test_attention_ignores_invalid_keys_and_spreads_validity():
    torch.manual_seed(0)
    attention = WindowAttention(12, 2)
    x = torch.randn(2, 4, 12)  # two windows of 4 tokens
    valid = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]).unsqueeze(-1)
    out, new_valid = attention(x, valid)
    changed = x.clone()
    changed[0, 1:] += 5.0  # the invalid tokens of window 0
    again, _ = attention(changed, valid)
    torch.testing.assert_close(again[0, 0], out[0, 0])  # the valid token attends only to itself
    assert torch.equal(new_valid[0].flatten(), torch.ones(4)) and torch.equal(new_valid[1].flatten(), torch.zeros(4))


def test_dropout_maps_are_drawn_in_the_official_order(monkeypatch):
    """Stage 1 over the bottleneck tokens [1, 256, 180], then stage 2 over [1, 512, 16, 16]."""
    shapes = []
    original = mat.mixing_map

    def recording(like):
        shapes.append(tuple(like.shape))
        return original(like)

    monkeypatch.setattr(mat, "mixing_map", recording)
    generator, _ = _meta(CONFIGS["paper"])
    with torch.device("meta"):
        filled = generator.inpaint(torch.zeros(1, 3, 512, 512), torch.zeros(1, 1, 512, 512))
    assert tuple(filled.shape) == (1, 3, 512, 512)
    assert shapes == [(1, 256, 180), (1, 512, 16, 16)]


def test_fills_are_seeded_stochastic_in_eval_and_use_the_stored_noise():
    torch.manual_seed(0)
    generator = MATGenerator(MICRO).eval()
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    image, mask = torch.rand(1, 3, 128, 128), torch.zeros(1, 1, 128, 128)
    mask[..., 30:90, 20:70] = 1
    with torch.no_grad():
        first, again = generator.inpaint(image, mask, seed=3), generator.inpaint(image, mask, seed=3)
        other = generator.inpaint(image, mask, seed=4)
        assert torch.equal(first, again) and not torch.equal(first, other)
        ws = generator.mapping(torch.randn(1, 16))
        outputs = []
        for seed, mode in ((5, "const"), (6, "const"), (5, "random")):
            torch.manual_seed(seed)
            outputs.append(generator(image * 2 - 1, 1 - mask, ws, mode)[0])
        assert not torch.equal(outputs[0], outputs[1])  # same w: the dropout maps differ
        assert not torch.equal(outputs[0], outputs[2])  # const noise is not random noise
    assert generator.inference_noise == "const" and generator.default_truncation == 1.0


def test_perceptual_loss_is_the_weighted_pre_relu_l1():
    torch.manual_seed(0)
    vgg = VGGFeatures("vgg19").eval()
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert mat_perceptual_loss(vgg, a, a).item() == 0
    f4, f5 = vgg(a, ("conv4_4", "conv5_4"))
    t4, t5 = vgg(b, ("conv4_4", "conv5_4"))
    expected = 0.25 * (f4 - t4).abs().mean() + 0.5 * (f5 - t5).abs().mean()
    assert f4.min() < 0  # pre-ReLU
    torch.testing.assert_close(mat_perceptual_loss(vgg, a, b), expected)


@pytest.mark.slow
def test_two_head_adversarial_training_moves_both_losses():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="perceptual loss"):
        recipe = MATRecipe(MICRO, TrainOptions(size=128, batch=2, steps=10))
    check_adversarial_training_moves_both_losses(recipe, MATGenerator(MICRO), steps=3)

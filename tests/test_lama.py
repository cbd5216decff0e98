"""LaMa: Fourier convolutions, generator, NLayer discriminator and recipe (docs/architectures.md §7)."""

from __future__ import annotations

import pytest
import torch
from helpers import gradient_image, train_on_fixed_batch
from safetensors.torch import save_file
from torch import nn

from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.archs.lama import CONFIGS, LaMaGenerator, LaMaRecipe, build_discriminator
from inpaint_cli.layers.ffc import FFCNormAct, FFCResnetBlock, FourierUnit, SpectralTransform
from inpaint_cli.layers.perceptual import ResNet50Dilated


def test_paper_parameter_counts_and_official_names():
    with torch.device("meta"):
        fourier = LaMaGenerator(CONFIGS["fourier"])
        big = LaMaGenerator(CONFIGS["big"])
        discriminator = build_discriminator(CONFIGS["fourier"])
    assert count_parameters(fourier) == 27_048_835
    assert count_parameters(big) == 50_975_875
    assert count_parameters(fourier.model[5]) == 2_658_560  # one FFC residual block
    assert count_parameters(discriminator) == 6_962_369
    # the official checkpoints' key counts (num_batches_tracked included) and a few names
    assert len(fourier.state_dict()) == 521 and len(big.state_dict()) == 989
    state = fourier.state_dict()
    expected = {
        "model.1.ffc.convl2l.weight": (64, 4, 7, 7),
        "model.4.ffc.convl2g.weight": (384, 256, 3, 3),
        "model.13.conv2.ffc.convg2g.conv1.0.weight": (192, 384, 1, 1),
        "model.5.conv1.ffc.convg2g.fu.conv_layer.weight": (384, 384, 1, 1),
        "model.5.conv1.bn_g.running_var": (384,),
        "model.15.weight": (512, 256, 3, 3),  # ConvTranspose2d: [in, out, k, k]
        "model.25.bias": (3,),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected


def test_discriminator_shapes_on_the_meta_device():
    with torch.device("meta"):
        discriminator = build_discriminator(CONFIGS["fourier"])
        assert tuple(discriminator(torch.zeros(1, 3, 256, 256)).shape) == (1, 1, 19, 19)
        logits, features = discriminator.forward_with_features(torch.zeros(1, 3, 512, 680))
    assert tuple(logits.shape) == (1, 1, 35, 46)
    assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]


@pytest.mark.parametrize("size", [(64, 64), (64, 128), (192, 256)])
def test_tiny_runs_at_and_above_training_size(size):
    torch.manual_seed(0)
    generator = LaMaGenerator(CONFIGS["tiny"]).eval()
    mask = torch.zeros(1, 1, *size)
    mask[..., 16:40, 16:48] = 1
    with torch.no_grad():
        filled = generator.inpaint(torch.rand(1, 3, *size), mask)
    assert filled.shape == (1, 3, *size) and 0 <= filled.min() and filled.max() <= 1
    assert generator.size_multiple == 8


def test_tiny_discriminator_shapes():
    discriminator = build_discriminator(CONFIGS["tiny"]).eval()
    logits, features = discriminator.forward_with_features(torch.rand(2, 3, 64, 64))
    # padding 2, 4x4: 64 -> 33 -> 17 (stride 2), -> 18 (stride 1), -> 19 (logits)
    assert tuple(logits.shape) == (2, 1, 19, 19)
    assert [tuple(f.shape[1:]) for f in features] == [(8, 33, 33), (16, 17, 17), (32, 18, 18)]


def test_fourier_unit_shapes_and_interleaved_spectrum():
    torch.manual_seed(0)
    unit = FourierUnit(3, 3).eval()
    x = torch.randn(2, 3, 12, 10)
    seen = {}
    unit.conv_layer.register_forward_hook(lambda module, args, out: seen.update(input=args[0]))
    assert unit(x).shape == x.shape
    spectrum = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
    assert seen["input"].shape == (2, 6, 12, 6)
    assert torch.allclose(seen["input"][:, 2], spectrum[:, 1].real, atol=1e-6)  # c1.real
    assert torch.allclose(seen["input"][:, 3], spectrum[:, 1].imag, atol=1e-6)  # c1.imag
    assert SpectralTransform(8, 6)(torch.randn(2, 8, 9, 14)).shape == (2, 6, 9, 14)


def test_fourier_unit_under_bfloat16_autocast_is_float32_inside():
    torch.manual_seed(0)
    unit = FourierUnit(4, 4).eval()
    x = torch.randn(1, 4, 10, 14)  # not a power of two
    reference = unit(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = unit(x.to(torch.bfloat16))
    assert mixed.dtype == torch.bfloat16 and torch.isfinite(mixed).all()
    assert torch.allclose(mixed.float(), reference, atol=0.1)


def test_global_branch_sees_the_whole_image_a_plain_conv_does_not():
    torch.manual_seed(0)
    layer = FFCNormAct(16, 16, 3, 0.75, 0.75, padding=1).eval()  # 4 local / 12 global channels
    local, global_ = torch.randn(1, 4, 24, 24), torch.randn(1, 12, 24, 24)
    nudged = global_.clone()
    nudged[..., 0, 0] += 10.0  # one pixel of the global input, in a corner
    with torch.no_grad():
        before = layer((local, global_))
        after = layer((local, nudged))
    far = (slice(None), slice(None), slice(12, 24), slice(12, 24))
    assert (after[1] - before[1])[far].abs().amax() > 1e-3  # spectral path: whole-image reach
    assert torch.equal(after[0][far], before[0][far])  # local output: a 3x3 conv of the global part
    conv = nn.Conv2d(12, 12, 3, padding=1)
    with torch.no_grad():
        assert torch.equal(conv(nudged)[far], conv(global_)[far])


def test_residual_block_keeps_parts():
    block = FFCResnetBlock(16, 0.75).eval()
    local, global_ = block((torch.randn(2, 4, 8, 8), torch.randn(2, 12, 8, 8)))
    assert local.shape == (2, 4, 8, 8) and global_.shape == (2, 12, 8, 8)


def _recipe() -> LaMaRecipe:
    with pytest.warns(UserWarning, match="high-receptive-field"):
        return LaMaRecipe(CONFIGS["tiny"], TrainOptions(size=64, batch=2, steps=10))


class _ConstantCritic(nn.Module):
    """Logits `value` on a 1/4 grid, differentiable in its input (for R1), with no features."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x):
        return x[:, :1, ::4, ::4] * 0 + self.value


def test_mask_as_fake_target():
    recipe = _recipe()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :16, :] = 1  # the top half is the hole
    # a D that calls everything real (logit 20) is wrong on the hole cells of the prediction only
    loss, logs = recipe.discriminator_loss(_ConstantCritic(20.0), image, mask, image.clone())
    assert logs["r1"] == 0.0
    assert loss.item() == pytest.approx(20.0 * 0.5, rel=1e-3)


def test_optimizers_follow_the_lr_option():
    with pytest.warns(UserWarning):
        recipe = LaMaRecipe(CONFIGS["tiny"], TrainOptions(size=64, batch=2, steps=10, lr=2e-3))
    optimizers = recipe.optimizers(nn.Linear(1, 1), nn.Linear(1, 1))
    assert optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-3)
    assert optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(2e-4)


def test_reconstruction_falls_over_training_steps():
    torch.manual_seed(0)
    recipe = _recipe()
    generator = LaMaGenerator(recipe.config).train()
    discriminator = recipe.build_discriminator().train()
    optimizers = recipe.optimizers(generator, discriminator)
    phase = recipe.phases()[-1]
    image = gradient_image(2, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 10:22] = 1
    history, logs, _ = train_on_fixed_batch(
        recipe, generator, discriminator, optimizers, phase, image, mask, steps=30
    )
    assert {"rec", "adv", "fm"} <= set(logs)
    assert history[-1] < 0.9 * history[0]


def test_backbone_file_adds_the_hrf_term(tmp_path, recwarn):
    torch.manual_seed(0)
    path = tmp_path / "ade20k-encoder.safetensors"
    save_file(ResNet50Dilated().state_dict(), str(path))
    recipe = LaMaRecipe(CONFIGS["tiny"], TrainOptions(size=32, batch=1, steps=10, backbone=str(path)))
    assert not recwarn.list
    generator = LaMaGenerator(recipe.config)
    discriminator = recipe.build_discriminator()
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    output = recipe.generate(generator, image, mask)
    loss, logs = recipe.generator_loss(discriminator, image, mask, output, recipe.phases()[-1])
    assert logs["hrf"] > 0
    expected = logs["rec"] + 10 * logs["adv"] + 100 * logs["fm"] + 30 * logs["hrf"]
    assert loss.item() == pytest.approx(expected, rel=1e-4)

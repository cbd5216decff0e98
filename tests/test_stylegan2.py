"""StyleGAN2 blocks and losses shared by Co-ModGAN and MAT (docs/architectures.md §S), against values
worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaint_cli.layers.stylegan2 import (
    ChannelsLastSafe,
    Conv2dLayer,
    DisBlock,
    FullyConnectedLayer,
    MappingNetwork,
    MinibatchStdLayer,
    ModulatedConv2d,
    conv2d_resample,
    fir_filter,
    seeded_latents,
    upfirdn2d,
    upsample2d,
)
from inpaint_cli.losses.stylegan2 import ema_beta, lazy_adam_settings, r1_regularization


def test_fir_filter_is_the_normalised_outer_product():
    f = fir_filter()
    assert f.shape == (4, 4) and torch.isclose(f.sum(), torch.tensor(1.0))
    assert f[0, 0] == pytest.approx(1 / 64) and f[1, 1] == pytest.approx(9 / 64)


def test_downsampling_blur_of_a_constant_by_hand():
    """Pad 1, blur, every second pixel: the corner sees 7/8 of the taps per axis, the interior 1."""
    out = upfirdn2d(torch.ones(1, 1, 8, 8), fir_filter(), down=2, padding=(1, 1, 1, 1))
    assert out.shape == (1, 1, 4, 4)
    assert out[0, 0, 0, 0].item() == pytest.approx(49 / 64)
    assert out[0, 0, 0, 1].item() == pytest.approx(7 / 8)
    assert out[0, 0, 1, 1].item() == pytest.approx(1.0)


def test_image_upsampling_of_a_constant_by_hand():
    """Zeros inserted, pad (2, 1), blur x 4: the first and last pixels get 3/4 per axis, the rest 1."""
    out = upsample2d(torch.ones(1, 1, 4, 4), fir_filter())
    assert out.shape == (1, 1, 8, 8)
    assert out[0, 0, 0, 0].item() == pytest.approx(9 / 16)
    assert out[0, 0, 1, 1].item() == pytest.approx(1.0)
    assert out[0, 0, 4, 7].item() == pytest.approx(3 / 4)
    assert out[0, 0, 7, 7].item() == pytest.approx(9 / 16)


def test_up_convolution_is_zero_insertion_then_flipped_conv_then_blur():
    """conv_transpose2d(stride 2, flipped kernel) equals inserting zeros and correlating with the
    kernel itself; then pad (1, 1) and blur x 4. Shapes: H -> 2H."""
    torch.manual_seed(0)
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    f = fir_filter()
    out = conv2d_resample(x, w, f, up=2, padding=1)
    zeros = torch.zeros(1, 2, 10, 10)
    zeros[..., ::2, ::2] = x
    direct = F.conv2d(F.pad(zeros[..., :9, :9], [2, 2, 2, 2]), w)  # the 2H+1 transposed-conv map
    expected = upfirdn2d(direct, f, padding=(1, 1, 1, 1), gain=4)
    assert out.shape == (1, 3, 10, 10)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_equalised_dense_layer_applies_its_runtime_gains():
    torch.manual_seed(0)
    layer = FullyConnectedLayer(4, 3, activation="lrelu", lr_multiplier=0.01)
    with torch.no_grad():
        layer.bias.fill_(2.0)
    x = torch.randn(5, 4)
    pre = x @ (layer.weight * 0.01 / 2).t() + 2.0 * 0.01
    expected = F.leaky_relu(pre, 0.2) * math.sqrt(2)
    torch.testing.assert_close(layer(x), expected)
    assert layer.weight.std() > 10  # stored as N(0, 1) / lr_mul


def test_modulated_conv_equals_per_sample_scaled_and_demodulated_conv():
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 4, 3, style_dim=6)
    x, style = torch.randn(2, 3, 7, 7), torch.randn(2, 6)
    out = conv(x, style)
    scales = conv.affine(style)
    for i in range(2):
        w = conv.weight[0] / math.sqrt(3 * 9) * scales[i].view(1, 3, 1, 1)
        w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[i : i + 1], F.conv2d(x[i : i + 1], w, padding=1), atol=1e-5, rtol=1e-5)
    assert conv.affine.bias.eq(1).all()  # modulation starts at 1


def test_resnet_block_shapes_and_gain():
    torch.manual_seed(0)
    block = DisBlock(4, 8)
    x = torch.randn(2, 4, 16, 16)
    out = block(x)
    assert out.shape == (2, 8, 8, 8)
    expected = (block.skip(x) + block.conv1(block.conv0(x))) / math.sqrt(2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_minibatch_stddev_by_hand():
    layer = MinibatchStdLayer(group_size=4)
    x = torch.zeros(4, 2, 3, 3)
    x[1] = 2.0  # group of 4 with values 0, 2, 0, 0: std sqrt(0.75)
    out = layer(x)
    assert out.shape == (4, 3, 3, 3)
    assert torch.allclose(out[:, 2], torch.full((4, 3, 3), math.sqrt(0.75 + 1e-8)))
    two_groups = MinibatchStdLayer(group_size=2)(torch.arange(4.0).view(4, 1, 1, 1))
    # groups are samples (0, 2) and (1, 3): std 1 for both
    assert two_groups[:, 1].flatten().tolist() == pytest.approx([1.0] * 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        layer(torch.zeros(6, 2, 3, 3))


def test_mapping_truncation_and_running_mean():
    torch.manual_seed(0)
    mapping = MappingNetwork(8, 8, num_ws=3, layers=2)
    with torch.no_grad():
        mapping.w_avg.normal_()
    w_avg = mapping.w_avg.clone()
    a, b = mapping.eval()(torch.randn(2, 8), 0.0), mapping(torch.randn(2, 8), 0.0)
    assert torch.equal(a, b) and torch.allclose(a[0, 0], w_avg)  # psi 0: z has no effect
    z = torch.randn(2, 8)
    full, half = mapping(z), mapping(z, 0.5)
    torch.testing.assert_close(half, w_avg + 0.5 * (full - w_avg))
    mapping.train()
    ws = mapping(z)
    torch.testing.assert_close(mapping.w_avg, ws[:, 0].mean(0) + 0.995 * (w_avg - ws[:, 0].mean(0)))


def test_seeded_latents_draw_as_the_official_script_and_restore_the_rng():
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    with seeded_latents(240, 1, 512, torch.device("cpu")) as z:
        first_draw = torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), before)
    np.random.seed(240)
    assert torch.equal(z, torch.from_numpy(np.random.randn(1, 512)).float())
    torch.manual_seed(240)
    assert torch.equal(first_draw, torch.rand(3))  # nothing drawn from torch before the network's


def test_channels_last_request_keeps_five_dimensional_weights():
    class Net(ChannelsLastSafe):
        def __init__(self):
            super().__init__()
            self.modulated = ModulatedConv2d(3, 4, 3, 5)
            self.plain = Conv2dLayer(3, 4, 3)

    net = Net().to("cpu", memory_format=torch.channels_last)
    assert net.plain.weight.is_contiguous(memory_format=torch.channels_last)
    assert net.modulated.weight.shape == (1, 4, 3, 3, 3)


def test_lazy_regularisation_constants():
    lr, betas = lazy_adam_settings(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas[1] == pytest.approx(0.99058, abs=1e-5)
    lr, betas = lazy_adam_settings(0.002, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.0016) and betas == (0.0, pytest.approx(0.99199, abs=1e-5))
    assert ema_beta(32, 10) == pytest.approx(0.997784, abs=1e-6)


def test_r1_of_a_linear_critic_by_hand():
    weights = torch.tensor([1.0, -2.0, 3.0])
    real = torch.randn(2, 3).requires_grad_(True)
    logits = (real * weights).sum(dim=1, keepdim=True)
    # gradient = weights for every sample: sum of squares 14; x gamma / 2 = 5, x 16
    assert r1_regularization(logits, real, gamma=10, interval=16).item() == pytest.approx(14 * 5 * 16)

"""Context Encoder (docs/architectures.md §1): paper parameter counts, the channel-wise FC layer, the
window it returns, the overlap-weighted L2, the discriminator's input and a short training run."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from helpers import gradient_image, train_on_fixed_batch

from inpaint_cli.archs.base import TrainOptions, count_parameters
from inpaint_cli.archs.context_encoder import (
    CONFIGS,
    SPECS,
    ContextEncoder,
    ContextEncoderConfig,
    ContextEncoderDiscriminator,
    ContextEncoderRecipe,
)
from inpaint_cli.layers.channelwise_fc import ChannelwiseFC
from inpaint_cli.registry import critics_for

SMALL_CENTRE = ContextEncoderConfig(channels=8, bottleneck=32, discriminator_channels=8)


def _centre_hole(batch: int = 2, size: int = 128) -> torch.Tensor:
    """The official centre hole: the inner 56 x 56 of the 64 x 64 centre (overlapPred = 4)."""
    mask = torch.zeros(batch, 1, size, size)
    mask[..., 36:92, 36:92] = 1
    return mask


@pytest.mark.parametrize(
    ("config", "generator_count", "discriminator_count"),
    [("paper", 71_130_531, 2_766_529), ("paper-random", 71_196_259, 2_832_257)],
)
def test_paper_parameter_counts(config: str, generator_count: int, discriminator_count: int) -> None:
    with torch.device("meta"):
        generator = SPECS[0].build_generator(CONFIGS[config])
        discriminator = critics_for(SPECS[0], CONFIGS[config])
        latent = generator.bottleneck[0](generator.encoder(torch.zeros(1, 3, 128, 128)))
    assert count_parameters(generator) == generator_count
    assert count_parameters(discriminator) == discriminator_count
    assert latent.shape == (1, 4000, 1, 1)
    assert generator.fixed_size == 128


@pytest.mark.parametrize(
    ("config", "encoder", "fc", "generator_count", "discriminator_count"),
    [
        # half: encoder 707,520 (= D's 711,617 less its 4,097-weight head) + FC 256 * 4^4 + decoder 706,819
        ("half-fc", 707_520, 256 * 4**4, 1_546_179, 711_617),
        # the paper's width: encoder 2,824,064 (= D's 2,832,257 less 8,193) + FC 512 * 4^4 + decoder 2,822,659
        ("random-fc", 2_824_064, 512 * 4**4, 6_041_475, 2_832_257),
    ],
)
def test_channelwise_fc_configs_count(
    config: str, encoder: int, fc: int, generator_count: int, discriminator_count: int
) -> None:
    """The channel-wise FC bottleneck: per-channel 16 x 16 matrices, a 1 x 1 mix (with bias), BN."""
    with torch.device("meta"):
        generator = SPECS[0].build_generator(CONFIGS[config])
        discriminator = critics_for(SPECS[0], CONFIGS[config])
    width = fc // 4**4
    assert count_parameters(generator.encoder) == encoder
    assert count_parameters(generator.bottleneck) == fc + width * width + width + 2 * width
    assert count_parameters(generator) == generator_count
    assert count_parameters(discriminator) == discriminator_count


def test_channelwise_fc_has_m_n4_weights_and_no_cross_channel_links() -> None:
    assert count_parameters(ChannelwiseFC(256, 6)) == 256 * 6**4 == 331_776
    torch.manual_seed(0)
    layer = ChannelwiseFC(3, 2)
    x = torch.randn(2, 3, 2, 2, requires_grad=True)
    y = layer(x)
    expected = torch.stack([x[:, c].flatten(1) @ layer.weight[c] for c in range(3)], dim=1)
    torch.testing.assert_close(y, expected.view(2, 3, 2, 2))
    y[:, 0].sum().backward()
    assert x.grad[:, 1:].abs().sum() == 0 and x.grad[:, 0].abs().sum() > 0


def test_channelwise_fc_bottleneck_option() -> None:
    config = replace(CONFIGS["tiny"], bottleneck_kind="channelwise-fc")
    generator = ContextEncoder(config)
    fc = generator.bottleneck[0]
    assert isinstance(fc, ChannelwiseFC) and count_parameters(fc) == 64 * 4**4
    with torch.no_grad():
        assert generator(torch.zeros(2, 3, 64, 64)).shape == (2, 3, 64, 64)


def test_channelwise_fc_takes_bf16_maps_under_autocast_even_when_decomposed() -> None:
    # `fill --precision bf16` (and the latency benchmark's FLOP count, which decomposes einsum
    # below autocast): the maps arrive in bf16 from the convolutions before the layer
    torch.manual_seed(0)
    fc = ChannelwiseFC(4, 4)
    maps = torch.randn(2, 4, 4, 4)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16), FlopCounterMode(display=False) as counter:
        low = fc(maps.bfloat16())
    assert low.dtype == torch.bfloat16 and counter.get_total_flops() == 2 * 4 * 2 * 16 * 16  # m batched n^2 x n^2 products
    with torch.no_grad():
        torch.testing.assert_close(low.float(), fc(maps), atol=0.05, rtol=0.05)


def test_centre_model_returns_the_window_with_its_predicted_centre() -> None:
    torch.manual_seed(0)
    generator = ContextEncoder(SMALL_CENTRE).eval()
    seen = []
    generator.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    image, mask = torch.rand(2, 3, 128, 128), _centre_hole()
    with torch.no_grad():
        filled = generator.inpaint(image, mask)
    assert filled.shape == (2, 3, 128, 128)
    outside = torch.ones(128, 128, dtype=torch.bool)
    outside[32:96, 32:96] = False
    assert torch.equal(filled[..., outside], image[..., outside])
    assert not torch.equal(filled[..., 32:96, 32:96], image[..., 32:96, 32:96])
    mean = torch.tensor(SMALL_CENTRE.mean_color).view(1, 3, 1) * 2 - 1
    network_input = seen[0]
    torch.testing.assert_close(network_input[..., 36:92, 36:92].flatten(2), mean.expand(2, 3, 56 * 56))
    torch.testing.assert_close(network_input[..., outside], image[..., outside] * 2 - 1)


def test_random_model_returns_its_full_prediction() -> None:
    torch.manual_seed(0)
    generator = ContextEncoder(CONFIGS["tiny"]).eval()
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 5:20, 30:60] = 1
    with torch.no_grad():
        filled = generator.inpaint(image, mask)
        raw = generator((image * 2 - 1) * (1 - mask) + (generator.mean_color * 2 - 1) * mask)
    torch.testing.assert_close(filled, (raw + 1) / 2)


def test_inputs_it_cannot_fill_are_rejected() -> None:
    generator = ContextEncoder(SMALL_CENTRE)
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 10:20, 10:20] = 1
    with pytest.raises(ValueError, match="centred 64 x 64"):
        generator.inpaint(torch.rand(1, 3, 128, 128), mask)
    with pytest.raises(ValueError, match="128 x 128 windows"):
        generator.inpaint(torch.rand(1, 3, 96, 128), torch.zeros(1, 1, 96, 128))
    with pytest.raises(ValueError, match="--size 128"):
        ContextEncoderRecipe(SMALL_CENTRE, TrainOptions(size=256, batch=2, steps=1))


def test_overlap_band_weighs_ten_times_the_hole() -> None:
    recipe = ContextEncoderRecipe(SMALL_CENTRE, TrainOptions(size=128, batch=2, steps=1))
    assert recipe.mask_kinds == (("ce-center", 1.0),)
    image, mask = torch.rand(2, 3, 128, 128), _centre_hole()
    target = image[..., 32:96, 32:96] * 2 - 1
    band = torch.ones(64, 64)
    band[4:60, 4:60] = 0
    phase = recipe.phases()[0]
    _, logs = recipe.generator_loss(None, image, mask, {"region": target + 0.5 * band}, phase)
    assert logs["rec"] == pytest.approx(10 * 0.25 * (64**2 - 56**2) / 64**2, rel=1e-5)
    _, logs = recipe.generator_loss(None, image, mask, {"region": target + 0.5 * (1 - band)}, phase)
    assert logs["rec"] == pytest.approx(0.25 * 56**2 / 64**2, rel=1e-5)
    # a mask of the whole 64 x 64 centre (the `ce-center` kind) trains the same 56 x 56 hole
    whole_centre = torch.zeros_like(mask)
    whole_centre[..., 32:96, 32:96] = 1
    _, logs = recipe.generator_loss(None, image, whole_centre, {"region": target + 0.5 * band}, phase)
    assert logs["rec"] == pytest.approx(10 * 0.25 * (64**2 - 56**2) / 64**2, rel=1e-5)


def test_l1_option_puts_the_same_weights_on_absolute_errors() -> None:
    config = replace(SMALL_CENTRE, reconstruction="l1")
    recipe = ContextEncoderRecipe(config, TrainOptions(size=128, batch=2, steps=1))
    image, mask = torch.rand(2, 3, 128, 128), _centre_hole()
    target = image[..., 32:96, 32:96] * 2 - 1
    band = torch.ones(64, 64)
    band[4:60, 4:60] = 0
    phase = recipe.phases()[0]
    _, logs = recipe.generator_loss(None, image, mask, {"region": target + 0.5 * band}, phase)
    assert logs["rec"] == pytest.approx(10 * 0.5 * (64**2 - 56**2) / 64**2, rel=1e-5)  # not 0.5 ** 2
    assert replace(CONFIGS["half-fc-l1"], reconstruction="mse") == CONFIGS["half-fc"]
    with pytest.raises(ValueError, match="reconstruction must be"):
        ContextEncoderRecipe(replace(config, reconstruction="huber"), TrainOptions(size=128, batch=2, steps=1))


def test_discriminator_sees_the_predicted_region_only() -> None:
    recipe = ContextEncoderRecipe(SMALL_CENTRE, TrainOptions(size=128, batch=2, steps=1))
    generator = ContextEncoder(SMALL_CENTRE)
    discriminator = recipe.build_discriminator()
    shapes = []
    discriminator.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    image, mask = torch.rand(2, 3, 128, 128), _centre_hole()
    output = recipe.generate(generator, image, mask)
    loss, _ = recipe.discriminator_loss(discriminator, image, mask, output)
    assert shapes == [(2, 3, 64, 64), (2, 3, 64, 64)]
    assert discriminator(torch.zeros(2, 3, 64, 64)).shape == (2,)
    assert isinstance(ContextEncoderDiscriminator(CONFIGS["tiny"]).net[0], torch.nn.Conv2d)
    assert loss.ndim == 0


def test_optimisers_train_the_generator_ten_times_faster() -> None:
    config = CONFIGS["tiny"]
    generator, discriminator = ContextEncoder(config), ContextEncoderDiscriminator(config)
    for lr, expected in ((None, 2e-3), (1e-3, 1e-3)):
        recipe = ContextEncoderRecipe(config, TrainOptions(size=64, batch=2, steps=1, lr=lr))
        assert recipe.mask_kinds == (("ce-random", 1.0),)
        optimizers = recipe.optimizers(generator, discriminator)
        assert optimizers["generator"].param_groups[0]["lr"] == expected
        assert optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(expected / 10)
        assert optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)


def test_reconstruction_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    config = CONFIGS["tiny"]
    recipe = ContextEncoderRecipe(config, TrainOptions(size=64, batch=4, steps=30))
    generator, discriminator = ContextEncoder(config), recipe.build_discriminator()
    optimizers = recipe.optimizers(generator, discriminator)
    phase = recipe.phases()[-1]
    image = gradient_image(4, 64)
    mask = torch.zeros(4, 1, 64, 64)
    for i in range(4):
        mask[i, :, 8 + 8 * i : 28 + 8 * i, 10:40] = 1
    history, logs, output = train_on_fixed_batch(
        recipe, generator, discriminator, optimizers, phase, image, mask, steps=30
    )
    assert "adv" in logs
    assert sum(history[-3:]) < 0.5 * sum(history[:3]), history
    assert recipe.prediction(output).shape == image.shape


def test_reconstruction_only_config_has_no_critic_and_its_loss_is_the_l2() -> None:
    """adversarial_weight 0 (config half-fc-rec): one reconstruction phase, no discriminator."""
    config = replace(CONFIGS["tiny"], adversarial_weight=0.0)
    recipe = ContextEncoderRecipe(config, TrainOptions(size=64, batch=2, steps=10))
    assert [(p.name, p.train_discriminator) for p in recipe.phases()] == [("reconstruction", False)]
    assert recipe.build_discriminator() is None
    assert CONFIGS["half-fc-rec"].adversarial_weight == 0 and CONFIGS["half-fc"].adversarial_weight == 0.001
    torch.manual_seed(0)
    generator = ContextEncoder(config)
    image, mask = torch.rand(2, 3, 64, 64), torch.zeros(2, 1, 64, 64)
    mask[..., 20:40, 16:48] = 1
    output = recipe.generate(generator, image, mask)
    loss, logs = recipe.generator_loss(None, image, mask, output, recipe.phases()[0])
    weights = mask + config.overlap_weight * (1 - mask)
    expected = config.reconstruction_weight * (weights * (output["region"] - (image * 2 - 1)) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    assert set(logs) == {"rec"}


def test_flat_config_weighs_known_pixels_as_the_hole() -> None:
    """half-fc-rec-flat: the plain mean squared error over the window, no critic."""
    config = CONFIGS["half-fc-rec-flat"]
    assert replace(config, overlap_weight=10.0) == CONFIGS["half-fc-rec"]
    recipe = ContextEncoderRecipe(config, TrainOptions(size=128, batch=2, steps=1))
    image, mask = torch.rand(2, 3, 128, 128), torch.zeros(2, 1, 128, 128)
    mask[..., 40:80, 32:96] = 1
    region = torch.rand(2, 3, 128, 128) * 2 - 1
    loss, _ = recipe.generator_loss(None, image, mask, {"region": region}, recipe.phases()[0])
    torch.testing.assert_close(loss, 0.999 * torch.nn.functional.mse_loss(region, image * 2 - 1))


def test_fills_show_each_model_its_holes_at_their_training_share_of_the_window() -> None:
    """The centre model learnt holes filling its central half, the random one boxes of 1/4-1/2."""
    assert ContextEncoder(SMALL_CENTRE).window_per_hole == 2.0
    assert ContextEncoder(CONFIGS["tiny"]).window_per_hole == 3.0

"""Registry-wide checks (timm-style): every registered architecture is tested the moment it exists."""

import inspect
import json
import subprocess
import sys
import warnings

import pytest
import torch

from inpaint_cli.archs.base import InpaintModel, count_parameters
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import critics_for, get_arch, list_archs
from inpaint_cli.train import TrainSettings

LEARNED = list_archs(learned=True)

#: each learned architecture's paper config and its generator's parameters, as its own test file
#: asserts them against the paper or the official code
PAPER_GENERATOR_PARAMETERS = {
    ("context-encoder", "paper"): 71_130_531,
    ("glcic", "paper"): 6_072_131,
    ("deepfill-v1", "paper"): 3_601_542,
    ("deepfill-v2", "paper"): 4_052_478,
    ("pconv", "paper"): 32_865_236,
    ("aot-gan", "paper"): 15_200_835,
    ("lama", "fourier"): 27_048_835,
    ("co-mod-gan", "paper"): 79_792_231,
    ("mat", "paper"): 61_562_518,
}


def test_every_learned_architecture_has_its_paper_counts_and_unknown_names_fail():
    assert sorted(LEARNED) == sorted(arch for arch, _ in PAPER_GENERATOR_PARAMETERS)
    with pytest.raises(InpaintError, match="unknown architecture 'nope'"):
        get_arch("nope")


@pytest.mark.parametrize(("arch", "config"), list(PAPER_GENERATOR_PARAMETERS))
def test_paper_config_builds_the_counted_generator(arch, config):
    spec = get_arch(arch)
    with torch.device("meta"):
        generator = spec.build_generator(spec.config(config))
    assert count_parameters(generator) == PAPER_GENERATOR_PARAMETERS[arch, config]


def test_display_order_comes_from_each_spec():
    specs = [get_arch(name) for name in list_archs()]
    orders = [spec.order for spec in specs]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    learned = [spec.learned for spec in specs]
    assert learned == sorted(learned, reverse=True)  # the learned architectures, then the classical ones
    assert list_archs(learned=False) == [spec.name for spec in specs if not spec.learned]
    for spec in specs:
        if not spec.learned:
            assert spec.recipe is None and list(spec.configs) == ["default"]


@pytest.mark.parametrize("arch", LEARNED)
def test_learned_architectures_have_tiny_paper_and_default_configs(arch):
    spec = get_arch(arch)
    assert "tiny" in spec.configs
    assert spec.default_config in spec.configs
    assert spec.recipe is not None
    assert (critics_for(spec, spec.config("tiny")) is None) == (arch == "pconv")  # PConv has no critic
    module = inspect.getmodule(spec.build_generator)
    assert "docs/architectures.md §" in module.__doc__  # each file cites its reference section


@pytest.mark.slow
def test_inpaint_models_reports_the_critics_training_builds():
    """For every arch and config: what the recipe builds from the settings `inpaint train` starts
    with (at the window a fixed-input network requires)."""
    listed = subprocess.run(
        [sys.executable, "-m", "inpaint_cli", "models", "--json"], capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr
    reported = {(row["arch"], row["config"]): row["discriminator_params"] for row in json.loads(listed.stdout)["architectures"]}
    expected = {}
    for arch in LEARNED:
        spec = get_arch(arch)
        for name, config in spec.configs.items():
            settings = TrainSettings(arch, "unused", [], config=name)
            settings.size = spec.recipe.required_size(config) or settings.size
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # no perceptual backbone given
                critics = spec.recipe(config, settings.train_options()).build_discriminator()
            expected[arch, name] = count_parameters(critics)
    assert {key: value for key, value in reported.items() if key[0] in LEARNED} == expected
    assert reported["context-encoder", "half-fc-rec-flat"] == 0  # trained without its critic
    assert all(value == 0 for (arch, _), value in reported.items() if arch not in LEARNED)


@pytest.mark.parametrize("arch", LEARNED)
def test_tiny_forward_backward_keeps_shape_and_range(arch):
    spec = get_arch(arch)
    torch.manual_seed(0)
    model = spec.build_generator(spec.config("tiny"))
    assert isinstance(model, InpaintModel)
    side = model.fixed_size or 64
    image = torch.rand(2, 3, side, side)
    mask = torch.zeros(2, 1, side, side)
    mask[..., side // 4 : side // 2, side // 4 : 3 * side // 4] = 1
    output = model.inpaint(image, mask)
    assert output.shape == (2, 3, side, side)
    assert output.min() >= 0 and output.max() <= 1
    # uncomposited (docs/design.md "One interface"): `fill.py` composites, and `--blend poisson` needs
    # the network's own pixels around the hole to see the seam it removes
    assert not torch.equal(output * (1 - mask), image * (1 - mask))
    output.mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("arch", LEARNED)
def test_configs_round_trip_through_json(arch):
    import dataclasses

    spec = get_arch(arch)
    for config in spec.configs.values():
        again = spec.config_from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
        assert again == config
        with torch.device("meta"):
            assert count_parameters(spec.build_generator(again)) == count_parameters(spec.build_generator(config))

"""Registry-wide checks (timm-style): every registered architecture is tested the moment it exists."""

import inspect

import pytest
import torch

from inpaint_cli.archs.base import InpaintModel, count_parameters
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import get_arch, list_archs

LEARNED = list_archs(learned=True)


def test_all_architectures_of_the_design_are_registered():
    assert list_archs() == ["context-encoder", "glcic", "deepfill-v1", "deepfill-v2", "pconv", "aot-gan", "lama", "telea", "ns", "harmonic", "patchmatch"]
    with pytest.raises(InpaintError, match="unknown architecture 'nope'"):
        get_arch("nope")


@pytest.mark.parametrize("arch", LEARNED)
def test_learned_architectures_have_tiny_paper_and_default_configs(arch):
    spec = get_arch(arch)
    assert "tiny" in spec.configs
    assert spec.default_config in spec.configs
    assert spec.recipe is not None and spec.build_discriminator is not None or arch == "pconv"
    module = inspect.getmodule(spec.build_generator)
    assert "ARCHITECTURES.md §" in module.__doc__  # each file cites its reference section


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
    # uncomposited (DESIGN.md "One interface"): `fill.py` composites, and `--blend poisson` needs
    # the network's own pixels around the hole to see the seam it removes
    assert not torch.equal(output * (1 - mask), image * (1 - mask))
    output.mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("arch", LEARNED)
def test_configs_round_trip_through_json(arch):
    import dataclasses
    import json

    spec = get_arch(arch)
    for config in spec.configs.values():
        again = spec.config_from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
        assert again == config
        with torch.device("meta"):
            assert count_parameters(spec.build_generator(again)) == count_parameters(spec.build_generator(config))

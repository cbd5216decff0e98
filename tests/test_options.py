"""The command line's checks before torch loads (`inpaint_cli.options`; issue 24, rough edge 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from inpaint_cli import options
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import NAMES, list_archs


def test_the_checks_import_neither_torch_nor_typer() -> None:
    code = "import sys, inpaint_cli.options, inpaint_cli.registry; print('torch' in sys.modules or 'typer' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_the_light_names_are_the_registry() -> None:
    # the registry refuses to build itself otherwise; this shows the list the early check reads
    assert NAMES == set(list_archs())
    for name in list_archs():
        options.check_arch(name)


@pytest.mark.parametrize(
    "names,fragment",
    [
        ({"archs": ["glcic", "nope"]}, "unknown architecture 'nope'; known: aot-gan, co-mod-gan, context-encoder"),
        ({"blend": "soft"}, "unknown --blend 'soft'; use one of auto, none, poisson"),
        ({"strategy": "tile"}, "unknown --strategy 'tile'"),
        ({"precision": "fp8"}, "unknown --precision 'fp8'"),
        ({"device": "cuda:x"}, "unknown device 'cuda:x'"),
        ({"device": "gpu"}, "unknown device 'gpu'"),
    ],
)
def test_unknown_names_are_refused(names: dict, fragment: str) -> None:
    with pytest.raises(InpaintError, match=fragment):
        options.check_names(**names)


def test_known_names_pass() -> None:
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        options.check_names(archs=[None, "telea"], blend="poisson", strategy="crop", device=device, precision="bf16")


def test_parse_time_checks_turn_errors_into_usage_errors() -> None:
    usage_error = typer.BadParameter.__mro__[1]  # click's UsageError: exit status 2
    rects = options.at_parse_time(options.check_rects)
    assert rects(["1,2,3,4", "-1,0,5,5"]) == ["1,2,3,4", "-1,0,5,5"]  # passed on unchanged
    with pytest.raises(usage_error, match="x,y,w,h") as caught:
        rects(["1,2,3,4", "1,2,3"])
    assert caught.value.exit_code == 2
    assert options.parse_phase_steps("90,10") == [90, 10] and options.parse_phase_steps(None) is None
    with pytest.raises(usage_error, match="--phase-steps must be integers"):
        options.at_parse_time(options.parse_phase_steps)("5,x")
    for decay in (0.0, 1.0, 1.5):
        with pytest.raises(usage_error, match="--ema must lie between 0 and 1"):
            options.at_parse_time(options.check_ema_decay)(decay)
    assert options.at_parse_time(options.check_ema_decay)(0.999) == 0.999

"""What the command line checks before any model library (torch) loads, so that a mistyped
argument is reported at once: the names `--arch`, `--blend`, `--strategy`, `--device` and
`--precision` accept, and the values of `--rect`, `--phase-steps` and `--ema` (counts are checked
by Typer's `min=`).

Two kinds of bad argument, as the README states: a value that cannot be parsed is a usage error
(click's `UsageError`, exit status 2, raised while the options are parsed); a well-formed name the
program does not know is an `InpaintError` (exit status 1) that lists the known ones. Nothing here
imports torch: the architecture names come from `registry.NAMES`, which the registry checks
against the specs it discovers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import TypeVar

from inpaint_cli.errors import InpaintError

STRATEGIES = ("auto", "full", "crop", "resize")
BLENDS = ("auto", "none", "poisson", "ramp")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

Value = TypeVar("Value")


def check_choice(option: str, value: str, known: Sequence[str]) -> None:
    """InpaintError unless `value` is one of `known`."""
    if value not in known:
        raise InpaintError(f"unknown {option} {value!r}; use one of {', '.join(known)}")


def check_device(name: str) -> None:
    """The device's form (whether it exists is known only once torch has loaded)."""
    if not _DEVICE.fullmatch(name):
        raise InpaintError(f"unknown device {name!r}: use {DEVICES}")


def check_arch(name: str) -> None:
    """InpaintError unless `name` is a registered architecture."""
    from inpaint_cli.registry import NAMES  # the registry's module imports no torch

    if name not in NAMES:
        raise InpaintError(f"unknown architecture {name!r}; known: {', '.join(sorted(NAMES))}")


def check_names(
    *,
    archs: Iterable[str | None] = (),
    blend: str | None = None,
    strategy: str | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> None:
    """Check the named values a command was given (None: not an option of that command)."""
    for arch in archs:
        if arch is not None:
            check_arch(arch)
    if blend is not None:
        check_choice("--blend", blend, BLENDS)
    if strategy is not None:
        check_choice("--strategy", strategy, STRATEGIES)
    if device is not None:
        check_device(device)
    if precision is not None:
        check_choice("--precision", precision, PRECISIONS)


def parse_phase_steps(text: str | None) -> list[int] | None:
    """`--phase-steps 90,10` as integers; None when not given."""
    if not text:
        return None
    try:
        steps = [int(value) for value in text.split(",")]
    except ValueError:
        raise InpaintError(f"--phase-steps must be integers separated by commas, got {text!r}") from None
    return steps


def check_ema_decay(decay: float | None) -> None:
    """`--ema`, a moving average's decay, lies strictly between 0 and 1."""
    if decay is not None and not 0 < decay < 1:
        raise InpaintError(f"--ema must lie between 0 and 1 (e.g. 0.999), got {decay}")


def check_rects(texts: Sequence[str]) -> None:
    """Every `--rect` is x,y,w,h with a positive size."""
    from inpaint_cli.masks import parse_rect

    for text in texts:
        parse_rect(text)


def _click_exceptions() -> ModuleType:
    """The exceptions of the click that Typer runs on (imported here only: the library needs no CLI)."""
    try:  # newer typer carries its own copy of click
        from typer._click import exceptions
    except ImportError:  # older typer runs on click itself
        from click import exceptions
    return exceptions


def run_app(app: Callable[..., object], report: Callable[[str], None]) -> int:
    """Run a Typer `app` and return its exit status; a malformed argument is reported to `report`
    as one line, `error: ...` (exit status 2), instead of click's usage block."""
    exceptions = _click_exceptions()
    try:
        status = app(standalone_mode=False)
    except getattr(exceptions, "NoArgsIsHelpError", ()) as help_page:  # click >= 8.2: no arguments, the help
        help_page.show()
        return help_page.exit_code
    except exceptions.UsageError as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        report(f"error: {error.format_message()}{hint}")
        return error.exit_code
    return status if isinstance(status, int) else 0


def at_parse_time(check: Callable[[Value], object]) -> Callable[[Value], Value]:
    """A Typer option callback: `check(value)` as the option is parsed; its InpaintError becomes a
    usage error (one `error: ...` line, exit status 2). The value itself is passed on unchanged."""

    def callback(value: Value) -> Value:
        try:
            check(value)
        except InpaintError as error:
            raise _click_exceptions().UsageError(str(error)) from None
        return value

    return callback

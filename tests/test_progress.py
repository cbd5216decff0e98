"""The folder and evaluation progress bar: count, rate and time left on a terminal's stderr only."""

import io

import pytest
from rich.console import Console

from inpaint_cli.terminal import progress_bar


def _drive(terminal: bool, show: bool = True) -> str:
    written = io.StringIO()
    console = Console(file=written, force_terminal=terminal, width=100, color_system=None)
    with progress_bar(console, "filling", show=show) as progress:
        for done in range(4):
            progress(done, 3)
    return written.getvalue()


def test_a_terminal_sees_count_rate_and_time_left() -> None:
    shown = _drive(terminal=True)
    assert "filling" in shown and "3/3" in shown and "images/s" in shown and "0:00:00" in shown


@pytest.mark.parametrize(("terminal", "show"), [(False, True), (True, False)])
def test_no_bar_in_a_pipe_or_under_json(terminal: bool, show: bool) -> None:
    assert _drive(terminal=terminal, show=show) == ""

"""The folder and evaluation progress bar (count, rate and time left) and the spinner of one image's
fill (the time elapsed), on a terminal's stderr only."""

import io

import pytest
from rich.console import Console

from inpaint_cli.terminal import progress_bar, spinner


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


def _spin(terminal: bool, show: bool = True) -> str:
    written = io.StringIO()
    console = Console(file=written, force_terminal=terminal, width=100, color_system=None)
    with spinner(console, "filling photo[1].jpg", show=show) as progress:
        progress(0, 1)  # counts are ignored: it stands where a bar would
        console.print("wrote photo.filled.jpg")  # a line printed meanwhile stays
    return written.getvalue()


def test_one_image_shows_a_spinner_with_the_time_elapsed_on_a_terminal() -> None:
    shown = _spin(terminal=True)
    assert "filling photo[1].jpg" in shown and "0:00:00" in shown and "wrote photo.filled.jpg" in shown


@pytest.mark.parametrize(("terminal", "show"), [(False, True), (True, False)])
def test_no_spinner_in_a_pipe_or_under_json(terminal: bool, show: bool) -> None:
    assert _spin(terminal=terminal, show=show) == "wrote photo.filled.jpg\n"

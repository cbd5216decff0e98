"""Terminal plumbing of the command line (Rich and Typer only, no inpainting logic): the consoles,
one-line errors and warnings, progress bars, the live display of a training run, and the `masks`
group that runs `masks generate` when no sub-command is named."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from inpaint_cli.errors import InpaintError

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)
DEBUG = {"on": os.environ.get("INPAINT_DEBUG", "") not in ("", "0")}


def warn(message: str) -> None:
    stderr.print(f"warning: {message}", markup=False)


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` for the command line: a library warning as one `warning: ...` line."""
    warn(str(message))


def user_errors(command):
    """Turn InpaintError (and interrupts) into one line on stderr and exit status 1 (130 for an
    interrupt); `--debug` shows the traceback instead."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InpaintError as error:
            if DEBUG["on"]:
                raise
            stderr.print(f"error: {error}", markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("error: interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _display(console: Console, *columns: Any, transient: bool = True, show: bool = True) -> Any:
    """A Rich live display on `console`, off where it is no terminal (Rich ends one there with an
    empty line, which would precede an error line)."""
    from rich.progress import Progress

    return Progress(*columns, console=console, transient=transient, disable=not (show and console.is_terminal))


@contextlib.contextmanager
def progress_bar(console: Console, label: str, show: bool = True, unit: str = "images") -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on `console`: count, rate and time left. Shown where `show` and the
    console is a terminal (never in a pipe or a log); yields a library's `progress(done, total)`."""
    if not show:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    columns = (f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with _display(console, *columns) as progress:
        task = progress.add_task(label, total=None, rate="")
        started = time.monotonic()

        def update(done: int, total: int) -> None:
            elapsed = time.monotonic() - started
            rate = f"{done / elapsed:.2f} {unit}/s" if done and elapsed > 0 else ""
            progress.update(task, completed=done, total=total, rate=rate)

        yield update


@contextlib.contextmanager
def spinner(console: Console, label: str, show: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A transient spinner and the time elapsed (where `show`, on a terminal), for work without a
    count: a set-up, or one image's fill; one that fails leaves only its error line. Yields a
    `progress(done, total)` that ignores its counts, so it stands where a `progress_bar` would."""
    from rich.markup import escape
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    with _display(console, SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(), show=show) as shown:
        shown.add_task(escape(label), total=None)  # a file name such as "photo[1].jpg" is no markup
        yield lambda done, total: None


def log_text(logs: dict[str, float]) -> str:
    """A training log row as the progress line shows it: `rec=0.1234 ... 12.3 img/s`."""
    return " ".join(f"{k}={v:.4g}" if k != "images_per_s" else f"{v:.1f} img/s" for k, v in logs.items() if k != "step")


def run_training(trainer: Any, console: Console, resumed: bool, show: bool = True, time_limit_s: float | None = None) -> Any:
    """`trainer.run(time_limit_s)` under a progress bar (where `show`) of the phase, the step and the latest logs."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    with _display(console, TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[logs]}"), TimeRemainingColumn(), transient=False, show=show) as progress:
        task = progress.add_task("train", completed=trainer.step, total=trainer.settings.steps,
                                 phase="resumed" if resumed else "training", logs="")

        def report(step: int, total: int, phase: str, logs: dict[str, float]) -> None:
            progress.update(task, completed=step, total=total, phase=phase, logs=log_text(logs))

        trainer.progress = report
        return trainer.run(time_limit_s)


class GenerateByDefault(TyperGroup):
    """A group whose first argument, when it names no sub-command, goes to `generate`:
    `inpaint masks box ...` stays `inpaint masks generate box ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["generate", *args]
        return super().parse_args(ctx, args)


def print_evaluation(console: Console, result: Any, footer: str, *, as_json: bool = False, markdown: bool = False) -> None:
    """`inpaint eval`'s results on `console`: JSON, one Markdown table, or a Rich table per mask set and `footer`."""
    from inpaint_cli.evaluate import render_tables, result_to_json, result_to_markdown

    if as_json or markdown:
        console.print(result_to_json(result) if as_json else result_to_markdown(result), markup=False, soft_wrap=True)
        return
    for table in render_tables(result):
        console.print(table)
    console.print(footer, markup=False)


def report_batch(console: Console, total: int, failures: list[str], folder: Any) -> None:
    """The closing lines of a folder fill: how many were filled where, then each failure."""
    console.print(f"filled {total - len(failures)} of {total} images into {folder}", markup=False)
    if failures:
        console.print("\n".join([f"error: {len(failures)} failed:", *(f"  {line}" for line in failures)]), markup=False)

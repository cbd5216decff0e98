"""Terminal plumbing of the command line (Rich and Typer only, no inpainting logic): progress
bars, the live display of a training run, and the `masks` group that runs `masks generate` when
no sub-command is named."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from typer.core import TyperGroup


@contextlib.contextmanager
def progress_bar(console: Console, label: str, show: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on `console` (where `show`); yields a library's `progress(done, total)`."""
    if not show:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@contextlib.contextmanager
def spinner(console: Console, label: str) -> Iterator[None]:
    """A transient spinner: a set-up that fails leaves only its error line."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn(f"[bold]{label}"), console=console, transient=True) as shown:
        shown.add_task(label, total=None)
        yield


def log_text(logs: dict[str, float]) -> str:
    """A training log row as the progress line shows it: `rec=0.1234 ... 12.3 img/s`."""
    return " ".join(f"{k}={v:.4g}" if k != "images_per_s" else f"{v:.1f} img/s" for k, v in logs.items() if k != "step")


def run_training(trainer: Any, console: Console, resumed: bool) -> Any:
    """`trainer.run()` under a progress bar showing the phase, the step and the latest logs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[logs]}"),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("train", completed=trainer.step, total=trainer.settings.steps,
                                 phase="resumed" if resumed else "training", logs="")

        def report(step: int, total: int, phase: str, logs: dict[str, float]) -> None:
            progress.update(task, completed=step, total=total, phase=phase, logs=log_text(logs))

        trainer.progress = report
        return trainer.run()


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

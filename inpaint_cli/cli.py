"""The `inpaint` command line: parse, call the library, print. Torch is imported only by the
commands that need it, so `inpaint --help` stays fast.

Errors a user can cause print one line, `error: ...`, on stderr and exit 1 (2 for malformed
arguments); `--debug` or INPAINT_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from inpaint_cli.errors import InpaintError

app = typer.Typer(
    name="inpaint",
    help="Fill holes in photographs with classic inpainting networks; train and evaluate them.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    epilog="Examples:\n\n\b\n  inpaint fill photo.jpg --mask photo_mask.png -o out.png\n  inpaint fill photos/ --mask masks/ -o filled/ --arch glcic\n  inpaint eval --metric psnr --metric ssim\n  inpaint train --arch glcic --data ~/pictures --out runs/glcic\n  inpaint models",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)
DEBUG = {"on": os.environ.get("INPAINT_DEBUG", "") not in ("", "0")}


def warn(message: str) -> None:
    stderr.print(f"warning: {message}", markup=False)


def user_errors(command):
    """Turn InpaintError (and interrupts) into one line on stderr and exit status 1."""

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


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """inpaint: fill, train and evaluate image inpainting methods."""
    if debug:
        DEBUG["on"] = True


@app.command()
@user_errors
def fill(
    input: Annotated[Path, typer.Argument(help="An image file, or a folder of images.", show_default=False, metavar="INPUT")],
    mask: Annotated[Optional[Path], typer.Option("--mask", "-m", help="Mask file, or folder of masks matched by stem (X.* or X_mask.*). White (>= 128) = hole; RGBA: transparent = hole.")] = None,
    rect: Annotated[list[str], typer.Option("--rect", help="Hole rectangle x,y,w,h in pixels (repeatable; united with --mask).")] = [],
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Treat black (or opaque) as the hole.")] = False,
    resize_mask: Annotated[bool, typer.Option("--resize-mask", help="Resize a mask of another size to the image (nearest).")] = False,
    arch: Annotated[Optional[str], typer.Option("--arch", "-a", help="Architecture (default: the best bundled model). See `inpaint models`.")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Weights file, or hf://owner/repo/path.safetensors[@revision].")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (format from its extension) or folder. Default: X.filled.<ext> beside the input; DIR-filled/ for a folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    blend: Annotated[str, typer.Option("--blend", help="auto (the post-processing the weights were released with, else the paper's own: poisson for GLCIC, none for the others), none, or poisson (fast marching + Poisson blending).")] = "auto",
    strategy: Annotated[str, typer.Option("--strategy", help="full: whole image; crop: a window with context around each hole region; resize: at most --max-side, hole upsampled; auto: full up to --max-side, else crop (fixed-input models such as context-encoder always crop 128x128 windows, scaling holes larger than the model's output).")] = "auto",
    max_side: Annotated[int, typer.Option("--max-side", help="Longer side a model fills in one piece (auto/resize).")] = 1024,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    quality: Annotated[int, typer.Option("--quality", help="JPEG/WebP quality. A JPEG output is re-encoded, so its known pixels change slightly; PNG, TIFF, BMP keep them bit for bit.")] = 95,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of a folder input.")] = False,
    attention_map: Annotated[Optional[Path], typer.Option("--attention-map", help="DeepFill only: write the colour-coded map of where each hole pixel borrowed from.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per image on stdout.")] = False,
) -> None:
    """Fill the holes of an image (or a folder of images).

    Examples:

    \b
      inpaint fill photo.jpg --mask photo_mask.png -o out.png
      inpaint fill photos/ --mask masks/ -o filled/ --arch glcic
      inpaint fill photo.jpg --rect 120,80,64,64 --blend poisson

    Only hole pixels change. Greyscale, palette and RGBA images are written back in their mode
    (alpha untouched); 16-bit PNG/TIFF are filled at 8-bit precision in the hole and written back
    16-bit with known pixels unchanged; EXIF orientation is applied.
    """
    from inpaint_cli.masks import plan_fill

    plan = plan_fill(input, mask, rect, output, recursive=recursive, invert=invert_mask, resize_mask=resize_mask,
                     quality=quality, overwrite=overwrite, attention_map=attention_map, warn=warn)
    # everything a user can get wrong is checked before torch is even imported
    from inpaint_cli.fill import FillOptions, Inpainter, fill_planned, resolve_model

    inpainter = Inpainter(resolve_model(arch, weights, device), device, FillOptions(strategy=strategy, blend=blend, max_side=max_side))

    def report(written) -> None:
        if as_json:
            stdout.print(json.dumps(written.record()), markup=False)
        elif not plan.batch:
            stderr.print(f"wrote {written.job.target} ({written.method}, {written.hole_pixels} hole pixels)", markup=False)

    with _progress("filling", show=plan.batch) as progress:
        failures = fill_planned(plan, inpainter, warn=warn, done=report, progress=progress,
                                failed=lambda line: stderr.print(f"error: {line}", markup=False))
    if plan.batch:
        stderr.print(f"filled {len(plan.jobs) - len(failures)} of {len(plan.jobs)} images into {plan.jobs[0].target.parent}", markup=False)
    if failures:
        stderr.print("\n".join([f"error: {len(failures)} failed:", *(f"  {line}" for line in failures)]), markup=False)
        raise typer.Exit(1)


@contextlib.contextmanager
def _progress(label: str, show: bool = True):
    """A transient progress bar on stderr (where `show`); yields a library's `progress(done, total)`."""
    if not show:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr, transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command("eval")
@user_errors
def eval_command(
    arch: Annotated[list[str], typer.Option("--arch", "-a", help="Method to compare (repeatable): an architecture's bundled weights, or telea / ns / harmonic. Default: every bundled model and the three classical methods.")] = [],
    weights: Annotated[list[str], typer.Option("--weights", "-w", help="Weights file or hf:// path to compare (repeatable; labelled by file stem).")] = [],
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder of images (recursive). Default: $INPAINT_DATA/eval.")] = None,
    mask_sets: Annotated[list[str], typer.Option("--masks", help="Mask set (repeatable): a generator (box, center, irregular[:LO-HI], freeform, lama-thin, lama-medium, lama-thick) or a folder of mask files. Each gets its own table.")] = [],
    metric: Annotated[list[str], typer.Option("--metric", help="l1, l2, psnr, ssim (repeatable); hole_l1 is always reported.")] = [],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated masks and of folder-mask assignment.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Use only the first N images.")] = None,
    size: Annotated[int, typer.Option("--size", help="Images are resized (shorter side) and centre-cropped to this square.")] = 256,
    blend: Annotated[str, typer.Option("--blend", help="auto (each model's release post-processing, else its paper's: poisson for GLCIC, none for the others; the table labels a blended method 'NAME + poisson'), none, or poisson for every learned method.")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    save_dir: Annotated[Optional[Path], typer.Option("--save-dir", help="Write every fill and a comparison grid per mask set here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout (no tables).")] = False,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write the results as CSV to this file.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the results as one Markdown table on stdout.")] = False,
) -> None:
    """Compare methods on a fixed protocol (DESIGN.md): same images, same masks, same metrics.

    Examples:

    \b
      inpaint eval --metric psnr
      inpaint eval --arch telea --arch glcic --data eval/ --masks irregular --metric psnr --metric ssim
      inpaint eval --weights runs/glcic/glcic-half-l1.safetensors --masks box --masks masks/30-40
    """
    from inpaint_cli.evaluate import evaluate_methods, render_tables, result_to_csv, result_to_json, result_to_markdown
    from inpaint_cli.io import data_folder

    if csv_path is not None and csv_path.exists():
        raise InpaintError(f"{csv_path} exists; remove it or pick another --csv path")
    data_dir = data or data_folder("eval")
    with _progress("evaluating") as progress:
        result, count = evaluate_methods(arch, weights, data_dir, mask_sets or ["box", "irregular"], metric or ["psnr", "ssim"],
                                         seed=seed, limit=limit, size=size, blend=blend, device=device, save_dir=save_dir,
                                         progress=progress)
    if csv_path is not None:
        csv_path.write_text(result_to_csv(result))
    if as_json:
        stdout.print(result_to_json(result), markup=False)
        return
    if markdown:
        stdout.print(result_to_markdown(result), markup=False, soft_wrap=True)
        return
    for table in render_tables(result):
        stdout.print(table)
    stdout.print(f"{count} images from {data_dir} at {size}x{size}, seed {seed}; mean ± standard error", markup=False)


@app.command()
@user_errors
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
) -> None:
    """List architectures, their configs with parameter counts, and the bundled weights.

    Example: inpaint models
    """
    from inpaint_cli.catalog import catalog, render_catalog

    listed = catalog()
    if as_json:
        stdout.print(json.dumps(listed.document(), indent=2), markup=False)
        return
    for renderable in render_catalog(listed):
        stdout.print(renderable)


@app.command()
@user_errors
def masks(
    kind: Annotated[str, typer.Argument(help="Generator: box, center, irregular[:LO-HI], freeform, lama-thin, lama-medium, lama-thick.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write 00000.png, 00001.png, ... into.")],
    count: Annotated[int, typer.Option("--count", "-n", help="How many masks.")] = 100,
    size: Annotated[int, typer.Option("--size", help="Side of the square masks.")] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Mask i is drawn from default_rng([seed, i, kind_id]).")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing mask files.")] = False,
) -> None:
    """Write a set of generated masks (white = hole), the same the evaluation draws.

    Example: inpaint masks lama-thick --count 50 --out masks/thick
    """
    from inpaint_cli.masks import generate_mask_set

    if count < 1 or size < 8:
        raise InpaintError("--count must be >= 1 and --size >= 8")
    paths = generate_mask_set(kind, count, size, seed, out, overwrite=overwrite)
    stderr.print(f"wrote {len(paths)} {kind} masks to {out}", markup=False)


@app.command()
@user_errors
def train(
    arch: Annotated[str, typer.Option("--arch", "-a", help="Architecture to train (see `inpaint models`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint/, samples/, log.jsonl and the export <arch>-<config>.safetensors.")],
    data: Annotated[list[Path], typer.Option("--data", help="Image folder (repeatable, recursive). Default: $INPAINT_DATA/train.")] = [],
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Config name (default: the arch's bundled one; `paper` = the paper's).")] = None,
    size: Annotated[int, typer.Option("--size", help="Square training crop (the papers use 256).")] = 128,
    batch: Annotated[int, typer.Option("--batch", help="Images per step.")] = 16,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total steps over all phases [default: 20000; on --resume, the stored value].")] = None,
    phase_steps: Annotated[Optional[str], typer.Option("--phase-steps", help="Lengths of all phases but the last, comma-separated (GLCIC: T_C,T_D; DeepFill v1: L1-only steps before the critics start). Default: the paper's proportions of --steps (GLCIC 90k/10k/400k; DeepFill v1 none).")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Generator learning rate (default: the recipe's).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data order, holes and initialisation.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast on CUDA and on CPUs with AMX, fp16 on older CUDA, else fp32), fp32, bf16 or fp16.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", help="Processes drawing the coming batches (crops and holes) ahead of the step, so a GPU is not kept waiting; 0: one background thread. Any number gives the same batches.")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints (and exports).")] = 500,
    sample_every: Annotated[int, typer.Option("--sample-every", help="Steps between sample grids in samples/.")] = 500,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where its checkpoint left it.")] = False,
    init_weights: Annotated[Optional[str], typer.Option("--init-weights", help="Start the generator from a release file (warm start).")] = None,
    ema: Annotated[Optional[float], typer.Option("--ema", help="Export a moving average of the generator's weights with this decay, e.g. 0.999 (updated every generator step; it steadies fills that swing between checkpoints). Default: the last step's weights, as the papers.")] = None,
    backbone: Annotated[Optional[Path], typer.Option("--backbone", help="Safetensors file of the pretrained backbone for perceptual losses (PConv, AOT-GAN: VGG; LaMa: ResNet50).")] = None,
    masks: Annotated[list[str], typer.Option("--masks", help="Training holes, KIND or KIND@WEIGHT (repeatable), e.g. --masks box --masks irregular:10-60. Default: the paper's holes for the arch.")] = [],
    cache_side: Annotated[int, typer.Option("--cache-side", help="Images are resized once so their shorter side is this, then cropped (the evaluation's scale is 256).")] = 256,
    data_note: Annotated[str, typer.Option("--data-note", help="What the data is and its terms, recorded in the export's metadata.")] = "",
) -> None:
    """Train an architecture on your own pictures.

    Examples:

    \b
      inpaint train --arch glcic --data ~/pictures --out runs/glcic
      inpaint train --arch glcic --out runs/glcic --resume --steps 40000
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

    from inpaint_cli.io import data_folder
    from inpaint_cli.train import TrainSettings, start_training
    from inpaint_cli.train.distributed import launched_rank

    quiet = launched_rank() != 0  # under torchrun only rank 0 reports

    phases = None
    if phase_steps:
        try:
            phases = [int(v) for v in phase_steps.split(",")]
        except ValueError:
            raise InpaintError(f"--phase-steps must be integers separated by commas, got {phase_steps!r}") from None
    if size < 16 or batch < 1 or workers < 0:
        raise InpaintError("--size must be >= 16, --batch >= 1 and --workers >= 0")
    if ema is not None and not 0 < ema < 1:
        raise InpaintError(f"--ema must lie between 0 and 1 (e.g. 0.999), got {ema}")
    settings = TrainSettings(
        arch=arch, out_dir=str(out), data_dirs=[str(d) for d in data or [data_folder("train")]] if not resume else [],
        config=config, size=size, batch=batch, steps=steps or 20_000, lr=lr, phase_steps=phases, seed=seed,
        checkpoint_every=checkpoint_every, sample_every=sample_every, cache_side=cache_side,
        backbone=str(backbone) if backbone else None, masks=masks or None, init_weights=init_weights, ema_decay=ema, data_note=data_note,
    )
    # the set-up (networks, image cache) gets a transient spinner: a start-up error leaves only its line
    with Progress(SpinnerColumn(), TextColumn("[bold]starting"), console=stderr, transient=True, disable=quiet) as starting:
        starting.add_task("start", total=None)
        trainer = start_training(settings, resume=resume, device=device, steps_override=steps, precision=precision, workers=workers)
    with Progress(TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[logs]}"),
                  TimeRemainingColumn(), console=stderr, disable=quiet) as progress:
        task = progress.add_task("train", completed=trainer.step, total=trainer.settings.steps,
                                 phase="resumed" if resume else "training", logs="")

        def report(step: int, total: int, phase: str, logs: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.4g}" if k != "images_per_s" else f"{v:.1f} img/s" for k, v in logs.items() if k != "step")
            progress.update(task, completed=step, total=total, phase=phase, logs=text)

        trainer.progress = report
        result = trainer.run()
    if not quiet:
        stderr.print(f"trained {trainer.spec.name} {trainer.config_name} to step {result.step}; export: {result.export_path}", markup=False)


@app.command()
@user_errors
def release(
    export: Annotated[Path, typer.Argument(help="The export of a training run (<out>/<arch>-<config>.safetensors).", show_default=False)],
    to: Annotated[Optional[Path], typer.Option("--to", help="Bundled-weights folder to release into. Default: the one `fill` reads ($INPAINT_WEIGHTS or the repository's weights/).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Evaluation images. Default: $INPAINT_DATA/eval.")] = None,
    irregular: Annotated[Optional[Path], typer.Option("--irregular", help="Folder of the NVIDIA irregular-mask bands 10-20, 30-40, 50-60. Default: $INPAINT_DATA/masks/nvidia-irregular.")] = None,
    eval_json: Annotated[Optional[Path], typer.Option("--eval-json", help="Use this `inpaint eval --json` result (the export beside telea and ns) instead of evaluating again.")] = None,
    blend: Annotated[str, typer.Option("--blend", help="Post-processing the release is measured with and that `fill --blend auto` then applies to it: auto (the architecture's own from its paper), none, or poisson.")] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
) -> None:
    """Bundle a trained export: evaluate it beside Telea and NS on the protocol (seed 0: boxes and
    the NVIDIA 10-20, 30-40 and 50-60 % bands), refuse it unless it beats both on PSNR, SSIM and
    hole L1 on boxes and 30-40 %, stamp the table into its metadata, copy it in as
    <arch>-<config>.safetensors and make the best model that beats both everywhere the default.

    Examples:

      inpaint release runs/glcic/glcic-half-l1.safetensors
      inpaint release runs/dfv1/deepfill-v1-half.safetensors --blend poisson
    """
    from inpaint_cli.evaluate import result_to_markdown
    from inpaint_cli.release import measure, release as release_export

    with _progress("evaluating") as progress:
        measured = measure(export, to=to, data=data, irregular=irregular, eval_json=eval_json, blend=blend, device=device,
                           progress=progress)
    stdout.print(result_to_markdown(measured.result), markup=False, soft_wrap=True)  # shown even when refused
    target, verdict, default = release_export(export, measured.result, measured.weights_dir, measured.post_processing)
    stdout.print(f"released {target}; default model: {default}", markup=False)
    if not verdict.margin:
        warn(f"{target.name} falls short of the default model's bar: {'; '.join(verdict.shortfalls)}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    warn(str(message))


def main() -> None:
    """Console entry point; library warnings print as one `warning: ...` line."""
    import warnings

    warnings.showwarning = _one_line_warning
    app()

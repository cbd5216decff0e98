"""The `inpaint` command line: parse, call the library, print. Torch is imported only by the
commands that need it, so `inpaint --help` stays fast.

Errors a user can cause print one line, `error: ...`, on stderr and exit 1 (2 for malformed
arguments); `--debug` or INPAINT_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass
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


# ------------------------------------------------------------------------------------------ fill


def _hole_for(image, mask_path: Optional[Path], rects: list[str], invert: bool, resize_mask: bool):
    """The union of the mask file (if any) and the rectangles, as a bool H x W array."""
    import cv2
    import numpy as np

    from inpaint_cli.io import read_mask
    from inpaint_cli.masks import parse_rect, rect_mask

    hole = np.zeros((image.height, image.width), dtype=bool)
    if mask_path is not None:
        mask = read_mask(mask_path, invert=invert)
        if mask.shape != hole.shape:
            if not resize_mask:
                raise InpaintError(
                    f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image.path} is "
                    f"{image.width}x{image.height}; pass --resize-mask to resize it (nearest)"
                )
            mask = cv2.resize(mask.astype(np.uint8), (image.width, image.height), interpolation=cv2.INTER_NEAREST) > 0
        hole |= mask
    for text in rects:
        rect, warning = rect_mask(image.height, image.width, parse_rect(text))
        if warning:
            warn(f"{image.path.name}: {warning}")
        hole |= rect
    return hole


@dataclass(frozen=True)
class FillJob:
    image: Path
    mask: Optional[Path]  # None: the holes come from --rect alone
    target: Path
    problem: Optional[str] = None  # why this image cannot be filled (reported, the batch goes on)


def _mask_hint(image: Path) -> str:
    return f"expected {image.stem}.* or {image.stem}_mask.*"


def _jobs(input_path: Path, mask: Optional[Path], output: Optional[Path], recursive: bool) -> tuple[list[FillJob], bool]:
    """The jobs for a file or a folder, and whether it is a batch."""
    from inpaint_cli.io import find_mask, list_images

    if not input_path.exists():
        raise InpaintError(f"input not found: {input_path}")
    if input_path.is_file():
        if mask is not None and mask.is_dir():
            found = find_mask(mask, input_path)
            if found is None:
                raise InpaintError(f"no mask for {input_path.name} in {mask} ({_mask_hint(input_path)})")
            mask = found
        if mask is not None and not mask.exists():
            raise InpaintError(f"mask not found: {mask}")
        if output is not None and output.is_dir():
            output = output / input_path.name
        target = output or input_path.with_name(f"{input_path.stem}.filled{input_path.suffix}")
        return [FillJob(input_path, mask, target)], False
    images = list_images(input_path, recursive=recursive)
    if not images:
        raise InpaintError(f"no images in {input_path}" + ("" if recursive else " (use --recursive to descend)"))
    if mask is not None and not mask.exists():
        raise InpaintError(f"mask not found: {mask}")
    out_dir = output or input_path.with_name(f"{input_path.name}-filled")
    if out_dir.exists() and not out_dir.is_dir():
        raise InpaintError(f"output {out_dir} is a file; a folder input needs an output folder")
    jobs = []
    for image in images:
        target = out_dir / image.relative_to(input_path)
        if mask is None or mask.is_file():
            jobs.append(FillJob(image, mask, target))
            continue
        found = find_mask(mask, image)
        problem = None if found else f"no mask for {image.name} in {mask} ({_mask_hint(image)})"
        jobs.append(FillJob(image, found, target, problem))
    return jobs, True


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
    from inpaint_cli.io import check_output_path, merge_fill, read_image, write_image

    if mask is None and not rect:
        raise InpaintError("no hole given: pass --mask FILE|FOLDER and/or --rect x,y,w,h")
    if not 1 <= quality <= 100:
        raise InpaintError(f"--quality must be 1..100, got {quality}")
    jobs, batch = _jobs(input, mask, output, recursive)
    if attention_map is not None and batch:
        raise InpaintError("--attention-map takes a single image, not a folder")
    if not batch:  # everything a user can get wrong is checked before torch is even imported
        check_output_path(jobs[0].target, overwrite)
        if attention_map is not None:
            check_output_path(attention_map, overwrite)
        first_image = read_image(jobs[0].image)
        first_hole = _hole_for(first_image, jobs[0].mask, rect, invert_mask, resize_mask)

    from inpaint_cli.fill import FillOptions, Inpainter, resolve_model

    loaded = resolve_model(arch, weights, device)
    inpainter = Inpainter(loaded, device, FillOptions(strategy=strategy, blend=blend, max_side=max_side))
    def load(job):
        """Check, decode and mask one batch job (runs in a background thread)."""
        if job.problem:
            raise InpaintError(job.problem)
        _check_target(job.target, overwrite)
        image = read_image(job.image)
        return image, _hole_for(image, job.mask, rect, invert_mask, resize_mask)

    from concurrent.futures import ThreadPoolExecutor

    failures: list[str] = []
    reader = ThreadPoolExecutor(max_workers=1)  # the next image decodes while this one fills
    upcoming = reader.submit(load, jobs[0]) if batch else None
    for index, job in enumerate(_progress(jobs, batch, "filling")):
        image_path, target = job.image, job.target
        started = time.perf_counter()
        current = upcoming
        if batch and index + 1 < len(jobs):
            upcoming = reader.submit(load, jobs[index + 1])
        try:
            image, hole = current.result() if batch else (first_image, first_hole)
            if not hole.any():
                warn(f"{image_path.name}: the mask is empty; the output is a copy of the input")
            elif hole.all():
                warn(f"{image_path.name}: the mask covers the whole image; filling with no context")
            filled, flow = inpainter.fill(image.rgb8, hole, attention=attention_map is not None)
            if batch:
                _make_folder(target.parent)
            write_image(target, merge_fill(image, filled, hole), quality=quality, overwrite=overwrite)
            if flow is not None:
                from inpaint_cli.io import LoadedImage

                write_image(attention_map, LoadedImage(flow, None, "RGB", None, attention_map), overwrite=overwrite)
        except InpaintError as error:
            if not batch:
                raise
            failures.append(f"{image_path}: {error}")
            stderr.print(f"error: {image_path}: {error}", markup=False)
            continue
        if as_json:
            record = {"input": str(image_path), "output": str(target), "method": inpainter.label,
                      "hole_pixels": int(hole.sum()), "strategy": inpainter.strategy_for(hole),
                      "seconds": round(time.perf_counter() - started, 3)}
            stdout.print(json.dumps(record), markup=False)
        elif not batch:
            stderr.print(f"wrote {target} ({inpainter.label}, {int(hole.sum())} hole pixels)", markup=False)
    reader.shutdown()
    if batch:
        done = len(jobs) - len(failures)
        stderr.print(f"filled {done} of {len(jobs)} images into {jobs[0].target.parent}", markup=False)
        if failures:
            stderr.print(f"error: {len(failures)} failed:", markup=False)
            for line in failures:
                stderr.print(f"  {line}", markup=False)
            raise typer.Exit(1)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InpaintError(f"cannot create output folder {folder}: {error.strerror}") from None


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InpaintError(f"{path} exists; pass --overwrite to replace it")


def _progress(items, show: bool, label: str):
    """Iterate with a rich progress bar on stderr (only for batches)."""
    if not show:
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr, transient=True) as progress:
        task = progress.add_task(label, total=len(items))
        for item in items:
            yield item
            progress.advance(task)


# ------------------------------------------------------------------------------------------ eval


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
    from inpaint_cli.evaluate import render_tables, result_to_csv, result_to_json, result_to_markdown
    from inpaint_cli.fill import read_manifest
    from inpaint_cli.registry import list_archs

    if csv_path is not None and csv_path.exists():
        raise InpaintError(f"{csv_path} exists; remove it or pick another --csv path")
    data_dir = data or _data_default([], "eval")[0]
    if not arch and not weights:
        arch = list(read_manifest().get("models", {})) + list_archs(learned=False)
    result, count = _evaluate(arch, weights, data_dir, mask_sets or ["box", "irregular"], metric or ["psnr", "ssim"],
                              seed=seed, limit=limit, size=size, blend=blend, device=device, save_dir=save_dir)
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


def _evaluate(arch: list[str], weights: list[str], data_dir: Path, mask_sets: list[str], metrics: list[str], *,
              seed: int = 0, limit: int | None = None, size: int = 256, blend: str = "auto", device: str = "auto",
              save_dir: Path | None = None):
    """The protocol evaluation of `eval` (and `release`), with a progress bar: (result, image count)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from inpaint_cli.evaluate import evaluate, load_eval_images
    from inpaint_cli.fill import FillOptions, Inpainter, resolve_model

    if limit is not None and limit < 1:
        raise InpaintError("--limit must be at least 1")
    methods = [resolve_model(name, None, device) for name in arch] + [resolve_model(None, w, device) for w in weights]
    options = FillOptions(strategy="auto", blend=blend, max_side=max(size, 1024))
    inpainters = [Inpainter(loaded, device, options if loaded.spec.learned else FillOptions()) for loaded in methods]
    images = load_eval_images(data_dir, size, limit)
    with Progress("[bold]evaluating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=stderr, transient=True) as progress:
        task = progress.add_task("eval", total=len(inpainters) * len(images) * len(mask_sets))
        result = evaluate(inpainters, images, mask_sets, metrics, seed=seed, save_dir=save_dir,
                          progress=lambda k: progress.advance(task, k))
    return result, len(images)


# ---------------------------------------------------------------------------------------- models


@app.command()
@user_errors
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON on stdout.")] = False,
) -> None:
    """List architectures, their configs with parameter counts, and the bundled weights.

    Example: inpaint models
    """
    import torch
    from rich.table import Table

    from inpaint_cli.archs.base import count_parameters
    from inpaint_cli.checkpoint import read_metadata
    from inpaint_cli.fill import read_manifest, weights_dir
    from inpaint_cli.registry import critics_for, get_arch, list_archs

    rows = []
    for name in list_archs():
        spec = get_arch(name)
        for config_name, config in spec.configs.items():
            with torch.device("meta"):
                generator = spec.build_generator(config)
                discriminator = critics_for(spec, config)
            rows.append({"arch": name, "config": config_name if spec.learned else "-",
                         "default": config_name == spec.default_config and spec.learned,
                         "generator_params": count_parameters(generator),
                         "discriminator_params": count_parameters(discriminator),
                         "input": spec.input_note, "paper": spec.title})
    manifest = read_manifest()
    bundled = []
    directory = weights_dir()
    for arch, file in manifest.get("models", {}).items():
        metadata = read_metadata(directory / file)
        bundled.append({"arch": arch, "file": file, "config": metadata["config"], "steps": metadata.get("step"),
                        "data": metadata.get("data", ""), "summary": manifest.get("summaries", {}).get(arch, ""),
                        "default": manifest.get("default") == file})
    if as_json:
        stdout.print(json.dumps({"architectures": rows, "bundled": bundled, "default": manifest.get("default")}, indent=2), markup=False)
        return
    table = Table(title="Architectures and configs (parameters)")
    for column in ("arch", "config", "generator", "discriminator(s)"):
        table.add_column(column, justify="right" if column in ("generator", "discriminator(s)") else "left", no_wrap=True)
    for row in rows:
        config = f"{row['config']} *" if row["default"] else row["config"]
        table.add_row(row["arch"], config, f"{row['generator_params']:,}", f"{row['discriminator_params']:,}")
    stdout.print(table)
    papers = Table(title="Papers and inputs")
    for column in ("arch", "paper", "input"):
        papers.add_column(column, no_wrap=column == "arch")
    for name in dict.fromkeys(row["arch"] for row in rows):
        first = next(row for row in rows if row["arch"] == name)
        papers.add_row(name, first["paper"], first["input"])
    stdout.print(papers)
    stdout.print("* the config that `--arch NAME` means (its bundled weights, when present)")
    if bundled:
        weights_table = Table(title=f"Bundled weights ({directory})")
        for column in ("arch", "file", "steps", "trained on", "model card"):
            weights_table.add_column(column)
        for item in bundled:
            name = f"{item['file']} (default)" if item["default"] else item["file"]
            weights_table.add_row(item["arch"], name, str(item["steps"]), item["data"], item["summary"])
        stdout.print(weights_table)
    else:
        stdout.print("No bundled weights: the default model is telea. Train one with `inpaint train --arch glcic`.")
    stdout.print(f"Default model for `inpaint fill`: {manifest.get('default', 'telea')}")


# ----------------------------------------------------------------------------------------- masks


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


# ----------------------------------------------------------------------------------------- train


def _data_default(data: list[Path], sub: str) -> list[Path]:
    if data:
        return data
    root = os.environ.get("INPAINT_DATA")
    if not root:
        raise InpaintError(f"no --data given and INPAINT_DATA is not set: pass --data DIR or set INPAINT_DATA (its {sub}/ folder is used)")
    return [Path(root) / sub]


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

    from inpaint_cli.train import TrainSettings, start_training

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
        arch=arch, out_dir=str(out), data_dirs=[str(d) for d in _data_default(data, "train")] if not resume else [],
        config=config, size=size, batch=batch, steps=steps or 20_000, lr=lr, phase_steps=phases, seed=seed,
        checkpoint_every=checkpoint_every, sample_every=sample_every, cache_side=cache_side,
        backbone=str(backbone) if backbone else None, masks=masks or None, init_weights=init_weights, ema_decay=ema, data_note=data_note,
    )
    # the set-up (networks, the image cache) gets a transient spinner, so that a start-up error
    # leaves only its one line on stderr
    with Progress(SpinnerColumn(), TextColumn("[bold]starting"), console=stderr, transient=True) as starting:
        starting.add_task("start", total=None)
        trainer = start_training(settings, resume=resume, device=device, steps_override=steps, precision=precision, workers=workers)
    with Progress(
        TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[logs]}"), TimeRemainingColumn(), console=stderr,
    ) as progress:
        task = progress.add_task("train", completed=trainer.step, total=trainer.settings.steps,
                                 phase="resumed" if resume else "training", logs="")

        def report(step: int, total: int, phase: str, logs: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.4g}" if k != "images_per_s" else f"{v:.1f} img/s" for k, v in logs.items() if k != "step")
            progress.update(task, completed=step, total=total, phase=phase, logs=text)

        trainer.progress = report
        result = trainer.run()
    stderr.print(f"trained {trainer.spec.name} {trainer.config_name} to step {result.step}; export: {result.export_path}", markup=False)


# --------------------------------------------------------------------------------------- release


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
    from inpaint_cli.checkpoint import read_metadata
    from inpaint_cli.evaluate import result_from_json, result_to_markdown
    from inpaint_cli.fill import BLENDS, weights_dir
    from inpaint_cli.registry import get_arch
    from inpaint_cli.release import BASELINES, REFERENCES
    from inpaint_cli.release import release as release_export

    directory = to or weights_dir()
    if directory is None:
        raise InpaintError("no bundled-weights folder found: pass --to DIR or set INPAINT_WEIGHTS")
    if blend not in BLENDS:
        raise InpaintError(f"unknown --blend {blend!r}; use one of {', '.join(BLENDS)}")
    if blend == "auto":
        blend = get_arch(read_metadata(export)["arch"]).post_processing
    if eval_json is not None:
        if not eval_json.is_file():
            raise InpaintError(f"--eval-json file not found: {eval_json}")
        result = result_from_json(eval_json.read_text())
    else:
        data_dir = data or _data_default([], "eval")[0]
        bands = irregular or Path(_data_default([], "masks")[0]) / "nvidia-irregular"
        mask_sets = ["box", *(str(bands / band) for band in ("10-20", "30-40", "50-60"))]
        for folder in mask_sets[1:]:
            if not Path(folder).is_dir():
                raise InpaintError(f"mask folder not found: {folder} (pass --irregular DIR)")
        result, _ = _evaluate([*BASELINES, *REFERENCES], [str(export)], data_dir, mask_sets, ["psnr", "ssim"],
                              blend=blend, device=device)
    stdout.print(result_to_markdown(result), markup=False, soft_wrap=True)  # shown even when refused
    target, verdict, default = release_export(export, result, Path(directory), blend)
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

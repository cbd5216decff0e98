"""The `inpaint` command line: parse, call the library, print. Torch is imported only by the
commands that need it, so `inpaint --help` stays fast.

Errors a user can cause print one line, `error: ...`, on stderr and exit 1 (2 for malformed arguments);
every argument is checked before torch loads (`options`); `--debug` or INPAINT_DEBUG=1 shows tracebacks.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from inpaint_cli import options
from inpaint_cli.errors import InpaintError
from inpaint_cli.terminal import (DEBUG, GenerateByDefault, one_line_warning, print_evaluation, progress_bar, report_batch,
                                  run_training, spinner, stderr, stdout, user_errors, warn)

EXAMPLES = ["inpaint fill photo.jpg --mask photo_mask.png -o out.png", "inpaint fill photos/ --mask masks/ -o filled/ --arch glcic",
            "inpaint eval --metric psnr --metric ssim", "inpaint train --arch glcic --data ~/pictures --out runs/glcic",
            "inpaint convert big-lama/models/best.ckpt --install", "inpaint models"]
app = typer.Typer(name="inpaint", help="Fill holes in photographs with classic inpainting networks; train and evaluate them.",
                  add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  epilog="Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in EXAMPLES), context_settings={"help_option_names": ["-h", "--help"]})
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps."
DILATE_HELP = "Grow every hole by N pixels (a disk) before filling: takes in the halo a hand-drawn mask leaves."
FEATHER_HELP = "Soften the fill's border over N pixels inside the (grown) hole; pixels outside it stay bit for bit."
FILL_PRECISION_HELP = ("The network's precision: auto (bf16 autocast on CUDA, fp32 on the CPU: the fills the bundled weights were"
                       " measured with), fp32, bf16 (on CPUs with AVX-512 BF16 or AMX: GLCIC 1.9x faster, most others 1.1-1.4x; fills within a few"
                       " levels) or fp16 (CUDA).")


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
    rect: Annotated[list[str], typer.Option("--rect", help="Hole rectangle x,y,w,h in pixels (repeatable; united with --mask).", callback=options.at_parse_time(options.check_rects))] = [],
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Treat black (or opaque) as the hole.")] = False,
    resize_mask: Annotated[bool, typer.Option("--resize-mask", help="Resize a mask of another size to the image (nearest).")] = False,
    arch: Annotated[Optional[str], typer.Option("--arch", "-a", help="Architecture: its installed weights, else its bundled ones (default: the installed default model, else the best bundled one). See `inpaint models`.")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", "-w", help="Weights file, or hf://owner/repo/path.safetensors[@revision].")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (format from its extension) or folder. Default: X.filled.<ext> beside the input; DIR-filled/ for a folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    blend: Annotated[str, typer.Option("--blend", help="auto (the post-processing the weights were released with, else the paper's own: poisson for GLCIC, none for the others), none, poisson (Poisson blending), or ramp (the harmonic fill at the hole's edge, the network's from 6 pixels in).")] = "auto",
    strategy: Annotated[str, typer.Option("--strategy", help="full: whole image; crop: a window with context around each hole region; resize: at most --max-side, hole upsampled; auto: full up to --max-side, else crop (fixed-input models such as context-encoder always crop 128x128 windows, scaling holes larger than the model's output).")] = "auto",
    max_side: Annotated[int, typer.Option("--max-side", min=1, help="Longer side a model fills in one piece (auto/resize).")] = 1024,
    dilate: Annotated[int, typer.Option("--dilate", min=0, metavar="N", help=DILATE_HELP)] = 0,
    feather: Annotated[int, typer.Option("--feather", min=0, metavar="N", help=FEATHER_HELP)] = 0,
    samples: Annotated[int, typer.Option("--samples", min=1, metavar="N", help="MAT, Co-ModGAN: write N different fills, X.filled-0.<ext> ... (seeds --seed .. --seed+N-1).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of a fill's random draws (patchmatch's search; MAT's and Co-ModGAN's z and noise): another seed, another fill.")] = 0,
    truncation: Annotated[Optional[float], typer.Option("--truncation", metavar="PSI", help="MAT, Co-ModGAN: truncation psi of the style code, 0 (the average) to 1 [default: the official inference's, 1].")] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=FILL_PRECISION_HELP)] = "auto",
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WebP quality. A JPEG output is re-encoded, so its known pixels change slightly; PNG, TIFF, BMP keep them bit for bit.")] = 95,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of a folder input.")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="N", help="A folder: up to N images of one size share each network forward (meant for a GPU; on the CPU the same bytes as N = 1).")] = 1,
    attention_map: Annotated[Optional[Path], typer.Option("--attention-map", help="DeepFill only: write the colour-coded map of where each hole pixel borrowed from.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per image on stdout.")] = False,
) -> None:
    """Fill the holes of an image (or a folder of images).

    \b
    Examples:
      inpaint fill photo.jpg --mask photo_mask.png -o out.png
      inpaint fill photos/ --mask masks/ -o filled/ --arch glcic
      inpaint fill photo.jpg --rect 120,80,64,64 --blend poisson
      inpaint fill photo.jpg --mask photo_mask.png --dilate 8 --feather 4

    Only hole pixels change. Greyscale, palette and RGBA images are written back in their mode
    (alpha untouched); 16-bit PNG/TIFF are filled at 8-bit precision in the hole and written back
    16-bit with known pixels unchanged; EXIF orientation is applied.
    """
    from inpaint_cli.masks import plan_fill

    options.check_names(archs=[arch], blend=blend, strategy=strategy, device=device, precision=precision)
    plan = plan_fill(input, mask, rect, output, recursive=recursive, invert=invert_mask, resize_mask=resize_mask,
                     quality=quality, overwrite=overwrite, attention_map=attention_map, samples=samples, warn=warn)
    # everything a user can get wrong is checked before torch is even imported
    from inpaint_cli.fill import FillOptions, Inpainter, fill_planned, resolve_model

    loaded = resolve_model(arch, weights, device)
    if weights is None and loaded.path is not None:  # --arch or the default model: say which file
        stderr.print(f"using {loaded.path}", markup=False)
    inpainter = Inpainter(loaded, device, FillOptions(strategy, blend, max_side, dilate=dilate, feather=feather, seed=seed,
                                                         truncation=truncation, precision=precision))

    def report(written) -> None:
        if as_json:
            stdout.print(json.dumps(written.record()), markup=False)
        elif not plan.batch:
            stderr.print(f"wrote {written.job.target} ({written.method}, {written.hole_pixels} hole pixels)", markup=False)

    # a folder: a bar of the images; one image (a 12-megapixel big-lama fill takes a minute): a spinner
    display = (progress_bar(stderr, "filling", show=not as_json) if plan.batch
               else spinner(stderr, f"filling {plan.jobs[0].image.name}", show=not as_json))
    with display as progress:
        failures = fill_planned(plan, inpainter, batch=batch, warn=warn, done=report, progress=progress,
                                failed=lambda line: stderr.print(f"error: {line}", markup=False))
    if plan.batch:
        report_batch(stderr, len(plan.jobs), failures, plan.jobs[0].target.parent)
    if failures:
        raise typer.Exit(1)


@app.command("eval")
@user_errors
def eval_command(
    arch: Annotated[list[str], typer.Option("--arch", "-a", help="Method to compare (repeatable): an architecture's installed, else bundled, weights, or telea / ns / harmonic / patchmatch. Default: every bundled model and the classical methods.")] = [],
    weights: Annotated[list[str], typer.Option("--weights", "-w", help="Weights file or hf:// path to compare (repeatable; labelled by file stem).")] = [],
    data: Annotated[Optional[Path], typer.Option("--data", help="Folder of images (recursive). Default: $INPAINT_DATA/eval (INPAINT_DATA: the data folder).")] = None,
    mask_sets: Annotated[list[str], typer.Option("--masks", help="Mask set (repeatable): a generator (box, center, irregular[:LO-HI], freeform, lama-thin, lama-medium, lama-thick) or a folder of mask files. Each gets its own table.")] = [],
    metric: Annotated[list[str], typer.Option("--metric", help="l1, l2, psnr, ssim, lpips (per image); fid, pids, uids (per set) (repeatable); hole_l1 is always reported.")] = [],
    backbones: Annotated[Optional[Path], typer.Option("--backbones", help="Folder of the metric networks' files by their published names (default: $INPAINT_BACKBONES); nothing is downloaded.")] = None,
    inception: Annotated[Optional[Path], typer.Option("--inception", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (fid, pids, uids), if not in --backbones.")] = None,
    lpips_backbone: Annotated[Optional[Path], typer.Option("--lpips-backbone", help="torchvision's AlexNet (or VGG16) ImageNet file for lpips, if not in --backbones.")] = None,
    lpips_linear: Annotated[Optional[Path], typer.Option("--lpips-linear", help="lpips' alex.pth (or vgg.pth) linear layers, if not in --backbones.")] = None,
    lpips_net: Annotated[Literal["alex", "vgg"], typer.Option("--lpips-net", help="The network lpips compares features of.")] = "alex",
    repeat: Annotated[int, typer.Option("--repeat", min=1, metavar="K", help="Draw K masks per image (seeds --seed .. --seed+K-1): K times the fills for the set-level metrics.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated masks and of folder-mask assignment.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N images.")] = None,
    size: Annotated[int, typer.Option("--size", help="Images are resized (shorter side) and centre-cropped to this square.")] = 256,
    blend: Annotated[str, typer.Option("--blend", help="auto (each model's release post-processing, else its paper's: poisson for GLCIC, none for the others; the table labels a blended method 'NAME + poisson'), none, poisson or ramp for every learned method.")] = "auto",
    dilate: Annotated[int, typer.Option("--dilate", min=0, metavar="N", help=DILATE_HELP)] = 0,
    feather: Annotated[int, typer.Option("--feather", min=0, metavar="N", help=FEATHER_HELP)] = 0,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=FILL_PRECISION_HELP)] = "auto",
    save_dir: Annotated[Optional[Path], typer.Option("--save-dir", help="Write every fill and a comparison grid per mask set here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout (no tables).")] = False,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Also write the results as CSV to this file.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the results as one Markdown table on stdout.")] = False,
) -> None:
    """Compare methods on a fixed protocol (docs/design.md): same images, same masks, same metrics.

    \b
    Examples:
      inpaint eval --arch telea --arch glcic --data eval/ --masks irregular --metric psnr --metric ssim
      inpaint eval --weights runs/glcic/glcic-half-l1.safetensors --masks box --masks masks/30-40
    """
    from inpaint_cli.evaluate import evaluate_methods, result_to_csv
    from inpaint_cli.feature_metrics import Backbones
    from inpaint_cli.io import data_folder

    options.check_names(archs=arch, blend=blend, device=device, precision=precision)
    if csv_path is not None and csv_path.exists():
        raise InpaintError(f"{csv_path} exists; remove it or pick another --csv path")
    data_dir = data or data_folder("eval")
    with progress_bar(stderr, "evaluating", show=not as_json, unit="fills") as progress:
        result, count = evaluate_methods(arch, weights, data_dir, mask_sets or ["box", "irregular"], metric or ["psnr", "ssim"],
                                         seed=seed, limit=limit, size=size, blend=blend, device=device, precision=precision, save_dir=save_dir,
                                         progress=progress, dilate=dilate, feather=feather, repeat=repeat,
                                         backbones=Backbones(backbones, inception, lpips_backbone, lpips_linear, lpips_net))
    if csv_path is not None:
        csv_path.write_text(result_to_csv(result))
    footer = f"{count} images from {data_dir} at {size}x{size}, seed {seed}; mean ± standard error"
    print_evaluation(stdout, result, footer, as_json=as_json, markdown=markdown)


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
    for shown in [json.dumps(listed.document(), indent=2)] if as_json else render_catalog(listed):
        stdout.print(shown, markup=False)


masks_app = typer.Typer(cls=GenerateByDefault, no_args_is_help=True, rich_markup_mode=None, help="Write generated mask sets (`inpaint masks KIND`), or preview a hole on a photo.")
app.add_typer(masks_app, name="masks")


@masks_app.command("generate")
@user_errors
def masks(
    kind: Annotated[str, typer.Argument(help="Generator: box, center, irregular[:LO-HI], freeform, lama-thin, lama-medium, lama-thick.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write 00000.png, 00001.png, ... into.")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many masks.")] = 100,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the square masks.")] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Mask i is drawn from default_rng([seed, i, kind_id]).")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing mask files.")] = False,
) -> None:
    """Write a set of generated masks (white = hole), the same the evaluation draws (`generate` may be left out).

    Example: inpaint masks lama-thick --count 50 --out masks/thick
    """
    from inpaint_cli.masks import generate_mask_set

    paths = generate_mask_set(kind, count, size, seed, out, overwrite=overwrite)
    stderr.print(f"wrote {len(paths)} {kind} masks to {out}", markup=False)


@masks_app.command("preview")
@user_errors
def masks_preview(
    image: Annotated[Path, typer.Argument(help="The photo.", show_default=False, metavar="IMG")],
    mask: Annotated[Optional[Path], typer.Option("--mask", "-m", help="Mask file, as `fill` reads it.")] = None,
    rect: Annotated[list[str], typer.Option("--rect", help="Hole rectangle x,y,w,h (repeatable; united with --mask).")] = [],
    dilate: Annotated[int, typer.Option("--dilate", min=0, metavar="N", help="Grow the hole by N pixels, as `fill --dilate`.")] = 0,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output image. Default: X.preview.png beside the photo.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    """Write the photo with the hole tinted, to check a mask before a long fill.

    Example: inpaint masks preview photo.jpg --mask photo_mask.png --dilate 8
    """
    from inpaint_cli.masks import write_preview

    target, pixels = write_preview(image, mask, rect, output, dilate=dilate, overwrite=overwrite, warn=warn)
    stderr.print(f"wrote {target} ({pixels} hole pixels tinted)", markup=False)


@app.command()
@user_errors
def convert(
    source: Annotated[str, typer.Argument(help="Official weights: a file, a TF checkpoint folder or prefix, or hf://owner/repo/path[@revision].", show_default=False, metavar="SRC")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Converted file (.safetensors). Default: <arch>-<config>.safetensors beside SRC.")] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", "-a", help="The architecture, where recognising it from the tensors is not enough.")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="The config, e.g. big or fourier for lama.")] = None,
    dtype: Annotated[Literal["float32", "float16", "bfloat16"], typer.Option("--dtype", help="Storage precision; float16 and bfloat16 halve the file, and the largest change they make to a test fill is printed.")] = "float32",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (and installed file).")] = False,
    install: Annotated[bool, typer.Option("--install", help="Also copy it into $INPAINT_HOME/weights, where `--arch NAME` finds it before the bundled weights.")] = False,
    default: Annotated[bool, typer.Option("--default", help="With --install: make it the model `inpaint fill` uses with no --arch.")] = False,
) -> None:
    """Convert official pretrained weights (LaMa, AOT-GAN, DeepFill v1/v2, GLCIC, Context Encoder)
    into a release file that `fill`, `eval` and `--weights` take. Nothing in SRC is run.

    Example: inpaint convert big-lama/models/best.ckpt --install --default
    """
    if default and not install:
        raise typer.BadParameter("--default needs --install", param_hint="'--default'")
    from inpaint_cli.convert import convert_file, describe

    converted, written, installed = convert_file(source, output, arch=arch, config=config, dtype=dtype, overwrite=overwrite,
                                                 install=install, default=default)
    installed_line = [f"installed {installed}{' as the default model' if default else ''}"] if installed else []
    stderr.print("\n".join([*describe(converted), f"wrote {written}", *installed_line]), markup=False)


@app.command()
@user_errors
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint/, samples/, log.jsonl and the export <arch>-<config>.safetensors.")],
    arch: Annotated[Optional[str], typer.Option("--arch", "-a", help="Architecture to train (see `inpaint models`); a --resume reads it from the run.", show_default=False)] = None,
    data: Annotated[list[Path], typer.Option("--data", help="Image folder (repeatable, recursive). Default: $INPAINT_DATA/train.")] = [],
    config: Annotated[Optional[str], typer.Option("--config", "-c", help="Config name (default: the arch's bundled one; `paper` = the paper's).")] = None,
    size: Annotated[int, typer.Option("--size", min=16, help="Square training crop (the papers use 256).")] = 128,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per step.")] = 16,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Total steps over all phases [default: 20000; on --resume, the stored value].")] = None,
    phase_steps: Annotated[Optional[str], typer.Option("--phase-steps", callback=options.at_parse_time(options.parse_phase_steps), help="Lengths of all phases but the last, comma-separated (GLCIC: T_C,T_D; DeepFill v1 and v2, AOT-GAN, LaMa: reconstruction-only steps before the critics start; PConv: steps before the fine-tuning). Default: the paper's proportions of --steps (GLCIC 90k/10k/400k; PConv 3:1; the others none).")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Generator learning rate (default: the recipe's).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data order, holes and initialisation.")] = 0,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast on CUDA and on CPUs with AMX, fp16 on older CUDA, else fp32), fp32, bf16 or fp16.")] = "auto",
    workers: Annotated[int, typer.Option("--workers", min=0, help="Processes drawing the coming batches (crops and holes) ahead of the step, so a GPU is not kept waiting; 0: one background thread. Any number gives the same batches.")] = 0,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints (and exports) [default: 500; on --resume, the stored value].")] = None,
    sample_every: Annotated[Optional[int], typer.Option("--sample-every", min=1, help="Steps between sample grids in samples/ [default: 500; on --resume, the stored value].")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where its checkpoint left it.")] = False,
    init_weights: Annotated[Optional[str], typer.Option("--init-weights", help="Start the generator from a release file (warm start).")] = None,
    ema: Annotated[Optional[float], typer.Option("--ema", callback=options.at_parse_time(options.check_ema_decay), help="Export a moving average of the generator's weights with this decay, e.g. 0.999 (updated every generator step; it steadies fills that swing between checkpoints). Default: the last step's weights, as the papers.")] = None,
    backbone: Annotated[Optional[Path], typer.Option("--backbone", help="Safetensors file of the pretrained backbone for perceptual losses (PConv, AOT-GAN: VGG; LaMa: ResNet50).")] = None,
    masks: Annotated[list[str], typer.Option("--masks", help="Training holes, KIND or KIND@WEIGHT (repeatable), e.g. --masks box --masks irregular:10-60. Default: the paper's holes for the arch.")] = [],
    cache_side: Annotated[int, typer.Option("--cache-side", min=1, help="Images are resized once so their shorter side is this, then cropped (the evaluation's scale is 256).")] = 256,
    data_note: Annotated[str, typer.Option("--data-note", help="What the data is and its terms, recorded in the export's metadata.")] = "",
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", min=0, metavar="MINUTES", help="Stop after this much wall time with a checkpoint and export of the step reached (`--resume` continues).")] = None,
) -> None:
    """Train an architecture on your own pictures (`--resume` continues a run, e.g. to more --steps).

    Example: inpaint train --arch glcic --data ~/pictures --out runs/glcic

    Later, to 40,000 steps: inpaint train --out runs/glcic --resume --steps 40000
    """
    from inpaint_cli.io import data_folder

    if arch is None:
        if not resume:
            raise InpaintError("--arch is needed to start a run (see `inpaint models`); a --resume reads it from the run")
        from inpaint_cli.checkpoint import load_training_settings
        from inpaint_cli.train.state import CHECKPOINT_DIR

        arch = str(load_training_settings(out / CHECKPOINT_DIR)["arch"])
    options.check_names(archs=[arch], device=device, precision=precision)
    data_dirs = [str(d) for d in data or [data_folder("train")]] if not resume else []
    from inpaint_cli.train import TrainSettings, start_training
    from inpaint_cli.train.distributed import launched_rank

    shown = launched_rank() == 0  # under torchrun only rank 0 reports

    # the options a resume may change: given ones replace the stored (or, fresh, the default) values
    given = {"steps": steps, "checkpoint_every": checkpoint_every, "sample_every": sample_every}
    changes = {name: value for name, value in given.items() if value is not None}
    settings = TrainSettings(
        arch=arch, out_dir=str(out), data_dirs=data_dirs, config=config, size=size, batch=batch,
        lr=lr, phase_steps=options.parse_phase_steps(phase_steps), seed=seed, cache_side=cache_side,
        backbone=str(backbone) if backbone else None, masks=masks or None, init_weights=init_weights, ema_decay=ema, data_note=data_note,
        **changes,
    )
    with spinner(stderr, "starting", show=shown):  # the set-up (networks, image cache): an error leaves only its line
        trainer = start_training(settings, resume=resume, device=device, resume_changes=changes, precision=precision, workers=workers)
    result = run_training(trainer, stderr, resumed=resume, show=shown, time_limit_s=None if time_limit is None else time_limit * 60)
    if shown:
        stderr.print(f"trained {trainer.spec.name} {trainer.config_name} to step {result.step}; export: {result.export_path}", markup=False)


@app.command()
@user_errors
def release(
    exports: Annotated[list[Path], typer.Argument(help="Exports of training runs (<out>/<arch>-<config>.safetensors), measured in one evaluation.", show_default=False)],
    to: Annotated[Optional[Path], typer.Option("--to", help="Bundled-weights folder to release into. Default: the one `fill` reads ($INPAINT_WEIGHTS or the repository's weights/).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Evaluation images. Default: $INPAINT_DATA/eval.")] = None,
    irregular: Annotated[Optional[Path], typer.Option("--irregular", help="Folder of the NVIDIA irregular-mask bands 10-20, 30-40, 50-60. Default: $INPAINT_DATA/masks/nvidia-irregular.")] = None,
    eval_json: Annotated[Optional[Path], typer.Option("--eval-json", help="Use this `inpaint eval --json` result (the exports beside telea, ns and harmonic) instead of evaluating again.")] = None,
    blend: Annotated[str, typer.Option("--blend", help="Post-processing the release is measured with and that `fill --blend auto` then applies to it: auto (the architecture's own from its paper), none, poisson or ramp.")] = "auto",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
) -> None:
    """Bundle trained exports: evaluate them beside Telea, NS and the harmonic fill (seed 0: boxes,
    NVIDIA 10-20, 30-40, 50-60 %, free-form strokes), refuse them all unless each beats Telea and NS
    on PSNR, SSIM and hole L1 on boxes, 30-40 % and strokes, and the harmonic fill on hole L1
    everywhere; stamp each one's table into its metadata, copy it in as <arch>-<config>.safetensors
    and make the best model that beats both everywhere the default.

    Example: inpaint release runs/dfv1/deepfill-v1-half.safetensors --blend poisson
    """
    options.check_names(blend=blend, device=device)
    from inpaint_cli.evaluate import result_to_markdown
    from inpaint_cli.release import measure, refuse_short, release as release_export

    with progress_bar(stderr, "evaluating") as progress:
        measured = measure(exports, to=to, data=data, irregular=irregular, eval_json=eval_json, blend=blend,
                           device=device, progress=progress)
    stdout.print(result_to_markdown(measured.result), markup=False, soft_wrap=True)  # shown even when refused
    refuse_short(exports, measured)
    for index, export in enumerate(exports):
        target, verdict, default = release_export(export, measured.result_of(index), measured.weights_dir,
                                                  measured.post_processing)
        stdout.print(f"released {target}; default model: {default}", markup=False)
        if not verdict.margin:
            warn(f"{target.name} falls short of the default model's bar: {'; '.join(verdict.shortfalls)}")


def main() -> None:
    """Console entry point: one-line warnings and usage errors; SIGTERM interrupts as Ctrl-C does."""
    import warnings

    warnings.showwarning = one_line_warning
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(options.run_app(app, report=lambda line: stderr.print(line, markup=False)))

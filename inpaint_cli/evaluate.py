"""The evaluation protocol of docs/design.md ("Evaluation protocol", steps 1-4): fixed images, fixed
masks, composited uint8 fills, per-image metrics summarised as mean and standard error.

    images = load_eval_images("data/eval")
    result = evaluate([telea, glcic], images, ["irregular", "masks/30-40"], ["psnr", "ssim"])
    for table in render_tables(result): console.print(table)

A method is any callable `method(image, hole) -> filled` with a `label` (see `EvalMethod`); the
classical baselines (step 5) and the learned models are wrapped by the CLI.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw
from rich.table import Table

from inpaint_cli import io as image_io
from inpaint_cli import masks as mask_generators
from inpaint_cli import feature_metrics
from inpaint_cli.blend import composite
from inpaint_cli.errors import InpaintError
from inpaint_cli.feature_metrics import PER_IMAGE_FEATURE_METRICS, SET_METRICS, Backbones
from inpaint_cli.metrics import HIGHER_IS_BETTER as PIXEL_HIGHER_IS_BETTER
from inpaint_cli.metrics import METRICS
from inpaint_cli.weights import read_manifest

DEFAULT_SIZE = 256
OVERALL = "overall"
ALWAYS_REPORTED = "hole_l1"
GRID_ROWS = 4  # images shown in each section's comparison grid
GRID_GAP = 4  # pixels between the grid's cells
GRID_HEADER = 16  # pixels of column labels above the grid
CHECKER_SQUARE = 8  # side of the squares that show the hole in the grid's input column
HIGHER_IS_BETTER = PIXEL_HIGHER_IS_BETTER | feature_metrics.HIGHER_IS_BETTER
ALL_METRICS = (*METRICS, *PER_IMAGE_FEATURE_METRICS, *SET_METRICS)


class EvalMethod(Protocol):
    """A method under evaluation: fills `hole` (bool H x W, True = hole) of a uint8 H x W x 3 image.

    The image it receives has its hole pixels set to 0, so no method can see what it must fill.
    A `blend` attribute, where it has one, names the post-processing of its fills (the result's
    `blends`; "none" without it).
    """

    label: str

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Summary:
    """Mean and standard error (sample standard deviation / sqrt(n); 0 when n is 1) of n values;
    for a set-level metric (FID, P-IDS, U-IDS) the one value of the n images' set, stderr None."""

    mean: float
    stderr: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        array = np.asarray(values, dtype=np.float64)
        n = len(array)
        stderr = float(array.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        return cls(mean=float(array.mean()), stderr=stderr, n=n)

    @classmethod
    def of_set(cls, value: float, n: int) -> Summary:
        return cls(mean=float(value), stderr=None, n=n)


@dataclass
class EvalResult:
    """Summaries per section (one per mask spec, then "overall"), per method, per metric, and the
    post-processing of each method's fills (`blends`: "none", "poisson" or "ramp")."""

    methods: list[str]
    metrics: list[str]
    sections: dict[str, dict[str, dict[str, Summary]]]
    seed: int
    size: int
    blends: dict[str, str] = field(default_factory=dict)
    repeat: int = 1

    def blend_of(self, label: str) -> str:
        """The post-processing of `label`'s fills. A result written before `blends` was recorded
        has it only in the label, which names a blended method 'NAME + poisson'."""
        if label in self.blends:
            return self.blends[label]
        return label.rpartition(" + ")[2] if " + " in label else "none"

    def restricted_to(self, methods: Sequence[str]) -> EvalResult:
        """The same evaluation with only `methods` (in the order given)."""
        return dataclasses.replace(
            self,
            methods=list(methods),
            sections={name: {m: scores[m] for m in methods} for name, scores in self.sections.items()},
            blends={m: b for m, b in self.blends.items() if m in methods},
        )


def load_eval_images(
    data_dir: str | os.PathLike[str], size: int = DEFAULT_SIZE, limit: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """Step 1: every image under `data_dir` (recursive, sorted by relative POSIX path) as uint8 RGB,
    resized (Pillow BICUBIC, antialiased) so its shorter side is `size`, centre-cropped to a square.

    Returns (relative POSIX path, size x size x 3 uint8 array) pairs; the first `limit` when given.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InpaintError(f"evaluation data folder not found: {root}")
    if size < 1:
        raise InpaintError(f"--size must be positive, got {size}")
    files = sorted(
        image_io.list_images(root, recursive=True), key=lambda p: p.relative_to(root).as_posix()
    )
    if not files:
        raise InpaintError(f"no images found under {root}")
    if limit is not None:
        files = files[:limit]
    return [(path.relative_to(root).as_posix(), _load_square(path, size)) for path in files]


def _load_square(path: Path, size: int) -> np.ndarray:
    image = Image.fromarray(image_io.read_image(path).rgb8)  # EXIF-oriented 8-bit RGB
    width, height = image.size
    shorter = min(width, height)
    new_width = max(size, int(width * size / shorter + 0.5))
    new_height = max(size, int(height * size / shorter + 0.5))
    resized = image.resize((new_width, new_height), Image.Resampling.BICUBIC)
    left = (new_width - size) // 2
    top = (new_height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def eval_masks(spec: str, count: int, size: int, seed: int) -> tuple[str, list[np.ndarray]]:
    """Step 2: `count` holes (bool size x size) for one `--masks` value, with the section's label.

    `spec` is a generator kind (optionally with parameters, e.g. "irregular:10-60"; image i draws
    from `masks.eval_rng(seed, i, kind)`), labelled by the kind; or else a folder of mask files,
    labelled by its name, where image i takes the sorted file (i + seed) mod n, resized with
    nearest neighbour. A kind wins over a folder of the same name: write "./box" for the folder.
    """
    kind = spec.partition(":")[0].strip()
    if kind in mask_generators.KIND_IDS:
        holes = [
            mask_generators.draw_mask(spec, mask_generators.eval_rng(seed, index, spec), size, size)
            for index in range(count)
        ]
        return spec, holes
    folder = Path(spec)
    if not folder.is_dir():
        kinds = ", ".join(mask_generators.KIND_IDS)
        raise InpaintError(f"--masks {spec!r} is neither a mask kind ({kinds}) nor a folder")
    files = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in image_io.IMAGE_EXTENSIONS
    )
    if not files:
        raise InpaintError(f"no mask files found in {folder}")
    loaded: dict[Path, np.ndarray] = {}
    holes = []
    for index in range(count):
        path = files[(index + seed) % len(files)]
        if path not in loaded:
            loaded[path] = _resize_nearest(image_io.read_mask(path), size)
        holes.append(loaded[path])
    return folder.resolve().name, holes


def _resize_nearest(hole: np.ndarray, size: int) -> np.ndarray:
    if hole.shape == (size, size):
        return hole
    as_image = Image.fromarray(hole.astype(np.uint8) * 255)
    return np.asarray(as_image.resize((size, size), Image.Resampling.NEAREST)) > 127


def evaluate(
    methods: Sequence[EvalMethod],
    images: Sequence[tuple[str, np.ndarray]],
    mask_specs: Sequence[str],
    metrics: Sequence[str],
    seed: int = 0,
    save_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    dilate: int = 0,
    feather: int = 0,
    backbones: Backbones | None = None,
    repeat: int = 1,
) -> EvalResult:
    """Steps 2-4: fill every image under every mask set with every method and score the fills.

    Each fill is composited (known pixels from the original) and is uint8 before any metric;
    `hole_l1` is always reported beside `metrics`. The "overall" section pools all (image, mask)
    pairs. `progress(1)` is called after each fill (len(methods) * len(images) * len(mask_specs)
    * repeat calls). With `save_dir`, fills are written to `save_dir/<section>/<method>/<image>.png`
    and a comparison grid to `save_dir/<section>/comparison.png`. `dilate` grows every hole (a disk
    of that radius) before any method sees it, and the metrics score the grown hole; `feather`
    softens each composite over that many pixels inside the hole's edge (as `inpaint fill` does),
    at most `dilate`: the band mixes in the original's pixels, so deeper it would score the truth.

    `lpips` (per image) and the set-level `fid`, `pids`, `uids` (one value per method and section
    from all its fills and their originals; "overall" from the pooled pairs) run networks whose
    weights `backbones` locates. `repeat` K draws K masks per image (seeds seed .. seed + K - 1),
    so each section scores K x len(images) fills; drawn fills beyond the first are saved as
    `<image>~<draw>.png`.
    """
    _check_feather(feather, dilate)
    metric_names = _metric_names(metrics)
    labels = [method.label for method in methods]
    if not labels:
        raise InpaintError("nothing to evaluate: no methods given")
    if len(set(labels)) != len(labels):
        raise InpaintError(f"two methods share a label: {', '.join(labels)}")
    if not mask_specs:
        raise InpaintError("nothing to evaluate: no mask sets given")
    if repeat < 1:
        raise InpaintError(f"--repeat must be at least 1, got {repeat}")
    size = _common_size(images)
    originals = [image for _, image in images]
    scorer = _FeatureScorer(metric_names, backbones or Backbones(), originals, repeat)
    per_image_names = [name for name in metric_names if name not in SET_METRICS]
    pooled = {label: {name: [] for name in per_image_names} for label in labels}
    sections: dict[str, dict[str, dict[str, Summary]]] = {}
    for spec in mask_specs:
        section, holes = eval_masks(spec, len(images), size, seed)
        if section in sections or section == OVERALL:
            raise InpaintError(f"two mask sets are both labelled {section!r}")
        holes += [hole for draw in range(1, repeat)
                  for hole in eval_masks(spec, len(images), size, seed + draw)[1]]
        holes = [mask_generators.grow_hole(hole, dilate) for hole in holes] if dilate else holes
        scores = {label: {name: [] for name in per_image_names} for label in labels}
        grid_fills: dict[str, list[np.ndarray]] = {label: [] for label in labels}
        all_fills: dict[str, list[np.ndarray]] = {label: [] for label in labels}
        for index, hole in enumerate(holes):
            name, original = images[index % len(images)]
            draw = index // len(images)
            for method in methods:
                filled = _fill(method, original, hole, feather)
                original_float = original.astype(np.float64) / 255.0
                filled_float = filled.astype(np.float64) / 255.0
                for metric in per_image_names:
                    if metric in METRICS:
                        value = METRICS[metric](original_float, filled_float, hole)
                        scores[method.label][metric].append(value)
                        pooled[method.label][metric].append(value)
                if scorer.needs_fills:
                    all_fills[method.label].append(filled)
                if save_dir is not None:
                    drawn = Path(name)
                    if draw:
                        drawn = drawn.with_name(f"{drawn.stem}~{draw}{drawn.suffix}")
                    _write_png(saved_fill_path(save_dir, section, method.label, drawn.as_posix()), filled)
                    if len(grid_fills[method.label]) < GRID_ROWS:
                        grid_fills[method.label].append(filled)
                if progress is not None:
                    progress(1)
        set_scores = {}
        for label in labels:
            per_image, set_scores[label] = scorer.score(label, all_fills.pop(label))
            for metric, values in per_image.items():
                scores[label][metric] = values
                pooled[label][metric].extend(values)
        summaries = _summarise(scores)
        sections[section] = {
            label: _ordered(metric_names, {**summaries[label], **set_scores[label]})
            for label in labels
        }
        if save_dir is not None:
            grid = _comparison_grid(originals[:GRID_ROWS], holes[:GRID_ROWS], grid_fills)
            _write_png(saved_section_dir(save_dir, section) / "comparison.png", grid)
    overall = _summarise(pooled)
    sections[OVERALL] = {
        label: _ordered(metric_names, {**overall[label], **scorer.pooled_set_scores(label)})
        for label in labels
    }
    return EvalResult(
        methods=labels, metrics=metric_names, sections=sections, seed=seed, size=size,
        blends={method.label: getattr(method, "blend", "none") for method in methods}, repeat=repeat,
    )


def _check_feather(feather: int, dilate: int) -> None:
    """The feathered band mixes in the original's pixels, which in an evaluation are the answer;
    within `dilate` pixels of the grown hole's edge they lie in the ring the hole was grown by (a
    pixel of the drawn hole is farther than `dilate` from every known one), which the user has."""
    if feather < 0:
        raise InpaintError(f"--feather must be 0 or more pixels, got {feather}")
    if feather > dilate:
        raise InpaintError(
            f"--feather {feather} would mix the true pixels of the hole into the fills being "
            f"scored: use at most --dilate ({dilate}), the known ring the hole was grown by"
        )


def _ordered(metric_names: Sequence[str], summaries: dict[str, Summary]) -> dict[str, Summary]:
    return {metric: summaries[metric] for metric in metric_names}


class _FeatureScorer:
    """The network metrics of one evaluation: LPIPS per fill; FID, P-IDS and U-IDS per section
    from the pool3 features of its fills against those of their originals (computed once, or read
    from `Backbones.feature_cache`), and per method over all sections pooled. Networks load on
    first use, and only those needed."""

    def __init__(
        self, metric_names: Sequence[str], backbones: Backbones, originals: Sequence[np.ndarray],
        repeat: int,
    ) -> None:
        self.lpips = "lpips" in metric_names
        self.set_metrics = [name for name in metric_names if name in SET_METRICS]
        self.needs_fills = self.lpips or bool(self.set_metrics)
        self.originals = list(originals) * repeat
        self.distances = feature_metrics.LPIPSDistances(backbones) if self.lpips else None
        self.inception = (
            feature_metrics.InceptionFeatures(backbones) if self.set_metrics else None
        )
        self.real = (
            np.tile(self.inception.of_real_images(list(originals)), (repeat, 1))
            if self.inception else None
        )
        self.pooled: dict[str, list[np.ndarray]] = {}

    def score(
        self, label: str, fills: list[np.ndarray]
    ) -> tuple[dict[str, list[float]], dict[str, Summary]]:
        """Per-image values and set-level summaries of one method's fills of one section."""
        per_image: dict[str, list[float]] = {}
        if self.distances is not None:
            per_image["lpips"] = [float(d) for d in self.distances(self.originals, fills)]
        if self.inception is None:
            return per_image, {}
        fake = self.inception(fills)
        self.pooled.setdefault(label, []).append(fake)
        return per_image, self._set_scores(self.real, fake)

    def pooled_set_scores(self, label: str) -> dict[str, Summary]:
        if self.inception is None:
            return {}
        fake = np.concatenate(self.pooled[label])
        real = np.tile(self.real, (len(self.pooled[label]), 1))
        return self._set_scores(real, fake)

    def _set_scores(self, real: np.ndarray, fake: np.ndarray) -> dict[str, Summary]:
        values: dict[str, float] = {}
        if "fid" in self.set_metrics:
            values["fid"] = feature_metrics.frechet_distance(real, fake)
        if "pids" in self.set_metrics or "uids" in self.set_metrics:
            pids, uids = feature_metrics.inception_discriminative_scores(real, fake)
            values.update(pids=pids, uids=uids)
        return {name: Summary.of_set(values[name], len(fake)) for name in self.set_metrics}


def evaluate_methods(
    archs: Sequence[str],
    weights: Sequence[str],
    data_dir: Path,
    mask_specs: Sequence[str],
    metrics: Sequence[str],
    *,
    seed: int = 0,
    limit: int | None = None,
    size: int = DEFAULT_SIZE,
    blend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    save_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    dilate: int = 0,
    feather: int = 0,
    backbones: Backbones | None = None,
    repeat: int = 1,
) -> tuple[EvalResult, int]:
    """`inpaint eval` (and `inpaint release`): load the methods (architectures by name with their
    bundled weights, then weights files; neither: every bundled model and the classical methods),
    the learned ones filling with `blend` in `precision` (`FillOptions`), and `evaluate` them on the images of `data_dir`.
    `progress(done, total)` follows the fills; `dilate`/`feather` grow and soften every hole, and
    `seed` also seeds the classical methods that draw (patchmatch); `backbones` and `repeat` as
    `evaluate`, the real images' features cached in `feature_metrics.feature_cache_dir()` unless
    `backbones.feature_cache` names another folder. Returns the result and the number of images."""
    from inpaint_cli.fill import FillOptions, Inpainter, resolve_model
    from inpaint_cli.registry import list_archs

    _check_feather(feather, dilate)
    if not archs and not weights:
        archs = list(read_manifest().get("models", {})) + list_archs(learned=False)
    if limit is not None and limit < 1:
        raise InpaintError("--limit must be at least 1")
    loaded = [resolve_model(name, None, device) for name in archs] + [resolve_model(None, w, device) for w in weights]
    if backbones is not None and device != "cpu":  # the metric networks run where the methods do
        from inpaint_cli.devices import pick_device

        backbones = dataclasses.replace(backbones, device=str(pick_device(device)))
    backbones = backbones or Backbones()
    if backbones.feature_cache is None:
        backbones = dataclasses.replace(backbones, feature_cache=feature_metrics.feature_cache_dir())
    options = FillOptions(strategy="auto", blend=blend, max_side=max(size, 1024), precision=precision)
    inpainters = [Inpainter(model, device, options if model.spec.learned else FillOptions(seed=seed)) for model in loaded]
    images = load_eval_images(data_dir, size, limit)
    total, done = len(inpainters) * len(images) * len(mask_specs) * repeat, 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    advance(0)
    result = evaluate(inpainters, images, mask_specs, metrics, seed=seed, save_dir=save_dir, progress=advance,
                      dilate=dilate, feather=feather, backbones=backbones, repeat=repeat)
    return result, len(images)


def _metric_names(metrics: Sequence[str]) -> list[str]:
    for name in metrics:
        if name not in ALL_METRICS:
            raise InpaintError(f"unknown metric {name!r} (choose from {', '.join(ALL_METRICS)})")
    names = list(dict.fromkeys(metrics))
    if ALWAYS_REPORTED not in names:
        names.append(ALWAYS_REPORTED)
    return names


def _common_size(images: Sequence[tuple[str, np.ndarray]]) -> int:
    if not images:
        raise InpaintError("nothing to evaluate: no images given")
    shapes = {image.shape for _, image in images}
    shape = next(iter(shapes))
    if len(shapes) != 1 or len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
        raise InpaintError("evaluation images must all be square RGB of one size")
    return shape[0]


def _fill(method: EvalMethod, original: np.ndarray, hole: np.ndarray, feather: int = 0) -> np.ndarray:
    """The method's output composited onto the original: known pixels copied bit for bit (the
    hole's edge softened over `feather` pixels)."""
    shown = original.copy()
    shown[hole] = 0
    output = np.asarray(method(shown, hole.copy()))
    if output.shape != original.shape or output.dtype != np.uint8:
        raise InpaintError(
            f"method {method.label!r} returned {output.dtype} {output.shape}, "
            f"expected uint8 {original.shape}"
        )
    return composite(original, output, hole, feather)


def _summarise(scores: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Summary]]:
    return {
        label: {metric: Summary.of(values) for metric, values in per_metric.items()}
        for label, per_metric in scores.items()
    }


def _safe_name(label: str) -> str:
    """A label as a file or folder name: characters other than letters, digits, '.', '_', '-'
    become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)


def saved_section_dir(save_dir: str | os.PathLike[str], section: str) -> Path:
    """The folder of one mask set's fills (one subfolder per method) and comparison grid."""
    return Path(save_dir, _safe_name(section))


def saved_fill_path(save_dir: str | os.PathLike[str], section: str, method: str, name: str) -> Path:
    """Where `evaluate(save_dir=...)` writes the fill of image `name` by `method` under mask set `section`."""
    return (saved_section_dir(save_dir, section) / _safe_name(method) / name).with_suffix(".png")


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """Write uint8 RGB pixels as PNG (atomically, by `io.write_image`), replacing an earlier run's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = image_io.LoadedImage(rgb=pixels, alpha=None, mode="RGB", palette=None, path=path)
    image_io.write_image(path, image, overwrite=True)


def _comparison_grid(
    originals: Sequence[np.ndarray], holes: Sequence[np.ndarray], fills: dict[str, list[np.ndarray]]
) -> np.ndarray:
    """Rows: the first images; columns: input (hole checkered) | each method's fill | original."""
    columns = ["input", *fills, "original"]
    size = originals[0].shape[0]
    step = size + GRID_GAP
    height = GRID_HEADER + len(originals) * step
    width = len(columns) * step - GRID_GAP
    grid = np.full((height, width, 3), 255, dtype=np.uint8)
    for row, (original, hole) in enumerate(zip(originals, holes)):
        cells = [show_hole(original, hole), *(fills[label][row] for label in fills), original]
        top = GRID_HEADER + row * step
        for column, cell in enumerate(cells):
            grid[top : top + size, column * step : column * step + size] = cell
    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(columns):
        draw.text((column * step + 2, 2), label, fill=(0, 0, 0))
    return np.asarray(canvas)


def show_hole(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The image with its hole painted as a grey and white checkerboard."""
    rows, cols = np.indices(hole.shape)
    checker = ((rows // CHECKER_SQUARE + cols // CHECKER_SQUARE) % 2) * 63 + 192
    shown = image.copy()
    shown[hole] = checker[hole, None].astype(np.uint8)
    return shown


def _format(metric: str, summary: Summary) -> str:
    digits = 2 if metric in ("psnr", "fid") else 4
    if summary.stderr is None:
        return f"{summary.mean:.{digits}f}"
    return f"{summary.mean:.{digits}f} ± {summary.stderr:.{digits}f}"


def small_set_warning(result: EvalResult) -> str | None:
    """The caveat for set-level values from fewer than `SMALL_SET` images, or None."""
    counts = {
        summary.n
        for per_method in result.sections.values()
        for per_metric in per_method.values()
        for metric, summary in per_metric.items()
        if metric in SET_METRICS
    }
    if not counts or min(counts) >= feature_metrics.SMALL_SET:
        return None
    return (
        f"FID, P-IDS and U-IDS from n = {min(counts)} < {feature_metrics.SMALL_SET:,} images are "
        "biased (FID up, P-/U-IDS down): compare them only at equal n (--repeat K draws K masks"
        " per image)"
    )


def render_tables(result: EvalResult) -> list[Table]:
    """One table per section (overall last): rows are methods, cells mean ± standard error (one
    value for set-level metrics, from all n images of the section), the best mean of each metric
    in bold; a caption warns when set-level values come from a small n."""
    tables = []
    set_level = [metric for metric in result.metrics if metric in SET_METRICS]
    caption = "mean ± standard error"
    if set_level:
        caption += f"; {', '.join(_MARKDOWN_NAMES[m] for m in set_level)}: one value per set of n"
    warning = small_set_warning(result)
    for section, per_method in result.sections.items():
        n = next(iter(next(iter(per_method.values())).values())).n
        table = Table(
            title=f"{section} (n = {n})",
            caption=caption + (f"\nwarning: {warning}" if warning else ""),
        )
        table.add_column("method")
        for metric in result.metrics:
            arrow = "↑" if metric in HIGHER_IS_BETTER else "↓"
            table.add_column(f"{metric} {arrow}", justify="right")
        best = {
            metric: (max if metric in HIGHER_IS_BETTER else min)(
                per_method[label][metric].mean for label in result.methods
            )
            for metric in result.metrics
        }
        for label in result.methods:
            cells = []
            for metric in result.metrics:
                summary = per_method[label][metric]
                text = _format(metric, summary)
                cells.append(f"[bold]{text}[/bold]" if summary.mean == best[metric] else text)
            table.add_row(label, *cells)
        tables.append(table)
    return tables


def result_to_json(result: EvalResult) -> str:
    """The result as JSON: seed, size, methods, metrics, sections -> method -> metric -> summary."""
    sections = {
        section: {
            label: {metric: vars(summary) for metric, summary in per_metric.items()}
            for label, per_metric in per_method.items()
        }
        for section, per_method in result.sections.items()
    }
    document = {
        "seed": result.seed,
        "size": result.size,
        "repeat": result.repeat,
        "methods": result.methods,
        "metrics": result.metrics,
        "sections": sections,
        "blends": result.blends,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def result_from_json(text: str) -> EvalResult:
    """The inverse of `result_to_json`."""
    try:
        document = json.loads(text)
        sections = {
            section: {
                label: {metric: Summary(**fields) for metric, fields in per_metric.items()}
                for label, per_metric in per_method.items()
            }
            for section, per_method in document["sections"].items()
        }
        return EvalResult(
            methods=list(document["methods"]),
            metrics=list(document["metrics"]),
            sections=sections,
            seed=int(document["seed"]),
            size=int(document["size"]),
            blends={str(label): str(blend) for label, blend in document.get("blends", {}).items()},
            repeat=int(document.get("repeat", 1)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InpaintError(f"not an evaluation result: {error}") from error


def result_to_markdown(result: EvalResult) -> str:
    """One Markdown table: a row per section and method, the section named on its first row,
    cells are means (PSNR in dB and FID to 2 decimals, others to 3); with set-level metrics, a
    last column `n`, the images each set-level value came from."""
    columns = [*result.metrics]
    with_n = any(metric in SET_METRICS for metric in columns)
    names = [_MARKDOWN_NAMES.get(m, m) for m in columns] + (["n"] if with_n else [])
    header = "| masks | method | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 2)]
    for section, per_method in result.sections.items():
        for index, label in enumerate(result.methods):
            summaries = per_method[label]
            cells = [f"{summaries[m].mean:.{2 if m in ('psnr', 'fid') else 3}f}" for m in columns]
            if with_n:
                cells.append(str(next(s.n for m, s in summaries.items() if m in SET_METRICS)))
            lines.append(f"| {section if index == 0 else ''} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_MARKDOWN_NAMES = {
    "psnr": "PSNR (dB)", "ssim": "SSIM", "hole_l1": "hole L1", "l1": "L1", "l2": "L2",
    "lpips": "LPIPS", "fid": "FID", "pids": "P-IDS", "uids": "U-IDS",
}


def result_to_csv(result: EvalResult) -> str:
    """The result as CSV, one row per section, method and metric:
    section,method,metric,mean,stderr,n (stderr empty for a set-level value)."""
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "method", "metric", "mean", "stderr", "n"])
    for section, per_method in result.sections.items():
        for label, per_metric in per_method.items():
            for metric, summary in per_metric.items():
                stderr = "" if summary.stderr is None else repr(summary.stderr)
                values = [repr(summary.mean), stderr, summary.n]
                writer.writerow([section, label, metric, *values])
    return buffer.getvalue()

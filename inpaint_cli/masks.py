"""Masks from rectangles and from the generators of the papers (docs/design.md "Evaluation protocol" step 2).

Every mask is a bool H x W array, True = hole. A kind is a name with optional parameters after a
colon ("irregular:20-30"). Evaluation kinds have fixed ids for `eval_rng` (never renumber; new kinds
take new numbers). Each paper's training holes live in its file under `archs/` (`ArchSpec.
training_masks`), built from the helpers here, and `draw_mask` draws them by name too. Sizes written
for 256 x 256 in the papers scale with the image side S = min(H, W) relative to 256
(docs/architectures.md §1-§4, §7).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaint_cli.errors import InpaintError
from inpaint_cli.io import (FillJob, LoadedImage, check_output_path, fill_jobs, read_image, read_mask, sample_jobs,
                            write_image)

KIND_IDS: dict[str, int] = {
    "box": 1,
    "center": 2,
    "irregular": 3,
    "freeform": 4,
    "lama-thin": 5,
    "lama-medium": 6,
    "lama-thick": 7,
}

_REFERENCE_SIDE = 256  # the papers' training size; lengths and widths scale with S / 256
_MIN_SIDE = 4
MAX_ATTEMPTS = 10_000  # redraw cap for the generators that reject; reached only by impossible bands

MaskGenerator = Callable[[np.random.Generator, int, int, str], np.ndarray]


# ------------------------------------------------------------------------------------- rectangles


def parse_rect(text: str) -> tuple[int, int, int, int]:
    """`--rect x,y,w,h` as integers; the offsets may be negative, the size must be positive."""
    parts = [part.strip() for part in text.split(",")]
    try:
        x, y, w, h = (int(part) for part in parts)
    except ValueError:
        raise InpaintError(f"--rect expects x,y,w,h (four integers), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise InpaintError(f"--rect {text!r}: width and height must be positive")
    return x, y, w, h


def rect_mask(height: int, width: int, rect: tuple[int, int, int, int]) -> tuple[np.ndarray, str | None]:
    """The rectangle as a hole, clipped to the image (with a warning); wholly outside is an error."""
    x, y, w, h = rect
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, width), min(y + h, height)
    shown = f"{x},{y},{w},{h}"
    if right <= left or bottom <= top:
        raise InpaintError(f"rectangle {shown} lies wholly outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    warning = None
    if (left, top, right, bottom) != (x, y, x + w, y + h):
        clipped = f"{left},{top},{right - left},{bottom - top}"
        warning = f"rectangle {shown} extends past the {width}x{height} image; clipped to {clipped}"
    return mask, warning


# ------------------------------------------------------------------------------ the holes of fill


def build_hole(
    image: LoadedImage,
    mask_path: Path | None,
    rects: Sequence[str] = (),
    *,
    invert: bool = False,
    resize_mask: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> np.ndarray:
    """The hole `inpaint fill` makes in `image`: the union of the mask file (if any; of another
    size only with `resize_mask`, nearest) and the `--rect` rectangles, as bool H x W. A rectangle
    clipped to the image is reported to `warn`, naming the image."""
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
class FillPlan:
    """What `inpaint fill` is to do, checked before any model loads."""

    jobs: list[FillJob]
    batch: bool  # a folder: an image that fails is reported and the batch goes on
    make_hole: Callable[[LoadedImage, Path | None], np.ndarray]  # `build_hole` with the command's options
    quality: int = 95
    overwrite: bool = False
    attention_map: Path | None = None
    first: tuple[LoadedImage, np.ndarray] | None = None  # a single image, decoded, and its hole


def plan_fill(
    input_path: Path,
    mask: Path | None,
    rects: Sequence[str],
    output: Path | None,
    *,
    recursive: bool = False,
    invert: bool = False,
    resize_mask: bool = False,
    quality: int = 95,
    overwrite: bool = False,
    attention_map: Path | None = None,
    samples: int = 1,
    warn: Callable[[str], None] = lambda message: None,
) -> FillPlan:
    """The jobs of `inpaint fill` (`io.fill_jobs`, each `samples` times: `io.sample_jobs`) with
    their holes' recipe. A single image is checked through: its output paths, its decoding and its
    hole (warnings go to `warn`)."""
    if mask is None and not rects:
        raise InpaintError("no hole given: pass --mask FILE|FOLDER and/or --rect x,y,w,h")
    if not 1 <= quality <= 100:
        raise InpaintError(f"--quality must be 1..100, got {quality}")
    jobs, batch = fill_jobs(input_path, mask, output, recursive, warn)
    jobs = sample_jobs(jobs, samples)
    if attention_map is not None and batch:
        raise InpaintError("--attention-map takes a single image, not a folder")
    make_hole = functools.partial(build_hole, rects=rects, invert=invert, resize_mask=resize_mask, warn=warn)
    plan = FillPlan(jobs, batch, make_hole, quality, overwrite, attention_map)
    if batch:
        return plan
    for job in jobs:  # one image, one output per sample
        check_output_path(job.target, overwrite)
    if attention_map is not None:
        check_output_path(attention_map, overwrite)
    image = read_image(jobs[0].image)
    return dataclasses.replace(plan, first=(image, make_hole(image, jobs[0].mask)))


# -------------------------------------------------------------------------------- shared helpers


def side_of(height: int, width: int) -> int:
    return min(height, width)


def reference_scale(height: int, width: int) -> float:
    return side_of(height, width) / _REFERENCE_SIDE


def no_parameters(kind: str, parameters: str) -> None:
    if parameters:
        raise InpaintError(f"mask kind {kind!r} takes no parameters, got {parameters!r}")


def hole_ratio(canvas: np.ndarray) -> float:
    return np.count_nonzero(canvas) / canvas.size


def place_rect(height: int, width: int, top: int, left: int, rect_h: int, rect_w: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + rect_h, left : left + rect_w] = True
    return mask


# ----------------------------------------------------------------------------- evaluation kinds


def _box(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """The protocol's box: sides in [ceil(S/4), floor(S/2)], placed uniformly (docs/design.md "Evaluation protocol" step 2)."""
    no_parameters("box", parameters)
    side = side_of(height, width)
    box_w, box_h = rng.integers(-(-side // 4), side // 2 + 1, size=2)  # -(-a // b) = ceil(a / b)
    x = rng.integers(0, width - box_w + 1)
    y = rng.integers(0, height - box_h + 1)
    return place_rect(height, width, int(y), int(x), int(box_h), int(box_w))


def center(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """The centred square of side S/2 (Context Encoder's centre region, docs/architectures.md §1)."""
    no_parameters("center", parameters)
    side = side_of(height, width) // 2
    return place_rect(height, width, (height - side) // 2, (width - side) // 2, side, side)


def _parse_band(parameters: str) -> tuple[float, float]:
    if not parameters:
        return 0.10, 0.60
    low_text, dash, high_text = parameters.partition("-")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not dash or not 0 <= low < high <= 100:
        raise InpaintError(
            f"irregular expects a hole-ratio band LO-HI in percent (e.g. 10-60), got {parameters!r}"
        )
    return low / 100, high / 100


def _draw_irregular_element(canvas: np.ndarray, rng: np.random.Generator, size_factor: float) -> None:
    """One random-walk stroke (thick segments, round caps = round joints) or one filled ellipse."""
    height, width = canvas.shape
    side = side_of(height, width) * size_factor
    if rng.random() < 0.75:
        thickness = max(1, round(rng.uniform(0.02, 0.09) * side))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        heading = rng.uniform(0, 2 * math.pi)
        for _ in range(rng.integers(2, 9)):
            heading += rng.normal(0, 0.7)
            step = rng.uniform(0.04, 0.15) * side
            next_x = float(np.clip(x + step * math.cos(heading), 0, width - 1))
            next_y = float(np.clip(y + step * math.sin(heading), 0, height - 1))
            cv2.line(canvas, (round(x), round(y)), (round(next_x), round(next_y)), 1, thickness)
            x, y = next_x, next_y
    else:
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (max(1, round(rng.uniform(0.02, 0.1) * side)), max(1, round(rng.uniform(0.02, 0.1) * side)))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)


def _irregular(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    """The project's free-form strokes and blobs, like the NVIDIA irregular masks (Liu et al. 2018).

    A target ratio is drawn uniformly in the band [LO, HI] %; strokes and ellipses are added until
    the hole covers at least the target. An element that would push the ratio past HI is dropped
    and the next ones are drawn smaller, so the result always lies in the band.
    """
    low, high = _parse_band(parameters)
    pixels = height * width
    # at most the largest whole number of pixels inside the band: a target in the band's last
    # fraction of a pixel could never be met (one draw in about 20,000 at 128 x 128, 10-60 %)
    target = min(max(rng.uniform(low, high), 1 / pixels), math.floor(high * pixels) / pixels)
    canvas = np.zeros((height, width), dtype=np.uint8)
    size_factor = 1.0
    for _ in range(MAX_ATTEMPTS):
        candidate = canvas.copy()
        _draw_irregular_element(candidate, rng, size_factor)
        ratio = hole_ratio(candidate)
        if ratio > high:
            size_factor *= 0.8
            continue
        canvas, size_factor = candidate, 1.0
        if ratio >= target:
            return canvas.astype(bool)
    raise InpaintError(f"irregular:{parameters}: could not draw a mask in that band at {width}x{height}")


def brush_strokes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """DeepFill v2's `brush_stroke_mask` (docs/architectures.md §4), widths scaled by S / 256."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    average_radius = math.sqrt(height * height + width * width) / 8
    scale = reference_scale(height, width)
    for _ in range(rng.integers(1, 4)):
        vertex_count = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = [rng.uniform(angle_min, angle_max) for _ in range(vertex_count)]
        angles[::2] = [2 * math.pi - angle for angle in angles[::2]]
        vertices = [(int(rng.integers(0, width)), int(rng.integers(0, height)))]
        for angle in angles:
            radius = np.clip(rng.normal(average_radius, average_radius // 2), 0, 2 * average_radius)
            previous_x, previous_y = vertices[-1]
            next_x = np.clip(previous_x + radius * math.cos(angle), 0, width)
            next_y = np.clip(previous_y + radius * math.sin(angle), 0, height)
            vertices.append((int(next_x), int(next_y)))
        brush_width = max(1, int(rng.uniform(12, 40) * scale))
        for start, end in zip(vertices[:-1], vertices[1:]):
            cv2.line(canvas, start, end, 1, brush_width)
        for vertex in vertices:
            cv2.circle(canvas, vertex, brush_width // 2, 1, thickness=-1)
    return canvas.astype(bool)


def _freeform(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
    no_parameters("freeform", parameters)
    return brush_strokes(rng, height, width)


# ------------------------------------------------------------------------------------------ LaMa


@dataclass(frozen=True)
class LamaStrokes:
    """`make_random_irregular_mask` settings (LaMa `training/data/masks.py`), in pixels at 256."""

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4


@dataclass(frozen=True)
class LamaBoxes:
    """`make_random_rectangle_mask` settings; `proba` is relative to the strokes' 1."""

    proba: float
    margin: int
    min_size: int
    max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaMaskConfig:
    strokes: LamaStrokes
    boxes: LamaBoxes | None
    max_tamper_area: float  # masks covering more are redrawn (gen_mask_dataset.py)


# docs/architectures.md §7 table: configs/data_gen/random_*_256.yaml (LaMa's training holes, from
# data/abl-04-256-mh-dist.yaml, are `inpaint_cli.archs.lama.LAMA_TRAIN`).
LAMA_CONFIGS: dict[str, LamaMaskConfig] = {
    "lama-thin": LamaMaskConfig(LamaStrokes(4, 50, 10, 40), None, 0.5),
    "lama-medium": LamaMaskConfig(LamaStrokes(4, 5, 50, 100), LamaBoxes(0.3, 0, 10, 50, 1, 5), 0.5),
    "lama-thick": LamaMaskConfig(LamaStrokes(1, 5, 100, 200), LamaBoxes(0.3, 10, 30, 150, 1, 3), 0.5),
}


def _lama_strokes(rng: np.random.Generator, height: int, width: int, config: LamaStrokes) -> np.ndarray:
    """Straight thick segments from random starts; x moves with sin(angle), y with cos(angle).

    Without a ramp, LaMa's generator passes max_times + 1 on, so the stroke count is uniform in
    [min_times, max_times + 1]; that effective range is kept here.
    """
    canvas = np.zeros((height, width), dtype=np.uint8)
    scale = reference_scale(height, width)
    for stroke in range(rng.integers(config.min_times, config.max_times + 2)):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + rng.integers(5)):
            angle = 0.01 + rng.integers(config.max_angle)
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + rng.integers(config.max_len)) * scale
            brush = max(1, round((5 + rng.integers(config.max_width)) * scale))
            end_x = int(np.clip(int(x + length * math.sin(angle)), 0, width))
            end_y = int(np.clip(int(y + length * math.cos(angle)), 0, height))
            cv2.line(canvas, (x, y), (end_x, end_y), 1, brush)
            x, y = end_x, end_y
    return canvas.astype(bool)


def _lama_boxes(rng: np.random.Generator, height: int, width: int, config: LamaBoxes) -> np.ndarray:
    """Axis-aligned boxes, sides uniform in [min_size, max_size] (capped to fit inside the margin)."""
    mask = np.zeros((height, width), dtype=bool)
    scale = reference_scale(height, width)
    margin = round(config.margin * scale)
    largest = max(1, min(round(config.max_size * scale), height - 2 * margin, width - 2 * margin))
    margin = min(margin, (min(height, width) - largest) // 2)
    smallest = min(max(1, round(config.min_size * scale)), largest)
    for _ in range(rng.integers(config.min_times, config.max_times + 1)):
        box_w, box_h = (int(v) for v in rng.integers(smallest, largest + 1, size=2))
        left = int(rng.integers(margin, width - margin - box_w + 1))
        top = int(rng.integers(margin, height - margin - box_h + 1))
        mask[top : top + box_h, left : left + box_w] = True
    return mask


def lama_kind(kind: str, config: LamaMaskConfig) -> MaskGenerator:
    """A mask kind named `kind` drawing LaMa's mixed masks with `config`."""

    def draw(rng: np.random.Generator, height: int, width: int, parameters: str) -> np.ndarray:
        """LaMa's mixed generator: strokes, or boxes with probability proba / (1 + proba)."""
        no_parameters(kind, parameters)
        box_share = 0.0 if config.boxes is None else config.boxes.proba / (1 + config.boxes.proba)
        for _ in range(MAX_ATTEMPTS):
            if config.boxes is not None and rng.random() < box_share:
                mask = _lama_boxes(rng, height, width, config.boxes)
            else:
                mask = _lama_strokes(rng, height, width, config.strokes)
            if 0 < hole_ratio(mask) <= config.max_tamper_area:
                return mask
        raise InpaintError(f"{kind}: could not draw a mask at {width}x{height}")

    draw.__doc__ = f"LaMa {kind} masks (docs/architectures.md §7): {config}"
    return draw


# ----------------------------------------------------------------------------------- public API

_GENERATORS: dict[str, MaskGenerator] = {
    "box": _box,
    "center": center,
    "irregular": _irregular,
    "freeform": _freeform,
    **{kind: lama_kind(kind, config) for kind, config in LAMA_CONFIGS.items()},
}


def _all_generators() -> dict[str, MaskGenerator]:
    """The generic and evaluation kinds, then each paper's training holes (in its `archs/` file)."""
    from inpaint_cli.registry import training_mask_kinds

    return _GENERATORS | training_mask_kinds()


def mask_kinds() -> list[str]:
    """Names accepted by `draw_mask` (evaluation kinds first); `irregular` takes `:LO-HI` percent."""
    return list(_all_generators())


def _split_kind(kind: str) -> tuple[str, str]:
    name, _, parameters = kind.partition(":")
    return name.strip(), parameters.strip()


def eval_rng(seed: int, index: int, kind: str) -> np.random.Generator:
    """The protocol's generator for image `index`: default_rng([seed, index, KIND_IDS[kind]])."""
    name, _ = _split_kind(kind)
    if name not in KIND_IDS:
        raise InpaintError(f"{name!r} is not an evaluation mask kind; known: {', '.join(KIND_IDS)}")
    return np.random.default_rng([seed, index, KIND_IDS[name]])


def draw_mask(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A bool height x width mask (True = hole) of `kind`, drawn from `rng`."""
    name, parameters = _split_kind(kind)
    generators = _GENERATORS if name in _GENERATORS else _all_generators()
    if name not in generators:
        raise InpaintError(f"unknown mask kind {name!r}; known: {', '.join(generators)}")
    if min(height, width) < _MIN_SIDE:
        raise InpaintError(f"masks need at least {_MIN_SIDE}x{_MIN_SIDE} pixels, got {width}x{height}")
    return generators[name](rng, height, width, parameters)


def generate_mask_set(
    kind: str,
    count: int,
    size: int,
    seed: int,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write `count` size x size masks 00000.png, 00001.png... (8-bit L, 255 = hole) into `out_dir`.

    Mask i is drawn from `eval_rng(seed, i, kind)`, so a set equals what the evaluation draws.
    Nothing is written (no folder created) when any target file exists and `overwrite` is off, or
    when the kind or its parameters are wrong.
    """
    if count < 1:
        raise InpaintError(f"mask count must be at least 1, got {count}")
    out_dir = Path(out_dir)
    holes = (draw_mask(kind, eval_rng(seed, index, kind), size, size) for index in range(count))
    first = next(holes)  # checks the kind and its parameters before touching the disk
    if out_dir.exists() and not out_dir.is_dir():
        raise InpaintError(f"{out_dir} exists and is not a folder")
    paths = [out_dir / f"{index:05d}.png" for index in range(count)]
    existing = [path for path in paths if path.exists()]
    if existing and not overwrite:
        raise InpaintError(f"{existing[0]} exists; pass --overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InpaintError(f"cannot create {out_dir}: {error.strerror or error}") from None
    for path, hole in zip(paths, itertools.chain([first], holes)):
        grey = np.where(hole, 255, 0).astype(np.uint8)
        image = LoadedImage(np.repeat(grey[:, :, None], 3, axis=2), None, "L", None, path)
        write_image(path, image, overwrite=overwrite)
    return paths


# ------------------------------------------------------------------------- growing and showing holes

PREVIEW_TINT = (255, 0, 80)  # the colour a preview mixes into the hole
PREVIEW_OPACITY = 0.5


def _padded_box(hole: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The hole's bounding box grown by `margin` pixels, clipped to the array."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    height, width = hole.shape
    return (
        slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, height)),
        slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, width)),
    )


def grow_hole(hole: np.ndarray, pixels: int) -> np.ndarray:
    """`hole` (bool H x W) grown by `pixels` with a round structuring element: every pixel within
    Euclidean distance `pixels` of a hole pixel joins it (the halo a hand-drawn mask leaves around
    an object: its shadow, its edge). 0 returns the hole unchanged; a negative count is an error."""
    if pixels < 0:
        raise InpaintError(f"--dilate must be 0 or more pixels, got {pixels}")
    hole = np.asarray(hole, dtype=bool)
    if pixels == 0 or not hole.any():
        return hole.copy()
    box = _padded_box(hole, pixels)
    # distance of each pixel to the nearest hole pixel, exact Euclidean (only around the hole)
    distance = cv2.distanceTransform((~hole[box]).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    grown = hole.copy()
    grown[box] = distance <= pixels
    return grown


def preview_hole(rgb8: np.ndarray, hole: np.ndarray, tint: tuple[int, int, int] = PREVIEW_TINT,
                 opacity: float = PREVIEW_OPACITY) -> np.ndarray:
    """The image (uint8 H x W x 3) with its hole tinted: hole pixels mix `opacity` of `tint` into
    the photo, so the object under the mask stays visible; known pixels are unchanged."""
    shown = rgb8.copy()
    mixed = (1 - opacity) * rgb8[hole].astype(np.float32) + opacity * np.asarray(tint, np.float32)
    shown[hole] = np.rint(mixed).astype(np.uint8)
    return shown


def write_preview(
    image_path: Path,
    mask: Path | None,
    rects: Sequence[str],
    output: Path | None = None,
    *,
    dilate: int = 0,
    invert: bool = False,
    resize_mask: bool = False,
    overwrite: bool = False,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[Path, int]:
    """`inpaint masks preview`: the photo with the hole `fill` would make (mask and rectangles,
    grown by `dilate`) tinted, written to `output` (default: X.preview.png beside the photo).
    Returns the path written and the hole's pixel count."""
    if mask is None and not rects:
        raise InpaintError("no hole given: pass --mask FILE and/or --rect x,y,w,h")
    target = output or image_path.with_name(f"{image_path.stem}.preview.png")
    check_output_path(target, overwrite)
    image = read_image(image_path)
    hole = grow_hole(build_hole(image, mask, rects, invert=invert, resize_mask=resize_mask, warn=warn), dilate)
    shown = preview_hole(image.rgb8, hole)
    write_image(target, LoadedImage(shown, None, "RGB", None, target), overwrite=overwrite)
    return target, int(np.count_nonzero(hole))

"""Inference: pick the model (`resolve_model`), then fill numpy images with it (`Inpainter`):
grow the hole (`--dilate`), pad to the architecture's size multiple, choose a strategy (full /
crop / resize), composite, optionally Poisson-blend, and re-composite (softened over `--feather`
pixels inside the hole's edge) so known pixels come back bit for bit.

Memory stays bounded: above `max_side` only windows around the holes reach the network, a window
larger than `max_side` is filled at that scale with only its hole upsampled, and fills are kept
as uint8, never as a float copy of the whole image. A fixed-size model's windows reach it as
batches, and so do a folder's images that a network fills whole at one padded size
(`Inpainter.fill_many`, `inpaint fill DIR --batch N`), N at a time.

Torch is imported only for a network: the classical methods (`ArchSpec.fill_array`) fill arrays
directly, so `inpaint fill --arch telea` starts without it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from inpaint_cli.blend import BLEND_FUNCTIONS, composite
from inpaint_cli.errors import InpaintError
from inpaint_cli.io import FillJob, LoadedImage, check_output_file, make_folder, merge_fill, read_image, write_image
from inpaint_cli.masks import FillPlan, grow_hole
from inpaint_cli.options import BLENDS, PRECISIONS, STRATEGIES
from inpaint_cli.registry import ArchSpec, ArrayFill, get_arch
from inpaint_cli.weights import default_model, weights_for

if TYPE_CHECKING:
    import torch

    from inpaint_cli.archs.base import InpaintModel


# ------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ArrayMethod:
    """A method that fills uint8 arrays (`ArchSpec.fill_array`) with its config: any size, the CPU,
    no torch. It answers the geometry questions `Inpainter` asks a network."""

    fill_array: ArrayFill
    config: Any
    size_multiple = 1
    fixed_size = None
    min_size = 1

    def __call__(self, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return self.fill_array(self.config, rgb8, hole)


@dataclass
class LoadedModel:
    model: InpaintModel | ArrayMethod
    spec: ArchSpec
    config: str | None
    label: str  # for tables: the arch name, or the weights file's stem
    metadata: dict[str, str]
    path: Path | None = None  # the weights file loaded (None: a classical method)

    @property
    def post_processing(self) -> str:
        """What `--blend auto` applies: the post-processing a release was measured with (its
        `post_processing` metadata, see `inpaint release --blend`), else the paper's own."""
        return self.metadata.get("post_processing", self.spec.post_processing)


def _torch_device(device: torch.device | str) -> torch.device:
    """`--device` as a torch device (imports torch), checked to exist."""
    from inpaint_cli.devices import pick_device

    return pick_device(device) if isinstance(device, str) else device


def resolve_model(arch: str | None, weights: str | None, device: torch.device | str = "cpu") -> LoadedModel:
    """docs/design.md "Names": `--arch` alone loads its bundled weights, `--weights` alone its metadata's
    architecture, both must agree, neither means the default model (installed, else bundled).
    `--arch` loads an installed release of the architecture rather than the bundled one. A method on
    arrays (telea, ns, harmonic) comes back as an `ArrayMethod`, without importing torch."""
    if weights is None and arch is None:
        default = default_model()
        if default.endswith(".safetensors"):
            weights = default
        else:
            arch = default
    spec = get_arch(arch) if weights is None else None
    if spec is not None and spec.fill_array is not None:
        if device not in ("auto", "cpu"):  # runs on the CPU regardless, but a device named must exist
            _torch_device(device)
        method = ArrayMethod(spec.fill_array, spec.config())
        return LoadedModel(method, spec, spec.default_config, spec.name, {})
    from inpaint_cli.checkpoint import load_release

    device = _torch_device(device)
    if weights is not None:
        model, spec, config, metadata = load_release(weights, arch, None, device)
        return LoadedModel(model, spec, config, Path(str(weights).split("@")[0]).stem, metadata, Path(weights))
    if not spec.learned:
        model = spec.build_generator(spec.config()).eval()
        return LoadedModel(model, spec, spec.default_config, spec.name, {})
    bundled = weights_for(spec.name)
    if bundled is None:
        from inpaint_cli.convert.official import official_models

        convert = any(official.arch == spec.name for official in official_models())
        raise InpaintError(
            f"no bundled weights for {spec.name}: "
            + ("convert the official ones with `inpaint convert FILE --install`, or " if convert else "")
            + f"train them with `inpaint train --arch {spec.name}` and pass the export with --weights FILE"
            f" (or hf://owner/repo/file.safetensors)"
        )
    model, spec, config, metadata = load_release(bundled, spec.name, None, device)
    return LoadedModel(model, spec, config, spec.name, metadata, bundled)


# ---------------------------------------------------------------------------------------- filling


@dataclass(frozen=True)
class FillOptions:
    strategy: str = "auto"  # auto: full up to `max_side`, crop above (fixed-size models: crop)
    blend: str = "auto"  # auto: the release's recorded post-processing, else the paper's (GLCIC: poisson)
    max_side: int = 1024  # the longer side a model fills comfortably in one piece
    context: int = 64  # crop: pixels of context on each side of a hole region, at least
    dilate: int = 0  # grow the hole by this many pixels (a disk) before filling
    feather: int = 0  # soften the composite over this many pixels inside the (grown) hole's edge
    seed: int = 0  # seeds each fill's draws: patchmatch's search; MAT's and Co-ModGAN's z and noise
    truncation: float | None = None  # MAT, Co-ModGAN: the truncation psi of w (None: the official inference's)
    window_batch: int = 16  # fixed-size models: windows per forward pass (results do not depend on it)
    precision: str = "auto"  # the network's autocast: auto (bf16 on CUDA, float32 on the CPU), fp32, bf16, fp16


def blended_label(label: str, blend: str) -> str:
    """A method's name in tables: 'NAME + poisson' when its fills are blended."""
    return label if blend == "none" else f"{label} + {blend}"


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """A float fill in [0, 1] as uint8."""
    scaled = values * 255  # the one temporary: rounded and clipped in place
    return np.clip(np.rint(scaled, out=scaled), 0, 255, out=scaled).astype(np.uint8)


def _without_hole(rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A copy of `rgb8` with its hole black: no method sees the pixels it replaces."""
    return cv2.bitwise_and(rgb8, rgb8, mask=np.logical_not(hole).view(np.uint8)).reshape(rgb8.shape)


def _padded_size(shape: tuple[int, ...], multiple: int, minimum: int = 1) -> tuple[int, int]:
    """The height and width of `shape` raised to at least `minimum`, then to a multiple of `multiple`."""
    height, width = (max(side, minimum) for side in shape[:2])
    return height + (-height) % multiple, width + (-width) % multiple


def _pad_to_multiple(array: np.ndarray, multiple: int, minimum: int = 1) -> np.ndarray:
    """Mirror-pad bottom and right up to a multiple of `multiple`, and to at least `minimum`."""
    target_h, target_w = _padded_size(array.shape, multiple, minimum)
    pad_h, pad_w = target_h - array.shape[0], target_w - array.shape[1]
    if not pad_h and not pad_w:
        return array
    widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


class Inpainter:
    """A loaded model ready to fill uint8 RGB images; callable as an evaluation method."""

    def __init__(self, loaded: LoadedModel, device: torch.device | str = "cpu", options: FillOptions = FillOptions()):
        if options.strategy not in STRATEGIES:
            raise InpaintError(f"unknown --strategy {options.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if options.blend not in BLENDS:
            raise InpaintError(f"unknown --blend {options.blend!r}; use one of {', '.join(BLENDS)}")
        for name in ("dilate", "feather"):
            if getattr(options, name) < 0:
                raise InpaintError(f"--{name} must be 0 or more pixels, got {getattr(options, name)}")
        if options.window_batch < 1:
            raise InpaintError(f"window_batch must be 1 or more, got {options.window_batch}")
        self.model = loaded.model
        if options.precision not in PRECISIONS:
            raise InpaintError(f"unknown --precision {options.precision!r}; use one of {', '.join(PRECISIONS)}")
        self.autocast = None  # float32
        if isinstance(self.model, ArrayMethod):
            self.device = None  # arrays on the CPU, no torch
        else:
            import torch

            from inpaint_cli.devices import fill_autocast_dtype

            self.device = _torch_device(device)
            # channels-last, as in training: the CPU's convolutions run faster on it (README, "Latency")
            self.model = self.model.to(self.device, memory_format=torch.channels_last).eval()
            has_weights = any(True for _ in self.model.parameters())
            self.autocast = fill_autocast_dtype(self.device, options.precision) if has_weights else None
        self.blend = loaded.post_processing if options.blend == "auto" else options.blend
        self.label = blended_label(loaded.label, self.blend)
        self.options = options

    def reseeded(self, seed: int) -> Inpainter:
        """The same loaded model filling with another `seed` (a pluralistic model's other draw)."""
        other = copy.copy(self)
        other.options = dataclasses.replace(self.options, seed=seed)
        return other

    @property
    def shares_forwards(self) -> bool:
        """Whether `fill_many` puts several images through one forward: a network that fills
        images whole and deterministically. A method on arrays, a fixed-size model (its windows
        already share forwards within each image) and a model that draws its fill from a seed
        (MAT, Co-ModGAN: z and noise are drawn for the whole batch) fill each image alone."""
        return not (isinstance(self.model, ArrayMethod) or self.model.fixed_size or getattr(self.model, "pluralistic", False))

    # the network on one array ---------------------------------------------------------------

    def _fill8(self, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The method's uint8 fill of an array, whole."""
        if isinstance(self.model, ArrayMethod):
            return self.model(rgb8, hole)
        return _to_uint8(self._network([rgb8], [hole])[0][0])

    def _network(self, rgb8: Sequence[np.ndarray], hole: Sequence[np.ndarray], attention: bool = False):
        """A network's fill of a batch of arrays, H x W x 3 uint8 each with its H x W hole, that pad
        to one size (each mirror-padded to the size multiple, its fill cropped back): float
        H x W x 3 fills in [0, 1] of each, and the attention maps where asked."""
        import torch

        sizes = [one.shape for one in hole]
        multiple, minimum = self.model.size_multiple, self.model.min_size
        image = torch.from_numpy(np.stack([_pad_to_multiple(one, multiple, minimum) for one in rgb8])).permute(0, 3, 1, 2)
        mask = torch.from_numpy(np.stack([_pad_to_multiple(one, multiple, minimum) for one in hole]))[:, None]
        image = image.to(self.device).float().div_(255)
        mask = mask.to(self.device).float()
        with (
            torch.random.fork_rng(devices=[]),  # the seed below leaves the caller's generator as it was
            torch.inference_mode(),
            torch.autocast(self.device.type, self.autocast or torch.bfloat16, enabled=self.autocast is not None),
        ):
            torch.default_generator.manual_seed(self.options.seed)
            try:
                if attention:
                    output, flow = self.model.inpaint_with_attention(image, mask)
                elif getattr(self.model, "pluralistic", False):  # a fill drawn from z (MAT, Co-ModGAN)
                    output, flow = self.model.inpaint(image, mask, seed=self.options.seed,
                                                      truncation=self.options.truncation), None
                else:
                    output, flow = self.model.inpaint(image, mask), None
            except ValueError as error:  # an input the architecture cannot take (archs raise ValueError)
                raise InpaintError(f"{self.label}: {error}") from None
        output = output.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        output = [one[:height, :width] for one, (height, width) in zip(output, sizes)]
        if flow is not None:
            flow = (flow.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
            flow = [one[:height, :width] for one, (height, width) in zip(flow, sizes)]
        return output, flow

    def _fixed_windows(self, rgb8: np.ndarray, hole: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> Iterator[np.ndarray]:
        """A fixed-input model's uint8 fill of each box (top, left, bottom, right) of the image:
        the box mirror-padded to a square and scaled to the model's size; the squares go through
        the network in batches of `options.window_batch`, and each fill is scaled back and
        cropped to its box as it is yielded, so only model-size windows are ever held together."""
        side = self.model.fixed_size
        squares, holes = [], []
        for top, left, bottom, right in boxes:
            extent = max(bottom - top, right - left)
            pad = ((0, extent - (bottom - top)), (0, extent - (right - left)))
            square_rgb = np.pad(rgb8[top:bottom, left:right], (*pad, (0, 0)), mode="symmetric")
            square_hole = np.pad(hole[top:bottom, left:right], pad, mode="symmetric")
            if extent != side:
                square_rgb = cv2.resize(square_rgb, (side, side), interpolation=cv2.INTER_AREA)
                square_hole = cv2.resize(square_hole.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) > 0
            squares.append(square_rgb)
            holes.append(square_hole)
        batch = self.options.window_batch
        outputs = (output for start in range(0, len(boxes), batch)
                   for output in self._network(np.stack(squares[start : start + batch]), np.stack(holes[start : start + batch]))[0])
        for output, (top, left, bottom, right) in zip(outputs, boxes):
            extent = max(bottom - top, right - left)
            if extent != side:
                output = cv2.resize(output, (extent, extent), interpolation=cv2.INTER_CUBIC)
            yield _to_uint8(output[: bottom - top, : right - left])

    # strategies -----------------------------------------------------------------------------

    def _windows(self, hole: np.ndarray) -> list[tuple[int, int, int, int, np.ndarray]]:
        """(top, left, bottom, right, pixels of this region) for each connected hole region, with
        context around it; regions closer than the context are merged."""
        context = self.options.context
        kernel = np.ones((3, 3), np.uint8)
        grown = cv2.dilate(hole.view(np.uint8), kernel, iterations=max(context // 4, 1))
        count, labels = cv2.connectedComponents(grown)
        height, width = hole.shape
        windows = []
        for label in range(1, count):
            region = (labels == label) & hole
            if not region.any():
                continue
            rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
            top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            if self.model.fixed_size:
                # square, the hole's extent times the model's window_per_hole (its training share)
                extent = max(bottom - top, right - left)
                side = max(self.model.fixed_size, math.ceil(self.model.window_per_hole * extent))
                side = min(side, height, width) if min(height, width) >= self.model.fixed_size else side
                centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
                top = min(max(centre_y - side // 2, 0), max(height - side, 0))
                left = min(max(centre_x - side // 2, 0), max(width - side, 0))
                bottom, right = min(top + side, height), min(left + side, width)  # a smaller image: all of it
            else:
                margin = max(context, (max(bottom - top, right - left) + 1) // 2)
                top, left = max(top - margin, 0), max(left - margin, 0)
                bottom, right = min(bottom + margin, height), min(right + margin, width)
            windows.append((int(top), int(left), int(bottom), int(right), region))
        return windows

    def _fill_crop(self, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        output = rgb8.copy()
        windows = self._windows(hole)
        boxes = [window[:4] for window in windows]
        if self.model.fixed_size:
            fills = self._fixed_windows(rgb8, hole, boxes)
        else:  # a window larger than max_side is filled at that scale, its hole upsampled
            fills = (self._fill_resized(rgb8[top:bottom, left:right], hole[top:bottom, left:right])
                     for top, left, bottom, right in boxes)
        for fill, (top, left, bottom, right, region) in zip(fills, windows):
            paste = region[top:bottom, left:right] | ~hole[top:bottom, left:right]  # known pixels too: blending needs them
            cv2.copyTo(fill, paste.view(np.uint8), output[top:bottom, left:right])  # in place, as np.copyto(where=) but 30x faster
        return output

    def _fill_resized(self, rgb8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """uint8 fill of an array at most `max_side` long: above that, the network fills a
        downscaled copy and only the hole's box (one pixel wider: blending reads that ring) is
        upsampled into a copy of `rgb8`."""
        height, width = hole.shape
        scale = self.options.max_side / max(height, width)
        if scale >= 1:
            return self._fill8(rgb8, hole)
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        small_rgb = cv2.resize(rgb8, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        small_fill = self._fill8(small_rgb, small_hole)
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        top, bottom = max(rows[0] - 1, 0), min(rows[-1] + 2, height)
        left, right = max(cols[0] - 1, 0), min(cols[-1] + 2, width)
        # the box of cv2.resize(small_fill, (width, height), INTER_CUBIC), computed alone
        scale_x, scale_y = size[0] / width, size[1] / height
        to_small = np.array([[scale_x, 0, (left + 0.5) * scale_x - 0.5], [0, scale_y, (top + 0.5) * scale_y - 0.5]])
        box = cv2.warpAffine(small_fill, to_small, (right - left, bottom - top),
                             flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        output = rgb8.copy()
        output[top:bottom, left:right] = box
        return output

    def strategy_for(self, hole: np.ndarray) -> str:
        if self.options.strategy != "auto":
            return self.options.strategy
        if self.model.fixed_size or max(hole.shape) > self.options.max_side:
            return "crop"
        return "full"

    def hole_to_fill(self, hole: np.ndarray) -> np.ndarray:
        """The pixels a fill replaces: `hole` grown by `options.dilate` (what `io.merge_fill` must
        be given with the fill)."""
        return grow_hole(hole, self.options.dilate)

    def fill(self, rgb8: np.ndarray, hole: np.ndarray, attention: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The composited fill (uint8 H x W x 3) of `hole_to_fill(hole)` and, where asked, the
        attention map (uint8 RGB)."""
        hole = self.hole_to_fill(hole)
        flow = None
        if not hole.any():
            return rgb8.copy(), None
        strategy = self.strategy_for(hole)
        masked = _without_hole(rgb8, hole)  # no method sees the hole
        if attention:
            if not hasattr(self.model, "inpaint_with_attention"):
                raise InpaintError(f"{self.label} has no attention map (DeepFill v1 and v2 do)")
            if strategy != "full" or self.model.fixed_size:
                raise InpaintError("--attention-map needs --strategy full")
            output, flow = self._network([masked], [hole], attention=True)
            output8, flow = _to_uint8(output[0]), flow[0]
        elif self._fills_whole(hole):
            output8 = self._fill8(masked, hole)
        elif strategy == "resize" and not self.model.fixed_size:
            output8 = self._fill_resized(masked, hole)
        else:
            output8 = self._fill_crop(masked, hole)
        return self._finish(rgb8, output8, hole), flow

    def fill_many(self, images: Sequence[np.ndarray], holes: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`fill` of each image and its hole, the same bytes, with one network forward for all
        the images filled whole (strategy full) that pad to one size, where the model
        `shares_forwards`; other images fill alone."""
        grown = [self.hole_to_fill(hole) for hole in holes]
        together: dict[tuple[int, int], list[int]] = {}
        for index, hole in enumerate(grown):
            if self.shares_forwards and hole.any() and self._fills_whole(hole):
                together.setdefault(_padded_size(hole.shape, self.model.size_multiple, self.model.min_size), []).append(index)
        filled: dict[int, np.ndarray] = {}
        for indices in together.values():
            outputs = self._network([_without_hole(images[i], grown[i]) for i in indices], [grown[i] for i in indices])[0]
            for index, output in zip(indices, outputs):
                filled[index] = self._finish(images[index], _to_uint8(output), grown[index])
        return [filled[index] if index in filled else self.fill(image, hole)[0]
                for index, (image, hole) in enumerate(zip(images, holes))]

    def _fills_whole(self, hole: np.ndarray) -> bool:
        """Whether the network fills the image whole (strategy full), not in windows."""
        return self.strategy_for(hole) == "full" and not self.model.fixed_size

    def _finish(self, original: np.ndarray, output8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The method's uint8 fill `output8` blended where asked and composited into `original`."""
        if self.blend in BLEND_FUNCTIONS:
            # before compositing: Poisson blending reads the network's own pixels around the hole
            output8 = BLEND_FUNCTIONS[self.blend](original, output8, hole)
        return composite(original, output8, hole, self.options.feather)

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return self.fill(image, hole)[0]


# ------------------------------------------------------------------------------------------ files


def _ignore(*_: object) -> None:
    """The default of a callback nobody listens to."""


@dataclass(frozen=True)
class FilledFile:
    """What `fill_file` wrote, for the report line or the `--json` record."""

    job: FillJob
    method: str  # the inpainter's label
    hole_pixels: int
    strategy: str
    seconds: float

    def record(self) -> dict:
        """The `inpaint fill --json` line."""
        return {"input": str(self.job.image), "output": str(self.job.target), "method": self.method,
                "hole_pixels": self.hole_pixels, "strategy": self.strategy, "seconds": round(self.seconds, 3)}


def _hole_to_fill(inpainter: Inpainter, job: FillJob, hole: np.ndarray, warn: Callable[[str], None]) -> np.ndarray:
    """The pixels the fill of `job` replaces (--dilate); an empty or whole-image hole is reported to `warn`."""
    grown = inpainter.hole_to_fill(hole)
    if not grown.any():
        warn(f"{job.image.name}: the mask is empty; the output is a copy of the input")
    elif grown.all():
        warn(f"{job.image.name}: the mask covers the whole image; filling with no context")
    return grown


def _write_fill(job: FillJob, image: LoadedImage, filled: np.ndarray, grown: np.ndarray, quality: int, overwrite: bool) -> None:
    """Write `filled` to `job.target` in the input's own representation, its folder created."""
    make_folder(job.target.parent)
    write_image(job.target, merge_fill(image, filled, grown), quality=quality, overwrite=overwrite)


def fill_file(
    inpainter: Inpainter,
    job: FillJob,
    image: LoadedImage,
    hole: np.ndarray,
    *,
    quality: int = 95,
    overwrite: bool = False,
    attention_map: Path | None = None,
    warn: Callable[[str], None] = _ignore,
) -> FilledFile:
    """Fill `image`'s hole and write it to `job.target` in the input's own representation (its
    folder created), and the attention map where asked; an empty or whole-image hole is reported
    to `warn`."""
    started = time.perf_counter()
    if job.sample:  # --samples: draw k of a pluralistic model has the seed --seed + k
        inpainter = inpainter.reseeded(inpainter.options.seed + job.sample)
    grown = _hole_to_fill(inpainter, job, hole, warn)
    filled, flow = inpainter.fill(image.rgb8, hole, attention=attention_map is not None)
    _write_fill(job, image, filled, grown, quality, overwrite)
    if flow is not None:
        write_image(attention_map, LoadedImage(flow, None, "RGB", None, attention_map), overwrite=overwrite)
    return FilledFile(job, inpainter.label, int(grown.sum()), inpainter.strategy_for(grown), time.perf_counter() - started)


def _fill_alone(inpainter: Inpainter, job: FillJob, image: LoadedImage, hole: np.ndarray, **options) -> FilledFile | InpaintError:
    """`fill_file`, its error returned rather than raised."""
    try:
        return fill_file(inpainter, job, image, hole, **options)
    except InpaintError as error:
        return error


def fill_files(
    inpainter: Inpainter,
    loaded: Sequence[tuple[FillJob, LoadedImage, np.ndarray]],
    *,
    quality: int = 95,
    overwrite: bool = False,
    warn: Callable[[str], None] = _ignore,
) -> list[FilledFile | InpaintError]:
    """`fill_file` of each (job, image, hole), the images filled whole sharing the network's
    forwards (`Inpainter.fill_many`) where the model `shares_forwards`: each one's outcome, the file
    written or the error that stopped it, in order. When a shared forward fails, each image is
    filled alone, so that an error names its own image; each file's `seconds` is then an equal
    share of the whole. A single image, or a model that does not share forwards, takes
    `fill_file` one image at a time (--samples draws too)."""
    if len(loaded) <= 1 or not inpainter.shares_forwards:
        return [_fill_alone(inpainter, *one, quality=quality, overwrite=overwrite, warn=warn) for one in loaded]
    started = time.perf_counter()
    grown = [_hole_to_fill(inpainter, job, hole, warn) for job, _, hole in loaded]
    try:
        fills: list[np.ndarray | None] = inpainter.fill_many([image.rgb8 for _, image, _ in loaded],
                                                             [hole for _, _, hole in loaded])
    except InpaintError:
        fills = [None] * len(loaded)
    errors: dict[int, InpaintError] = {}
    for index, ((job, image, hole), filled) in enumerate(zip(loaded, fills)):
        try:
            if filled is None:
                filled = inpainter.fill(image.rgb8, hole)[0]
            _write_fill(job, image, filled, grown[index], quality, overwrite)
        except InpaintError as error:
            errors[index] = error
    seconds = (time.perf_counter() - started) / len(loaded)
    return [errors[index] if index in errors else
            FilledFile(job, inpainter.label, int(hole.sum()), inpainter.strategy_for(hole), seconds)
            for index, ((job, _, _), hole) in enumerate(zip(loaded, grown))]


def fill_planned(
    plan: FillPlan,
    inpainter: Inpainter,
    *,
    batch: int = 1,
    warn: Callable[[str], None] = _ignore,
    done: Callable[[FilledFile], None] = _ignore,
    failed: Callable[[str], None] = _ignore,
    progress: Callable[[int, int], None] = _ignore,
) -> list[str]:
    """Carry out `plan` with `fill_file`; `done` gets each written file. A single image's errors
    raise. A folder decodes the next image and makes its hole in a background thread while one
    fills; with `batch` > 1, `batch` images at a time fill together (`fill_files`), so at most
    `batch` + 1 are held. An image that cannot be filled is reported to `failed` as "path: reason"
    and the folder goes on; `progress(done, total)` follows the images. Returns the failures."""
    options = {"quality": plan.quality, "overwrite": plan.overwrite, "warn": warn}
    if any(job.sample for job in plan.jobs) and not getattr(inpainter.model, "pluralistic", False):
        raise InpaintError(f"--samples needs a model that draws its fill from a seed (mat, co-mod-gan);"
                           f" {inpainter.label} fills deterministically")
    if batch < 1:
        raise InpaintError(f"--batch must be 1 or more, got {batch}")
    if not plan.batch:
        image, hole = plan.first
        for job in plan.jobs:  # one image; several jobs only for --samples
            done(fill_file(inpainter, job, image, hole, attention_map=plan.attention_map, **options))
        return []

    def load(job: FillJob) -> tuple[LoadedImage, np.ndarray]:
        if job.problem:
            raise InpaintError(job.problem)
        check_output_file(job.target, plan.overwrite)
        image = read_image(job.image)
        return image, plan.make_hole(image, job.mask)

    def fill_chunk(chunk: list[FillJob], loads: list[Future]) -> list[FilledFile | InpaintError]:
        """Each job's outcome: the file written, or the error that stopped it (decoding or filling)."""
        outcomes: dict[int, FilledFile | InpaintError] = {}
        loaded: dict[int, tuple[FillJob, LoadedImage, np.ndarray]] = {}
        for index, (job, load_result) in enumerate(zip(chunk, loads)):
            try:
                loaded[index] = (job, *load_result.result())
            except InpaintError as error:
                outcomes[index] = error
        outcomes.update(zip(loaded, fill_files(inpainter, list(loaded.values()), **options)))
        return [outcomes[index] for index in range(len(chunk))]

    jobs, failures = plan.jobs, []
    progress(0, len(jobs))
    with ThreadPoolExecutor(max_workers=1) as reader:  # the next image decodes while these fill
        upcoming: deque[Future] = deque()
        for start in range(0, len(jobs), batch):
            chunk = jobs[start : start + batch]
            while len(upcoming) < len(chunk) + 1 and start + len(upcoming) < len(jobs):  # the chunk and the next image
                upcoming.append(reader.submit(load, jobs[start + len(upcoming)]))
            outcomes = fill_chunk(chunk, [upcoming.popleft() for _ in chunk])
            for index, (job, outcome) in enumerate(zip(chunk, outcomes)):
                if isinstance(outcome, InpaintError):
                    failures.append(f"{job.image}: {outcome}")
                    failed(failures[-1])
                else:
                    done(outcome)
                progress(start + index + 1, len(jobs))
    return failures

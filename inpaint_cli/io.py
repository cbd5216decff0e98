"""Reading and writing images and masks, and pairing images with their masks (docs/design.md "Conventions").

Images are decoded once into a `LoadedImage`: RGB pixels for the networks plus whatever is needed to
write the result back in the input's own representation (greyscale, palette, alpha, 16-bit), so that
known pixels leave the program bit for bit as they came in (for lossless output formats).

- EXIF orientation is applied on read and the tag is removed on write (other EXIF kept where Pillow
  can write it: JPEG, PNG, WebP; a TIFF input's tags are not carried over).
- 16-bit PNG and TIFF files are decoded with OpenCV (Pillow reads 16-bit RGB as 8-bit). The networks
  see `rgb8 = round(value / 257)`; holes are written back as `fill * 257`, so a 16-bit file is
  filled at 8-bit precision in the hole while its known pixels keep all 16 bits. OpenCV writes no
  EXIF, and a 16-bit grey + alpha PNG comes back as 16-bit RGBA (same values; OpenCV cannot write
  two-channel PNGs).
- Greyscale and palette images are processed as RGB; holes are written back as the luma of the fill
  (Pillow's ITU-R 601-2 weights) or as the nearest opaque palette entry.
- Every write goes to a hidden temporary file in the output folder, renamed into place at the end.
"""

from __future__ import annotations

import dataclasses
import io
import os
import secrets
import struct
import warnings
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from inpaint_cli.errors import InpaintError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_FORMAT_BY_EXTENSION = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
_EXIF_FORMATS = ("JPEG", "PNG", "WEBP")
_ICC_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
_ORIENTATION_TAG = 0x0112
_BITS_PER_SAMPLE_TAG = 258
_PNG_COLOUR_GREY_ALPHA = 4
_MASK_SUFFIX = "_mask"
_FILLED_SUFFIX = ".filled"  # `inpaint fill`'s default output beside an image: X.filled.<ext>

# Pillow modes decoded by converting to another mode first; the value is the mode written back.
_CONVERTED_MODES = {
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBa": "RGBA",
    "La": "LA",
    "PA": "RGBA",
}


@dataclass(frozen=True)
class Palette:
    """What a palette ("P") image needs to be written back: its colours and per-pixel indices."""

    colours: np.ndarray  # N x 3 uint8
    indices: np.ndarray  # H x W uint8
    transparency: int | bytes | None  # Pillow's info["transparency"]: one index, or alpha per entry

    def entry_alpha(self) -> np.ndarray:
        """Alpha (uint8) of every palette entry."""
        alpha = np.full(len(self.colours), 255, dtype=np.uint8)
        if isinstance(self.transparency, int):
            if self.transparency < len(alpha):
                alpha[self.transparency] = 0
        elif isinstance(self.transparency, bytes):
            table = np.frombuffer(self.transparency, dtype=np.uint8)[: len(alpha)]
            alpha[: len(table)] = table
        return alpha

    def pixel_alpha(self) -> np.ndarray | None:
        """Alpha per pixel (H x W uint8), or None when the palette has no transparency."""
        if self.transparency is None:
            return None
        return self.entry_alpha()[self.indices]

    def nearest_entries(self, colours: np.ndarray) -> np.ndarray:
        """Index of the nearest opaque palette colour (squared RGB distance) for K x 3 uint8 colours."""
        alpha = self.entry_alpha()
        candidates = np.flatnonzero(alpha == 255)
        if candidates.size == 0:
            candidates = np.arange(len(self.colours))
        palette = self.colours[candidates].astype(np.int32)
        result = np.empty(len(colours), dtype=np.uint8)
        chunk = 16384  # bounds the K x N distance matrix to a few MB
        for start in range(0, len(colours), chunk):
            block = colours[start : start + chunk].astype(np.int32)
            distances = ((block[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
            result[start : start + chunk] = candidates[distances.argmin(axis=1)]
        return result


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: RGB pixels plus what is needed to write it back in its own representation.

    `rgb` is H x W x 3 (uint8, or uint16 for 16-bit files), with EXIF orientation applied; for
    greyscale modes the three channels are equal. `mode` says how to write it back: "RGB", "RGBA",
    "L", "LA", "1", "P", "RGB16", "RGBA16", "L16", "LA16".
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    mode: str
    palette: Palette | None
    path: Path
    exif: bytes | None = None
    icc_profile: bytes | None = None

    @property
    def rgb8(self) -> np.ndarray:
        """The pixels as uint8 for the networks: 16-bit values become round(value / 257)."""
        return _to_uint8(self.rgb)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def _to_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Greyscale of uint8 RGB (... x 3) exactly as Pillow's convert("L"): ITU-R 601-2, fixed point."""
    wide = rgb.astype(np.uint32)
    grey = (wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) >> 16
    return grey.astype(np.uint8)


# ------------------------------------------------------------------------------------------- reading


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise InpaintError(f"{path}: no such file")
    if path.is_dir():
        raise InpaintError(f"{path} is a directory, expected an image file")
    if not os.access(path, os.R_OK):
        raise InpaintError(f"cannot read {path}: permission denied")


def _open_verified(path: Path) -> Image.Image:
    """Open with Pillow, check the file's integrity and decode it; errors name the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as probe:
                probe.verify()
            image = Image.open(path)
            image.load()
    except UnidentifiedImageError:
        raise InpaintError(f"{path} is not an image (or not a format this tool reads)") from None
    except Image.DecompressionBombError:
        raise InpaintError(f"{path}: image too large to decode safely") from None
    except PermissionError:
        raise InpaintError(f"cannot read {path}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        raise InpaintError(f"{path}: truncated or corrupt image ({error})") from None
    return image


def _is_sixteen_bit(image: Image.Image, path: Path) -> bool:
    if image.format == "PNG":
        with open(path, "rb") as handle:
            header = handle.read(26)
        return len(header) == 26 and header[12:16] == b"IHDR" and header[24] == 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(_BITS_PER_SAMPLE_TAG, ())
        bits = bits if isinstance(bits, tuple) else (bits,)
        return 16 in bits
    return False


def _png_colour_type(path: Path) -> int:
    with open(path, "rb") as handle:
        return handle.read(26)[25]


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an H x W (x C) array, as Pillow's exif_transpose does."""
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return array if transform is None else np.ascontiguousarray(transform(array))


def _metadata(image: Image.Image) -> tuple[int, bytes | None]:
    """EXIF orientation, and the EXIF block without it (only for formats whose EXIF is a real block)."""
    exif = image.getexif()
    orientation = exif.get(_ORIENTATION_TAG, 1)
    if "exif" not in image.info:
        return orientation, None
    if _ORIENTATION_TAG in exif:
        del exif[_ORIENTATION_TAG]
    return orientation, (exif.tobytes() if len(exif) else None)


def _decode_sixteen_bit(image: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InpaintError(f"{path}: truncated or corrupt image (OpenCV could not decode it)")
    if pixels.dtype != np.uint16:
        raise InpaintError(f"{path}: unsupported pixel format ({pixels.dtype} samples)")
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2), None, "L16"
    if pixels.shape[2] == 3:
        return np.ascontiguousarray(pixels[:, :, ::-1]), None, "RGB16"
    if pixels.shape[2] == 4:
        rgb = np.ascontiguousarray(pixels[:, :, 2::-1])
        alpha = np.ascontiguousarray(pixels[:, :, 3])
        grey_alpha = image.format == "PNG" and _png_colour_type(path) == _PNG_COLOUR_GREY_ALPHA
        return rgb, alpha, "LA16" if grey_alpha else "RGBA16"
    raise InpaintError(f"{path}: unsupported pixel format ({pixels.shape[2]} channels)")


def _decode_pillow(
    image: Image.Image, path: Path
) -> tuple[np.ndarray, np.ndarray | None, str, Palette | None]:
    mode = image.mode
    if mode == "P" and image.palette is not None and image.palette.mode != "RGB":
        image, mode = image.convert("RGBA"), "RGBA"
    elif mode in _CONVERTED_MODES:
        mode = _CONVERTED_MODES[mode]
        image = image.convert(mode)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        grey = np.asarray(image).astype(np.uint16)
        return np.repeat(grey[:, :, None], 3, axis=2), None, "L16", None
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8), None, "RGB", None
    if mode == "RGBA":
        pixels = np.asarray(image, dtype=np.uint8)
        return np.ascontiguousarray(pixels[:, :, :3]), np.ascontiguousarray(pixels[:, :, 3]), "RGBA", None
    if mode in ("L", "1"):
        grey = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), None, mode, None
    if mode == "LA":
        pixels = np.asarray(image, dtype=np.uint8)
        grey = pixels[:, :, 0]
        return np.repeat(grey[:, :, None], 3, axis=2), np.ascontiguousarray(pixels[:, :, 1]), "LA", None
    if mode == "P":
        indices = np.asarray(image, dtype=np.uint8)
        flat = image.getpalette("RGB") or []
        colours = np.asarray(flat, dtype=np.uint8).reshape(-1, 3)
        if colours.size == 0 or int(indices.max()) >= len(colours):
            raise InpaintError(f"{path}: truncated or corrupt image (palette too short)")
        palette = Palette(colours, indices, image.info.get("transparency"))
        return colours[indices], None, "P", palette
    raise InpaintError(f"{path}: unsupported pixel format (Pillow mode {mode})")


def read_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Decode an image file (EXIF orientation applied once); InpaintError naming the file if it can't."""
    path = Path(path)
    _check_input_file(path)
    image = _open_verified(path)
    try:
        orientation, exif = _metadata(image)
        icc_profile = image.info.get("icc_profile") or None
        palette = None
        if _is_sixteen_bit(image, path):
            rgb, alpha, mode = _decode_sixteen_bit(image, path)
        else:
            rgb, alpha, mode, palette = _decode_pillow(image, path)
    finally:
        image.close()
    rgb = _orient(rgb, orientation)
    alpha = None if alpha is None else _orient(alpha, orientation)
    if palette is not None:
        palette = dataclasses.replace(palette, indices=_orient(palette.indices, orientation))
    return LoadedImage(rgb, alpha, mode, palette, path, exif=exif, icc_profile=icc_profile)


def read_mask(path: str | os.PathLike[str], *, invert: bool = False) -> np.ndarray:
    """A mask file as bool H x W, True = hole (docs/design.md "Conventions").

    Images with an alpha channel (RGBA, LA): alpha < 128 is a hole, so a fully opaque one is an
    empty mask. Palette images follow the same rule when some pixel is transparent. Others:
    greyscale (Pillow's luma) >= 128 is a hole. 16-bit files are judged on their 8-bit values.
    `invert` swaps hole and known.
    """
    mask_image = read_image(path)
    alpha = _pixel_alpha(mask_image)
    if mask_image.alpha is None and alpha is not None and alpha.min() == 255:
        alpha = None  # a palette that declares transparency no pixel uses
    if alpha is not None:
        hole = _to_uint8(alpha) < 128
    else:
        hole = luma(mask_image.rgb8) >= 128
    return ~hole if invert else hole


# ---------------------------------------------------------------------------------------- filling


def merge_fill(image: LoadedImage, filled_rgb8: np.ndarray, hole: np.ndarray) -> LoadedImage:
    """The filled image in the input's own representation; pixels outside `hole` are the input's.

    16-bit: hole = fill * 257. Greyscale: hole = luma of the fill. Palette: hole = nearest opaque
    palette entry. Alpha is kept untouched.
    """
    if filled_rgb8.shape != image.rgb.shape or filled_rgb8.dtype != np.uint8:
        raise ValueError(f"fill must be uint8 {image.rgb.shape}, got {filled_rgb8.dtype} {filled_rgb8.shape}")
    if hole.shape != image.rgb.shape[:2]:
        raise ValueError(f"hole must be {image.rgb.shape[:2]}, got {hole.shape}")
    hole = hole.astype(bool)
    fill = filled_rgb8[hole]
    palette = image.palette
    if image.mode == "P" and palette is not None:
        entries = palette.nearest_entries(fill)
        indices = palette.indices.copy()
        indices[hole] = entries
        palette = dataclasses.replace(palette, indices=indices)
        values = palette.colours[entries]
    elif image.mode in ("L", "LA", "L16", "LA16"):
        values = np.repeat(luma(fill)[:, None], 3, axis=1)
    elif image.mode == "1":
        values = np.repeat(np.where(luma(fill) >= 128, 255, 0).astype(np.uint8)[:, None], 3, axis=1)
    else:
        values = fill
    rgb = image.rgb.copy()
    rgb[hole] = values.astype(np.uint16) * 257 if rgb.dtype == np.uint16 else values
    return dataclasses.replace(image, rgb=rgb, palette=palette)


# ---------------------------------------------------------------------------------------- writing


def _output_format(path: Path) -> str:
    extension = path.suffix.lower()
    if extension not in _FORMAT_BY_EXTENSION:
        known = ", ".join(IMAGE_EXTENSIONS)
        shown = extension or "(none)"
        raise InpaintError(f"{path}: unknown output extension {shown}; use one of {known}")
    return _FORMAT_BY_EXTENSION[extension]


def check_output_file(path: Path, overwrite: bool) -> None:
    """Raise InpaintError unless `path` names an output file: a known extension, not a folder, and
    no file there already (unless `overwrite`). Its folder may be created later."""
    _output_format(path)
    if path.is_dir():
        raise InpaintError(f"{path} is a directory, expected an output file name")
    if path.exists() and not overwrite:
        raise InpaintError(f"{path} exists; pass --overwrite")


def check_output_path(path: Path, overwrite: bool) -> None:
    """Raise InpaintError unless `path` can be written: `check_output_file`, and a writable
    existing folder."""
    check_output_file(path, overwrite)
    folder = path.parent
    if not folder.exists():
        raise InpaintError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise InpaintError(f"output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InpaintError(f"cannot write to {folder}: permission denied")


def _pixel_alpha(image: LoadedImage) -> np.ndarray | None:
    """Alpha per pixel (an alpha channel, or a palette's transparency), None when there is none."""
    if image.alpha is not None:
        return image.alpha
    return None if image.palette is None else image.palette.pixel_alpha()


def _output_mode(image: LoadedImage, path: Path, file_format: str) -> str:
    """The 8-bit Pillow mode to save: the input's own where the format holds it, else the closest.

    JPEG and BMP keep no alpha: a fully opaque alpha is dropped, any transparency is an error.
    WebP holds only RGB and RGBA.
    """
    alpha = _pixel_alpha(image)
    grey = image.mode in ("L", "LA", "L16", "LA16", "1")
    if file_format in ("JPEG", "BMP") and alpha is not None:
        if (alpha < np.iinfo(alpha.dtype).max).any():
            raise InpaintError(
                f"{path}: the image has transparency and {file_format} keeps no alpha channel; "
                "write a .png, .webp or .tiff to keep it"
            )
        alpha = None
    if file_format == "WEBP":
        return "RGB" if alpha is None else "RGBA"
    if file_format == "JPEG":
        return "L" if grey else "RGB"
    if image.mode == "P":
        return "P"
    if image.mode == "1":
        return "1"
    if grey:
        return "L" if alpha is None else "LA"
    return "RGB" if alpha is None else "RGBA"


def _to_pillow(image: LoadedImage, mode: str) -> Image.Image:
    """`image` as a Pillow image of `mode` (one of P, 1, L, LA, RGB, RGBA)."""
    if mode == "P":
        pil = Image.fromarray(image.palette.indices, mode="L")
        pil.putpalette(image.palette.colours.tobytes(), rawmode="RGB")
        if image.palette.transparency is not None:
            pil.info["transparency"] = image.palette.transparency
        return pil
    grey = image.rgb8[:, :, 0]
    if mode == "1":
        return Image.fromarray(grey >= 128)
    if mode == "L":
        return Image.fromarray(grey, mode="L")
    alpha = _pixel_alpha(image)
    alpha8 = None if alpha is None else _to_uint8(alpha)
    if mode == "LA":
        return Image.fromarray(np.dstack([grey, alpha8]), mode="LA")
    if mode == "RGBA":
        return Image.fromarray(np.dstack([image.rgb8, alpha8]), mode="RGBA")
    return Image.fromarray(image.rgb8, mode="RGB")


def _encode_sixteen_bit(image: LoadedImage, path: Path, file_format: str) -> bytes:
    if image.mode == "L16":
        pixels = image.rgb[:, :, 0]
    elif image.alpha is not None:
        pixels = np.dstack([image.rgb[:, :, ::-1], image.alpha])
    else:
        pixels = image.rgb[:, :, ::-1]
    extension = ".png" if file_format == "PNG" else ".tiff"
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(pixels))
    if not ok:
        raise InpaintError(f"{path}: OpenCV could not encode a 16-bit {file_format}")
    return encoded.tobytes()


def _save_options(image: LoadedImage, file_format: str, quality: int, pil: Image.Image) -> dict:
    options: dict = {}
    if file_format == "JPEG":
        options["quality"] = quality
    elif file_format == "WEBP":
        # Lossless, and `exact` keeps the colour under fully transparent pixels, which libwebp
        # otherwise discards: the known-pixel guarantee (docs/design.md "One interface") holds.
        options.update(lossless=True, exact=True)
    if "transparency" in pil.info and file_format == "PNG":
        options["transparency"] = pil.info["transparency"]
    if image.exif and file_format in _EXIF_FORMATS:
        options["exif"] = image.exif
    if image.icc_profile and file_format in _ICC_FORMATS:
        options["icc_profile"] = image.icc_profile
    return options


def _encode(image: LoadedImage, path: Path, file_format: str, quality: int) -> bytes:
    """The bytes of the output file `path`."""
    if image.rgb.dtype == np.uint16 and file_format in _SIXTEEN_BIT_FORMATS:
        return _encode_sixteen_bit(image, path, file_format)
    pil = _to_pillow(image, _output_mode(image, path, file_format))
    buffer = io.BytesIO()
    try:
        pil.save(buffer, format=file_format, **_save_options(image, file_format, quality, pil))
    except (OSError, ValueError) as error:
        raise InpaintError(f"{path}: cannot encode as {file_format} ({error})") from None
    return buffer.getvalue()


def write_image(
    path: str | os.PathLike[str], image: LoadedImage, *, quality: int = 95, overwrite: bool = False
) -> None:
    """Write `image` in the format its extension names, atomically (temporary file, then rename).

    Modes are kept where the format holds them: 16-bit goes to PNG/TIFF through OpenCV (to JPEG it
    is reduced to 8-bit; BMP and WebP refuse it); an image with transparency cannot become a JPEG
    or BMP (a fully opaque alpha is dropped); WebP is written lossless (RGB or RGBA); JPEG takes
    `quality` (1-100).
    """
    path = Path(path)
    file_format = _output_format(path)
    if not 1 <= quality <= 100:
        raise InpaintError(f"JPEG quality must be within 1-100, got {quality}")
    check_output_path(path, overwrite)
    sixteen_bit = image.rgb.dtype == np.uint16
    if sixteen_bit and file_format in ("BMP", "WEBP"):
        raise InpaintError(
            f"{path}: a 16-bit image can be written as .png or .tif/.tiff (or .jpg at 8 bits), "
            f"not {file_format}"
        )
    payload = _encode(image, path, file_format, quality)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.part"
    created = False
    try:
        with open(temporary, "xb") as handle:
            created = True
            handle.write(payload)
        os.replace(temporary, path)
    except BaseException as error:
        if created:
            temporary.unlink(missing_ok=True)
        if isinstance(error, PermissionError):
            raise InpaintError(f"cannot write {path}: permission denied") from None
        if isinstance(error, OSError):
            raise InpaintError(f"cannot write {path}: {error.strerror or error}") from None
        raise


# ---------------------------------------------------------------------------------------- folders


def _is_mask_name(path: Path) -> bool:
    return path.stem.lower().endswith(_MASK_SUFFIX)


def is_fill_output_name(path: Path) -> bool:
    """Whether `path` is named as `inpaint fill` names a single image's output (X.filled.<ext>)."""
    return path.stem.lower().endswith(_FILLED_SUFFIX)


def list_images(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (descending with `recursive`), sorted by relative POSIX path.

    Files whose stem ends in `_mask` are masks, never images; hidden files and folders (leading
    ".", e.g. temporary outputs or macOS "._" files) are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InpaintError(f"{folder}: no such folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    images = []
    for path in candidates:
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and not _is_mask_name(path) and path.is_file():
            images.append(path)
    return sorted(images, key=lambda p: p.relative_to(folder).as_posix())


def find_mask(mask_dir: str | os.PathLike[str], image_path: str | os.PathLike[str]) -> Path | None:
    """The mask of `image_path` in `mask_dir`: stem `X_mask` first, then `X`, any image extension.

    Extensions are tried in IMAGE_EXTENSIONS order, lower then upper case (".png", ".PNG"; one stat
    each, so pairing a large folder stays linear). The image itself never counts as its own mask
    (images and masks may share a folder).
    """
    mask_dir = Path(mask_dir)
    image_path = Path(image_path)
    if not mask_dir.is_dir():
        raise InpaintError(f"{mask_dir}: no such folder")
    extensions = [case(extension) for extension in IMAGE_EXTENSIONS for case in (str.lower, str.upper)]
    for stem in (f"{image_path.stem}{_MASK_SUFFIX}", image_path.stem):
        for extension in extensions:
            candidate = mask_dir / f"{stem}{extension}"
            if candidate.is_file() and not (image_path.exists() and candidate.samefile(image_path)):
                return candidate
    return None


def make_folder(folder: Path) -> None:
    """Create `folder` and its parents; InpaintError naming it if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InpaintError(f"cannot create output folder {folder}: {error.strerror}") from None


def data_folder(sub: str) -> Path:
    """$INPAINT_DATA/`sub`, the default of every `--data`; InpaintError when INPAINT_DATA is unset."""
    root = os.environ.get("INPAINT_DATA")
    if not root:
        raise InpaintError(f"no --data given and INPAINT_DATA is not set: pass --data DIR or set INPAINT_DATA (its {sub}/ folder is used)")
    return Path(root) / sub


# ------------------------------------------------------------------------------------ fill jobs


@dataclass(frozen=True)
class FillJob:
    """One image of `inpaint fill`: where it is, its mask file and where its fill goes."""

    image: Path
    mask: Optional[Path]  # None: the holes come from --rect alone
    target: Path
    problem: Optional[str] = None  # why this image cannot be filled (reported, the batch goes on)
    sample: int = 0  # `--samples`: which draw of a pluralistic model (its seed is --seed + sample)


def sample_jobs(jobs: list[FillJob], samples: int) -> list[FillJob]:
    """`--samples N`: each job N times, drawn with seeds --seed .. --seed + N - 1 and written to
    `X.filled-0.<ext>` ... (the target's stem with `-k`); one sample keeps the jobs as they are."""
    if samples == 1:
        return jobs
    return [dataclasses.replace(job, target=job.target.with_name(f"{job.target.stem}-{k}{job.target.suffix}"), sample=k)
            for job in jobs for k in range(samples)]


def _mask_hint(image: Path) -> str:
    return f"expected {image.stem}.* or {image.stem}_mask.*"


def fill_jobs(
    input_path: Path,
    mask: Optional[Path],
    output: Optional[Path],
    recursive: bool,
    warn: Callable[[str], None] = lambda message: None,
) -> tuple[list[FillJob], bool]:
    """The jobs of `inpaint fill INPUT` for a file or a folder, and whether it is a batch (a folder).

    A single image's mask may be a file or a folder to find it in; its output defaults to
    X.filled.<ext> beside it. A folder's images keep their relative paths under the output folder
    (default DIR-filled/); files named X.filled.<ext>, earlier single-image outputs, are skipped
    with a note to `warn`, as masks are; a mask folder pairs each with X_mask.* or X.*, and an
    image without a mask gets a `problem` instead of failing the batch.
    """
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
    earlier_outputs = [image for image in images if is_fill_output_name(image)]
    if earlier_outputs:
        images = [image for image in images if not is_fill_output_name(image)]
        names = ", ".join(image.name for image in earlier_outputs[:3]) + (", ..." if len(earlier_outputs) > 3 else "")
        warn(f"skipped {len(earlier_outputs)} earlier fill output(s) named X.filled.<ext> in {input_path} ({names})")
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

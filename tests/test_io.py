"""Reading, filling and writing images and masks (docs/design.md "Conventions")."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from inpaint_cli import io as image_io
from inpaint_cli.errors import InpaintError
from inpaint_cli.io import (
    IMAGE_EXTENSIONS,
    LoadedImage,
    find_mask,
    list_images,
    luma,
    merge_fill,
    read_image,
    read_mask,
    write_image,
)

ORIENTATION = 0x0112
MAKE = 0x010F


@pytest.fixture
def hole() -> np.ndarray:
    mask = np.zeros((96, 128), dtype=bool)
    mask[30:60, 40:90] = True
    mask[5, 5] = True
    return mask


@pytest.fixture
def fill() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(96, 128, 3), dtype=np.uint8)


def _save_with_exif(image: Image.Image, path: Path, orientation: int, **options) -> None:
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "TestCam"
    image.save(path, exif=exif.tobytes(), **options)


# ----------------------------------------------------------------------------------- orientation


def test_exif_orientation_applied_on_read_and_reset_on_write(tmp_path: Path, smooth_image) -> None:
    source = tmp_path / "portrait.jpg"
    _save_with_exif(Image.fromarray(smooth_image), source, 6, quality=100)
    loaded = read_image(source)
    assert loaded.rgb.shape == (128, 96, 3)  # 96 x 128 stored, rotated 90 degrees clockwise
    with Image.open(source) as stored:
        decoded = np.asarray(stored.convert("RGB"))
    np.testing.assert_array_equal(loaded.rgb, np.rot90(decoded, -1))
    error_clockwise = np.abs(loaded.rgb.astype(int) - np.rot90(smooth_image, -1)).mean()
    error_anticlockwise = np.abs(loaded.rgb.astype(int) - np.rot90(smooth_image, 1)).mean()
    assert error_clockwise < 4 < 20 < error_anticlockwise  # JPEG noise only, in the right direction
    for name in ("out.jpg", "out.png", "out.webp"):
        write_image(tmp_path / name, loaded)
        with Image.open(tmp_path / name) as written:
            exif = written.getexif()
            assert written.size == (96, 128)
            assert exif.get(ORIENTATION) is None
            assert exif.get(MAKE) == "TestCam"  # the rest of the EXIF is kept
    again = read_image(tmp_path / "out.png")
    np.testing.assert_array_equal(again.rgb, loaded.rgb)  # read back upright, not rotated twice


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = np.random.default_rng(orientation).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = tmp_path / "o.png"
    _save_with_exif(Image.fromarray(pixels), path, orientation)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(read_image(path).rgb, expected)


# ----------------------------------------------------------------------------------------- modes


def test_rgb_known_pixels_bit_identical(tmp_path: Path, smooth_image, fill, hole) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(smooth_image).save(path)
    loaded = read_image(path)
    assert loaded.mode == "RGB" and loaded.alpha is None
    write_image(tmp_path / "out.png", merge_fill(loaded, fill, hole))
    written = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(written[~hole], smooth_image[~hole])
    np.testing.assert_array_equal(written[hole], fill[hole])
    np.testing.assert_array_equal(read_image(path).rgb, smooth_image)  # the input is not modified


def test_luma_matches_pillow() -> None:
    colours = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(luma(colours), np.asarray(Image.fromarray(colours).convert("L")))


def test_greyscale_round_trip(tmp_path: Path, smooth_image, fill, hole) -> None:
    grey = smooth_image[:, :, 1]
    path = tmp_path / "grey.png"
    Image.fromarray(grey, mode="L").save(path)
    loaded = read_image(path)
    assert loaded.mode == "L" and loaded.rgb.shape == (96, 128, 3)
    np.testing.assert_array_equal(loaded.rgb[:, :, 2], grey)
    write_image(tmp_path / "out.png", merge_fill(loaded, fill, hole))
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L"
        pixels = np.asarray(written)
    np.testing.assert_array_equal(pixels[~hole], grey[~hole])
    np.testing.assert_array_equal(pixels[hole], np.asarray(Image.fromarray(fill).convert("L"))[hole])


def test_palette_round_trip(tmp_path: Path, smooth_image, fill, hole) -> None:
    quantised = Image.fromarray(smooth_image).quantize(colors=16)
    path = tmp_path / "palette.png"
    quantised.save(path, transparency=3)
    indices = np.asarray(quantised)
    colours = np.asarray(quantised.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    loaded = read_image(path)
    assert loaded.mode == "P"
    np.testing.assert_array_equal(loaded.rgb, colours[indices])
    write_image(tmp_path / "out.png", merge_fill(loaded, fill, hole))
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "P" and written.info.get("transparency") == 3
        out_indices = np.asarray(written)
        out_colours = np.asarray(written.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(out_colours[: len(colours)], colours)
    np.testing.assert_array_equal(out_indices[~hole], indices[~hole])
    usable = np.array([i for i in range(len(colours)) if i != 3])
    distances = ((fill[hole][:, None, :].astype(int) - colours[usable][None].astype(int)) ** 2).sum(axis=2)
    np.testing.assert_array_equal(out_indices[hole], usable[distances.argmin(axis=1)])


def test_rgba_alpha_kept_bit_identical(tmp_path: Path, smooth_image, fill, hole) -> None:
    alpha = np.random.default_rng(2).integers(0, 256, size=(96, 128), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([smooth_image, alpha]), mode="RGBA").save(path)
    loaded = read_image(path)
    assert loaded.mode == "RGBA"
    np.testing.assert_array_equal(loaded.alpha, alpha)
    filled = merge_fill(loaded, fill, hole)
    for name in ("out.png", "out.tiff", "out.webp"):
        write_image(tmp_path / name, filled)
        written = np.asarray(Image.open(tmp_path / name))
        np.testing.assert_array_equal(written[:, :, 3], alpha)
        np.testing.assert_array_equal(written[:, :, :3][~hole], smooth_image[~hole])
        np.testing.assert_array_equal(written[:, :, :3][hole], fill[hole])
    for name in ("out.jpg", "out.bmp"):
        with pytest.raises(InpaintError, match="keeps no alpha channel"):
            write_image(tmp_path / name, filled)
    opaque = LoadedImage(loaded.rgb, np.full_like(alpha, 255), "RGBA", None, path)
    write_image(tmp_path / "opaque.jpg", opaque)  # a fully opaque alpha is dropped
    assert Image.open(tmp_path / "opaque.jpg").mode == "RGB"


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", pixels)
    assert ok
    path.write_bytes(encoded.tobytes())


def test_sixteen_bit_png_round_trip(tmp_path: Path, fill, hole) -> None:
    bgr = np.random.default_rng(3).integers(0, 65536, size=(96, 128, 3), dtype=np.uint16)
    path = tmp_path / "deep.png"
    _write_png16(path, bgr)
    loaded = read_image(path)
    assert loaded.mode == "RGB16" and loaded.rgb.dtype == np.uint16
    np.testing.assert_array_equal(loaded.rgb, bgr[:, :, ::-1])
    expected8 = np.round(bgr[:, :, ::-1] / 257).astype(np.uint8)
    np.testing.assert_array_equal(loaded.rgb8, expected8)
    write_image(tmp_path / "out.png", merge_fill(loaded, fill, hole))
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    rgb = written[:, :, ::-1]
    np.testing.assert_array_equal(rgb[~hole], bgr[:, :, ::-1][~hole])
    np.testing.assert_array_equal(rgb[hole], fill[hole].astype(np.uint16) * 257)
    with pytest.raises(InpaintError, match="16-bit"):
        write_image(tmp_path / "out.bmp", loaded)


def test_sixteen_bit_grey_and_alpha(tmp_path: Path, fill, hole) -> None:
    rng = np.random.default_rng(4)
    grey = rng.integers(0, 65536, size=(96, 128), dtype=np.uint16)
    _write_png16(tmp_path / "grey16.png", grey)
    loaded = read_image(tmp_path / "grey16.png")
    assert loaded.mode == "L16"
    write_image(tmp_path / "grey_out.png", merge_fill(loaded, fill, hole))
    written = cv2.imread(str(tmp_path / "grey_out.png"), cv2.IMREAD_UNCHANGED)
    assert written.ndim == 2 and written.dtype == np.uint16
    np.testing.assert_array_equal(written[~hole], grey[~hole])
    np.testing.assert_array_equal(written[hole], luma(fill)[hole].astype(np.uint16) * 257)

    bgra = rng.integers(0, 65536, size=(96, 128, 4), dtype=np.uint16)
    _write_png16(tmp_path / "rgba16.png", bgra)
    loaded = read_image(tmp_path / "rgba16.png")
    assert loaded.mode == "RGBA16"
    write_image(tmp_path / "rgba_out.tiff", merge_fill(loaded, fill, hole))
    written = cv2.imread(str(tmp_path / "rgba_out.tiff"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written[:, :, 3], bgra[:, :, 3])
    np.testing.assert_array_equal(written[~hole], bgra[~hole])


# ---------------------------------------------------------------------------------------- errors


def test_read_errors_name_the_file(tmp_path: Path, smooth_image) -> None:
    with pytest.raises(InpaintError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InpaintError, match="is a directory"):
        read_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(InpaintError, match="notes.png is not an image"):
        read_image(text)
    for name, options in [("cut.png", {}), ("cut.jpg", {"quality": 90})]:
        whole = tmp_path / f"whole{Path(name).suffix}"
        Image.fromarray(smooth_image).save(whole, **options)
        data = whole.read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(InpaintError, match=f"{name}: truncated or corrupt"):
            read_image(tmp_path / name)
    with pytest.raises(InpaintError, match="no such file"):
        read_mask(tmp_path / "missing_mask.png")


def test_write_refuses_to_overwrite(tmp_path: Path, smooth_image) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(smooth_image).save(path)
    loaded = read_image(path)
    before = path.read_bytes()
    with pytest.raises(InpaintError, match=r"in.png exists; pass --overwrite"):
        write_image(path, loaded)
    assert path.read_bytes() == before
    flipped = merge_fill(loaded, np.zeros_like(loaded.rgb), np.ones((96, 128), dtype=bool))
    write_image(path, flipped, overwrite=True)
    assert not np.asarray(Image.open(path)).any()


def test_write_errors(tmp_path: Path, smooth_image) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(smooth_image).save(path)
    loaded = read_image(path)
    with pytest.raises(InpaintError, match=r"unknown output extension \.gif"):
        write_image(tmp_path / "out.gif", loaded)
    with pytest.raises(InpaintError, match="does not exist"):
        write_image(tmp_path / "nowhere" / "out.png", loaded)
    with pytest.raises(InpaintError, match="quality"):
        write_image(tmp_path / "out.jpg", loaded, quality=0)


def test_failing_write_leaves_no_temporary_file(tmp_path: Path, smooth_image, monkeypatch) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(smooth_image).save(path)
    loaded = read_image(path)

    def broken_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_io.os, "replace", broken_replace)
    with pytest.raises(InpaintError, match="cannot write .*out.png: No space left"):
        write_image(tmp_path / "out.png", loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_jpeg_quality_is_used(tmp_path: Path, smooth_image) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(smooth_image).save(path)
    loaded = read_image(path)
    write_image(tmp_path / "low.jpg", loaded, quality=20)
    write_image(tmp_path / "high.jpg", loaded, quality=98)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size / 2


# ----------------------------------------------------------------------------------------- masks


def test_read_mask_grey_threshold_and_invert(tmp_path: Path) -> None:
    values = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[False, False, True, True]])
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", invert=True), [[True, True, False, False]])
    colour = np.array([[[255, 0, 0], [0, 255, 0]]], dtype=np.uint8)  # luma 76 and 150
    Image.fromarray(colour).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), [[False, True]])


def test_read_mask_alpha_convention(tmp_path: Path) -> None:
    rgba = np.zeros((1, 4, 4), dtype=np.uint8)
    rgba[0, :, :3] = 255  # white everywhere: the colour is ignored when there is alpha
    rgba[0, :, 3] = [0, 127, 128, 255]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), [[True, True, False, False]])
    rgba[0, :, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "opaque.png")
    assert not read_mask(tmp_path / "opaque.png").any()
    assert read_mask(tmp_path / "opaque.png", invert=True).all()


def test_read_mask_applies_orientation(tmp_path: Path) -> None:
    values = np.zeros((4, 6), dtype=np.uint8)
    values[0, 0] = 255
    _save_with_exif(Image.fromarray(values, mode="L"), tmp_path / "m.png", 6)
    mask = read_mask(tmp_path / "m.png")
    assert mask.shape == (6, 4) and mask[0, 3] and mask.sum() == 1


def test_example_masks_pair_with_their_images(examples_dir: Path) -> None:
    images = list_images(examples_dir)
    assert [p.name for p in images] == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
    for image_path in images:
        mask_path = find_mask(examples_dir, image_path)
        assert mask_path is not None and mask_path.stem == f"{image_path.stem}_mask"
        mask = read_mask(mask_path)
        assert mask.shape == read_image(image_path).rgb.shape[:2]
        assert 0 < mask.mean() < 0.2


# --------------------------------------------------------------------------------------- folders


def test_list_images_skips_masks_and_sorts(tmp_path: Path) -> None:
    for name in ["b.png", "a.JPG", "c_mask.png", "d.txt", ".hidden.png", "e.webp", "x.mask.png"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.tif").write_bytes(b"")
    (tmp_path / "sub" / "f_mask.tif").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "e.webp", "x.mask.png"]
    relative = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert relative == ["a.JPG", "b.png", "e.webp", "sub/f.tif", "x.mask.png"]
    with pytest.raises(InpaintError, match="no such folder"):
        list_images(tmp_path / "b.png")
    assert IMAGE_EXTENSIONS == (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def test_find_mask(tmp_path: Path) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ["x.jpg", "y.png", "z.png"]:
        (images / name).write_bytes(b"")
    (masks / "x.png").write_bytes(b"")
    (masks / "y_mask.bmp").write_bytes(b"")
    (masks / "y.png").write_bytes(b"")
    assert find_mask(masks, images / "x.jpg") == masks / "x.png"
    assert find_mask(masks, images / "y.png") == masks / "y_mask.bmp"  # X_mask wins over X
    assert find_mask(masks, images / "z.png") is None
    # Shared folder: the image is never its own mask.
    assert find_mask(images, images / "x.jpg") is None
    (images / "x_mask.PNG").write_bytes(b"")
    assert find_mask(images, images / "x.jpg") == images / "x_mask.PNG"


def test_read_mask_palette(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2, 1]], dtype=np.uint8)
    mask = Image.fromarray(indices, mode="L")
    mask.putpalette([0, 0, 0, 255, 255, 255, 40, 40, 40])
    mask.save(tmp_path / "p.png", transparency=7)  # declared, used by no pixel: judged by luma
    np.testing.assert_array_equal(read_mask(tmp_path / "p.png"), [[False, True, False, True]])
    mask.save(tmp_path / "t.png", transparency=2)  # transparent pixels: transparent = hole
    np.testing.assert_array_equal(read_mask(tmp_path / "t.png"), [[False, False, True, False]])

"""End-to-end tests of the `inpaint` command line, run as subprocesses (`python -m inpaint_cli`).

Covers GitHub issue 2's "Bad input" list (each: one `error: ...` line on stderr, exit 1, no
traceback, no partial output) and the main flows of docs/design.md: fill with masks, rectangles and
folders; weights files; `models`, `eval`, `masks` and `--help`. Images are 64 x 80 so that each
subprocess costs little more than Python's and torch's start-up.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HEIGHT, WIDTH = 64, 80
MAGENTA = (255, 0, 255)  # painted into holes, so that a fill must change them
GLCIC_PAPER_PARAMETERS = 6_072_131  # docs/architectures.md §2 (paper Table 1)


# --------------------------------------------------------------------------------------- helpers


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: tracebacks off, an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("INPAINT_DEBUG", None)
    return env


def run_cli(
    *args: str | Path, cwd: Path, python_flags: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python [FLAGS] -m inpaint_cli ARGS` with tracebacks off and an 80-column terminal."""
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "inpaint_cli", *map(str, args)],
        cwd=cwd, env=env or cli_env(), capture_output=True, text=True, timeout=300,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str, status: int = 1) -> str:
    """Exit `status` (2: malformed arguments), no traceback, stderr exactly one `error: ...` line
    (no empty one either) containing every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert result.returncode == status, result.stderr
    return lines[0]


def assert_clean_stderr(result: subprocess.CompletedProcess[str]) -> None:
    """A run that succeeds prints only its own one-line reports on stderr (no Python warnings)."""
    assert result.returncode == 0, result.stderr
    reports = ("warning: ", "wrote ", "filled ", "using ")  # `using FILE`: the weights --arch or the default loaded
    stray = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(reports)]
    assert stray == [], result.stderr


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def json_records(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_no_temporary_files(folder: Path) -> None:
    """Writes go through hidden temporary files; none may be left behind."""
    leftovers = [path.name for path in folder.iterdir() if path.name.startswith(".")]
    assert leftovers == []


def smooth_photo(seed: int = 0, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A smooth uint8 RGB picture with a little noise, easy to fill from its surroundings."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [
        120 + 60 * np.sin(x / 13.0 + seed) * np.cos(y / 17.0),
        90 + 1.5 * x,
        50 + 2.0 * y,
    ]
    picture = np.stack(channels, axis=-1) + rng.normal(0, 2, size=(height, width, 3))
    return np.clip(picture, 0, 255).astype(np.uint8)


def box(top: int, left: int, height: int, width: int) -> np.ndarray:
    hole = np.zeros((HEIGHT, WIDTH), dtype=bool)
    hole[top : top + height, left : left + width] = True
    return hole


def save(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def save_mask(path: Path, hole: np.ndarray) -> Path:
    """White = hole, as an 8-bit greyscale PNG."""
    return save(path, np.where(hole, 255, 0).astype(np.uint8))


def with_magenta(picture: np.ndarray, hole: np.ndarray) -> np.ndarray:
    painted = picture.copy()
    painted[hole] = MAGENTA
    return painted


def assert_only_hole_changed(source: np.ndarray, output: np.ndarray, hole: np.ndarray) -> None:
    """Known pixels bit for bit; every hole pixel moved off the magenta paint."""
    assert output.shape == source.shape and output.dtype == np.uint8
    np.testing.assert_array_equal(output[~hole], source[~hole])
    assert (output[hole] != MAGENTA).any(axis=-1).all()


def truncated_copy(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.fixture
def photo(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """photo.png (magenta in the hole), mask.png, the true picture and the hole."""
    truth = smooth_photo()
    hole = box(20, 28, 16, 20)
    image_path = save(tmp_path / "photo.png", with_magenta(truth, hole))
    mask_path = save_mask(tmp_path / "mask.png", hole)
    return image_path, mask_path, truth, hole


# ------------------------------------------------------------------------------- weights files


@pytest.fixture(scope="module")
def glcic_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release file of GLCIC's `tiny` config with random weights, exported by the library."""
    import torch

    from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
    from inpaint_cli.checkpoint import export_release
    from inpaint_cli.registry import get_arch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "glcic-tiny.safetensors"
    network = CompletionNetwork(CONFIGS["tiny"])
    export_release(network, get_arch("glcic"), "tiny", CONFIGS["tiny"], path, {"step": 0})
    return path


def corrupt_weights(kind: str, good: Path, folder: Path) -> Path:
    """A weights file that must be refused, of the given kind."""
    import torch
    from safetensors.torch import save_file

    from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
    from inpaint_cli.checkpoint import export_release
    from inpaint_cli.registry import get_arch

    path = folder / f"{kind}.safetensors"
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        truncated_copy(good, path)
    elif kind == "no-metadata":
        save_file({"weight": torch.zeros(3, 3)}, str(path))
    elif kind == "wrong-shapes":
        # same tensor names as `tiny`, twice the widths; the metadata still says `tiny`
        wider = CompletionNetwork(replace(CONFIGS["tiny"], width=16))
        export_release(wider, get_arch("glcic"), "tiny", CONFIGS["tiny"], path, {})
    else:
        raise ValueError(kind)
    return path


# --------------------------------------------------------------------------------------- help


def test_help_lists_commands_and_examples(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    for command in ("fill", "eval", "models", "masks", "train"):
        assert f"  {command} " in top.stdout
    assert "inpaint fill photo.jpg --mask" in top.stdout  # the top-level help shows usage examples

    fill_help = run_cli("fill", "--help", cwd=tmp_path)
    assert fill_help.returncode == 0, fill_help.stderr
    assert "inpaint fill photo.jpg --mask photo_mask.png -o out.png" in fill_help.stdout
    assert "inpaint fill photo.jpg --rect 120,80,64,64 --blend poisson" in fill_help.stdout
    assert "JPEG output is re-encoded" in fill_help.stdout


# ---------------------------------------------------------------------------------- fill: flows


def test_fill_default_model_changes_only_hole_pixels(tmp_path: Path, photo) -> None:
    from inpaint_cli.fill import Inpainter, resolve_model
    from inpaint_cli.weights import read_manifest

    image_path, mask_path, truth, hole = photo
    output = tmp_path / "out.png"
    result = run_cli("fill", image_path, "--mask", mask_path, "-o", output, "--json", cwd=tmp_path)
    assert_clean_stderr(result)
    assert warnings_of(result) == []
    default = read_manifest().get("default", "telea")  # telea until a learned model ships
    expected_label = Path(default).stem if default.endswith(".safetensors") else default
    if Inpainter(resolve_model(None, None)).blend != "none":  # the architecture's own post-processing
        expected_label += " + poisson"
    [record] = json_records(result)
    assert record["method"] == expected_label
    assert record["hole_pixels"] == hole.sum() == 320
    assert record["output"] == str(output)
    with Image.open(output) as written:
        assert written.format == "PNG" and written.mode == "RGB" and written.size == (WIDTH, HEIGHT)
    filled = load(output)
    assert_only_hole_changed(load(image_path), filled, hole)
    # a smooth picture is filled close to the truth (magenta would be ~150 away)
    assert np.abs(filled[hole].astype(int) - truth[hole]).mean() < 25
    assert_no_temporary_files(tmp_path)


def test_fill_rgba_mask_united_with_clipped_rect(tmp_path: Path) -> None:
    """RGBA mask: transparent = hole, even where its colour is black; `--rect` adds to it and is
    clipped (with a warning) where it runs past the image."""
    alpha_hole = box(10, 10, 12, 12)
    rect_hole = box(50, 70, 14, 10)  # --rect 70,50,20,20 clipped to 70,50,10,14
    hole = alpha_hole | rect_hole
    image_path = save(tmp_path / "photo.png", with_magenta(smooth_photo(1), hole))
    rgba = np.zeros((HEIGHT, WIDTH, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white colour everywhere: read as greyscale it would be all hole
    rgba[..., 3] = np.where(alpha_hole, 0, 255)
    mask_path = save(tmp_path / "mask.png", rgba)
    output = tmp_path / "out.png"
    result = run_cli(
        "fill", image_path, "-m", mask_path, "--rect", "70,50,20,20", "-o", output, "--json", cwd=tmp_path
    )
    assert_clean_stderr(result)
    [warning] = warnings_of(result)
    assert "70,50,20,20" in warning and "clipped to 70,50,10,14" in warning
    assert json_records(result)[0]["hole_pixels"] == hole.sum() == 12 * 12 + 14 * 10
    assert_only_hole_changed(load(image_path), load(output), hole)


def test_fill_invert_mask(tmp_path: Path) -> None:
    hole = box(30, 5, 10, 30)
    image_path = save(tmp_path / "photo.png", with_magenta(smooth_photo(2), hole))
    mask_path = save_mask(tmp_path / "mask.png", ~hole)  # black = hole once inverted
    output = tmp_path / "out.png"
    result = run_cli("fill", image_path, "-m", mask_path, "--invert-mask", "-o", output, "--json", cwd=tmp_path)
    assert_clean_stderr(result)
    assert json_records(result)[0]["hole_pixels"] == 300
    assert_only_hole_changed(load(image_path), load(output), hole)


def test_fill_resize_mask(tmp_path: Path, photo) -> None:
    """A mask of half the size is an error naming both sizes; `--resize-mask` scales it (nearest)."""
    image_path, _, _, _ = photo
    small_hole = np.zeros((HEIGHT // 2, WIDTH // 2), dtype=bool)
    small_hole[10:18, 14:24] = True
    mask_path = save_mask(tmp_path / "small_mask.png", small_hole)
    output = tmp_path / "out.png"

    refused = run_cli("fill", image_path, "--mask", mask_path, "-o", output, cwd=tmp_path)
    assert_user_error(refused, "40x32", "80x64", "--resize-mask")
    assert not output.exists()

    resized = run_cli(
        "fill", image_path, "-m", mask_path, "--resize-mask", "-o", output, "--json", cwd=tmp_path
    )
    assert_clean_stderr(resized)
    hole = box(20, 28, 16, 20)  # the small hole doubled
    assert json_records(resized)[0]["hole_pixels"] == hole.sum()
    assert_only_hole_changed(load(image_path), load(output), hole)


def test_fill_folder_warns_on_empty_and_full_masks(tmp_path: Path) -> None:
    """Masks in their own folder, named like their images. An empty mask: the output is a copy
    of the input, with a warning. A mask covering everything: filled anyway, with a warning."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    patch = box(20, 28, 16, 20)
    for name, hole in (("empty", np.zeros_like(patch)), ("full", np.ones_like(patch))):
        save(photos / f"{name}.png", with_magenta(smooth_photo(), patch))
        save_mask(masks / f"{name}.png", hole)
    result = run_cli("fill", photos, "--mask", masks, "-o", tmp_path / "out", cwd=tmp_path)
    assert_clean_stderr(result)
    assert "filled 2 of 2" in result.stderr
    empty_warning, full_warning = warnings_of(result)
    assert "empty.png" in empty_warning and "mask is empty" in empty_warning
    assert "full.png" in full_warning and "whole image" in full_warning
    np.testing.assert_array_equal(load(tmp_path / "out" / "empty.png"), load(photos / "empty.png"))
    filled = load(tmp_path / "out" / "full.png")
    assert filled.shape == (HEIGHT, WIDTH, 3)
    # filled, not copied: what was in the hole (the magenta patch) must not come back
    assert (filled[patch] != MAGENTA).any(axis=-1).all()


def test_fill_folder_with_masks_beside_images(tmp_path: Path) -> None:
    """`fill DIR --mask DIR`: X_mask.* pairs with X.*, masks are not filled as images, output goes
    to DIR-filled/ with each input's format."""
    folder = tmp_path / "photos"
    folder.mkdir()
    holes = {"a.png": box(5, 5, 10, 10), "b.jpg": box(30, 40, 12, 16), "c.bmp": box(40, 8, 8, 30)}
    for index, (name, hole) in enumerate(holes.items()):
        save(folder / name, with_magenta(smooth_photo(index), hole))  # JPEG at Pillow's quality 75
        save_mask(folder / f"{Path(name).stem}_mask.png", hole)
    result = run_cli("fill", folder, "--mask", folder, cwd=tmp_path)
    assert_clean_stderr(result)
    assert "filled 3 of 3" in result.stderr
    out_dir = tmp_path / "photos-filled"
    assert sorted(path.name for path in out_dir.iterdir()) == ["a.png", "b.jpg", "c.bmp"]
    for name, file_format in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("c.bmp", "BMP")):
        with Image.open(out_dir / name) as written:
            assert written.format == file_format and written.size == (WIDTH, HEIGHT)
    for name in ("a.png", "c.bmp"):  # lossless: known pixels bit for bit
        assert_only_hole_changed(load(folder / name), load(out_dir / name), holes[name])
    jpeg_in, jpeg_out = load(folder / "b.jpg").astype(int), load(out_dir / "b.jpg").astype(int)
    known = ~holes["b.jpg"]
    assert np.abs(jpeg_out[known] - jpeg_in[known]).mean() < 3  # re-encoded at --quality 95
    assert np.abs(jpeg_out[~known] - jpeg_in[~known]).mean() > 40  # the magenta-ish hole was filled


def test_fill_folder_skips_earlier_single_image_outputs(tmp_path: Path) -> None:
    """`inpaint fill photos/a.png` leaves photos/a.filled.png; a later folder run does not take it
    for an input (it has no mask), and says so on one line (issue 24, rough edge 8)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    hole = box(5, 5, 10, 10)
    save(folder / "a.png", with_magenta(smooth_photo(), hole))
    save_mask(folder / "a_mask.png", hole)
    save(folder / "a.filled.png", smooth_photo())  # what the single-image fill wrote
    result = run_cli("fill", folder, "--mask", folder, "--arch", "telea", cwd=tmp_path)
    assert_clean_stderr(result)
    assert "filled 1 of 1" in result.stderr
    (note,) = warnings_of(result)
    assert "skipped 1 earlier fill output" in note and "a.filled.png" in note
    assert sorted(path.name for path in (tmp_path / "photos-filled").iterdir()) == ["a.png"]


def test_sigterm_during_a_fill_leaves_no_temporary_file(tmp_path: Path, photo) -> None:
    """SIGTERM while the output's hidden temporary file is open ends the fill as Ctrl-C does: the
    file is removed, nothing is written, exit status non-zero (issue 24, rough edge 7). The
    subprocess holds the write open (a slow `os.replace`) so that the signal lands there."""
    import signal
    import time

    image_path, mask_path, _, _ = photo
    output = tmp_path / "out.png"
    held_write = (
        "import os, sys, time\n"
        "replace = os.replace\n"
        "def slow_replace(source, target):\n"
        "    if str(source).endswith('.part'):\n"
        "        time.sleep(120)\n"
        "    replace(source, target)\n"
        "os.replace = slow_replace\n"
        "from inpaint_cli.cli import main\n"
        "main()\n"
    )
    command = [sys.executable, "-c", held_write, "fill", image_path, "--mask", mask_path, "-o", output, "--arch", "telea"]
    process = subprocess.Popen(command, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".out.png.*.part")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert_no_temporary_files(tmp_path)
    assert not output.exists()
    assert process.returncode not in (0, None), stderr
    assert "Traceback" not in stderr and "error: interrupted" in stderr, stderr


def test_fill_batch_goes_on_past_a_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("good1.png", "good2.png"):
        save(folder / name, smooth_photo())
    truncated_copy(save(tmp_path / "whole.png", smooth_photo()), folder / "broken.png")
    result = run_cli("fill", folder, "--rect", "10,10,20,20", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "filled 2 of 3" in result.stderr
    errors = [line for line in result.stderr.splitlines() if "broken.png" in line]
    assert errors and all("truncated" in line or "corrupt" in line for line in errors), result.stderr
    out_dir = tmp_path / "photos-filled"
    assert sorted(path.name for path in out_dir.iterdir()) == ["good1.png", "good2.png"]


def test_fill_folder_batch_writes_the_same_bytes(tmp_path: Path, glcic_weights: Path) -> None:
    """`--batch 3` with a GLCIC release: the images of two sizes (two forwards of a shared size)
    give the files and --json records of `--batch 1`, byte for byte; `--batch 0` is a usage error."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, (height, width) in enumerate(((HEIGHT, WIDTH), (HEIGHT, WIDTH), (48, 56), (HEIGHT, WIDTH), (48, 56))):
        hole = np.zeros((height, width), bool)
        hole[6 + 3 * index : 26 + 3 * index, 10 : 34 + index] = True
        save(folder / f"{index}.png", with_magenta(smooth_photo(index, height, width), hole))
        save_mask(folder / f"{index}_mask.png", hole)
    outputs = {}
    for batch in ("1", "3"):
        result = run_cli("fill", folder, "--mask", folder, "--weights", glcic_weights, "-o", tmp_path / batch,
                         "--batch", batch, "--json", cwd=tmp_path)
        assert_clean_stderr(result)
        records = [{**record, "output": Path(record["output"]).name, "seconds": None} for record in json_records(result)]
        outputs[batch] = records, {path.name: path.read_bytes() for path in sorted((tmp_path / batch).iterdir())}
    assert outputs["1"] == outputs["3"]
    assert [record["output"] for record in outputs["3"][0]] == [f"{index}.png" for index in range(5)]
    assert_user_error(run_cli("fill", folder, "--mask", folder, "--batch", "0", cwd=tmp_path), "--batch", status=2)


# ------------------------------------------------------------------------------ fill: bad input


@pytest.mark.parametrize(
    "case",
    [
        "missing-image", "missing-mask", "not-an-image", "truncated-image", "rect-outside", "unknown-arch",
        "unwritable-output",
    ],
)
def test_fill_bad_input(tmp_path: Path, photo, case: str) -> None:
    image_path, mask_path, _, _ = photo
    output = tmp_path / "out.png"
    args: list[str | Path] = ["fill", image_path, "--mask", mask_path, "-o", output]
    expected: tuple[str, ...]
    if case == "missing-image":
        args[1] = tmp_path / "nowhere.png"
        expected = ("nowhere.png",)
    elif case == "missing-mask":
        args[3] = tmp_path / "nomask.png"
        expected = ("nomask.png",)
    elif case == "not-an-image":
        (tmp_path / "notes.png").write_text("these are notes, not pixels\n")
        args[1] = tmp_path / "notes.png"
        expected = ("notes.png", "not an image")
    elif case == "truncated-image":
        args[1] = truncated_copy(image_path, tmp_path / "half.png")
        expected = ("half.png", "truncated")
    elif case == "rect-outside":
        args[2:4] = ["--rect", "90,10,20,20"]
        expected = ("90,10,20,20", "outside")
    elif case == "unknown-arch":
        args += ["--arch", "nope"]
        expected = ("'nope'", "glcic", "telea")
    else:  # a regular file where a folder should be: fails for root too, unlike permissions
        (tmp_path / "somefile.txt").write_text("a file\n")
        output = tmp_path / "somefile.txt" / "out.png"
        args[-1] = output
        expected = ("somefile.txt",)
    result = run_cli(*args, cwd=tmp_path)
    assert_user_error(result, *expected)
    assert not output.exists()
    assert_no_temporary_files(tmp_path)
    if case == "unwritable-output":
        assert (tmp_path / "somefile.txt").read_text() == "a file\n"


def test_fill_overwrites_only_with_overwrite(tmp_path: Path, photo) -> None:
    """An existing output is left alone without --overwrite; with it, replaced (here by ns)."""
    image_path, mask_path, truth, hole = photo
    output = tmp_path / "out.png"
    output.write_bytes(b"keep me")
    result = run_cli("fill", image_path, "--mask", mask_path, "-o", output, cwd=tmp_path)
    assert_user_error(result, "out.png", "exists", "--overwrite")
    assert output.read_bytes() == b"keep me"

    replaced = run_cli(
        "fill", image_path, "-m", mask_path, "-o", output, "--overwrite", "--arch", "ns", "--json", cwd=tmp_path
    )
    assert_clean_stderr(replaced)
    assert json_records(replaced)[0]["method"] == "ns"
    assert_only_hole_changed(load(image_path), load(output), hole)
    assert np.abs(load(output)[hole].astype(int) - truth[hole]).mean() < 25


def test_fill_cuda_without_cuda(tmp_path: Path, photo) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    image_path, mask_path, _, _ = photo
    output = tmp_path / "out.png"
    result = run_cli("fill", image_path, "--mask", mask_path, "-o", output, "--device", "cuda", cwd=tmp_path)
    assert_user_error(result, "CUDA")
    assert not output.exists()


# ---------------------------------------------------------------------------- fill: weights


@pytest.mark.parametrize("with_arch", [False, True], ids=["weights-alone", "arch-and-weights-agree"])
def test_fill_with_weights_file(tmp_path: Path, photo, glcic_weights: Path, with_arch: bool) -> None:
    """The CLI's fill is the library's: same model from the file's metadata, same pixels."""
    from inpaint_cli.fill import Inpainter, resolve_model

    image_path, mask_path, _, hole = photo
    output = tmp_path / "out.png"
    arch = ["--arch", "glcic"] if with_arch else []
    result = run_cli(
        "fill", image_path, "-m", mask_path, "-w", glcic_weights, *arch, "-o", output, "--device", "cpu",
        "--json", cwd=tmp_path,
    )
    assert_clean_stderr(result)
    assert json_records(result)[0]["method"] == "glcic-tiny + poisson"  # GLCIC blends by default
    source = load(image_path)
    expected, _ = Inpainter(resolve_model(None, str(glcic_weights), "cpu"), "cpu").fill(source, hole)
    np.testing.assert_array_equal(load(output), expected)
    assert_only_hole_changed(source, load(output), hole)


def test_fill_weights_of_another_arch(tmp_path: Path, photo, glcic_weights: Path) -> None:
    image_path, mask_path, _, _ = photo
    output = tmp_path / "out.png"
    result = run_cli(
        "fill", image_path, "-m", mask_path, "--arch", "deepfill-v1", "-w", glcic_weights, "-o", output,
        cwd=tmp_path,
    )
    assert_user_error(result, "glcic", "deepfill-v1", "glcic-tiny.safetensors")
    assert not output.exists()


@pytest.mark.parametrize("kind", ["random-bytes", "truncated", "no-metadata", "wrong-shapes"])
def test_fill_refuses_bad_weights(tmp_path: Path, photo, glcic_weights: Path, kind: str) -> None:
    image_path, mask_path, _, _ = photo
    weights = corrupt_weights(kind, glcic_weights, tmp_path)
    output = tmp_path / "out.png"
    result = run_cli("fill", image_path, "-m", mask_path, "-w", weights, "-o", output, cwd=tmp_path)
    line = assert_user_error(result, f"{kind}.safetensors")
    if kind == "no-metadata":
        assert "inpaint-cli" in line
    if kind == "wrong-shapes":
        assert "shape" in line and "tiny" in line
    assert not output.exists()


# ------------------------------------------------------------------------ models, masks, eval


@pytest.mark.slow
def test_models_lists_configs_with_parameter_counts(tmp_path: Path) -> None:
    listed = run_cli("models", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    rows = {(row["arch"], row["config"]): row for row in document["architectures"]}
    assert rows[("glcic", "paper")]["generator_params"] == GLCIC_PAPER_PARAMETERS
    assert {"telea", "ns"} <= {arch for arch, _ in rows}
    assert rows[("telea", "-")]["generator_params"] == 0

    table = run_cli("models", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"{GLCIC_PAPER_PARAMETERS:,}" in table.stdout
    for name in ("glcic", "telea", "ns", "Default model for `inpaint fill`"):
        assert name in table.stdout


def test_models_prints_bundled_file_names_whole_at_80_columns() -> None:
    """The names `--weights` takes are never cut (issue 24, rough edge 11), however long the
    model cards beside them."""
    from rich.console import Console

    from inpaint_cli.catalog import Catalog, render_catalog

    names = ["context-encoder-half-fc-rec-flat.safetensors", "deepfill-v1-half.safetensors"]
    card = "trained for hours on pictures whose terms are stated in the weights' README " * 3
    bundled = [{"arch": name.split("-half")[0], "file": name, "config": "half", "steps": 6750, "data": card,
                "summary": card, "default": index == 0} for index, name in enumerate(names)]
    architectures = [{"arch": "glcic", "config": "half-l1", "default": True, "generator_params": 1_528_131,
                      "discriminator_params": 0, "input": "multiple of 4", "paper": "Iizuka et al., SIGGRAPH 2017"}]
    console = Console(width=80, record=True, highlight=False)
    for renderable in render_catalog(Catalog(architectures, bundled, names[0], Path("weights"))):
        console.print(renderable)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for name in names:
        assert name in text


def test_masks_writes_the_evaluation_masks(tmp_path: Path) -> None:
    from inpaint_cli.masks import draw_mask, eval_rng

    out_dir = tmp_path / "boxes"
    result = run_cli("masks", "box", "--count", "3", "--size", "64", "--out", out_dir, cwd=tmp_path)
    assert_clean_stderr(result)
    assert sorted(path.name for path in out_dir.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    for index in range(3):
        written = load(out_dir / f"{index:05d}.png")
        expected = draw_mask("box", eval_rng(0, index, "box"), 64, 64)
        np.testing.assert_array_equal(written == 255, expected)
        assert set(np.unique(written)) <= {0, 255}


def test_readme_says_what_eval_needs_before_its_examples() -> None:
    """The README's `inpaint eval` examples need evaluation images: its text says so first, naming
    both ways to give them (issue 24, rough edge 9; the error itself is checked above)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### `inpaint eval`", 1)[1]
    before_examples = section.split("\n    inpaint eval", 1)[0]
    assert "INPAINT_DATA" in before_examples and "--data" in before_examples


def test_masks_with_a_bad_band_create_no_folder(tmp_path: Path) -> None:
    result = run_cli("masks", "irregular:60-10", "--out", tmp_path / "bands", cwd=tmp_path)
    assert_user_error(result, "irregular", "'60-10'")
    assert not (tmp_path / "bands").exists()


def test_eval_json_csv_and_saved_fills(tmp_path: Path) -> None:
    from inpaint_cli.evaluate import evaluate, load_eval_images
    from inpaint_cli.fill import Inpainter, resolve_model

    data = tmp_path / "eval"
    data.mkdir()
    for index in range(4):  # --limit 3 leaves out d.png
        save(data / f"{'abcd'[index]}.png", smooth_photo(index, 72, 90))
    csv_path, save_dir = tmp_path / "results.csv", tmp_path / "saved"
    result = run_cli(
        "eval", "--arch", "telea", "--arch", "ns", "--data", data, "--masks", "box", "--limit", "3",
        "--size", "64", "--metric", "psnr", "--json", "--csv", csv_path, "--save-dir", save_dir,
        "--device", "cpu", cwd=tmp_path,
    )
    assert_clean_stderr(result)
    document = json.loads(result.stdout)
    assert document["methods"] == ["telea", "ns"]
    assert document["metrics"] == ["psnr", "hole_l1"]
    assert document["size"] == 64 and document["seed"] == 0
    assert set(document["sections"]) == {"box", "overall"}
    for method in ("telea", "ns"):
        psnr = document["sections"]["box"][method]["psnr"]
        assert psnr["n"] == 3 and math.isfinite(psnr["mean"]) and 15 < psnr["mean"] < 100

    # the same protocol run through the library gives the same figures
    telea = Inpainter(resolve_model("telea", None, "cpu"), "cpu")
    expected = evaluate([telea], load_eval_images(data, 64, 3), ["box"], ["psnr"], seed=0)
    assert document["sections"]["box"]["telea"]["psnr"]["mean"] == pytest.approx(
        expected.sections["box"]["telea"]["psnr"].mean, rel=1e-12
    )

    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2  # sections x methods x metrics
    by_key = {(row["section"], row["method"], row["metric"]): row for row in rows}
    assert float(by_key[("box", "ns", "psnr")]["mean"]) == document["sections"]["box"]["ns"]["psnr"]["mean"]

    for method in ("telea", "ns"):
        saved = sorted(path.name for path in (save_dir / "box" / method).iterdir())
        assert saved == ["a.png", "b.png", "c.png"]
    grid = load(save_dir / "box" / "comparison.png")
    assert grid.shape[0] >= 3 * 64 and grid.shape[1] >= 4 * 64  # input | telea | ns | original


MALFORMED = [  # (command, option, value, what the error line names); issue 24, rough edges 3 and 6
    ("train", "--steps", "0", "--steps"),
    ("train", "--batch", "0", "--batch"),
    ("train", "--checkpoint-every", "0", "--checkpoint-every"),
    ("train", "--sample-every", "-5", "--sample-every"),
    ("train", "--workers", "-1", "--workers"),
    ("train", "--ema", "1.5", "--ema must lie between 0 and 1"),
    ("train", "--phase-steps", "5,x", "--phase-steps must be integers"),
    ("fill", "--max-side", "0", "--max-side"),
    ("fill", "--quality", "101", "--quality"),
    ("fill", "--rect", "1,2,3", "x,y,w,h"),
    ("masks", "--count", "0", "--count"),
    ("eval", "--limit", "0", "--limit"),
]


@pytest.mark.parametrize("command,option,value,fragment", MALFORMED, ids=[f"{c}{o}={v}" for c, o, v, _ in MALFORMED])
def test_malformed_arguments_are_refused_while_parsing(tmp_path: Path, command: str, option: str, value: str, fragment: str) -> None:
    """Zero or negative counts and unparsable values: one `error:` line naming the option, exit
    status 2 (as the README promises), and nothing created: no run folder, no output."""
    out = tmp_path / "out"
    given = {
        "train": ("train", "--arch", "glcic", "--config", "tiny", "--data", tmp_path, "--out", out),
        "fill": ("fill", tmp_path / "photo.png", "--rect", "1,1,4,4", "-o", out),
        "masks": ("masks", "box", "--out", out),
        "eval": ("eval", "--arch", "telea", "--data", tmp_path, "--csv", out),
    }[command]
    save(tmp_path / "photo.png", smooth_photo())
    assert_user_error(run_cli(*given, option, value, cwd=tmp_path), fragment, status=2)
    assert not out.exists()


BEFORE_TORCH = [  # every argument is checked before torch loads (issue 24, rough edge 6)
    (("fill", "photo.png", "--rect", "1,1,4,4", "--arch", "nope"), ("'nope'", "glcic", "telea")),
    (("fill", "photo.png", "--rect", "1,1,4,4", "--blend", "soft"), ("--blend 'soft'", "poisson")),
    (("fill", "photo.png", "--rect", "1,1,4,4", "--strategy", "tile"), ("--strategy 'tile'", "resize")),
    (("fill", "photo.png", "--rect", "1,1,4,4", "--device", "gpu"), ("device 'gpu'", "cuda:N")),
    (("fill", "photo.png", "--rect", "1,1,4,4", "--precision", "half"), ("--precision 'half'", "bf16")),
    (("train", "--arch", "nope", "--data", ".", "--out", "run"), ("'nope'", "glcic")),
    (("eval", "--metric", "psnr"), ("--data", "INPAINT_DATA")),  # the README's first example, no data set up
]


@pytest.mark.parametrize("args,fragments", BEFORE_TORCH, ids=[" ".join(args[:1] + args[-2:]) for args, _ in BEFORE_TORCH])
def test_bad_names_are_reported_before_torch_loads(tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    save(tmp_path / "photo.png", smooth_photo())
    env = cli_env()
    env.pop("INPAINT_DATA", None)
    result = run_cli(*args, cwd=tmp_path, python_flags=("-X", "importtime"), env=env)
    imported = [line.rpartition("|")[2].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "inpaint_cli.cli" in imported and "torch" not in imported
    errors = subprocess.CompletedProcess(result.args, result.returncode, result.stdout,
                                         "".join(line + "\n" for line in result.stderr.splitlines() if not line.startswith("import time:")))
    assert_user_error(errors, *fragments)
    assert not (tmp_path / "run").exists() and not (tmp_path / "photo.filled.png").exists()


def test_train_start_up_errors_are_one_line(tmp_path: Path) -> None:
    # raised while the run is set up, after the progress display has started
    data = tmp_path / "pictures"
    data.mkdir()
    save(data / "a.png", smooth_photo(0, 48, 48))
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    train = ("train", "--arch", "glcic", "--config", "tiny", "--data", data, "--size", "32")
    assert_user_error(run_cli(*train, "--out", tmp_path / "run", cwd=tmp_path), "already holds a training run")
    assert_user_error(run_cli(*train, "--out", tmp_path / "other", "--phase-steps", "5", cwd=tmp_path), "phase")


def test_a_resume_reads_the_architecture_from_its_run(tmp_path: Path) -> None:
    data = tmp_path / "pictures"
    data.mkdir()
    save(data / "a.png", smooth_photo(0, 48, 48))
    run = tmp_path / "run"
    train = ("train", "--data", data, "--size", "32", "--device", "cpu")
    # GLCIC's discriminators shrink a 32-pixel crop to one position: a batch of one leaves their
    # batch norm one value per channel
    batch_of_one = run_cli(*train, "--arch", "glcic", "--config", "tiny", "--batch", "1", "--steps", "4",
                           "--out", tmp_path / "one", cwd=tmp_path)
    assert_user_error(batch_of_one, "--batch 1 with --size 32 leaves a batch-norm layer one value per channel")
    started = run_cli(*train, "--arch", "glcic", "--config", "tiny", "--batch", "2", "--steps", "1", "--out", run, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    resumed = run_cli("train", "--out", run, "--resume", "--steps", "2", "--device", "cpu", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "trained glcic tiny to step 2" in resumed.stderr
    assert_user_error(run_cli(*train, "--out", tmp_path / "new", cwd=tmp_path), "--arch is needed")
    assert_user_error(run_cli("train", "--out", tmp_path / "none", "--resume", cwd=tmp_path), "no training checkpoint")
    assert not (tmp_path / "new").exists() and not (tmp_path / "none").exists()


def test_release_evaluates_and_refuses_a_model_below_the_bar(tmp_path: Path) -> None:
    # random PConv weights (no post-processing of their own: on smooth pictures a random GLCIC,
    # Poisson-blended as its paper does, is nearly the membrane interpolant and can beat Telea)
    import torch

    from inpaint_cli.archs.pconv import CONFIGS, PConvUNet
    from inpaint_cli.checkpoint import export_release
    from inpaint_cli.registry import get_arch

    torch.manual_seed(0)
    random_weights = tmp_path / "pconv-tiny.safetensors"
    export_release(PConvUNet(CONFIGS["tiny"]), get_arch("pconv"), "tiny", CONFIGS["tiny"], random_weights, {"step": 0})
    data, bands, weights = tmp_path / "eval", tmp_path / "bands", tmp_path / "weights"
    data.mkdir()
    weights.mkdir()
    for index in range(2):
        save(data / f"{index}.png", smooth_photo(index, 72, 90))
    for band in ("10-20", "30-40", "50-60"):
        (bands / band).mkdir(parents=True)
        save_mask(bands / band / "m.png", box(8, 8, 24, 30))
    other = tmp_path / "pconv-seed1.safetensors"  # a second export, measured in the same evaluation
    export_release(PConvUNet(CONFIGS["tiny"]), get_arch("pconv"), "tiny", CONFIGS["tiny"], other, {"step": 0})
    result = run_cli("release", random_weights, other, "--to", weights, "--data", data, "--irregular", bands,
                     "--device", "cpu", cwd=tmp_path)
    assert_user_error(result, random_weights.name, "does not clear the bar", "box: psnr")
    table = result.stdout.splitlines()
    assert table[0] == "| masks | method | PSNR (dB) | SSIM | hole L1 |"  # the figures behind it
    assert [line.split(" | ")[0] for line in table if not line.startswith("|  |")][2:] == [
        "| box", "| 10-20", "| 30-40", "| 50-60", "| freeform", "| overall"
    ]
    assert sum("pconv-" in line for line in table) == 2 * 6
    assert list(weights.iterdir()) == []
    missing = run_cli("release", random_weights, "--to", weights, "--data", data, "--irregular", tmp_path / "none", cwd=tmp_path)
    assert_user_error(missing, "mask folder not found")
    assert_user_error(run_cli("release", random_weights, "--to", weights, "--blend", "soft", cwd=tmp_path), "unknown --blend 'soft'")


def test_eval_set_metrics_need_their_backbone_file(tmp_path: Path) -> None:
    """`--metric fid` with a --backbones folder that lacks Inception's file: one line naming the
    file, before any fill is written."""
    data = tmp_path / "eval"
    data.mkdir()
    save(data / "a.png", smooth_photo(0, 72, 90))
    empty, save_dir = tmp_path / "backbones", tmp_path / "saved"
    empty.mkdir()
    result = run_cli("eval", "--arch", "telea", "--data", data, "--masks", "box", "--size", "64", "--metric", "fid",
                     "--backbones", empty, "--repeat", "2", "--save-dir", save_dir, cwd=tmp_path)
    assert_user_error(result, "pt_inception-2015-12-05-6726825d.pth", str(empty))
    assert not save_dir.exists()


def test_only_fill_takes_samples(tmp_path: Path) -> None:
    """`--samples` draws several fills; the commands that draw none refuse it rather than ignore it."""
    for command in (("train", "--arch", "glcic", "--out", tmp_path / "run"), ("eval",), ("masks", "generate", "box", "--out", tmp_path / "m")):
        assert_user_error(run_cli(*command, "--samples", "2", cwd=tmp_path), "--samples", status=2)
    assert not (tmp_path / "run").exists() and not (tmp_path / "m").exists()

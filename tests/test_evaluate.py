"""The evaluation protocol (docs/design.md "Evaluation protocol"): images, masks, composited scores."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpaint_cli.errors import InpaintError
from inpaint_cli.evaluate import (
    EvalResult,
    Summary,
    eval_masks,
    evaluate,
    load_eval_images,
    render_tables,
    result_from_json,
    result_to_csv,
    result_to_json,
    saved_fill_path,
)
from inpaint_cli.masks import draw_mask, eval_rng

SIZE = 48


def write_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def pattern(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth colours plus texture, so that resizing and cropping mistakes change pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, (x * y) % 256], axis=-1)
    return np.clip(image + rng.integers(0, 40, image.shape), 0, 255).astype(np.uint8)


class Oracle:
    """Returns the original photo (found by its known pixels): a perfect fill."""

    label = "oracle"

    def __init__(self, originals: list[np.ndarray]) -> None:
        self.originals = originals

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        for original in self.originals:
            if np.array_equal(original[~hole], image[~hole]):
                return original.copy()
        raise AssertionError("unknown image")


class MeanFill:
    """Fills the hole with the mean colour of the known pixels."""

    label = "mean"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        filled = image.copy()
        filled[hole] = image[~hole].mean(axis=0).round().astype(np.uint8)
        return filled


class Telea:
    label = "telea"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(image[..., ::-1])
        filled = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
        return np.ascontiguousarray(filled[..., ::-1])


class Noise:
    """Replaces every pixel, known ones included, with noise: composition must undo the latter."""

    label = "noise"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return np.random.default_rng(0).integers(0, 256, image.shape, dtype=np.uint8)


# ---------------------------------------------------------------- step 1: images


def test_load_eval_images_resizes_crops_and_sorts(tmp_path: Path) -> None:
    landscape = pattern(200, 300, 0)  # H x W
    portrait = pattern(400, 150, 1)
    grey = pattern(64, 64, 2)[..., 0]
    write_image(tmp_path / "b.png", landscape)
    write_image(tmp_path / "a" / "z.png", portrait)
    write_image(tmp_path / "a.png", grey)
    write_image(tmp_path / "B.png", landscape[::-1])

    loaded = load_eval_images(tmp_path, size=64)

    assert [name for name, _ in loaded] == ["B.png", "a.png", "a/z.png", "b.png"]
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for _, image in loaded)
    images = dict(loaded)
    # 300 x 200 -> 96 x 64, left (96 - 64) // 2 = 16.
    # 150 x 400 -> 64 x 171, top (171 - 64) // 2 = 53.
    expected_landscape = Image.fromarray(landscape).resize((96, 64), Image.Resampling.BICUBIC)
    expected = np.asarray(expected_landscape.crop((16, 0, 80, 64)))
    np.testing.assert_array_equal(images["b.png"], expected)
    expected_portrait = Image.fromarray(portrait).resize((64, 171), Image.Resampling.BICUBIC)
    expected = np.asarray(expected_portrait.crop((0, 53, 64, 117)))
    np.testing.assert_array_equal(images["a/z.png"], expected)
    np.testing.assert_array_equal(images["a.png"], np.repeat(grey[..., None], 3, axis=-1))
    # The crop is not the top-left one: the content really comes from the centre.
    assert not np.array_equal(images["b.png"], np.asarray(expected_landscape.crop((0, 0, 64, 64))))

    assert [name for name, _ in load_eval_images(tmp_path, size=64, limit=2)] == ["B.png", "a.png"]


def test_load_eval_images_rejects_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InpaintError, match="not found"):
        load_eval_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InpaintError, match="no images"):
        load_eval_images(tmp_path / "empty")


def test_load_eval_images_on_the_standard_set(data_dir: Path) -> None:
    loaded = load_eval_images(data_dir / "eval", limit=3)
    assert [name.split("/")[0] for name, _ in loaded] == ["cbsd68"] * 3
    assert [image.shape for _, image in loaded] == [(256, 256, 3)] * 3


# ---------------------------------------------------------------- step 2: masks


def test_eval_masks_folder_assignment_and_nearest_resize(tmp_path: Path) -> None:
    folder = tmp_path / "30-40"
    for index in range(3):
        mask = np.zeros((32, 32), np.uint8)
        mask[8 * index : 8 * index + 8, 4:28] = 255  # a band that moves down with the index
        write_image(folder / f"{index:05d}.png", mask)

    label, holes = eval_masks(str(folder), count=5, size=16, seed=2)

    assert label == "30-40"
    assert len(holes) == 5
    for image_index, hole in enumerate(holes):
        file_index = (image_index + 2) % 3
        expected = np.zeros((16, 16), bool)
        expected[4 * file_index : 4 * file_index + 4, 2:14] = True
        assert hole.dtype == bool
        np.testing.assert_array_equal(hole, expected)

    _, odd_size = eval_masks(str(folder), count=1, size=20, seed=0)
    assert odd_size[0].dtype == bool and odd_size[0].shape == (20, 20)
    assert odd_size[0].mean() == pytest.approx(8 * 24 / 32**2, abs=0.05)


def test_eval_masks_on_the_nvidia_set(data_dir: Path) -> None:
    folder = data_dir / "masks" / "nvidia-irregular" / "30-40"
    label, holes = eval_masks(str(folder), count=2, size=256, seed=0)
    assert label == "30-40"
    for hole in holes:
        assert hole.shape == (256, 256) and hole.dtype == bool
        assert 0.25 < hole.mean() < 0.45


def test_eval_masks_generator_draws_from_the_protocol_rng() -> None:
    label, holes = eval_masks("box", count=4, size=SIZE, seed=3)
    assert label == "box"
    for index, hole in enumerate(holes):
        np.testing.assert_array_equal(hole, draw_mask("box", eval_rng(3, index, "box"), SIZE, SIZE))
        # The box recipe of the protocol, from default_rng([seed, i, 1]).
        rng = np.random.default_rng([3, index, 1])
        width, height = rng.integers(math.ceil(SIZE / 4), SIZE // 2 + 1, size=2)
        x = rng.integers(0, SIZE - width + 1)
        y = rng.integers(0, SIZE - height + 1)
        expected = np.zeros((SIZE, SIZE), bool)
        expected[y : y + height, x : x + width] = True
        np.testing.assert_array_equal(hole, expected)
    assert not np.array_equal(holes[0], holes[1])


def test_eval_masks_rejects_unknown_kinds(tmp_path: Path) -> None:
    with pytest.raises(InpaintError, match="neither a mask kind"):
        eval_masks("triangle", count=1, size=SIZE, seed=0)
    (tmp_path / "blank").mkdir()
    with pytest.raises(InpaintError, match="no mask files"):
        eval_masks(str(tmp_path / "blank"), count=1, size=SIZE, seed=0)


# ---------------------------------------------------------------- steps 3 and 4: evaluate


@pytest.fixture
def images(smooth_image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [
        ("one.png", np.ascontiguousarray(smooth_image[:SIZE, :SIZE])),
        ("sub/two.jpg", np.ascontiguousarray(smooth_image[40 : 40 + SIZE, 70 : 70 + SIZE])),
        ("three.png", np.ascontiguousarray(smooth_image[10 : 10 + SIZE, 30 : 30 + SIZE][::-1])),
    ]


@pytest.fixture
def mask_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "masks" / "10-20"
    for index in range(2):
        mask = np.zeros((SIZE * 2, SIZE * 2), np.uint8)
        mask[20 + 30 * index : 50 + 30 * index, 10:70] = 255
        write_image(folder / f"{index}.png", mask)
    return folder


def test_evaluate_scores_composited_uint8_fills(
    tmp_path: Path, images: list[tuple[str, np.ndarray]], mask_folder: Path
) -> None:
    originals = [image for _, image in images]
    methods = [Oracle(originals), MeanFill(), Telea(), Noise()]
    calls = []
    save_dir = tmp_path / "out"

    specs = ["box", str(mask_folder)]
    result = evaluate(
        methods, images, specs, ["psnr", "ssim"], seed=1, save_dir=save_dir, progress=calls.append
    )

    assert result.methods == ["oracle", "mean", "telea", "noise"]
    assert result.metrics == ["psnr", "ssim", "hole_l1"]
    assert list(result.sections) == ["box", "10-20", "overall"]
    assert calls == [1] * (4 * 3 * 2)
    for section in ("box", "10-20"):
        oracle = result.sections[section]["oracle"]
        assert oracle["psnr"] == Summary(100.0, 0.0, 3)
        assert oracle["ssim"].mean == pytest.approx(1.0, abs=1e-12)
        assert oracle["hole_l1"].mean == 0.0
        mean_fill = result.sections[section]["mean"]
        assert mean_fill["psnr"].mean < 60
        assert mean_fill["ssim"].mean < oracle["ssim"].mean
        assert mean_fill["hole_l1"].mean > 0.01
        assert result.sections[section]["noise"]["hole_l1"].mean > mean_fill["hole_l1"].mean
    overall = result.sections["overall"]["mean"]["hole_l1"]
    assert overall.n == 6
    section_means = [result.sections[s]["mean"]["hole_l1"].mean for s in ("box", "10-20")]
    assert overall.mean == pytest.approx(np.mean(section_means))

    # Saved fills: known pixels bit for bit from the original, hole from the method.
    _, holes = eval_masks(str(mask_folder), count=3, size=SIZE, seed=1)
    for (name, original), hole in zip(images, holes):
        saved_path = save_dir / "10-20" / "noise" / Path(name).with_suffix(".png")
        saved = np.asarray(Image.open(saved_path))
        np.testing.assert_array_equal(saved[~hole], original[~hole])
        assert not np.array_equal(saved[hole], original[hole])
    assert len(list((save_dir / "box").rglob("*.png"))) == 4 * 3 + 1
    grid = Image.open(save_dir / "box" / "comparison.png")
    assert grid.size[0] == 6 * SIZE + 5 * 4  # input | four methods | original, 4-pixel gaps
    assert grid.size[1] > 3 * SIZE


def test_methods_never_see_the_hole_pixels(images: list[tuple[str, np.ndarray]]) -> None:
    seen = []

    class Spy(MeanFill):
        label = "spy"

        def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            seen.append((image.copy(), hole.copy()))
            return super().__call__(image, hole)

    evaluate([Spy()], images, ["center"], ["l1"])
    assert len(seen) == 3
    for (image, hole), (_, original) in zip(seen, images):
        assert hole.any()
        assert (image[hole] == 0).all()
        np.testing.assert_array_equal(image[~hole], original[~hole])


def test_standard_error_on_a_hand_case() -> None:
    assert Summary.of([1.0, 2.0, 3.0, 4.0]) == Summary(2.5, math.sqrt(5 / 3) / 2, 4)
    assert Summary.of([0.3]) == Summary(0.3, 0.0, 1)

    # Flat grey images 0, 51, 102 filled with white: hole L1 is 1.0, 0.8, 0.6 per image.
    flat = [(f"{level}.png", np.full((16, 16, 3), level, np.uint8)) for level in (0, 51, 102)]

    class White:
        label = "white"

        def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            return np.full_like(image, 255)

    result = evaluate([White()], flat, ["center"], [])
    summary = result.sections["center"]["white"]["hole_l1"]
    assert summary.n == 3
    assert summary.mean == pytest.approx(0.8)
    assert summary.stderr == pytest.approx(0.2 / math.sqrt(3))  # sample sd 0.2 over sqrt(3)


def test_result_json_round_trips_and_csv_lists_every_value(
    images: list[tuple[str, np.ndarray]],
) -> None:
    metrics = ["l1", "l2", "psnr"]
    result = evaluate([MeanFill(), Telea()], images, ["box", "center"], metrics, seed=5)
    restored = result_from_json(result_to_json(result))
    assert isinstance(restored, EvalResult)
    assert restored == result
    assert restored.seed == 5 and restored.size == SIZE

    rows = list(csv.DictReader(io.StringIO(result_to_csv(result))))
    assert len(rows) == 3 * 2 * 4  # sections (with overall) x methods x metrics
    first = rows[0]
    assert (first["section"], first["method"], first["metric"]) == ("box", "mean", "l1")
    assert float(first["mean"]) == result.sections["box"]["mean"]["l1"].mean
    assert int(first["n"]) == 3


def test_render_tables_bolds_the_best_value(images: list[tuple[str, np.ndarray]]) -> None:
    originals = [image for _, image in images]
    result = evaluate([MeanFill(), Oracle(originals)], images, ["center"], ["psnr", "l1"])
    tables = render_tables(result)
    assert [table.title for table in tables] == ["center (n = 3)", "overall (n = 3)"]
    cells = {column.header: list(column.cells) for column in tables[0].columns}
    assert cells["method"] == ["mean", "oracle"]
    psnr_cells = cells["psnr ↑"]
    assert psnr_cells[1] == "[bold]100.00 ± 0.00[/bold]" and "[bold]" not in psnr_cells[0]
    l1_cells = cells["l1 ↓"]
    assert l1_cells[1].startswith("[bold]0.0000") and "[bold]" not in l1_cells[0]


def test_evaluate_rejects_bad_requests(images: list[tuple[str, np.ndarray]]) -> None:
    with pytest.raises(InpaintError, match="unknown metric"):
        evaluate([MeanFill()], images, ["box"], ["fid2"])
    with pytest.raises(InpaintError, match="share a label"):
        evaluate([MeanFill(), MeanFill()], images, ["box"], ["l1"])
    with pytest.raises(InpaintError, match="both labelled"):
        evaluate([MeanFill()], images, ["box", "box"], ["l1"])

    class Grey:
        label = "grey"

        def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            return image[..., 0]

    with pytest.raises(InpaintError, match="'grey' returned uint8"):
        evaluate([Grey()], images, ["box"], ["l1"])


def test_the_result_records_each_methods_blend(images: list[tuple[str, np.ndarray]]) -> None:
    class BlendedMean(MeanFill):
        label = "mean + poisson"
        blend = "poisson"

    result = evaluate([BlendedMean(), Telea()], images, ["box"], ["l1"])
    assert result.blends == {"mean + poisson": "poisson", Telea.label: "none"}
    assert result_from_json(result_to_json(result)).blends == result.blends
    legacy = json.loads(result_to_json(result))
    del legacy["blends"]  # written before blends were recorded: the label says it
    assert result_from_json(json.dumps(legacy)).blend_of("mean + poisson") == "poisson"
    assert result_from_json(json.dumps(legacy)).blend_of(Telea.label) == "none"


def test_feathering_never_scores_the_true_pixels_of_the_drawn_hole(
    images: list[tuple[str, np.ndarray]], tmp_path: Path
) -> None:
    """The feathered band mixes in the original's pixels: only those of the grown ring may enter."""

    class Black:
        label = "black"

        def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            return np.zeros_like(image)

    for spec in ("box", "irregular:30-40"):
        _, drawn = eval_masks(spec, len(images), SIZE, 0)
        evaluate([Black()], images, [spec], ["l1"], dilate=3, feather=3, save_dir=tmp_path / "saved")
        for (name, _), hole in zip(images, drawn):
            saved = np.asarray(Image.open(saved_fill_path(tmp_path / "saved", spec, "black", name)))
            assert hole.any() and (saved[hole] == 0).all()
    with pytest.raises(InpaintError, match="--feather 4 would mix the true pixels"):
        evaluate([Black()], images, ["box"], ["l1"], dilate=3, feather=4)
    with pytest.raises(InpaintError, match="use at most --dilate"):
        evaluate([Black()], images, ["box"], ["l1"], feather=1)

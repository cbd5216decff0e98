"""fill.py: composite guarantee, padding, strategies, fixed-size windows, model resolution."""

import dataclasses

import numpy as np
import pytest
import torch

from inpaint_cli.archs.base import InpaintModel
from inpaint_cli.archs.glcic import CONFIGS, CompletionNetwork
from inpaint_cli.blend import poisson_blend
from inpaint_cli.checkpoint import export_release
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, Inpainter, LoadedModel, resolve_model
from inpaint_cli.registry import get_arch, list_archs


def _glcic() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel(CompletionNetwork(CONFIGS["tiny"]).eval(), get_arch("glcic"), "tiny", "glcic", {})


def _plain(model: InpaintModel, label: str = "rec") -> LoadedModel:
    """A stand-in model under an architecture with no post-processing of its own."""
    return LoadedModel(model, dataclasses.replace(get_arch("glcic"), post_processing="none"), None, label, {})


class Recorder(InpaintModel):
    """Fills with a constant grey and records the input sizes and hole widths it saw."""

    def __init__(self, fixed_size=None, size_multiple=1):
        super().__init__()
        self.fixed_size, self.size_multiple, self.seen, self.hole_widths = fixed_size, size_multiple, [], []

    def inpaint(self, image, mask):
        for one in mask:  # each window of a batch
            self.seen.append(tuple(image.shape[-2:]))
            self.hole_widths.append(int(one[0].any(0).sum()))
        if self.fixed_size:
            assert image.shape[-2:] == (self.fixed_size, self.fixed_size)
        return torch.full_like(image, 0.5)


def _two_holes(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], dtype=bool)
    hole[10:30, 12:40] = True
    hole[60:80, 90:120] = True
    return hole


@pytest.mark.parametrize("strategy", ["full", "crop", "resize"])
def test_only_hole_pixels_change(smooth_image, strategy):
    hole = _two_holes(smooth_image)
    inpainter = Inpainter(_glcic(), "cpu", FillOptions(strategy=strategy, max_side=64, context=8))
    filled, _ = inpainter.fill(smooth_image, hole)
    assert filled.dtype == np.uint8 and filled.shape == smooth_image.shape
    assert np.array_equal(filled[~hole], smooth_image[~hole])
    assert (filled[hole] != smooth_image[hole]).any()


def test_poisson_blend_keeps_known_pixels(smooth_image):
    hole = _two_holes(smooth_image)
    filled, _ = Inpainter(_glcic(), "cpu", FillOptions(blend="poisson")).fill(smooth_image, hole)
    assert np.array_equal(filled[~hole], smooth_image[~hole])


def test_auto_blend_is_the_architectures_own_post_processing(smooth_image):
    hole = _two_holes(smooth_image)
    auto = Inpainter(_glcic(), "cpu")  # GLCIC's paper blends its fills (docs/architectures.md §2)
    plain = Inpainter(_glcic(), "cpu", FillOptions(blend="none"))
    assert (auto.blend, auto.label, plain.blend, plain.label) == ("poisson", "glcic + poisson", "none", "glcic")
    poisson = Inpainter(_glcic(), "cpu", FillOptions(blend="poisson"))
    assert np.array_equal(auto(smooth_image, hole), poisson(smooth_image, hole))
    assert not np.array_equal(auto(smooth_image, hole), plain(smooth_image, hole))
    assert Inpainter(_plain(Recorder()), "cpu").blend == "none"


@pytest.mark.parametrize("strategy", ["full", "crop"])
def test_poisson_blend_works_from_the_networks_own_pixels(smooth_image, strategy):
    # A flat grey output has no gradients, so blending must turn it into the membrane interpolant
    # of the known pixels; blending a fill already composited onto the original would leave it grey.
    hole = _two_holes(smooth_image)
    options = FillOptions(strategy=strategy, blend="poisson", context=8)
    filled, _ = Inpainter(_plain(Recorder(), "grey"), "cpu", options).fill(smooth_image, hole)
    expected = poisson_blend(smooth_image, np.full_like(smooth_image, 128), hole)
    assert np.array_equal(filled, expected)
    assert np.abs(filled[hole].astype(int) - 128).mean() > 10


def test_odd_sizes_are_padded_to_the_multiple_and_cropped_back():
    model = Recorder(size_multiple=8)
    image = np.full((37, 53, 3), 200, np.uint8)
    hole = np.zeros((37, 53), bool)
    hole[5:9, 5:9] = True
    filled, _ = Inpainter(_plain(model), "cpu").fill(image, hole)
    assert model.seen == [(40, 56)]
    assert filled.shape == image.shape
    assert (filled[hole] == 128).all() and (filled[~hole] == 200).all()


def test_crop_strategy_sends_windows_not_the_image(smooth_image):
    model = Recorder()
    options = FillOptions(strategy="crop", context=8)
    Inpainter(_plain(model), "cpu", options).fill(smooth_image, _two_holes(smooth_image))
    assert len(model.seen) == 2
    assert all(h < smooth_image.shape[0] or w < smooth_image.shape[1] for h, w in model.seen)


def test_fixed_size_models_get_scaled_windows_around_each_hole():
    model = Recorder(fixed_size=32)
    image = np.full((100, 150, 3), 10, np.uint8)
    hole = np.zeros((100, 150), bool)
    hole[5:15, 5:15] = True  # small: a 32 x 32 window
    hole[40:90, 60:130] = True  # larger than the model's window: scaled
    filled, _ = Inpainter(_plain(model), "cpu").fill(image, hole)
    assert len(model.seen) == 2
    assert (np.abs(filled[hole].astype(int) - 128) <= 1).all()
    assert (filled[~hole] == 10).all()


def test_a_fixed_size_model_fills_an_image_smaller_than_its_window():
    """A 20 x 26 image under a 32 x 32 model: the whole image is its window (mirror-padded, scaled)."""
    model = Recorder(fixed_size=32)
    image = np.full((20, 26, 3), 10, np.uint8)
    hole = np.zeros((20, 26), bool)
    hole[6:12, 8:16] = True
    filled, _ = Inpainter(_plain(model), "cpu").fill(image, hole)
    assert model.seen == [(32, 32)]
    assert (np.abs(filled[hole].astype(int) - 128) <= 1).all() and (filled[~hole] == 10).all()


def test_fixed_size_windows_filled_in_batches_equal_one_at_a_time():
    """Batch norm in eval mode and convolutions treat each sample alone: the same bytes."""
    from inpaint_cli.archs.context_encoder import CONFIGS, SPECS

    torch.manual_seed(0)
    model = SPECS[0].build_generator(CONFIGS["tiny"]).eval()
    loaded = LoadedModel(model, SPECS[0], "tiny", "context-encoder", {})
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    hole = np.zeros((160, 200), bool)
    for top, left, side in ((5, 5, 10), (100, 20, 14), (30, 120, 8), (120, 150, 30), (60, 70, 6)):
        hole[top : top + side, left : left + side] = True
    one_at_a_time = Inpainter(loaded, "cpu", FillOptions(window_batch=1, blend="none"))
    batched = Inpainter(loaded, "cpu", FillOptions(window_batch=3, blend="none"))
    assert len(batched._windows(hole)) == 5  # batches of 3 and 2
    first = one_at_a_time.fill(image, hole)[0]
    assert np.array_equal(first, batched.fill(image, hole)[0])
    assert not np.array_equal(first[hole], image[hole])


@pytest.mark.parametrize(("window_per_hole", "hole_in_window"), [(2.0, 16), (3.0, 12)])
def test_fixed_size_windows_show_the_hole_at_the_models_share(window_per_hole, hole_in_window):
    """A 20 px hole gets a 40 (60) px window for a ratio of 2 (3), scaled to 32: 16 px of it
    (10.7 px, which touch 12 pixels)."""
    model = Recorder(fixed_size=32)
    model.window_per_hole = window_per_hole
    image = np.full((100, 150, 3), 10, np.uint8)
    hole = np.zeros((100, 150), bool)
    hole[40:60, 50:70] = True
    Inpainter(_plain(model), "cpu").fill(image, hole)
    assert model.hole_widths == [hole_in_window]


def test_empty_mask_returns_a_copy(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], bool)
    filled, _ = Inpainter(_glcic(), "cpu").fill(smooth_image, hole)
    assert np.array_equal(filled, smooth_image)


def test_telea_fills_smooth_regions_closely(smooth_image):
    hole = np.zeros(smooth_image.shape[:2], bool)
    hole[40:50, 60:70] = True
    filled, _ = Inpainter(resolve_model("telea", None)).fill(smooth_image, hole)
    error = np.abs(filled.astype(int) - smooth_image)[hole].mean()
    assert error < 12  # noise sigma 4 plus the gradients across a 10 px hole


def test_model_resolution_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_WEIGHTS", str(tmp_path / "nowhere"))
    monkeypatch.setattr("inpaint_cli.weights.weights_dir", lambda: None)
    assert resolve_model(None, None).label == "telea"  # no bundled weights: the default is telea
    assert resolve_model("ns", None).spec.name == "ns"
    with pytest.raises(InpaintError, match="no bundled weights for glcic"):
        resolve_model("glcic", None)
    path = tmp_path / "mine.safetensors"
    export_release(CompletionNetwork(CONFIGS["tiny"]), get_arch("glcic"), "tiny", CONFIGS["tiny"], path, {})
    loaded = resolve_model(None, str(path))
    assert (loaded.spec.name, loaded.config, loaded.label) == ("glcic", "tiny", "mine")
    assert resolve_model("glcic", str(path)).config == "tiny"
    with pytest.raises(InpaintError, match="for 'glcic', not 'lama'"):
        resolve_model("lama", str(path))


def test_bad_options_are_user_errors():
    with pytest.raises(InpaintError, match="strategy"):
        Inpainter(_glcic(), "cpu", FillOptions(strategy="tiles"))
    with pytest.raises(InpaintError, match="blend"):
        Inpainter(_glcic(), "cpu", FillOptions(blend="alpha"))


class PrecisionRecorder(InpaintModel):
    """Fills with a 1 x 1 convolution of the image and records the dtype it computed in."""

    def __init__(self):
        super().__init__()
        self.convolution = torch.nn.Conv2d(3, 3, 1)
        self.dtypes = []

    def inpaint(self, image, mask):
        output = self.convolution(image)
        self.dtypes.append(output.dtype)
        return output.float().sigmoid()


def test_precision_auto_is_float32_on_the_cpu_and_bf16_is_asked_for(smooth_image):
    hole = _two_holes(smooth_image)
    fills = {}
    for precision, dtype in (("auto", torch.float32), ("fp32", torch.float32), ("bf16", torch.bfloat16)):
        torch.manual_seed(0)
        recorder = PrecisionRecorder()
        fills[precision] = Inpainter(_plain(recorder), "cpu", FillOptions(precision=precision)).fill(smooth_image, hole)[0]
        assert recorder.dtypes == [dtype]
    assert np.array_equal(fills["auto"], fills["fp32"])  # the bytes the releases were measured with
    assert np.array_equal(fills["bf16"][~hole], smooth_image[~hole])
    with pytest.raises(InpaintError, match="fp16 needs CUDA"):
        Inpainter(_plain(PrecisionRecorder()), "cpu", FillOptions(precision="fp16"))
    with pytest.raises(InpaintError, match="precision"):
        Inpainter(_glcic(), "cpu", FillOptions(precision="int8"))


@pytest.mark.parametrize("arch", list_archs(learned=True))
def test_every_architecture_fills_in_bf16_near_its_float32_fill(arch):
    """`--precision bf16` on the CPU: every network runs under bf16 autocast (its precise parts, such
    as the partial convolutions' mask counts, stay float32), and its fill (tiny config, random
    weights) stays near the float32 one."""
    spec = get_arch(arch)
    torch.manual_seed(0)
    model = spec.build_generator(spec.config("tiny")).eval()
    size = max(64, model.fixed_size or 0, model.min_size)
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    hole = np.zeros((size, size), dtype=bool)
    hole[size // 4 : size // 2, size // 3 : 2 * size // 3] = True
    loaded = LoadedModel(model, spec, "tiny", arch, {})
    fills = {precision: Inpainter(loaded, "cpu", FillOptions(blend="none", precision=precision)).fill(image, hole)[0]
             for precision in ("fp32", "bf16")}
    assert np.array_equal(fills["bf16"][~hole], image[~hole])
    difference = np.abs(fills["bf16"].astype(int) - fills["fp32"])[hole]
    assert difference.max() <= 32 and difference.mean() <= 3


def _tiny_mat() -> LoadedModel:
    spec = get_arch("mat")
    torch.manual_seed(0)
    model = spec.build_generator(spec.config("mat-tiny-128")).eval()
    for name, buffer in model.named_buffers():
        if name.endswith("w_avg"):  # an average style away from zero, as a trained network has
            buffer.normal_()
    return LoadedModel(model, spec, "mat-tiny-128", "mat", {})


def _square_photo(smooth_image) -> tuple[np.ndarray, np.ndarray]:
    image = np.vstack([smooth_image, smooth_image[::-1][:32]])  # 128 x 128
    hole = np.zeros((128, 128), bool)
    hole[40:90, 30:100] = True
    return image, hole


def test_pluralistic_fills_follow_the_seed_and_the_truncation(smooth_image):
    """MAT draws its fill from z: `FillOptions.seed` fixes it (same seed, same fill; another seed,
    another fill) and `truncation` reaches the mapping (psi 0: every seed gives w's average)."""
    loaded = _tiny_mat()
    image, hole = _square_photo(smooth_image)

    def fill(**options) -> np.ndarray:
        return Inpainter(loaded, "cpu", FillOptions(blend="none", **options)).fill(image, hole)[0]

    first, again, other = fill(seed=1), fill(seed=1), fill(seed=2)
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int))[hole].max() > 0
    assert np.array_equal(first[~hole], image[~hole])
    assert np.abs(fill(seed=1, truncation=0.0).astype(int) - first.astype(int))[hole].max() > 0


def test_samples_write_one_file_per_seed(smooth_image, tmp_path):
    """`--samples 3`: X.filled-0/1/2.png, the draws of seeds 5, 6, 7, known pixels untouched; a
    model that fills deterministically refuses it."""
    from PIL import Image

    from inpaint_cli.fill import fill_planned
    from inpaint_cli.masks import plan_fill

    image, hole = _square_photo(smooth_image)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "photo_mask.png")
    plan = plan_fill(tmp_path / "photo.png", tmp_path / "photo_mask.png", [], None, samples=3)
    loaded = _tiny_mat()
    assert fill_planned(plan, Inpainter(loaded, "cpu", FillOptions(blend="none", seed=5))) == []
    written = [np.asarray(Image.open(tmp_path / f"photo.filled-{k}.png")) for k in range(3)]
    assert not (tmp_path / "photo.filled.png").exists()
    for k, fill in enumerate(written):
        assert np.array_equal(fill[~hole], image[~hole])
        expected = Inpainter(loaded, "cpu", FillOptions(blend="none", seed=5 + k)).fill(image, hole)[0]
        assert np.array_equal(fill, expected)
    assert np.abs(written[0].astype(int) - written[1].astype(int))[hole].max() > 0
    again = plan_fill(tmp_path / "photo.png", tmp_path / "photo_mask.png", [], tmp_path / "telea.png", samples=2)
    with pytest.raises(InpaintError, match="--samples needs a model"):
        fill_planned(again, Inpainter(resolve_model("telea", None, "cpu"), "cpu"))


# ------------------------------------------------------------------------------ folders in batches


def _photo_folder(folder, sizes, *, dark=()):
    """photos/NAME.png (a smooth photo of each size, magenta in a box hole) and NAME_mask.png
    beside it; the names in `dark` are a flat dark grey instead."""
    from PIL import Image

    folder.mkdir()
    for index, (name, (height, width)) in enumerate(sizes.items()):
        y, x = np.mgrid[0:height, 0:width]
        photo = np.stack([120 + 60 * np.sin(x / 9 + index), 90 + x, 50 + 2 * y], -1).clip(0, 255).astype(np.uint8)
        if name in dark:
            photo[:] = 10
        hole = np.zeros((height, width), bool)
        hole[8 + 2 * index : 30 + 2 * index, 12 : 40 + index] = True
        photo[hole] = (255, 0, 255)
        Image.fromarray(photo).save(folder / f"{name}.png")
        Image.fromarray(hole.astype(np.uint8) * 255).save(folder / f"{name}_mask.png")
    return folder


def _fill_folder(folder, out, inpainter, batch, **options):
    """`inpaint fill FOLDER --mask FOLDER -o OUT --batch BATCH` through the library: the failures,
    the records (the output's name alone, seconds left out), the progress calls and the bytes
    written, by file name."""
    from inpaint_cli.fill import fill_planned
    from inpaint_cli.masks import plan_fill

    records, calls = [], []
    failures = fill_planned(plan_fill(folder, folder, [], out, **options), inpainter, batch=batch,
                            done=lambda written: records.append({**written.record(), "output": written.job.target.name,
                                                                 "seconds": None}),
                            progress=lambda done, total: calls.append((done, total)))
    return failures, records, calls, {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def _record_batches(model) -> list[tuple[int, ...]]:
    """The shapes of the batches `model.inpaint` is given from now on."""
    shapes, forward = [], model.inpaint

    def recording(image, mask, **options):
        shapes.append(tuple(image.shape))
        return forward(image, mask, **options)

    model.inpaint = recording
    return shapes


@pytest.mark.parametrize("arch", ["glcic", "deepfill-v1", "context-encoder"])
def test_folder_batches_write_the_same_bytes_as_one_image_at_a_time(tmp_path, arch):
    """`--batch 3` on CPU float32: images that pad to one size (72 x 88 and 70 x 86 do, for GLCIC's
    multiple of 4 and DeepFill's of 8) share a forward, and every file, record and progress step is
    the one of `--batch 1`. The Context Encoder's windows are filled image by image either way."""
    spec = get_arch(arch)
    torch.manual_seed(0)
    model = spec.build_generator(spec.config("tiny")).eval()
    inpainter = Inpainter(LoadedModel(model, spec, "tiny", arch, {}), "cpu")  # GLCIC: Poisson-blended
    sizes = {"a": (72, 88), "b": (70, 86), "c": (72, 88), "d": (64, 80), "e": (64, 80)}
    folder = _photo_folder(tmp_path / "photos", sizes)
    batches = _record_batches(model)
    one_at_a_time = _fill_folder(folder, tmp_path / "one", inpainter, batch=1)
    alone, batches[:] = list(batches), []
    together = _fill_folder(folder, tmp_path / "three", inpainter, batch=3)
    assert one_at_a_time == together
    failures, records, calls, written = together
    assert failures == [] and sorted(written) == [f"{name}.png" for name in sizes]
    assert [record["hole_pixels"] for record in records] == [22 * 28, 22 * 29, 22 * 30, 22 * 31, 22 * 32]
    assert calls == [(done, 5) for done in range(6)]
    if model.fixed_size:
        assert batches == alone
    else:
        assert [shape[0] for shape in alone] == [1] * 5
        assert [shape[0] for shape in batches] == [3, 2]
        assert batches[0][2:] == (72, 88) and batches[1][2:] == (64, 80)


def test_folder_batches_leave_pluralistic_draws_alone(tmp_path):
    """MAT draws z and noise for a whole forward, so `--batch` fills its images one by one: each
    `--samples` draw is the one of `--batch 1`."""
    loaded = _tiny_mat()
    folder = _photo_folder(tmp_path / "photos", {"a": (128, 128), "b": (128, 128)})
    inpainter = Inpainter(loaded, "cpu", FillOptions(blend="none", seed=5))
    batches = _record_batches(loaded.model)
    one_at_a_time = _fill_folder(folder, tmp_path / "one", inpainter, batch=1, samples=2)
    together = _fill_folder(folder, tmp_path / "three", inpainter, batch=3, samples=2)
    assert one_at_a_time == together
    assert sorted(together[3]) == ["a-0.png", "a-1.png", "b-0.png", "b-1.png"]
    assert together[3]["a-0.png"] != together[3]["a-1.png"]
    assert [shape[0] for shape in batches] == [1] * 8


def test_folder_batches_report_each_failure_and_go_on(tmp_path):
    """In one batch of four: a truncated file, an existing output (never overwritten) and an
    image the network refuses, which fails the shared forward: each image is then filled alone,
    so that only the refused one fails. The others are written, in order."""

    class RefusesDark(Recorder):
        batches: list[int] = []

        def inpaint(self, image, mask):
            self.batches.append(len(image))
            if (image.mean(dim=(1, 2, 3)) < 0.1).any():
                raise ValueError("this image is too dark")
            return super().inpaint(image, mask)

    sizes = {"a": (64, 80), "b": (64, 80), "c": (64, 80), "d": (64, 80), "e": (64, 80), "f": (64, 80)}
    folder = _photo_folder(tmp_path / "photos", sizes, dark=("b",))
    (folder / "d.png").write_bytes((folder / "d.png").read_bytes()[:200])
    out = tmp_path / "out"
    out.mkdir()
    (out / "e.png").write_bytes(b"earlier")
    model = RefusesDark()
    failures, records, calls, written = _fill_folder(folder, out, Inpainter(_plain(model), "cpu"), batch=4)
    assert [failure.split(":")[0] for failure in failures] == [str(folder / name) for name in ("b.png", "d.png", "e.png")]
    assert "too dark" in failures[0] and "exists" in failures[2]
    assert [record["output"] for record in records] == ["a.png", "c.png", "f.png"]
    assert written["e.png"] == b"earlier" and sorted(written) == ["a.png", "c.png", "e.png", "f.png"]
    assert calls == [(done, 6) for done in range(7)]
    assert model.batches == [3, 1, 1, 1, 1]  # a, b, c shared (refused), then alone; f alone

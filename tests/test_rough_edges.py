"""Rough edges a new user hit (issue "What users of object removal ask for"): hidden pixels through
an all-hole mask, huge crop windows, file modes, and a checkpoint swap cut short."""

import dataclasses
import os
import shutil
import stat
import tracemalloc

import numpy as np
import pytest
import torch

from inpaint_cli.archs.base import InpaintModel
from inpaint_cli.blend import poisson_blend
from inpaint_cli.checkpoint import (
    atomic_save_safetensors,
    load_training_state,
    save_training_state,
    training_state_exists,
)
from inpaint_cli.fill import FillOptions, Inpainter, LoadedModel, resolve_model
from inpaint_cli.weights import bundled_weights
from inpaint_cli.io import LoadedImage, write_image
from inpaint_cli.registry import get_arch

# ------------------------------------------------------------------ an all-hole mask hides everything


@pytest.mark.parametrize("arch, blend", [("telea", "auto"), ("harmonic", "auto"), ("patchmatch", "auto"), ("glcic", "poisson")])
def test_photos_differing_only_under_a_full_mask_fill_alike(arch, blend):
    if get_arch(arch).learned and bundled_weights(arch) is None:
        pytest.skip(f"no bundled {arch} weights")
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    hole = np.ones((48, 64), dtype=bool)
    inpainter = Inpainter(resolve_model(arch, None), "cpu", FillOptions(blend=blend))
    assert np.array_equal(inpainter.fill(first, hole)[0], inpainter.fill(second, hole)[0])


def test_poisson_blend_reads_no_pixel_under_the_hole():
    rng = np.random.default_rng(1)
    fill = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    first, second = (rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(2))
    everything = np.ones((32, 40), dtype=bool)
    assert np.array_equal(poisson_blend(first, fill, everything), fill)  # nothing to meet
    hole = np.zeros((32, 40), dtype=bool)
    hole[8:20, 10:30] = True
    second[~hole] = first[~hole]
    assert np.array_equal(poisson_blend(first, fill, hole), poisson_blend(second, fill, hole))


# ------------------------------------------------------------- a crop window larger than max_side


class _Grey(InpaintModel):
    """Fills with mid-grey and records the input sizes it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def inpaint(self, image, mask):
        self.seen.append(tuple(image.shape[-2:]))
        return torch.full_like(image, 0.5)


def _grey() -> tuple[_Grey, LoadedModel]:
    model = _Grey()
    spec = dataclasses.replace(get_arch("glcic"), post_processing="none")
    return model, LoadedModel(model, spec, None, "grey", {})


@pytest.mark.parametrize("strategy", ["auto", "crop"])
def test_a_window_larger_than_max_side_is_filled_at_max_side(smooth_image, strategy):
    hole = np.zeros(smooth_image.shape[:2], dtype=bool)
    hole[20:80, 30:110] = True  # its window with context is the whole 96 x 128 image
    model, loaded = _grey()
    filled, _ = Inpainter(loaded, "cpu", FillOptions(strategy=strategy, max_side=48, context=8)).fill(smooth_image, hole)
    assert model.seen and max(max(size) for size in model.seen) <= 48
    assert np.array_equal(filled[~hole], smooth_image[~hole])
    assert (filled[hole] == 128).all()  # the grey, upsampled


def test_crop_keeps_no_float_copy_of_a_large_photo():
    height, width = 900, 1200
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    hole = np.zeros((height, width), dtype=bool)
    hole[100:800, 200:1000] = True
    _, loaded = _grey()
    inpainter = Inpainter(loaded, "cpu", FillOptions(strategy="auto", max_side=64, context=16))
    tracemalloc.start()
    try:
        filled, _ = inpainter.fill(image, hole)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(filled[~hole], image[~hole])
    # uint8 copies (the input with its hole cleared, the fill, the result) and the hole's region
    # labels: no room for a float32 RGB copy (12 bytes a pixel) beside them
    assert peak < 16 * height * width, peak / (height * width)


# ------------------------------------------------------------------------------- modes follow umask


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_exports_checkpoints_and_fills_follow_the_umask(tmp_path, umask):
    atomic_save_safetensors({"w": torch.zeros(2)}, tmp_path / "export.safetensors", {"format": "x"})
    save_training_state({"step": 1, "w": torch.zeros(2)}, tmp_path / "checkpoint")
    write_image(tmp_path / "out.png", LoadedImage(np.zeros((4, 4, 3), np.uint8), None, "RGB", None, tmp_path / "out.png"))
    files = [tmp_path / "export.safetensors", tmp_path / "checkpoint" / "state.json",
             tmp_path / "checkpoint" / "state.safetensors", tmp_path / "out.png"]
    assert {path.name: _mode(path) for path in files} == {path.name: 0o666 & ~umask for path in files}
    assert _mode(tmp_path / "checkpoint") == 0o777 & ~umask


# ------------------------------------------------------------------ a checkpoint swap cut short


def _checkpoint(tmp_path, step: int, where) -> None:
    """A complete checkpoint of `step` at `where` (made elsewhere and moved there)."""
    made = tmp_path / f"made-{step}" / "checkpoint"
    save_training_state({"step": step, "w": torch.full((3,), float(step))}, made)
    shutil.move(str(made), str(where))


def _partial(where) -> None:
    """A staging folder cut short: tensors written, JSON not yet."""
    where.mkdir()
    (where / "state.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")


CUT_SHORT = {
    # the new checkpoint half-written beside the current one
    "staging": ({"checkpoint": 1, ".checkpoint.new": None}, 1),
    # the new one complete, not yet swapped in
    "staged": ({"checkpoint": 1, ".checkpoint.new": 2}, 2),
    # the current one moved aside, the new one not yet in place
    "swapping": ({".checkpoint.old": 1, ".checkpoint.new": 2}, 2),
    # swapped, the old one not yet (or half) removed: every later save used to fail
    "retiring": ({"checkpoint": 2, ".checkpoint.old": 1}, 2),
    "half-removed": ({"checkpoint": 2, ".checkpoint.old": None}, 2),
    # the layout earlier versions left: a randomly named staging folder
    "earlier-version": ({".checkpoint.old": 1, ".checkpoint.k2j4x9ab": 2}, 2),
    "first-save": ({".checkpoint.new": 1}, 1),
}


@pytest.mark.parametrize("state", list(CUT_SHORT))
def test_resume_finds_the_newest_complete_checkpoint(tmp_path, state):
    layout, newest = CUT_SHORT[state]
    run = tmp_path / "run"
    run.mkdir()
    for name, step in layout.items():
        if step is None:
            _partial(run / name)
        else:
            _checkpoint(tmp_path, step, run / name)
    assert training_state_exists(run / "checkpoint")
    restored = load_training_state(run / "checkpoint")
    assert restored["step"] == newest and torch.equal(restored["w"], torch.full((3,), float(newest)))
    assert sorted(path.name for path in run.iterdir()) == ["checkpoint"]
    save_training_state({"step": newest + 1, "w": torch.zeros(3)}, run / "checkpoint")  # and saving goes on
    assert load_training_state(run / "checkpoint")["step"] == newest + 1
    assert sorted(path.name for path in run.iterdir()) == ["checkpoint"]

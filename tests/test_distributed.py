"""Data-parallel training (`inpaint_cli.train.distributed`): two gloo processes on the CPU train
what one process trains with the same global batch, and only rank 0 writes to the run folder."""

import json
import os
import socket
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from safetensors.torch import load_file, save_file

from inpaint_cli.checkpoint import load_release
from inpaint_cli.errors import InpaintError
from inpaint_cli.train import TrainSettings, start_training
from inpaint_cli.train.data import BatchSampler, ImageCache, find_training_images
from inpaint_cli.train.distributed import Ranks

WORLD = 2
#: tiny runs covering batch norm in both networks, a critic called several times per loss, and
#: phases (GLCIC: completion, critic-only, joint; with a weight average, so the export re-estimates
#: its batch-norm statistics across the processes), and per-row random numbers, extra critic batches
#: and whole-batch loss normalisers (DeepFill v1's gradient penalty, 5 critic steps, hole means)
RUNS = {
    "glcic": dict(size=32, phase_steps=[1, 1], ema_decay=0.9),
    "deepfill-v1": dict(size=32),
}
#: plain SGD's rate for each (see `_train`): as far as a step can go without a critic diverging
SGD_RATES = {"glcic": 0.05, "deepfill-v1": 1e-2}
#: a tensor of the two-process run may differ from the one-process run's by this share of how far
#: training moved it (measured: at most 0.06 %, float rounding in another order), plus rounding
SHARE_OF_CHANGE, ROUNDING = 2e-3, 1e-6


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:48, 0:56].astype(np.float64)
    for index in range(6):
        colours = rng.uniform(40, 215, size=(2, 3))
        blend = 0.5 + 0.5 * np.sin(x / rng.uniform(4, 12) + y / rng.uniform(5, 15))
        image = colours[0] * blend[..., None] + colours[1] * (1 - blend[..., None])
        Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


def _settings(pictures: Path, out: Path, arch: str) -> TrainSettings:
    return TrainSettings(arch=arch, out_dir=str(out), data_dirs=[str(pictures)], config="tiny", batch=4, steps=3,
                         checkpoint_every=0, sample_every=2, log_every=3, cache_side=32, **RUNS[arch])


def _train(settings: TrainSettings, rate: float) -> dict[str, torch.Tensor]:
    """Train with plain SGD in place of the recipe's optimisers, and return the networks' tensors.

    SGD moves each weight in proportion to its gradient. Adam moves it by about its learning rate
    whatever the gradient's size, so a gradient that is zero but for rounding (a convolution's
    bias before batch norm) takes a step of +-lr on the sign of its rounding error, which differs
    between one process and two: under Adam the weights would agree only as far as lr.
    """
    trainer = start_training(settings, device="cpu", precision="fp32")
    trainer.optimizers = {
        name: torch.optim.SGD([p for group in optimizer.param_groups for p in group["params"]], lr=rate)
        for name, optimizer in trainer.optimizers.items()
    }
    trainer.run()
    networks = {"generator": trainer.generator, "discriminator": trainer.discriminator}
    return {f"{name}.{key}": value.detach().clone().contiguous()
            for name, network in networks.items() if network is not None
            for key, value in network.state_dict().items()}


def _record_writes_under(folder: Path) -> list[str]:
    """Every file-system change under `folder` from now on (Python's audit events)."""
    changes: list[str] = []
    prefix = str(folder.resolve())

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode and any(c in mode for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR))
            if writing and isinstance(path, (str, Path)) and str(Path(path).resolve()).startswith(prefix):
                changes.append(f"{event} {path}")
        elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"):
            paths = [a for a in args if isinstance(a, (str, Path))]
            if any(str(Path(p).resolve()).startswith(prefix) for p in paths):
                changes.append(f"{event} {paths}")

    sys.addaudithook(hook)
    return changes


def _worker(rank: int, port: int, jobs: list[tuple[dict, str]], results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    writes = _record_writes_under(Path(jobs[0][0]["out_dir"]).parent)
    for values, arch in jobs:
        tensors = _train(TrainSettings(**values), SGD_RATES[arch])
        save_file(tensors, str(Path(results) / f"{arch}-rank{rank}.safetensors"))
    (Path(results) / f"writes-rank{rank}.json").write_text(json.dumps(writes))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_train_what_one_trains_and_only_rank_0_writes(pictures, tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    results.mkdir()
    jobs = [(asdict(_settings(pictures, runs / f"two-{arch}", arch)), arch) for arch in RUNS]
    mp.spawn(_worker, args=(_free_port(), jobs, str(results)), nprocs=WORLD)

    writes = [json.loads((results / f"writes-rank{rank}.json").read_text()) for rank in range(WORLD)]
    assert writes[1] == []
    assert any("checkpoint" in change for change in writes[0]) and any("log.jsonl" in change for change in writes[0])

    torch.set_num_threads(1)
    for arch in RUNS:
        one = _train(_settings(pictures, runs / f"one-{arch}", arch), SGD_RATES[arch])
        two = [load_file(results / f"{arch}-rank{rank}.safetensors") for rank in range(WORLD)]
        initial = _initial_tensors(pictures, tmp_path / f"initial-{arch}", arch)
        moved = 0
        for key, expected in one.items():
            assert torch.equal(two[0][key], two[1][key]), f"{arch} {key}: the ranks drifted apart"
            if expected.is_floating_point():
                change = (expected - initial[key]).abs().max().item()
                difference = (two[0][key] - expected).abs().max().item()
                assert difference <= SHARE_OF_CHANGE * change + ROUNDING, f"{arch} {key}: {difference:.3g} of {change:.3g}"
                moved += int(change > 10 * ROUNDING)
            else:  # batch-norm counters
                assert torch.equal(two[0][key], expected), f"{arch} {key}"
        assert moved > len(one) // 2, f"{arch}: training barely moved the weights"

        one_log, two_log = ([json.loads(line) for line in (runs / f"{who}-{arch}" / "log.jsonl").read_text().splitlines()]
                            for who in ("one", "two"))
        assert [row["step"] for row in two_log] == [3]
        for key in set(one_log[0]) - {"phase", "step", "images_per_s"}:
            assert two_log[0][key] == pytest.approx(one_log[0][key], rel=1e-4), key
        assert sorted(p.name for p in (runs / f"two-{arch}" / "samples").iterdir()) == ["step-0000002.png"]
        previews = [np.asarray(Image.open(runs / f"{who}-{arch}" / "samples" / "step-0000002.png")).astype(int)
                    for who in ("one", "two")]
        assert np.abs(previews[0] - previews[1]).max() <= 1  # the same rows, filled alike

    one_export, two_export = (load_release(runs / f"{who}-glcic" / "glcic-tiny.safetensors")[0].state_dict()
                              for who in ("one", "two"))
    # the weight average, with batch-norm statistics re-estimated over both processes' rows; the
    # weights as close as the networks' (0.2 % of changes of about 0.015)
    for key, expected in one_export.items():
        torch.testing.assert_close(two_export[key], expected, rtol=0, atol=3e-5, msg=key)


def _initial_tensors(pictures: Path, out: Path, arch: str) -> dict[str, torch.Tensor]:
    trainer = start_training(_settings(pictures, out, arch), device="cpu", precision="fp32")
    networks = {"generator": trainer.generator, "discriminator": trainer.discriminator}
    return {f"{name}.{key}": value for name, network in networks.items() if network is not None
            for key, value in network.state_dict().items()}


def test_each_rank_draws_its_rows_of_the_global_batch(pictures, tmp_path):
    cache = ImageCache.build(find_training_images([pictures]), 32, tmp_path / "cache")
    whole = BatchSampler(cache, 24, 6, [("box", 1.0), ("irregular", 1.0)], seed=3)
    crops, holes = whole.draw(5, 1)
    for rank in range(3):
        rows = Ranks(rank, 3).share(6)
        share = BatchSampler(cache, 24, 6, [("box", 1.0), ("irregular", 1.0)], seed=3, rows=rows)
        own_crops, own_holes = share.draw(5, 1)
        assert np.array_equal(own_crops, crops[2 * rank : 2 * rank + 2])
        assert np.array_equal(own_holes, holes[2 * rank : 2 * rank + 2])
    assert holes.any(axis=(1, 2)).all()


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    with pytest.raises(InpaintError, match=r"^--batch 6 does not split evenly over 4 processes: pass a multiple of 4$"):
        Ranks(1, 4).share(6)

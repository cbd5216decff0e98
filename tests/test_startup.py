"""Start-up: `--help`, the classical fills and a cached `inpaint models` never import torch
(seconds of start-up on a small machine); the cache of `inpaint models` is keyed by the code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli import catalog
from inpaint_cli.cli import app
from inpaint_cli.io import read_image

#: a child process: runs each argument list through the CLI in-process, then prints the torch
#: modules it imported
CHILD = """
import json, sys
from typer.testing import CliRunner
from inpaint_cli.cli import app
runner = CliRunner()
outputs = []
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    if result.exit_code != 0:
        sys.exit(f"{args}: exit {result.exit_code}: {result.output}")
    outputs.append(result.stdout)
print(json.dumps({"torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"), "outputs": outputs}))
"""


def _run_in_child(argument_lists: list[list[str]], home: Path) -> dict:
    env = {**os.environ, "INPAINT_HOME": str(home), "COLUMNS": "80"}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argument_lists)], capture_output=True,
                           text=True, env=env, timeout=120)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_help_and_classical_fills_import_no_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (9, 9), 3)
    hole = np.zeros((48, 64), bool)
    hole[12:30, 20:44] = True
    cv2.imwrite(str(tmp_path / "photo.png"), image[..., ::-1])
    cv2.imwrite(str(tmp_path / "mask.png"), hole.astype(np.uint8) * 255)
    commands = [command.name or command.callback.__name__ for command in app.registered_commands]
    assert {"fill", "eval", "models", "train"} <= set(commands)
    fills = [["fill", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "mask.png"), "--arch", arch,
              "-o", str(tmp_path / f"{arch}.png")] for arch in ("telea", "ns", "harmonic")]
    ran = _run_in_child([["--help"], *([command, "--help"] for command in commands), *fills], tmp_path / "home")
    assert ran["torch"] == []
    # the fills are the methods' own: Telea is cv2.inpaint (radius 3) of the image with its hole
    shown = np.where(hole[..., None], np.uint8(0), image)
    telea = cv2.inpaint(np.ascontiguousarray(shown[..., ::-1]), hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)[..., ::-1]
    assert np.array_equal(read_image(tmp_path / "telea.png").rgb8, telea)
    for arch in ("ns", "harmonic"):
        filled = read_image(tmp_path / f"{arch}.png").rgb8
        assert np.array_equal(filled[~hole], image[~hole]) and not np.array_equal(filled[hole], telea[hole])


def test_inpaint_models_reads_its_cache_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    cached = [{"arch": "glcic", "config": "only-in-the-cache", "default": True, "generator_params": 12_345,
               "discriminator_params": 678, "input": "-", "paper": "-"}]
    catalog.cache_path().parent.mkdir(parents=True)
    catalog.cache_path().write_text(json.dumps(cached))
    ran = _run_in_child([["models", "--json"]], tmp_path / "home")
    assert ran["torch"] == []
    assert json.loads(ran["outputs"][0])["architectures"] == cached


def test_the_cache_is_written_once_per_version_of_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path))
    stale = tmp_path / "cache" / f"{catalog.CACHE_PREFIX}0.0.1-0123456789abcdef.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("[]")
    counted = [{"arch": "telea", "config": "-", "generator_params": 0}]
    calls = []
    monkeypatch.setattr(catalog, "count_architectures", lambda: calls.append(1) or counted)
    assert catalog.architecture_rows() == counted and catalog.architecture_rows() == counted
    assert calls == [1]  # counted once, then read back
    assert not stale.exists() and json.loads(catalog.cache_path().read_text()) == counted
    monkeypatch.setattr(catalog, "_sources_digest", lambda: "fedcba9876543210")  # the code changed
    assert catalog.architecture_rows() == counted and calls == [1, 1]

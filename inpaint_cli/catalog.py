"""What `inpaint models` lists: every registered architecture and config with its parameter
counts, the bundled weights with their model-card lines, and the installed weights.

Counting parameters builds every network (on the meta device) and so imports torch and every
architecture, seconds of start-up; the architecture rows are therefore cached in
$INPAINT_HOME/cache, keyed by the package's version and a hash of its source files, so a second
`inpaint models` reads them back without torch and any change to the code recounts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.padding import Padding
from rich.table import Table

from inpaint_cli import __version__
from inpaint_cli.weights import (default_model, inpaint_home, installed_dir, installed_files, read_manifest, read_metadata,
                                 weights_dir)

PACKAGE_DIR = Path(__file__).resolve().parent
CACHE_PREFIX = "architectures-"


@dataclass(frozen=True)
class Catalog:
    architectures: list[dict]  # one row per (architecture, config): counts, input, paper
    bundled: list[dict]  # one row per bundled release
    default: str | None  # the default model: an installed file's name, else the manifest's default
    weights_dir: Path | None  # where the bundled releases are
    installed: list[dict] = field(default_factory=list)  # one row per installed release
    installed_dir: Path | None = None

    def document(self) -> dict:
        """`inpaint models --json`."""
        return {"architectures": self.architectures, "bundled": self.bundled, "installed": self.installed,
                "default": self.default}


def count_architectures() -> list[dict]:
    """One row per (architecture, config) in registry order, the learned configs named and the
    default one marked, with the parameters of the generator and of the critics training builds
    (built on the meta device: no memory, no initialisation)."""
    import torch

    from inpaint_cli.archs.base import count_parameters
    from inpaint_cli.registry import critics_for, get_arch, list_archs

    rows = []
    for name in list_archs():
        spec = get_arch(name)
        for config_name, config in spec.configs.items():
            with torch.device("meta"):
                generator, critics = spec.build_generator(config), critics_for(spec, config)
            rows.append({"arch": name, "config": config_name if spec.learned else "-",
                         "default": config_name == spec.default_config and spec.learned,
                         "generator_params": count_parameters(generator),
                         "discriminator_params": count_parameters(critics),
                         "input": spec.input_note, "paper": spec.title})
    return rows


def _sources_digest() -> str:
    """sha256 of every source file of the package, with its path: any edit changes it."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_path() -> Path:
    """Where this version of the code keeps its architecture rows."""
    return inpaint_home() / "cache" / f"{CACHE_PREFIX}{__version__}-{_sources_digest()}.json"


def architecture_rows() -> list[dict]:
    """`count_architectures()`, read from the cache when this version of the code already counted
    them (other versions' caches are removed); a missing, unreadable or unwritable cache only costs
    the count."""
    path = cache_path()
    folder = path.parent
    try:
        rows = json.loads(path.read_text())
        if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
            return rows
    except (OSError, ValueError):
        pass
    rows = count_architectures()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{CACHE_PREFIX}*.json"):
            stale.unlink(missing_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(rows))
        temporary.replace(path)
    except OSError:
        pass
    return rows


def catalog() -> Catalog:
    """The architectures in registry order (learned configs named, the default one marked), the
    bundled releases as the manifest lists them and the installed releases."""
    manifest = read_manifest()
    directory = weights_dir()
    default = Path(default_model()).name
    bundled = []
    for arch, file in manifest.get("models", {}).items():
        metadata = read_metadata(directory / file)
        bundled.append({"arch": arch, "file": file, "config": metadata["config"], "steps": metadata.get("step"),
                        "data": metadata.get("data", ""), "summary": manifest.get("summaries", {}).get(arch, ""),
                        "default": default == file})
    installed = [_installed_row(file, default) for file in installed_files()]
    return Catalog(architecture_rows(), bundled, default, directory, installed, installed_dir())


def _installed_row(file: Path, default: str) -> dict:
    """An installed release: where it came from (a converted official model) and its terms."""
    metadata = read_metadata(file)
    return {"arch": metadata["arch"], "file": file.name, "config": metadata["config"],
            "from": metadata.get("official_model") or metadata.get("data", ""),
            "license": metadata.get("license", ""), "default": file.name == default}


def render_catalog(listed: Catalog) -> list[Table | Padding | str]:
    """The tables and lines `inpaint models` prints: configs with counts (the default one starred),
    papers and inputs, the bundled weights and the default model."""
    rows = listed.architectures
    table = Table(title="Architectures and configs (parameters)")
    # the counts are never cut: a narrow terminal folds the names instead
    table.add_column("arch", overflow="fold")
    table.add_column("config", overflow="fold")
    counts = {"generator": "generator_params", "discriminator(s)": "discriminator_params"}
    for column, key in counts.items():
        table.add_column(column, justify="right", no_wrap=True, min_width=max((len(f"{row[key]:,}") for row in rows), default=1))
    for row in rows:
        config = f"{row['config']} *" if row["default"] else row["config"]
        table.add_row(row["arch"], config, *(f"{row[key]:,}" for key in counts.values()))
    papers = Table(title="Papers and inputs")
    for column in ("arch", "paper", "input"):
        papers.add_column(column, no_wrap=column == "arch")
    for name in dict.fromkeys(row["arch"] for row in rows):
        first = next(row for row in rows if row["arch"] == name)
        papers.add_row(name, first["paper"], first["input"])
    shown: list[Table | Padding | str] = [table, papers, "* the config that `--arch NAME` means (its bundled weights, when present)"]
    if listed.bundled:
        shown.append(f"Bundled weights ({listed.weights_dir}):")
        for item in listed.bundled:
            # the file name, what `--weights` takes, on a line of its own: never cut by a narrow terminal
            shown.append(f"  {item['file']}" + (" (the default model)" if item["default"] else ""))
            details = Table.grid(padding=(0, 2))
            details.add_column(no_wrap=True)
            details.add_column()
            details.add_row("arch", f"{item['arch']}, {item['steps']} steps")
            details.add_row("trained on", item["data"])
            details.add_row("model card", item["summary"])
            shown.append(Padding(details, (0, 0, 1, 4), expand=False))
    else:
        shown.append("No bundled weights: the default model is telea. Train one with `inpaint train --arch glcic`.")
    if listed.installed:
        installed = Table(title=f"Installed weights ({listed.installed_dir}; preferred over the bundled ones)")
        for column in ("arch", "file", "config", "from", "licence"):
            installed.add_column(column, no_wrap=column in ("arch", "file"))  # names users pass, whole
        for item in listed.installed:
            name = f"{item['file']} (default)" if item["default"] else item["file"]
            installed.add_row(item["arch"], name, item["config"], item["from"], item["license"])
        shown.append(installed)
    return [*shown, f"Default model for `inpaint fill`: {listed.default or 'telea'}"]

"""Where the weights `--arch NAME` loads are kept (docs/design.md "Checkpoints", "Names").

- The bundled folder holds one release per learned architecture and `manifest.json`:
  `{"default": arch or file, "models": {arch: file}, "summaries": {arch: line}}`, written by
  `inpaint release` and read by `fill`, `eval` and `models`.
- The installed folder, `$INPAINT_HOME/weights` (default: the user's cache folder), holds releases
  a user added (`install`, `inpaint convert --install`) and a manifest of its own: the file
  installed last for each architecture and, after `--install --default`, the default model.
  An installed file for an architecture is preferred over the bundled one, and an installed
  default over the bundled default.
"""

from __future__ import annotations

import filecmp
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

from safetensors import SafetensorError, safe_open

from inpaint_cli.errors import InpaintError

MANIFEST = "manifest.json"
FORMAT = "inpaint-cli/1"  # the `format` metadata of every release file


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors metadata of `path`, checked to be an inpaint-cli release file (the header
    alone: no tensor is read, torch is not imported)."""
    if not path.exists():
        raise InpaintError(f"weights file not found: {path}")
    if path.is_dir():
        raise InpaintError(f"weights path is a folder, not a file: {path}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise InpaintError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise InpaintError(f"{path}: not an inpaint-cli weights file (no format {FORMAT!r} in its metadata)")
    for key in ("arch", "config", "config_json"):
        if key not in metadata:
            raise InpaintError(f"{path}: metadata lacks {key!r}")
    return metadata


def weights_dir() -> Path | None:
    """Where the bundled weights are: $INPAINT_WEIGHTS, the repository's weights/ beside the
    package (source and editable installs), or <prefix>/share/inpaint-cli/weights (wheels)."""
    candidates = [
        os.environ.get("INPAINT_WEIGHTS"),
        Path(__file__).resolve().parent.parent / "weights",
        Path(sys.prefix) / "share" / "inpaint-cli" / "weights",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / MANIFEST).is_file():
            return Path(candidate)
    return None


def read_manifest(directory: Path | None = None) -> dict:
    """The manifest of `directory` (default: the bundled folder); where there is none, no models
    and telea as the default."""
    directory = weights_dir() if directory is None else directory
    if directory is None or not (directory / MANIFEST).is_file():
        return {"default": "telea", "models": {}}
    return json.loads((directory / MANIFEST).read_text())


def write_manifest(directory: Path, manifest: dict) -> None:
    """Replace `directory`'s manifest atomically (a temporary file renamed into place)."""
    path = directory / MANIFEST
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    temporary.replace(path)


def default_model() -> str:
    """What `fill` uses when given neither --arch nor --weights: the installed default file
    (`install(default=True)`) where there is one, else the bundled manifest's default, an
    architecture name or the path of a bundled file."""
    installed = installed_default()
    if installed is not None:
        return str(installed)
    default = read_manifest().get("default", "telea")
    return str(weights_dir() / default) if default.endswith(".safetensors") else default


def bundled_weights(arch: str) -> Path | None:
    """The bundled release of `arch`, None when the manifest names none."""
    directory = weights_dir()
    file = read_manifest().get("models", {}).get(arch)
    return directory / file if directory is not None and file else None


def inpaint_home() -> Path:
    """$INPAINT_HOME, by default `inpaint` in the user's cache folder: installed weights and caches."""
    home = os.environ.get("INPAINT_HOME")
    return Path(home) if home else _user_cache_dir() / "inpaint"


def installed_dir() -> Path:
    """$INPAINT_HOME/weights."""
    return inpaint_home() / "weights"


def installed_files() -> list[Path]:
    """The releases in the installed folder, sorted by name (none when it does not exist)."""
    folder = installed_dir()
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


def installed_default() -> Path | None:
    """The installed file `install(default=True)` made the default model, None when there is none."""
    folder = installed_dir()
    name = read_manifest(folder).get("default", "") if folder.is_dir() else ""
    return folder / name if name.endswith(".safetensors") and (folder / name).is_file() else None


def weights_for(arch: str) -> Path | None:
    """The release `--arch arch` loads: the installed file last installed for `arch`, else the
    first installed file whose metadata names `arch`, else the bundled one; None when there is none."""
    files = installed_files()
    if files:
        recorded = read_manifest(installed_dir()).get("models", {}).get(arch)
        if recorded and installed_dir() / recorded in files:
            return installed_dir() / recorded
        for file in files:
            if read_metadata(file).get("arch") == arch:
                return file
    return bundled_weights(arch)


def check_install(name: str, overwrite: bool = False) -> None:
    """Raise InpaintError if installing a file called `name` would replace one (before the work
    of making it; `install` itself lets an identical file through)."""
    if (installed_dir() / name).exists() and not overwrite:
        raise InpaintError(f"{installed_dir() / name} is already installed; pass --overwrite to replace it")


def install(path: Path, *, default: bool = False, overwrite: bool = False) -> Path:
    """Copy the release file `path` into the installed folder under its own name (temporary file,
    then rename) and record it as its architecture's installed weights and, with `default`, as
    the model `fill` uses with neither --arch nor --weights. A different file of the same name is
    replaced only with `overwrite`. Returns the installed path."""
    from inpaint_cli.checkpoint import read_metadata

    arch = read_metadata(path)["arch"]
    folder = installed_dir()
    target = folder / path.name
    if target.exists() and not overwrite and not filecmp.cmp(path, target, shallow=False):
        raise InpaintError(f"a different {target} is already installed; pass --overwrite to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(path)):
            temporary = folder / f".{target.name}.{secrets.token_hex(8)}.tmp"  # created as the umask says
            try:
                shutil.copyfile(path, temporary)
                os.replace(temporary, target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else {"default": "", "models": {}}
        if default:
            manifest["default"] = target.name
        manifest.setdefault("models", {})[arch] = target.name
        write_manifest(folder, manifest)
    except OSError as error:
        raise InpaintError(f"cannot install into {folder}: {error.strerror or error}") from None
    return target


def _user_cache_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")

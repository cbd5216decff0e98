"""Architecture names -> `ArchSpec`, discovered from the modules of `inpaint_cli.archs`.

Each architecture module exposes `SPECS`, a tuple of `ArchSpec`; a new file under `archs/` is
registered (and tested by the registry-wide tests) the moment it exists, as in timm, once its
names are listed in `ORDER`. `ORDER` is the registry's list of names, readable without importing
torch (this module imports the architectures only when a spec is asked for), so the command line
checks `--arch` before loading any model; discovery refuses a spec missing from it, and a name
without a spec.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

from inpaint_cli.errors import InpaintError

if TYPE_CHECKING:
    from inpaint_cli.archs.base import ArchSpec

#: every architecture's name, in display order: the learned ones by date, then the classical baselines
ORDER = ("context-encoder", "glcic", "deepfill-v1", "deepfill-v2", "pconv", "aot-gan", "lama", "telea", "ns", "harmonic")


@cache
def _specs() -> dict[str, ArchSpec]:
    import inpaint_cli.archs as package

    specs: dict[str, ArchSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"architecture {spec.name!r} registered twice")
            specs[spec.name] = spec
    if set(specs) != set(ORDER):
        raise RuntimeError(f"registry.ORDER must list exactly the registered architectures: {', '.join(specs)}")
    return {name: specs[name] for name in ORDER}


def list_archs(learned: bool | None = None) -> list[str]:
    """Registered names in display order; `learned` filters."""
    return [
        name
        for name, spec in _specs().items()
        if learned is None or spec.learned == learned
    ]


def get_arch(name: str) -> ArchSpec:
    specs = _specs()
    if name not in specs:
        raise InpaintError(f"unknown architecture {name!r}; known: {', '.join(specs)}")
    return specs[name]


def get_config(spec: ArchSpec, config_name: str | None):
    try:
        return spec.config(config_name)
    except KeyError as error:
        raise InpaintError(str(error.args[0])) from None

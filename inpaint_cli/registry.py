"""Architecture names -> `ArchSpec`, discovered from the modules of `inpaint_cli.archs`.

Each architecture module exposes `SPECS`, a tuple of `ArchSpec`; a new file under `archs/` is
registered (and tested by the registry-wide tests) the moment it exists, as in timm. Modules whose
name starts with an underscore (`archs/_deepfill.py`: code two architectures share) and `base` are
not architectures. Specs are listed by their `order`.

`NAMES` holds every architecture's name, readable without importing torch (this module imports the
architectures only when a spec is asked for), so the command line checks `--arch` before loading
any model; discovery refuses a spec missing from it, and a name without a spec.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any

from inpaint_cli.errors import InpaintError

if TYPE_CHECKING:
    from torch import nn

    from inpaint_cli.archs.base import ArchSpec, TrainOptions
    from inpaint_cli.masks import MaskGenerator

#: every registered architecture's name (their display order is each spec's `order`)
NAMES = frozenset({
    "context-encoder", "glcic", "deepfill-v1", "deepfill-v2", "pconv", "aot-gan", "lama", "co-mod-gan", "mat",
    "telea", "ns", "harmonic", "patchmatch",
})


@cache
def _specs() -> dict[str, ArchSpec]:
    import inpaint_cli.archs as package

    specs: dict[str, ArchSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name == "base" or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"architecture {spec.name!r} registered twice")
            specs[spec.name] = spec
    if set(specs) != NAMES:
        raise RuntimeError(f"registry.NAMES must list exactly the registered architectures: {', '.join(specs)}")
    return dict(sorted(specs.items(), key=lambda item: (item[1].order, item[0])))


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


def critics_for(spec: ArchSpec, config: Any, options: TrainOptions | None = None) -> nn.Module | None:
    """The critic(s) the training recipe builds for `config` (None: it trains without one).

    `options` defaults to what `inpaint train` uses without flags (`DEFAULT_TRAIN_OPTIONS`, at the
    config's own window for a fixed-input network), so `inpaint models` reports what training builds.
    """
    from inpaint_cli.archs.base import DEFAULT_TRAIN_OPTIONS

    if spec.recipe is None:
        return None
    if options is None:
        size = spec.recipe.required_size(config) or DEFAULT_TRAIN_OPTIONS.size
        options = dataclasses.replace(DEFAULT_TRAIN_OPTIONS, size=size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a missing perceptual backbone: not a critic
        return spec.recipe(config, options).build_discriminator()


@cache
def training_mask_kinds() -> dict[str, MaskGenerator]:
    """Every architecture's training-hole kinds (`ArchSpec.training_masks`), in display order."""
    kinds: dict[str, MaskGenerator] = {}
    for spec in _specs().values():
        for kind, generator in spec.training_masks.items():
            if kind in kinds:
                raise RuntimeError(f"training mask kind {kind!r} registered twice")
            kinds[kind] = generator
    return kinds

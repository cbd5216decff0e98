"""Architecture names -> `ArchSpec`, discovered from the modules of `inpaint_cli.archs`.

Each architecture module exposes `SPECS`, a tuple of `ArchSpec`; a new file under `archs/` is
registered (and tested by the registry-wide tests) the moment it exists, as in timm. Modules whose
name starts with an underscore (`archs/_deepfill.py`: code two architectures share) and `base` are
not architectures. Specs are listed by their `order`.

This module imports no torch, and neither does looking up a name whose module is named after it
(`telea` -> `archs/telea.py`, `deepfill-v1` -> `archs/deepfill_v1.py`): `get_arch` imports that
module alone, so `inpaint fill --arch telea` never loads torch. Listing every architecture imports
them all. `NAMES` holds every architecture's name without importing anything, so the command
line checks `--arch` before loading any model; discovery refuses a spec missing from it, and a
name without a spec.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from inpaint_cli.errors import InpaintError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from inpaint_cli.archs.base import InpaintModel, TrainingRecipe, TrainOptions
    from inpaint_cli.masks import MaskGenerator

ARCHS_PACKAGE = "inpaint_cli.archs"

#: every registered architecture's name (their display order is each spec's `order`)
NAMES = frozenset({
    "context-encoder", "glcic", "deepfill-v1", "deepfill-v2", "pconv", "aot-gan", "lama", "co-mod-gan", "mat",
    "telea", "ns", "harmonic", "patchmatch",
})

#: (config, uint8 H x W x 3 RGB whose hole pixels are 0, bool H x W hole) -> filled uint8 RGB
ArrayFill = Callable[[Any, "np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: its configs, builders and training recipe (timm-style)."""

    name: str  # the `--arch` name
    title: str  # paper, short: "Iizuka et al., SIGGRAPH 2017"
    input_note: str  # input constraints, one line, for `inpaint models`
    build_generator: Callable[[Any], InpaintModel]  # config -> generator (torch)
    order: int  # display position (`inpaint models`, `--arch` lists): learned by date, then classical
    configs: Mapping[str, Any] = field(default_factory=dict)  # name -> config dataclass
    default_config: str | None = None  # the best config: what `--arch NAME` means
    recipe: Callable[[Any, TrainOptions], TrainingRecipe] | None = None
    #: the paper's training holes, kind name -> generator (`TrainingRecipe.mask_kinds` names them)
    training_masks: Mapping[str, MaskGenerator] = field(default_factory=dict)
    learned: bool = True
    post_processing: str = "none"  # the paper's own post-processing: `--blend auto` unless a release records another
    #: methods that fill uint8 arrays themselves (telea, ns, harmonic): `fill.py` calls this on
    #: (config, rgb8, hole) without importing torch; `build_generator` wraps it (`array_generator`)
    fill_array: ArrayFill | None = None

    def config(self, name: str | None = None) -> Any:
        name = name or self.default_config
        if name not in self.configs:
            known = ", ".join(self.configs) or "none"
            raise KeyError(f"{self.name} has no config {name!r} (known: {known})")
        return self.configs[name]

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """Rebuild a config dataclass from its JSON form (lists back to tuples)."""
        config_class = type(self.config())
        hints = typing.get_type_hints(config_class)
        kwargs = {}
        for f in dataclasses.fields(config_class):
            if f.name not in values:
                continue
            value = values[f.name]
            if isinstance(value, list) and "tuple" in str(hints.get(f.name, "")):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[f.name] = value
        unknown = set(values) - {f.name for f in dataclasses.fields(config_class)}
        if unknown:
            raise ValueError(f"unknown config fields for {self.name}: {', '.join(sorted(unknown))}")
        return config_class(**kwargs)


def array_generator(fill_array: ArrayFill) -> Callable[[Any], InpaintModel]:
    """`build_generator` of a method on uint8 arrays: `fill_array` wrapped as an `InpaintModel`
    (`archs.base.ArrayInpainter`), torch imported only when it is built."""
    return partial(_array_inpainter, fill_array)


def array_method_spec(name: str, title: str, order: int, fill_array: ArrayFill, config: Any) -> ArchSpec:
    """The spec of a weight-free method on uint8 arrays (telea, ns, harmonic): one config, any
    size, filled without torch."""
    return ArchSpec(name=name, title=title, input_note="any H x W; uint8 RGB", build_generator=array_generator(fill_array),
                    order=order, configs={"default": config}, default_config="default", learned=False,
                    fill_array=fill_array)


def _array_inpainter(fill_array: ArrayFill, config: Any) -> InpaintModel:
    from inpaint_cli.archs.base import ArrayInpainter

    return ArrayInpainter(fill_array, config)


def _is_architecture_module(name: str) -> bool:
    return name != "base" and not name.startswith("_")


@cache
def _specs() -> dict[str, ArchSpec]:
    import inpaint_cli.archs as package

    specs: dict[str, ArchSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not _is_architecture_module(module_info.name):
            continue
        module = importlib.import_module(f"{ARCHS_PACKAGE}.{module_info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"architecture {spec.name!r} registered twice")
            specs[spec.name] = spec
    if set(specs) != NAMES:
        raise RuntimeError(f"registry.NAMES must list exactly the registered architectures: {', '.join(specs)}")
    return dict(sorted(specs.items(), key=lambda item: (item[1].order, item[0])))


def _spec_in_own_module(name: str) -> ArchSpec | None:
    """The spec `name` registers in the module named after it, importing only that module; None
    where there is no such module or it registers other names."""
    module_name = name.replace("-", "_")
    if not module_name.isidentifier() or not _is_architecture_module(module_name):
        return None
    if importlib.util.find_spec(f"{ARCHS_PACKAGE}.{module_name}") is None:
        return None
    module = importlib.import_module(f"{ARCHS_PACKAGE}.{module_name}")
    return next((spec for spec in getattr(module, "SPECS", ()) if spec.name == name), None)


def list_archs(learned: bool | None = None) -> list[str]:
    """Registered names in display order; `learned` filters."""
    return [
        name
        for name, spec in _specs().items()
        if learned is None or spec.learned == learned
    ]


def get_arch(name: str) -> ArchSpec:
    spec = _spec_in_own_module(name)
    if spec is not None:
        return spec
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
    if spec.recipe is None:
        return None
    from inpaint_cli.archs.base import DEFAULT_TRAIN_OPTIONS

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

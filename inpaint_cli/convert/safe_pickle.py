"""A restricted unpickler for the pickles inside PyTorch files (`torch.save` zips, TorchScript
archives) that `torch.load(weights_only=True)` refuses, such as LaMa's PyTorch-Lightning
checkpoints, whose pickle also holds OmegaConf and Lightning objects, and for StyleGAN2-ADA
network pickles (MAT's), plain pickles whose storages are inline `torch.save` bytes and whose
modules are `torch_utils.persistence` objects carrying their source code (never run here: such
an object becomes a `PersistentObject` holding only its state).

Nothing named in the file is ever imported or called. `find_class` answers from fixed tables:
tensor rebuilds become `TensorRecord`s (storages are read later, only for the tensors kept), plain
containers are rebuilt, and any other class or function becomes an `Inert` placeholder that only
records what it was given. Globals that can run code (`os.system`, `exec`, `eval`,
`subprocess.Popen`, `getattr`, ...) make the whole file refused with one line: they have no place
in a checkpoint, so a file naming them is hostile. Safety does not rest on that list, which only
turns an attack into a clear refusal; it rests on nothing from the file being imported.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from inpaint_cli.errors import InpaintError

#: top-level modules whose globals run code, open files or reach the interpreter: a pickle naming
#: one is refused (`posix`/`nt` are where `os.system` pickles to)
CODE_RUNNING_MODULES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "pty", "socket",
    "pickle", "_pickle", "marshal", "types", "code", "codeop", "ctypes", "multiprocessing",
    "webbrowser", "io", "_io", "operator", "_operator", "functools", "signal", "threading",
    "_thread", "asyncio", "urllib", "http", "tempfile", "inspect", "gc", "ast", "pdb", "timeit",
    "trace", "zipimport", "pkgutil", "site", "sysconfig", "platform", "commands", "popen2", "pip",
    "setuptools", "distutils", "dill", "cloudpickle", "joblib",
})
#: torch submodules that load files, compile or call into native code
CODE_RUNNING_TORCH = ("torch.hub", "torch.jit", "torch.ops", "torch._C", "torch.utils", "torch.package",
                      "torch.serialization", "torch.compiler", "torch._dynamo", "torch._inductor")
#: single functions that load files or compile (numpy.testing, which can run strings, is refused whole)
CODE_RUNNING_NAMES = frozenset({("torch", "load"), ("torch", "compile"), ("numpy", "load"),
                                ("numpy", "loads"), ("numpy", "fromfile")})
#: the first pickle of a pre-zip `torch.save` file
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
#: builtins that only build plain data; every other builtin (`eval`, `exec`, `getattr`,
#: `__import__`, `open`, `compile`, ...) is refused
DATA_BUILTINS: dict[str, Any] = {
    t.__name__: t
    for t in (bool, bytearray, bytes, complex, dict, float, frozenset, int, list, object, range, set, slice, str, tuple)
}

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}
TORCH_DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype for dtype in STORAGE_DTYPES.values()
}


def runs_code(module: str, name: str) -> bool:
    """Whether the global `module.name` (Python 3 names) can run code, open files or reach the interpreter."""
    root = module.split(".")[0]
    if root in CODE_RUNNING_MODULES or (module, name) in CODE_RUNNING_NAMES:
        return True
    if root == "builtins":
        return name not in DATA_BUILTINS and name != "type"
    if module == "numpy.testing" or module.startswith("numpy.testing."):
        return True
    if module == "torch.jit._pickle":  # TorchScript's list builders
        return False
    return any(module == prefix or module.startswith(prefix + ".") for prefix in CODE_RUNNING_TORCH)


class Inert:
    """What an unknown class or function of the file becomes. Calling it, building it or filling
    it only records the values given; it has no behaviour."""

    origin = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:
        instance = object.__new__(cls)
        instance.args, instance.state, instance.items = args, None, {}
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)

    def __repr__(self) -> str:
        return f"<inert {self.origin}>"


@cache
def inert_class(module: str, name: str) -> type[Inert]:
    """The placeholder class standing for `module.name` (one per name, so it works as a dict key)."""
    return type(name, (Inert,), {"origin": f"{module}.{name}", "__module__": __name__})


@dataclass(frozen=True)
class StorageRef:
    """A storage of the archive: `data/<key>`, `numel` elements of `dtype`."""

    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class TensorRecord:
    """A tensor as the pickle describes it; its bytes are read only if it is kept."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


class CorruptStorage(InpaintError):
    """A storage held inline in the pickle is broken."""


class PersistentObject(Inert):
    """A StyleGAN2-ADA persistent object (`torch_utils.persistence._reconstruct_persistent_obj(meta)`):
    its class name and state (a module's `__dict__`); the source code in `meta` is dropped unread."""

    origin = "torch_utils.persistence._reconstruct_persistent_obj"

    def __new__(cls, meta: Any = None) -> PersistentObject:
        instance = super().__new__(cls)
        instance.args = ()
        instance.class_name = str(meta.get("class_name")) if isinstance(meta, dict) else "?"
        instance.state = meta.get("state") if isinstance(meta, dict) else None
        return instance


def _rebuild_tensor(
    storage: Any, offset: int, size: Any, stride: Any, *rest: Any
) -> TensorRecord | torch.Tensor | Inert:
    """Stands for `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`;
    an inline storage (`_storage_from_bytes`) gives a view of it."""
    if isinstance(storage, torch.Tensor):
        try:
            return storage.as_strided(tuple(int(s) for s in size), tuple(int(s) for s in stride), int(offset))
        except RuntimeError:
            raise CorruptStorage("a tensor lies outside its storage (truncated or corrupt file)") from None
    if not isinstance(storage, StorageRef):
        return inert_class("torch._utils", "_rebuild_tensor_v2")(storage, offset, size, stride)
    return TensorRecord(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _storage_from_bytes(data: Any) -> torch.Tensor | Inert:
    """Stands for `torch.storage._load_from_bytes(b)`, how a plain pickle holds a storage: `b` is a
    pre-zip `torch.save` of it (magic, protocol, system information, the storage's reference, the
    storage keys, then its element count and bytes). Returns a flat tensor sharing `b`'s memory
    (read-only: copy what is kept)."""
    if not isinstance(data, bytes):
        return inert_class("torch.storage", "_load_from_bytes")(data)
    stream = io.BytesIO(data)
    try:
        magic, _protocol, info, reference, keys = (RestrictedUnpickler(stream).load() for _ in range(5))
        (numel,) = struct.unpack("<q", stream.read(8))
    except RefusedPickle:
        raise
    except Exception as error:  # any error of the unpickler or a short read: a broken storage
        raise CorruptStorage(f"corrupt inline storage ({type(error).__name__}: {error})") from None
    if (
        magic != LEGACY_MAGIC or not isinstance(reference, StorageRef)
        or not isinstance(keys, list) or [str(key) for key in keys] != [reference.key]
    ):
        raise CorruptStorage("corrupt inline storage (not a torch.save of one storage)")
    if isinstance(info, dict) and not info.get("little_endian", True):
        raise CorruptStorage("big-endian PyTorch files are not supported")
    size = numel * torch.empty((), dtype=reference.dtype).element_size()
    if numel != reference.numel or len(data) - stream.tell() < size:
        raise CorruptStorage(f"inline storage of {reference.numel} elements is truncated")
    if not numel:
        return torch.empty(0, dtype=reference.dtype)
    with warnings.catch_warnings():  # bytes are read-only; the views are copied before use
        warnings.simplefilter("ignore", UserWarning)
        return torch.frombuffer(data, dtype=reference.dtype, count=numel, offset=stream.tell())


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    """Stands for `torch._utils._rebuild_parameter[_with_state]`: a parameter is its tensor."""
    return data


def _rebuild_from_type(function: Any, new_type: Any, args: Any, state: Any) -> Any:
    """Stands for `torch._tensor._rebuild_from_type_v2`; `function` is itself one of these stand-ins."""
    return function(*args)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Stands for `copyreg._reconstructor`: only ever builds placeholders."""
    if isinstance(cls, type) and issubclass(cls, Inert):
        return cls(base, state)
    return inert_class("copyreg", "_reconstructor")(cls, base, state)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> Any:
    """Stands for `_codecs.encode`, how protocol-2 pickles write bytes (latin-1 text)."""
    if isinstance(text, str) and encoding in ("latin1", "latin-1"):
        return text.encode("latin-1")
    return inert_class("_codecs", "encode")(text, encoding)


def _type_of(*args: Any) -> Any:
    """Stands for `type`: `type(None)` is how pickle writes NoneType; no classes are created."""
    return type(args[0]) if len(args) == 1 else inert_class("builtins", "type")(*args)


def _plain_dict(*args: Any) -> dict:
    """Stands for `collections.defaultdict(factory)`: a plain dict (the factory is never called)."""
    return {}


def _as_list(values: Any, *rest: Any) -> list:
    """Stands for TorchScript's `torch.jit._pickle.build_*list` and `restore_type_tag`."""
    return values


SAFE_GLOBALS: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentObject,
    ("torch", "Size"): tuple,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): _plain_dict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "type"): _type_of,
    **{("torch.jit._pickle", name): _as_list for name in (
        "build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_list", "restore_type_tag")},
}


class RefusedPickle(InpaintError):
    """The pickle names a global that can run code."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"refused: its pickle calls {module}.{name}, which can run code; nothing was loaded")


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose globals come from the tables above and whose persistent ids are
    PyTorch storages (`('storage', type, key, location, numel)`)."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names, as protocol-2 pickles write them (`__builtin__.unicode` for str)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[module, name]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if runs_code(module, name):
            raise RefusedPickle(module, name)
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[module, name]
        if module == "builtins":
            return DATA_BUILTINS[name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if module == "torch" and name in TORCH_DTYPES:
            return TORCH_DTYPES[name]
        return inert_class(module, name)

    def persistent_load(self, pid: Any) -> StorageRef:
        if (
            isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
            and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)
        ):
            return StorageRef(str(pid[2]), pid[1].dtype, pid[4])
        raise InpaintError(f"unsupported reference in the pickle: {str(pid)[:80]}")


def load_pickle(data: bytes) -> Any:
    """Unpickle `data` with `RestrictedUnpickler`; a malformed pickle is an InpaintError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except InpaintError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RecursionError, MemoryError, OverflowError) as error:
        raise InpaintError(f"corrupt pickle ({type(error).__name__}: {error})") from None

"""A restricted unpickler for NVlabs network pickles: reads module state, never runs code.

NVlabs pickles carry their networks' source (``module_src``) and load tensors through
``torch.load(weights_only=False)``; here every global maps to a safe stand-in or is refused.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import pickletools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch._utils


class UnsafePickleError(Exception):
    """The pickle references something outside the allow-list, or is malformed."""


@dataclass
class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj`` would have rebuilt, as data.

    class_name: the NVlabs class (``Generator``, ``SynthesisLayer``, …).
    state:      the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, …).
    """

    class_name: str
    state: dict[str, Any] = field(default_factory=dict)


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict that tolerates a pickled ``__dict__``."""


def reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    # The original execs meta["module_src"]; we keep only the class name and the state.
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("a persistent object has an unexpected layout")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickleError("a persistent object has no class name or state")
    return PersistentObject(class_name, state)


def load_storage_from_bytes(data: Any) -> Any:
    """``torch.storage._load_from_bytes`` with ``weights_only=True`` instead of ``False``."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("a tensor storage is not stored as bytes")
    storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise UnsafePickleError("a tensor storage does not hold a storage")
    return storage


def rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, requires_grad: bool = False,
                   backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    # Hooks and metadata could only name callables; weights never need them.
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise UnsafePickleError("a tensor is not built on a storage")
    tensor = torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())
    stored = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)
    if tensor.numel() > stored:  # a stride-0 view: copying it would allocate far beyond the file
        raise UnsafePickleError(f"a tensor claims {tensor.numel()} values but its storage holds {stored}")
    return tensor


def rebuild_parameter(data: Any, requires_grad: bool = False, backward_hooks: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("a parameter does not hold a tensor")
    return data


def numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar`` for plain numeric dtypes only (object scalars are refused)."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("a numpy scalar is not a plain number")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


# Exactly the globals an NVlabs network snapshot references (fixtures README), nothing else.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): load_storage_from_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): numpy_scalar,
    ("numpy._core.multiarray", "scalar"): numpy_scalar,
}


def refusal(module: str, name: str) -> UnsafePickleError:
    """The error for a global outside the allow-list, with a hint for known foreign pickles."""
    message = f"it references the disallowed global {module}.{name}"
    if module.startswith("dnnlib.tflib"):
        message += " (a TensorFlow StyleGAN pickle: convert it with NVlabs' stylegan2-ada-pytorch legacy.py first)"
    return UnsafePickleError(message)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose only reachable globals are the stand-ins above."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise refusal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("it uses persistent ids, which network snapshots do not")


def python3_name(module: str, name: str) -> tuple[str, str]:
    """The name the Unpickler resolves a protocol-0..2 global to (``fix_imports``), e.g. commands → subprocess."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def prescan(data: bytes) -> None:
    """Walk the opcodes without executing any: catches truncation and text-form disallowed globals.

    Cheap and in-process, so obviously bad files are refused before a converter process starts.
    """
    try:
        last, protocol = None, 0
        for opcode, arg, _pos in pickletools.genops(data):
            last = opcode.name
            if opcode.name == "PROTO":
                protocol = int(arg)
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if protocol < 3:
                    module, name = python3_name(module, name)
                if (module, name) not in ALLOWED_GLOBALS:
                    raise refusal(module, name)
    except UnsafePickleError:
        raise
    except Exception as exc:  # genops raises ValueError and friends on malformed streams
        raise UnsafePickleError(f"it is truncated or not a valid pickle ({exc})") from None
    if last != "STOP":
        raise UnsafePickleError("it is truncated (no STOP opcode)")


def restricted_load(path: str | Path) -> Any:
    """Unpickle ``path`` through the allow-list; every failure becomes UnsafePickleError."""
    data = Path(path).read_bytes()
    prescan(data)
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise UnsafePickleError(f"it could not be unpickled ({type(exc).__name__}: {exc})") from None

"""NVlabs stylegan2-ada-pytorch models: network-snapshot pickles and bare G_ema state dicts.

Pickles are unpickled through an allow-list in a short-lived child process that converts them
once to safetensors (cached by the file's sha256), so no pickle is ever opened in the app process.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.networks import GeneratorConfig
from clothinggan.paths import atomic_path

CONVERTER_VERSION = 1  # bump when conversion output changes, so stale cache entries are ignored
CONVERT_TIMEOUT_S = 60          # a 1024-px snapshot converts in a few seconds
CONVERT_MEMORY_BYTES = 4 * 2**30  # address space of the converter: a 2 GB pickle and its tensors
REFUSAL_PREFIX = "refused: "
MEMORY_ENV = "CLOTHINGGAN_CONVERT_MEMORY"
SECONDS_ENV = "CLOTHINGGAN_CONVERT_SECONDS"


# -- state dict → config ---------------------------------------------------------------------------
def strip_filters(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the constant FIR ``resample_filter`` buffers (we rebuild them) and cast to float32."""
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()
            if not k.endswith("resample_filter")}


def _numbered(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.fullmatch(k))})


def config_from_state(state: dict[str, torch.Tensor], init_kwargs: dict[str, Any] | None = None) -> GeneratorConfig:
    """Every shape from the tensors; only conv_clamp and the mapping lr multiplier from init_kwargs.

    Raises ValueError when the tensors do not form a generator or contradict init_kwargs.
    """
    kwargs = dict(init_kwargs or {})
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    architecture = synthesis_kwargs.get("architecture", "skip")
    if architecture != "skip":  # 'orig' and 'resnet' wire blocks differently from networks.py
        raise ValueError(f"its synthesis architecture is {architecture!r}; only 'skip' (the default) is supported")
    try:
        blocks = _numbered(state, r"synthesis\.b(\d+)\.torgb\.weight")
        fcs = _numbered(state, r"mapping\.fc(\d+)\.weight")
        if not blocks or not fcs:
            raise ValueError("no synthesis blocks or mapping layers found")
        resolution = blocks[-1]
        channels = {res: int(state[f"synthesis.b{res}.conv1.weight"].shape[0]) for res in blocks}
        embed = state.get("mapping.embed.weight")
        c_dim, embed_dim = (int(embed.shape[1]), int(embed.shape[0])) if embed is not None else (0, 0)
        fc0 = state["mapping.fc0.weight"]
        w_dim = int(state[f"mapping.fc{fcs[-1]}.weight"].shape[0])
        hidden = int(fc0.shape[0]) if len(fcs) > 1 else w_dim
        clamp = synthesis_kwargs.get("conv_clamp")
        config = GeneratorConfig(
            resolution=resolution, z_dim=int(fc0.shape[1]) - embed_dim, w_dim=w_dim, c_dim=c_dim,
            mapping_layers=len(fcs),
            # None means "w_dim", so equal models get equal configs (and fingerprints) from any source.
            mapping_features=None if hidden == w_dim else hidden,
            embed_features=None if embed_dim in (0, w_dim) else embed_dim,
            channels=channels, img_channels=int(state[f"synthesis.b{resolution}.torgb.weight"].shape[0]),
            mapping_lr_multiplier=float(mapping_kwargs.get("lr_multiplier", 0.01)),
            conv_clamp=None if clamp is None else float(clamp))
    except KeyError as exc:
        raise ValueError(f"tensor {exc.args[0]} is missing") from None
    except IndexError:  # a 0-d tensor where a matrix belongs
        raise ValueError("a weight tensor has too few dimensions") from None
    _check_against_kwargs(config, kwargs)
    return config


def _check_against_kwargs(config: GeneratorConfig, kwargs: dict[str, Any]) -> None:
    pairs = {"z_dim": config.z_dim, "w_dim": config.w_dim, "c_dim": config.c_dim,
             "img_resolution": config.resolution, "img_channels": config.img_channels}
    for name, derived in pairs.items():
        if name in kwargs and kwargs[name] is not None and kwargs[name] != derived:
            raise ValueError(f"its constructor arguments say {name}={kwargs[name]} but its tensors say {derived}")


def from_state_dict(path: Path, state: dict[str, Any], init_kwargs: dict[str, Any] | None,
                    source: str) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, state, meta) from a G_ema state dict with NVlabs names."""
    from clothinggan.formats.checks import check_tensor_views

    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(path, "holds a state dict with values that are not tensors")
    check_tensor_views(path, state)
    state = strip_filters(state)
    try:
        config = config_from_state(state, init_kwargs)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # init_kwargs are untrusted data
        raise CheckpointError(path, f"does not hold a StyleGAN2 generator ({exc})") from None
    meta = {"format": source, "w_avg_source": "mapping.w_avg"}
    return config, state, meta


def sibling_init_kwargs(path: Path) -> dict[str, Any] | None:
    """init_kwargs from a JSON beside a state dict (``X-state_dict.pt`` → ``X-init_kwargs.json``)."""
    candidates = [path.with_suffix(".json")]
    if "state_dict" in path.name:
        candidates.insert(0, path.with_name(path.name.replace("state_dict", "init_kwargs")).with_suffix(".json"))
    for candidate in candidates:
        if candidate.is_file() and candidate.stat().st_size < 1_000_000:
            try:
                data = json.loads(candidate.read_text())
            except (ValueError, OSError):
                continue
            if isinstance(data, dict):
                kwargs = data.get("init_kwargs", data)
                return kwargs if isinstance(kwargs, dict) else None
    return None


def read_nvlabs_state_dict(path: Path, state: dict[str, Any]) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """A ``torch.save(G_ema.state_dict())`` file, already loaded safely by the caller."""
    return from_state_dict(path, state, sibling_init_kwargs(path), "nvlabs-state-dict")


# -- pickle → tensors (runs in the converter process) ----------------------------------------------
MAX_NODES = 200_000  # objects walked in one snapshot: NVlabs' 1024-px G has a few thousand
MAX_DEPTH = 64       # module / kwargs nesting: NVlabs' is under 10


class _Walk:
    """A budget for walking unpickled data: shared sub-objects ("billion laughs") and deep nesting
    would otherwise cost exponential time or a RecursionError."""

    def __init__(self) -> None:
        self.nodes = 0

    def step(self, depth: int) -> None:
        from clothinggan.formats.safe_unpickle import UnsafePickleError

        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise UnsafePickleError(f"its objects nest deeper than {MAX_DEPTH} or number more than {MAX_NODES} "
                                    "(not a network snapshot)")


def module_tensors(obj: Any, prefix: str = "", walk: _Walk | None = None, depth: int = 0) -> dict[str, torch.Tensor]:
    """Walk a persistent object's ``_parameters``, persistent ``_buffers`` and ``_modules`` like
    ``state_dict()`` would, producing the same names."""
    from clothinggan.formats.safe_unpickle import PersistentObject, UnsafePickleError

    walk = walk or _Walk()
    walk.step(depth)
    if not isinstance(obj, PersistentObject):
        raise UnsafePickleError(f"{prefix or 'the generator'} is not a network module")
    state = obj.state
    skip = state.get("_non_persistent_buffers_set") or set()
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        params = state.get(group) or {}
        if not isinstance(params, dict):
            raise UnsafePickleError(f"{prefix}{group} is not a dict")
        for name, tensor in params.items():
            walk.step(depth + 1)
            if tensor is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise UnsafePickleError(f"{prefix}{name} is not a tensor")
            out[prefix + str(name)] = tensor
    children = state.get("_modules") or {}
    if not isinstance(children, dict):
        raise UnsafePickleError(f"{prefix}_modules is not a dict")
    for name, child in children.items():
        if child is not None:
            out.update(module_tensors(child, f"{prefix}{name}.", walk, depth + 1))
    return out


def _plain(value: Any, walk: _Walk | None = None, depth: int = 0) -> Any:
    """EasyDicts and numpy scalars → JSON-able plain values."""
    walk = walk or _Walk()
    walk.step(depth)
    if isinstance(value, dict):
        return {str(k): _plain(v, walk, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, walk, depth + 1) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)[:200]  # anything else (a tensor in the kwargs) is kept only as text


def convert_pickle(in_path: Path, out_path: Path) -> None:
    """Restricted-unpickle a network snapshot and write G_ema as our safetensors (child process)."""
    from clothinggan.formats.safetensors_format import save_state_safetensors
    from clothinggan.formats.safe_unpickle import PersistentObject, UnsafePickleError, restricted_load

    data = restricted_load(in_path)
    g_ema = data.get("G_ema") if isinstance(data, dict) else data
    if not isinstance(g_ema, PersistentObject) or g_ema.class_name != "Generator":
        raise UnsafePickleError("it holds no G_ema generator")
    init_kwargs = _plain(g_ema.state.get("_init_kwargs") or {})
    config, state, meta = from_state_dict(in_path, module_tensors(g_ema), init_kwargs, "nvlabs-pkl")
    meta["init_kwargs"] = init_kwargs
    save_state_safetensors(state, config, out_path, meta)


# -- the parent side -------------------------------------------------------------------------------
def converted_path(path: Path) -> Path:
    from clothinggan.paths import cache_dir, file_sha256

    return cache_dir("converted") / f"nvlabs-{file_sha256(path)}-v{CONVERTER_VERSION}.safetensors"


def run_converter(path: Path, out: Path) -> None:
    """Convert in a child process; its one-line refusal becomes a CheckpointError."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "clothinggan.formats.nvlabs", "convert", str(path), str(out)]
    env[MEMORY_ENV] = str(CONVERT_MEMORY_BYTES)
    env[SECONDS_ENV] = str(CONVERT_TIMEOUT_S)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise CheckpointError(path, f"took longer than {CONVERT_TIMEOUT_S} s to convert, far more than "
                                    "a network snapshot needs") from None
    if proc.returncode < 0 or "MemoryError" in proc.stderr[-2000:]:
        raise CheckpointError(path, f"was refused as an NVlabs pickle: converting it needed more than "
                                    f"{CONVERT_MEMORY_BYTES // 2**30} GB of memory or {CONVERT_TIMEOUT_S} s, "
                                    "far more than a network snapshot needs")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(REFUSAL_PREFIX)]
        reason = lines[-1][len(REFUSAL_PREFIX):] if lines else f"the converter failed: {proc.stderr.strip()[-300:]}"
        raise CheckpointError(path, f"was refused as an NVlabs pickle: {reason}")


def read_nvlabs_pickle(path: str | Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, NVlabs-named float32 state, meta) of a network snapshot's G_ema, via the cache."""
    from clothinggan.formats.safetensors_format import read_safetensors
    from clothinggan.formats.safe_unpickle import UnsafePickleError, prescan

    path = Path(path)
    try:
        prescan(path.read_bytes())  # cheap, no code runs: refuse obvious junk without a process
    except UnsafePickleError as exc:
        raise CheckpointError(path, f"was refused as an NVlabs pickle: {exc}") from None
    cached = converted_path(path)
    if not cached.is_file():
        with atomic_path(cached) as tmp:
            run_converter(path, tmp)
    config, state, meta = read_safetensors(cached)
    meta["converted_from"] = str(path)
    return config, state, meta


def limit_resources() -> None:
    """Cap the converter's own address space growth and CPU time (set by the parent in the env).

    Set here rather than in a ``preexec_fn``, which is unsafe in the app's threaded server; the
    limit counts from what the interpreter and torch already map, so only the pickle's growth counts.
    """
    import resource

    try:
        extra = int(os.environ.get(MEMORY_ENV, "0"))
        seconds = int(os.environ.get(SECONDS_ENV, "0"))
    except ValueError:
        return
    try:
        if extra > 0:
            with open("/proc/self/statm") as fh:
                mapped = int(fh.read().split()[0]) * resource.getpagesize()
            resource.setrlimit(resource.RLIMIT_AS, (mapped + extra, mapped + extra))
        if seconds > 0:
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    except (OSError, ValueError):  # no /proc (macOS) or a hard limit already lower: the timeout remains
        pass


def main(argv: list[str]) -> int:
    """``python -m clothinggan.formats.nvlabs convert IN OUT.safetensors``."""
    from clothinggan.formats.safe_unpickle import UnsafePickleError

    if len(argv) != 3 or argv[0] != "convert":
        print("usage: python -m clothinggan.formats.nvlabs convert IN.pkl OUT.safetensors", file=sys.stderr)
        return 2
    limit_resources()
    try:
        convert_pickle(Path(argv[1]), Path(argv[2]))
    except (UnsafePickleError, CheckpointError) as exc:
        print(REFUSAL_PREFIX + (exc.reason if isinstance(exc, CheckpointError) else str(exc)), file=sys.stderr)
        return 1
    except Exception as exc:  # anything else is still a refusal, stated in one line
        print(f"{REFUSAL_PREFIX}it could not be converted ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

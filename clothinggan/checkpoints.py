"""Reading and writing generator files: safetensors (our format), rosinality .pt, NVlabs .pkl.

Nothing here executes code from a file: safetensors holds only tensors and JSON, .pt files load
with ``weights_only=True``, and pickles go through a restricted unpickler. Every refusal is a
CheckpointError naming the file and the reason.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.networks import MAX_PARAMETERS, GeneratorConfig, StyleGAN2

FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 2 * 1024**3  # refuse anything larger than any StyleGAN2 generator needs
# torch.save before torch 1.6 (and with _use_new_zipfile_serialization=False) starts with this
# pickled magic number; older rosinality/GANSpace checkpoints are in that form.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def detect_format(path: Path) -> str:
    """Guess the file format from its first bytes: 'safetensors', 'torch-zip', 'torch-legacy', 'pickle' or raise."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(head) < 8:
        raise CheckpointError(path, "is empty or truncated")
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if head.startswith(TORCH_LEGACY_MAGIC):
        return "torch-legacy"
    if head[0] == 0x80 and head[1] in range(2, 6):
        return "pickle"
    header_len = int.from_bytes(head[:8], "little")
    if len(head) > 8 and head[8:9] == b"{" and 0 < header_len < 100_000_000:
        return "safetensors"
    raise CheckpointError(path, "is not a known model format (expected .safetensors, a rosinality "
                                ".pt checkpoint or an NVlabs .pkl network pickle)")


def save_safetensors(net: StyleGAN2, path: str | Path, meta: dict[str, Any] | None = None,
                     half: bool = False) -> Path:
    """Write weights + config JSON (+ free-form meta JSON) as one safetensors file."""
    state = {}
    for k, v in net.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        state[k] = v.half() if half and v.is_floating_point() and not k.endswith("w_avg") else v
    return save_state_safetensors(state, net.config, path, meta)


def save_state_safetensors(state: dict[str, torch.Tensor], config: GeneratorConfig, path: str | Path,
                           meta: dict[str, Any] | None = None) -> Path:
    """Write an NVlabs-named state dict with its config; used by converters that build no network."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "clothinggan-generator", "format_version": str(FORMAT_VERSION),
                "config": config.to_json(), "meta": json.dumps(meta or {}, sort_keys=True)}
    save_file({k: v.detach().to("cpu").contiguous() for k, v in state.items()}, str(path), metadata=metadata)
    return path


def read_safetensors(path: Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read our own format back: config from metadata (checked against its bounds before any tensor
    is read), then the tensors as float32."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            if "config" not in metadata:
                raise CheckpointError(path, "is a safetensors file without a generator config "
                                            "(not a clothinggan model)")
            config, meta = _parse_metadata(path, metadata)
            check_shapes(path, config, {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()})
            state = {}
            for key in fh.keys():
                tensor = fh.get_tensor(key)
                state[key] = tensor.float() if tensor.is_floating_point() else tensor
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"is a corrupt safetensors file ({str(exc)[:200]})") from None
    except (MemoryError, RuntimeError) as exc:
        raise CheckpointError(path, f"could not be read: the server ran out of memory ({type(exc).__name__})") from None
    return config, state, meta


def _parse_metadata(path: Path, metadata: dict[str, str]) -> tuple[GeneratorConfig, dict[str, Any]]:
    try:
        config = GeneratorConfig.from_json(metadata["config"])
        text = metadata.get("meta", "{}")
        if len(text) > 1_000_000:
            raise ValueError("its free-form metadata is larger than 1 MB")
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise ValueError("its free-form metadata is not a JSON object")
    except RecursionError:
        raise CheckpointError(path, "has metadata nested too deeply to read") from None
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path, f"has an invalid generator config ({str(exc)[:300]})") from None
    return config, meta


def check_tensor_views(path: Path, state: dict[str, Any]) -> None:
    """Refuse tensors that claim more elements than their storage holds (stride-0 or overlapping
    views): copying one would allocate far more than the file, a few bytes asking for gigabytes."""
    total = 0
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        try:
            stored = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)
        except RuntimeError:
            raise CheckpointError(path, f"tensor {str(key)[:80]} has no readable storage") from None
        if tensor.numel() > stored:
            raise CheckpointError(path, f"tensor {str(key)[:80]} claims {tensor.numel()} values but its "
                                        f"file storage holds {stored}")
        total += tensor.numel()
    if total > 4 * MAX_PARAMETERS:
        raise CheckpointError(path, f"holds {total / 1e6:.0f}M values, more than a StyleGAN2 generator has "
                                    f"(at most {MAX_PARAMETERS // 10**6}M)")


def expected_shapes(config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """The state dict's shapes for ``config``, from a network on the meta device (nothing allocated)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in StyleGAN2(config).state_dict().items()}


def check_shapes(path: Path, config: GeneratorConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse tensor names or shapes that do not form the generator ``config`` describes."""
    own = expected_shapes(config)
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    if missing or unexpected:
        raise CheckpointError(path, "tensors do not form a generator of this configuration "
                                    f"(missing: {missing[:4]}, unexpected: {unexpected[:4]})")
    for key, shape in shapes.items():
        if tuple(shape) != own[key]:
            raise CheckpointError(path, f"tensor {key} has shape {tuple(shape)}, expected {own[key]}")


def check_state(path: Path, config: GeneratorConfig, state: dict[str, torch.Tensor]) -> None:
    """Refuse tensors that do not form the generator ``config`` describes, before anything is built."""
    if not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise CheckpointError(path, "holds entries that are not tensors")
    check_shapes(path, config, {k: tuple(t.shape) for k, t in state.items()})
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(path, f"tensor {key} holds {tensor.dtype} values, not floating point")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(path, f"tensor {key} holds NaN or infinite values")


def build_network(path: Path, config: GeneratorConfig, state: dict[str, torch.Tensor]) -> StyleGAN2:
    """Check ``state`` against the config, then instantiate the network and load it strictly."""
    check_state(path, config, state)
    try:
        net = StyleGAN2(config)
        net.load_state_dict(state, strict=True)
    except (MemoryError, RuntimeError) as exc:  # allocation failure: the server is short of memory
        raise CheckpointError(path, f"could not be built: the server ran out of memory "
                                    f"({type(exc).__name__})") from None
    return net.eval()


def read_checkpoint(path: str | Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read any supported file into (config, NVlabs-named state dict, meta)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "does not exist or is not a file")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(path, "is larger than 2 GB, more than any StyleGAN2 generator needs")
    fmt = detect_format(path)
    if fmt == "safetensors":
        config, state, meta = read_safetensors(path)
    elif fmt in ("torch-zip", "torch-legacy"):
        config, state, meta = read_torch_zip(path)
    else:
        from clothinggan.formats.nvlabs import read_nvlabs_pickle

        config, state, meta = read_nvlabs_pickle(path)
    meta.setdefault("format", fmt)
    meta["source"] = str(path)
    return config, state, meta


def read_torch_zip(path: Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """A torch zip file: rosinality checkpoint (``g_ema``) or an NVlabs G_ema state dict."""
    from clothinggan.formats.nvlabs import read_nvlabs_state_dict
    from clothinggan.formats.rosinality import load_torch_file, rosinality_from_object

    obj = load_torch_file(path)
    if isinstance(obj, dict) and "g_ema" in obj:
        return rosinality_from_object(path, obj)
    if isinstance(obj, dict) and any(str(k).startswith(("mapping.", "synthesis.")) for k in obj):
        return read_nvlabs_state_dict(path, obj)
    raise CheckpointError(path, "is a PyTorch file but neither a rosinality checkpoint (no g_ema) "
                                "nor an NVlabs generator state dict")


def load_network(path: str | Path) -> tuple[StyleGAN2, dict[str, Any]]:
    """Read a file of any supported format and build the network from it."""
    config, state, meta = read_checkpoint(path)
    return build_network(Path(path), config, state), meta

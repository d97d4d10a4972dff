"""Our own generator format: safetensors tensors plus the config and free-form meta as JSON metadata.

Reading checks the config against its bounds and the tensor names and shapes against the config
before a single tensor is read, so a tiny file cannot ask for gigabytes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.formats.checks import check_shapes
from clothinggan.networks import GeneratorConfig
from clothinggan.paths import atomic_path

FORMAT_VERSION = 1


def save_state_safetensors(state: dict[str, torch.Tensor], config: GeneratorConfig, path: str | Path,
                           meta: dict[str, Any] | None = None) -> Path:
    """Write an NVlabs-named state dict with its config; used by converters that build no network."""
    from safetensors.torch import save_file

    path = Path(path)
    metadata = {"format": "clothinggan-generator", "format_version": str(FORMAT_VERSION),
                "config": config.to_json(), "meta": json.dumps(meta or {}, sort_keys=True)}
    with atomic_path(path) as tmp:  # a model file is never seen half-written (the app may be reading it)
        save_file({k: v.detach().to("cpu").contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
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

"""Reading and writing generator files: the one dispatcher over safetensors (our format), rosinality
.pt and NVlabs .pkl (the readers live in ``formats/`` and never import this module).

Nothing here executes code from a file: safetensors holds only tensors and JSON, .pt files load
with ``weights_only=True``, and pickles go through a restricted unpickler. Every refusal is a
CheckpointError naming the file and the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.formats.checks import (MAX_CHECKPOINT_BYTES, check_shapes, check_state, check_tensor_views,
                                        expected_shapes)
from clothinggan.formats.safetensors_format import FORMAT_VERSION, read_safetensors, save_state_safetensors
from clothinggan.networks import GeneratorConfig, StyleGAN2

__all__ = ["detect_format", "save_safetensors", "save_state_safetensors", "read_safetensors", "read_checkpoint",
           "read_torch_zip", "build_network", "load_network", "check_shapes", "check_state", "check_tensor_views",
           "expected_shapes", "FORMAT_VERSION", "MAX_CHECKPOINT_BYTES"]
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

"""Checks every generator reader applies before building anything: sizes, tensor views, shapes, values.

Readers of foreign formats (``formats/``) and of our own safetensors call these; they import only
the networks and the errors, so no reader depends on the dispatcher in ``checkpoints.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.networks import MAX_PARAMETERS, GeneratorConfig, StyleGAN2

MAX_CHECKPOINT_BYTES = 2 * 1024**3  # refuse anything larger than any StyleGAN2 generator needs


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

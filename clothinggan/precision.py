"""Which compute precision pays on this machine, and the user's choice of it.

bf16 halves the time of a batched CPU render on CPUs with native bf16 (AVX-512 BF16 or AMX) and
stays within half a grey level of fp32 (mean |Δ| 0.5/255 on the embedded model); on CPUs without
it bf16 is emulated and slower than fp32, so ``auto`` picks fp32 there.
"""
from __future__ import annotations

import torch

from clothinggan.settings import PRECISIONS as CHOICES


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: always on CUDA; on a CPU only with AVX-512 BF16 or AMX.

    Measured on 2-core machines: with AVX-512 BF16 a cpu64 training step takes 0.55-0.6x the fp32
    time and a 16-image grid 0.5x; on AVX2-only CPUs bf16 is emulated and slower than fp32.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def resolve(choice: str, device: torch.device) -> torch.dtype:
    """``auto`` → bf16 where it is native, else fp32; ``fp32``/``bf16`` as asked (unknown words: ValueError)."""
    choice = (choice or "auto").strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"unknown precision {choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "auto":
        return torch.bfloat16 if bf16_is_native(device) else torch.float32
    return torch.bfloat16 if choice == "bf16" else torch.float32


def label(dtype: torch.dtype) -> str:
    """The short name people use: fp32, bf16, fp16."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))

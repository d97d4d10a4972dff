"""Which compute precision pays on this machine, and the user's choice of it.

bf16 halves the time of a batched CPU render on CPUs with native bf16 (AVX-512 BF16 or AMX) and
stays within half a grey level of fp32 (mean |Δ| 0.5/255 on the embedded model); on CPUs without
it bf16 is emulated and slower than fp32, so ``auto`` picks fp32 there. Deep models can drift
further (a random-weight 512-px generator: 2.2/255), so ``auto`` also checks each loaded model
(``choose_for``) and keeps fp32 for one whose bf16 renders differ visibly.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from clothinggan.paths import cache_dir, write_atomic
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
    return bool(cpu_bf16_features())


def cpu_bf16_features() -> list[str]:
    """The CPU's native bf16 features as torch reports them: AVX-512 BF16 and AMX tiles."""
    checks = {"avx512_bf16": "_is_avx512_bf16_supported", "amx": "_is_amx_tile_supported"}
    return [name for name, check in checks.items() if getattr(torch.cpu, check, lambda: False)()]


def _normalise(choice: str | None) -> str:
    return (choice or "auto").strip().lower()


def resolve(choice: str, device: torch.device) -> torch.dtype:
    """``auto`` → bf16 where it is native, else fp32; ``fp32``/``bf16`` as asked (unknown words: ValueError)."""
    choice = _normalise(choice)
    if choice not in CHOICES:
        raise ValueError(f"unknown precision {choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "auto":
        return torch.bfloat16 if bf16_is_native(device) else torch.float32
    return torch.bfloat16 if choice == "bf16" else torch.float32


BF16_LIMIT = 1.0  # grey levels (of 255): the mean |bf16 - fp32| that a render may differ by under ``auto``


def bf16_error(G: Any, n: int | None = None, seed: int = 0) -> float:
    """Mean |bf16 - fp32| of G's renders, in grey levels of 255, on ``n`` fixed ψ 0.7 designs.

    n defaults to 4 designs up to 128 px and 1 above (one 512-px render pair costs about a second).
    G's own dtype is left as it was.
    """
    n = n if n is not None else (4 if G.resolution <= 128 else 1)
    ws = G.seeds_to_ws(list(range(seed, seed + n)), psi=0.7)
    kept = G.dtype
    try:
        G.dtype = torch.float32
        reference = G.synthesis(ws).float()
        G.dtype = torch.bfloat16
        fast = G.synthesis(ws).float()
    finally:
        G.dtype = kept
    return float((fast - reference).abs().mean() / 2 * 255)


def _check_file(G: Any) -> Path:
    """Where this model's bf16 check is kept: per model, device kind, CPU features and torch release,
    the things its result depends on."""
    key = f"{G.fingerprint}|{G.device.type}|{'-'.join(cpu_bf16_features())}|{torch.__version__}"
    return cache_dir("precision") / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def measured_bf16_error(G: Any) -> float:
    """:func:`bf16_error`, measured once per model and machine kind and kept in the cache: a server
    restart (or every cold start after the first) skips the eight renders, 0.1-0.3 s of its start."""
    path = _check_file(G)
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["bf16_error"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: measure again
    error = bf16_error(G)
    try:
        write_atomic(path, json.dumps({"bf16_error": error, "fingerprint": G.fingerprint}))
    except OSError:
        pass  # a read-only cache only costs the next start the measurement
    return error


def choose_for(G: Any, choice: str) -> torch.dtype:
    """The dtype G should render in: as :func:`resolve`, and under ``auto`` bf16 only where this
    model's renders stay within ``BF16_LIMIT`` of fp32 (measured once, recorded in ``G.meta``)."""
    dtype = resolve(choice, G.device)
    if _normalise(choice) != "auto" or dtype != torch.bfloat16:
        return dtype
    error = measured_bf16_error(G)
    G.meta["bf16_error"] = round(error, 3)
    return dtype if error <= BF16_LIMIT else torch.float32


def apply(G: Any, choice: str) -> Any:
    """Set G to render in :func:`choose_for`'s dtype and return it (for a freshly loaded, unshared G:
    the check briefly switches G's dtype)."""
    G.dtype = choose_for(G, choice)
    return G


def label(dtype: torch.dtype) -> str:
    """The short name people use: fp32, bf16, fp16."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))

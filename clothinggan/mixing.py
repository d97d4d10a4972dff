"""Style mixing on W+ codes: layer groups, per-group blending of two designs, crossover and mixing grids.

ClothingGAN's "structure"/"style" sliders are ``mix`` with the default groups; the grid shows every
row's structure under every column's style. Everything here is numpy on ws; only the grid renders.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.designs import Design

# The ws that feed layers up to 16×16 px decide the garment's silhouette; in NVlabs' order these are
# ws 0–4 (b4.conv1, b8.conv0, b8.conv1, b16.conv0, b16.conv1), whatever the final resolution.
STRUCTURE_WS = 5
# The same idea in three bands (StyleGAN paper): coarse ≤ 8 px (ws 0–2), middle 16–32 px (ws 3–6),
# fine ≥ 64 px and the last ws (7 on).
COARSE_END, MIDDLE_END = 3, 7
# Below this many ws (models under 64 px) the resolution rule leaves too little on one side, so the
# boundaries scale with num_ws from the 16-ws (512 px) layout instead.
MIN_WS_FOR_RESOLUTION_RULE = 10
REFERENCE_NUM_WS = 16

Groups = Mapping[str, range]


def _proportional(num_ws: int, boundaries: Sequence[int]) -> list[int]:
    """Scale 16-ws boundaries to num_ws, keeping every group at least one ws wide."""
    out: list[int] = []
    for i, b in enumerate(boundaries):
        lo = (out[-1] if out else 0) + 1
        hi = num_ws - (len(boundaries) - i)
        out.append(min(max(int(b * num_ws / REFERENCE_NUM_WS + 0.5), lo), hi))  # half up, not to even
    return out


def layer_groups(num_ws: int) -> dict[str, range]:
    """The "structure" and "style" ws ranges of a model with ``num_ws`` ws.

    Rule: structure = the ws feeding layers up to 16×16 px, i.e. ws 0–4 whenever num_ws ≥ 10
    (64 px and up; 16 ws → structure range(0, 5), style range(5, 16), as ClothingGAN did). Smaller
    models scale 5/16 of their ws to structure, with at least one ws on each side.
    """
    if num_ws < 2:
        raise ValueError(f"style mixing needs at least 2 ws, the model has {num_ws}")
    if num_ws >= MIN_WS_FOR_RESOLUTION_RULE:
        split = STRUCTURE_WS
    else:
        (split,) = _proportional(num_ws, [STRUCTURE_WS])
    return {"structure": range(0, split), "style": range(split, num_ws)}


def fine_layer_groups(num_ws: int) -> dict[str, range]:
    """Three bands for experts: "coarse" (≤ 8 px), "middle" (16–32 px), "fine" (≥ 64 px).

    16 ws → coarse 0–2, middle 3–6, fine 7–15; fewer than 10 ws scale those boundaries, at least
    one ws per band.
    """
    if num_ws < 3:
        raise ValueError(f"three layer groups need at least 3 ws, the model has {num_ws}")
    if num_ws >= MIN_WS_FOR_RESOLUTION_RULE:
        a, b = COARSE_END, MIDDLE_END
    else:
        a, b = _proportional(num_ws, [COARSE_END, MIDDLE_END])
    return {"coarse": range(0, a), "middle": range(a, b), "fine": range(b, num_ws)}


def _pair(a_ws: Any, b_ws: Any) -> tuple[np.ndarray, np.ndarray]:
    """A and B as float32 arrays of one shape, (num_ws, w_dim) or (N, num_ws, w_dim)."""
    a = np.asarray(a_ws, dtype=np.float32)
    b = np.asarray(b_ws, dtype=np.float32)
    if a.shape != b.shape:
        raise LatentFormatError(f"Cannot mix codes of different shapes: A is {a.shape}, B is {b.shape}.")
    if a.ndim not in (2, 3):
        raise LatentFormatError(f"ws must be (num_ws, w_dim) or (N, num_ws, w_dim), got shape {a.shape}.")
    return a, b


def _check_weight(name: str, weight: float) -> float:
    w = float(weight)
    if not 0.0 <= w <= 1.0:  # also refuses NaN
        raise ValueError(f"the {name} weight must be between 0 (all A) and 1 (all B), got {weight}")
    return w


def _check_groups(groups: Groups, num_ws: int) -> None:
    used: set[int] = set()
    for name, layers in groups.items():
        if any(not 0 <= i < num_ws for i in layers):
            raise ValueError(f"layer group {name!r} ({layers}) reaches outside the model's {num_ws} ws")
        if used.intersection(layers):
            raise ValueError(f"layer group {name!r} overlaps another group; a ws can follow one weight only")
        used.update(layers)


def mix(a_ws: Any, b_ws: Any, weights: Mapping[str, float], groups: Groups | None = None) -> np.ndarray:
    """Blend A and B group by group: weight 0 keeps A's ws, 1 takes B's, between interpolates.

    a_ws, b_ws: (num_ws, w_dim) or (N, num_ws, w_dim) of the same shape.
    weights:    group name → weight in [0, 1]; groups not named keep A.
    groups:     name → ws range; default ``layer_groups(num_ws)`` ("structure", "style").
    Returns a new float32 array; endpoints are exact (weight 0 gives A's values bit for bit).
    """
    a, b = _pair(a_ws, b_ws)
    num_ws = a.shape[-2]
    groups = layer_groups(num_ws) if groups is None else groups
    unknown = set(weights) - set(groups)
    if unknown:
        raise ValueError(f"unknown layer group(s) {sorted(unknown)}; the groups are {list(groups)}")
    _check_groups(groups, num_ws)
    out = a.copy()
    for name, weight in weights.items():
        w = _check_weight(name, weight)
        layers = list(groups[name])
        # (1-w)·a + w·b rather than a + w·(b-a): both endpoints come out exact in float arithmetic.
        out[..., layers, :] = ((1.0 - w) * a[..., layers, :].astype(np.float64)
                               + w * b[..., layers, :].astype(np.float64)).astype(np.float32)
    return out


def crossover(a_ws: Any, b_ws: Any, k: int) -> np.ndarray:
    """ws[:k] from A and ws[k:] from B: k = 0 is all B, k = num_ws all A (NVlabs/rosinality convention)."""
    a, b = _pair(a_ws, b_ws)
    num_ws = a.shape[-2]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= num_ws:
        raise ValueError(f"crossover index k must be a whole number from 0 to {num_ws}, got {k!r}")
    out = b.copy()
    out[..., :k, :] = a[..., :k, :]
    return out


def _same_model(designs: Sequence[Design]) -> str:
    model_ids = {d.model_id for d in designs}
    if len(model_ids) > 1:
        raise ModelMismatchError(f"Designs of different models cannot be mixed: {sorted(model_ids)}.")
    return model_ids.pop()


def mix_designs(a: Design, b: Design, structure: float, style: float, name: str | None = None) -> Design:
    """A new design with structure and style each blended from A (0) to B (1), as ClothingGAN's sliders.

    structure=0, style=1 is "A's silhouette in B's style".
    """
    model_id = _same_model([a, b])
    groups = layer_groups(a.num_ws)
    weights = {"structure": _check_weight("structure", structure), "style": _check_weight("style", style)}
    ws = mix(a.ws, b.ws, weights, groups)
    provenance = {"kind": "mix", "a": a.id, "b": b.id, "a_name": a.name, "b_name": b.name, "weights": weights,
                  "groups": {g: [r.start, r.stop] for g, r in groups.items()}}
    return Design(ws=ws, model_id=model_id, name=name or "", provenance=provenance)


def mixing_matrix_ws(rows: Sequence[Design | np.ndarray], cols: Sequence[Design | np.ndarray],
                     k: int | None = None, weights: Mapping[str, float] | None = None,
                     groups: Groups | None = None) -> np.ndarray:
    """The ws grid (R, C, num_ws, w_dim): cell (i, j) has rows[i]'s structure and cols[j]'s style.

    By default "structure" comes from the row and "style" from the column (``layer_groups``); give
    ``k`` for a crossover at ws index k instead (ws[:k] from the row), or ``weights``/``groups`` for
    any other blend (weight 0 = row, 1 = column). Cheap: cache it and render only what changed.
    """
    designs = [x for x in (*rows, *cols) if isinstance(x, Design)]
    if designs:
        _same_model(designs)
    if not rows or not cols:
        raise ValueError("a mixing matrix needs at least one row and one column")
    if k is not None and (weights is not None or groups is not None):
        raise ValueError("give either a crossover index k or weights/groups, not both")
    r_ws = np.stack([np.asarray(getattr(x, "ws", x), np.float32) for x in rows])
    c_ws = np.stack([np.asarray(getattr(x, "ws", x), np.float32) for x in cols])
    if r_ws.ndim != 3 or r_ws.shape[1:] != c_ws.shape[1:]:
        raise LatentFormatError(f"Rows and columns must all be (num_ws, w_dim) codes of one shape, got "
                                f"{r_ws.shape[1:]} and {c_ws.shape[1:]}.")
    R, C = len(rows), len(cols)
    a = np.repeat(r_ws[:, None], C, axis=1)  # (R, C, num_ws, w_dim): the row's code in every column
    b = np.repeat(c_ws[None, :], R, axis=0)
    a, b = a.reshape(R * C, *r_ws.shape[1:]), b.reshape(R * C, *r_ws.shape[1:])
    if k is not None:
        grid = crossover(a, b, k)
    else:
        if weights is None:
            if groups is not None:
                raise ValueError("custom groups need weights saying how much of each comes from the column")
            weights = {"structure": 0.0, "style": 1.0}
        grid = mix(a, b, weights, groups)
    return grid.reshape(R, C, *r_ws.shape[1:])


def mixing_matrix(G: Any, rows: Sequence[Design], cols: Sequence[Design], k: int | None = None,
                  weights: Mapping[str, float] | None = None, groups: Groups | None = None,
                  batch_size: int = 16, noise_mode: str | None = None) -> torch.Tensor:
    """Render the mixing grid: images (R*C, 3, H, W), row-major, cell (i, j) at index i*C + j.

    Rendered ``batch_size`` cells at a time through ``G.synthesis``, gathered on the CPU, so a large
    grid never holds more than one batch on the accelerator. ``noise_mode`` None keeps G's default.
    """
    fingerprint = getattr(G, "fingerprint", None)
    for d in (*rows, *cols):
        if isinstance(d, Design) and fingerprint is not None and d.model_id != fingerprint:
            raise ModelMismatchError(f"Design {d.name or d.id[:8]!r} belongs to model {d.model_id!r}, "
                                     f"not to the loaded model {fingerprint!r}.")
    grid = mixing_matrix_ws(rows, cols, k=k, weights=weights, groups=groups)
    flat = grid.reshape(-1, *grid.shape[2:])
    batch_size = max(1, int(batch_size))
    extra = {} if noise_mode is None else {"noise_mode": noise_mode}
    images = [G.synthesis(torch.from_numpy(flat[i:i + batch_size]), **extra).detach().cpu()
              for i in range(0, flat.shape[0], batch_size)]
    return torch.cat(images)

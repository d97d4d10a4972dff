"""Designs: a W+ code with the id of its model, a name and its provenance, as an immutable value.

Every page, the CLI and the library pass designs around; provenance (how a design was made) is
written and described here, in one place.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from clothinggan.errors import LatentFormatError

MAX_TEXT_CHARS = 64                # model ids and design ids
MAX_NAME_CHARS = 200


def fit_name(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` stripped and, past ``limit`` characters, cut with an ellipsis. For names made from
    other names (an edit's summary of ten sliders, a "(2)" after a name already at the limit),
    which must stay valid names; a name a person typed past the limit is refused instead."""
    text = text.strip()
    return text if len(text) <= limit else text[:max(limit - 1, 0)].rstrip() + "…"


# -- Design ---------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    """Let numpy scalars and arrays into provenance: seeds often arrive as np.int64."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def normalise_provenance(provenance: Any) -> dict[str, Any]:
    """A deep, JSON-round-tripped copy of ``provenance`` (LatentFormatError if it is not JSON data).

    Round-tripping here means a design compares equal to itself after any save/load, and that no
    caller can mutate a design through a dict it still holds.
    """
    if not isinstance(provenance, dict):
        raise LatentFormatError(f"A design's provenance must be a dict, got {type(provenance).__name__}.")
    try:
        text = json.dumps(provenance, default=_json_default, allow_nan=False, ensure_ascii=False)
        _check_unicode("provenance", text)
        return json.loads(text)
    except RecursionError:
        raise LatentFormatError("A design's provenance is nested too deeply.") from None
    except (TypeError, ValueError) as exc:
        raise LatentFormatError(f"A design's provenance must be plain JSON data (no NaN/inf): {str(exc)[:200]}.") from None


def _check_unicode(label: str, text: str) -> None:
    """Refuse lone surrogates, which no file, database or web page can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LatentFormatError(f"A design's {label} contains characters that are not valid Unicode "
                                "(a lone surrogate).") from None


def as_ws_array(ws: Any) -> np.ndarray:
    """A read-only float32 copy of a (num_ws, w_dim) code, or LatentFormatError saying what is wrong.

    Floating inputs (float16/64, torch tensors on any device) are converted, since a design is float32
    by definition; integers, booleans and objects are refused because they cannot be a W+ code.
    """
    if hasattr(ws, "detach"):  # a torch tensor, possibly on a GPU: numpy cannot read it directly
        ws = ws.detach().to("cpu").float().numpy()
    try:
        arr = np.asarray(ws)
    except Exception as exc:  # noqa: BLE001 - any conversion failure means "not a latent"
        raise LatentFormatError(f"A design's ws could not be read as an array: {exc}.") from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise LatentFormatError(f"A design's ws must be floating point (float32), got dtype {arr.dtype}.")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise LatentFormatError(f"A design's ws must have shape (num_ws, w_dim), got shape {arr.shape}.")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        out = np.array(arr, dtype=np.float32, copy=True)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise LatentFormatError(f"A design's ws contains {bad} NaN or infinite value(s) (or values too "
                                f"large for float32).")
    out.setflags(write=False)
    return out


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, eq=False)
class Design:
    """One garment: a W+ code of one model, a name and how it was made. Never mutated.

    ws:         (num_ws, w_dim) float32, stored as a read-only copy.
    model_id:   the generator's fingerprint; designs of different models never mix.
    name:       a human name ("" until a LatentStore names it).
    provenance: JSON data saying how it was made, e.g. {"kind": "seed", "seed": 3, "psi": 0.7}.
    id:         uuid4 hex, stable across renames and saves.
    created:    Unix time of creation.
    """

    ws: np.ndarray
    model_id: str
    name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_new_id)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # object.__setattr__: the dataclass is frozen, and these are normalised copies of the inputs.
        object.__setattr__(self, "ws", as_ws_array(self.ws))
        if not isinstance(self.model_id, str):
            raise LatentFormatError(f"A design's model_id must be a string, got {type(self.model_id).__name__}.")
        if not isinstance(self.name, str):
            raise LatentFormatError(f"A design's name must be a string, got {type(self.name).__name__}.")
        if not isinstance(self.id, str) or not self.id:
            raise LatentFormatError(f"A design's id must be a non-empty string, got {self.id!r:.40}.")
        if len(self.name) > MAX_NAME_CHARS or len(self.id) > MAX_TEXT_CHARS or len(self.model_id) > MAX_TEXT_CHARS:
            raise LatentFormatError(f"A design's name is limited to {MAX_NAME_CHARS} characters and its ids "
                                    f"to {MAX_TEXT_CHARS}.")
        for label, text in (("name", self.name), ("id", self.id), ("model id", self.model_id)):
            _check_unicode(label, text)
        try:
            created = float(self.created)
        except (TypeError, ValueError):
            raise LatentFormatError(f"A design's created time must be a number, got {self.created!r}.") from None
        if not math.isfinite(created):
            raise LatentFormatError("A design's created time must be finite.")
        object.__setattr__(self, "created", created)
        object.__setattr__(self, "provenance", normalise_provenance(self.provenance))

    # Equality by value (ws compared exactly); hash by id, which equal designs share.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Design):
            return NotImplemented
        return (self.id == other.id and self.model_id == other.model_id and self.name == other.name
                and self.created == other.created and self.provenance == other.provenance
                and self.ws.shape == other.ws.shape and np.array_equal(self.ws, other.ws))

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (f"Design(name={self.name!r}, id={self.id[:8]}…, model_id={self.model_id!r}, "
                f"shape={self.ws.shape}, {self.describe()})")

    @functools.cached_property
    def code_digest(self) -> bytes:
        """A digest of the code alone (model and ws bits; not the name, id or history): a seed
        generated again is a new Design with a new id, and this says it is the same garment."""
        return hashlib.blake2b(self.model_id.encode() + self.ws.tobytes(), digest_size=16).digest()

    @property
    def num_ws(self) -> int:
        return int(self.ws.shape[0])

    @property
    def w_dim(self) -> int:
        return int(self.ws.shape[1])

    @classmethod
    def from_seed(cls, G: Any, seed: int, psi: float = 1.0, name: str | None = None) -> Design:
        """The design of one seed at truncation psi (seed s uses NVlabs' RandomState(s) z)."""
        return designs_from_seeds(G, [seed], psi, names=None if name is None else [name])[0]

    def with_name(self, name: str) -> Design:
        """The same design (same id) under another name."""
        return Design(ws=self.ws, model_id=self.model_id, name=name, provenance=self.provenance,
                      id=self.id, created=self.created)

    def describe(self) -> str:
        """A short human sentence of how the design was made, e.g. "seed 42, truncation 0.7"."""
        return describe_provenance(self.provenance)


def designs_from_seeds(G: Any, seeds: Sequence[int], psi: float = 1.0,
                       names: Sequence[str] | None = None) -> list[Design]:
    """One design per seed, mapped in a single batched call; default names are "seed N"."""
    seeds = [int(s) for s in seeds]
    if names is not None and len(names) != len(seeds):
        raise ValueError(f"got {len(names)} names for {len(seeds)} seeds")
    if not seeds:
        return []
    ws = G.seeds_to_ws(seeds, psi)
    ws = ws.detach().to("cpu").float().numpy() if hasattr(ws, "detach") else np.asarray(ws, np.float32)
    return [Design(ws=ws[i], model_id=G.fingerprint, name=names[i] if names is not None else f"seed {s}",
                   provenance={"kind": "seed", "seed": s, "psi": float(psi)})
            for i, s in enumerate(seeds)]


def stack_ws(designs: Iterable[Design]) -> np.ndarray:
    """A writable (N, num_ws, w_dim) float32 batch of the designs' codes, ready for G.synthesis.

    Designs hold read-only arrays, which torch warns about; a stacked copy avoids that.
    """
    arrays = [d.ws for d in designs]
    if not arrays:
        raise ValueError("no designs to stack")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise LatentFormatError(f"Designs of different shapes cannot be batched together: {sorted(shapes)}.")
    return np.stack(arrays).astype(np.float32, copy=False)


def _fmt_number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _percent(weight: float) -> str:
    return f"{round(float(weight) * 100):d}%"


def edit_provenance(source: "Design", edits: list[dict[str, Any]]) -> dict[str, Any]:
    """How an edit was made: its source design (id, and name for ``describe_provenance``) and its steps."""
    return {"kind": "edit", "source": source.id, "source_name": source.name, "edits": edits}


def describe_provenance(provenance: dict[str, Any]) -> str:
    """Provenance as a short sentence; never raises, since provenance may come from any file."""
    try:
        kind = provenance.get("kind")
        if kind == "seed":
            text = f"seed {provenance['seed']}"
            if "psi" in provenance:
                text += f", truncation {_fmt_number(provenance['psi'])}"
            return text
        if kind == "mix":
            a = provenance.get("a_name") or "A"
            b = provenance.get("b_name") or "B"
            weights = provenance.get("weights") or {}
            if weights and all(float(w) in (0.0, 1.0) for w in weights.values()):
                from_a = [g for g, w in weights.items() if float(w) == 0.0]
                from_b = [g for g, w in weights.items() if float(w) == 1.0]
                if from_a and from_b:
                    return f"mix of {a} ({', '.join(from_a)}) and {b} ({', '.join(from_b)})"
            parts = ", ".join(f"{g} {_percent(w)} {b}" for g, w in weights.items())
            return f"mix of {a} and {b}" + (f" ({parts})" if parts else "")
        if kind == "crossover":
            a = provenance.get("a_name") or "A"
            b = provenance.get("b_name") or "B"
            return f"crossover of {a} (ws 0–{int(provenance['k']) - 1}) and {b} (the rest)"
        if kind == "edit":
            edits = provenance.get("edits") or []
            steps = ", ".join(f"{e.get('name', '?')} {float(e.get('strength', 0)):+g}" for e in edits)
            source = provenance.get("source_name") or "a design"
            return f"edit of {source}" + (f": {steps}" if steps else "")
        if kind == "inverted":
            filename = provenance.get("filename")
            return f"inverted from upload {filename}" if filename else "inverted from an upload"
        if kind:
            return str(kind)
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    return "imported design"

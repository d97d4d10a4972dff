"""Named edit directions in W and applying them to designs: the attribute sliders' model.

A direction is a vector, a layer range and a unit; it comes from a principal component, ships with
a model as JSON, or is named by a user (JSON in the cache). Never pickles: directions are data.
"""
from __future__ import annotations

import functools
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from clothinggan.components import (Components, as_float32, components_for, compute_components, import_ganspace,
                                    load_components, save_components, shipped_components)
from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.paths import MODELS_DIR, cache_dir, write_atomic

__all__ = [  # the component API is re-exported: DESIGN.md places all of GANSpace in this module
    "Components", "compute_components", "components_for", "shipped_components", "load_components",
    "save_components", "import_ganspace", "NamedDirection", "direction_from_component", "component_directions",
    "apply_edits", "edit_design", "component_strip", "project", "load_directions", "save_user_direction",
    "delete_user_direction", "read_directions_file", "write_directions_file", "CLOTHINGGAN_NAMES"]

Unit = Literal["sigma", "raw"]
DirectionSource = Literal["model", "user", "supervised"]
Edit = tuple["NamedDirection", float]

FORMAT = "clothinggan-directions"
FORMAT_VERSION = 1
SIGMA_RANGE = (-5.0, 5.0)   # ±5σ already leaves the data; sliders need no more
RAW_RANGE = (-20.0, 20.0)   # ClothingGAN's slider range for raw unit vectors
MAX_DIRECTION_NAME_CHARS = 60  # a slider label: longer names crowd the Attribute edit page
# The names ClothingGAN gave to the first components of its lookbook model (GANSpace file).
CLOTHINGGAN_NAMES = {0: "Sleeve & Size", 1: "Dress - Jacket", 2: "Female Coat", 3: "Coat", 4: "Graphics",
                     5: "Dark", 6: "Less Cleavage"}


@dataclass(frozen=True, eq=False)
class NamedDirection:
    """One editable attribute.

    name:             what the slider says ("Sleeve length").
    vector:           (w_dim,) float32 direction in W, read-only.
    layer_start:      first w it moves.
    layer_end:        one past the last w it moves; None means "through the last w".
    default_strength: where its slider starts.
    unit:             "sigma": a strength of 1 moves ``sigma`` along ``vector`` (1σ for a unit-norm
                      component); "raw": strength multiplies ``vector`` as is (ClothingGAN).
    sigma:            the component's standard deviation (kept for "raw" too, for display).
    component:        index of the principal component it came from, or None.
    description:      a sentence for tooltips.
    source:           "model" (shipped), "user" (named in the app) or "supervised" (learned).
    """

    name: str
    vector: np.ndarray
    layer_start: int = 0
    layer_end: int | None = None
    default_strength: float = 0.0
    unit: Unit = "sigma"
    sigma: float = 1.0
    component: int | None = None
    description: str = ""
    source: DirectionSource = "user"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a direction needs a non-empty name")
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: refused below
            vec = np.array(self.vector, dtype=np.float32)
        if vec.ndim != 1 or vec.size == 0 or not np.isfinite(vec).all():
            raise ValueError(f"direction {self.name!r}: vector must be a finite 1-D array, got shape {vec.shape}")
        vec.setflags(write=False)
        object.__setattr__(self, "vector", vec)
        object.__setattr__(self, "layer_start", int(self.layer_start))
        if self.layer_end is not None:
            object.__setattr__(self, "layer_end", int(self.layer_end))
        if self.layer_start < 0 or (self.layer_end is not None and self.layer_end <= self.layer_start):
            raise ValueError(f"direction {self.name!r}: layer range [{self.layer_start}, {self.layer_end}) is empty or negative")
        if self.unit not in ("sigma", "raw"):
            raise ValueError(f"direction {self.name!r}: unit must be 'sigma' or 'raw', got {self.unit!r}")
        if self.source not in ("model", "user", "supervised"):
            raise ValueError(f"direction {self.name!r}: source must be 'model', 'user' or 'supervised', got {self.source!r}")
        if not (math.isfinite(float(self.sigma)) and float(self.sigma) > 0):
            raise ValueError(f"direction {self.name!r}: sigma must be a positive number, got {self.sigma!r}")
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "default_strength", float(self.default_strength))

    def __eq__(self, other: object) -> bool:
        # Field-wise, with the vector compared by value (the generated __eq__ chokes on arrays).
        if not isinstance(other, NamedDirection):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) if f == "vector"
                   else getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __hash__(self) -> int:  # hashable, so caches (st.cache_data) can key on directions
        return hash((self.name, self.vector.tobytes(), self.layer_start, self.layer_end, self.unit, self.sigma))

    @property
    def scale(self) -> float:
        """What one unit of strength multiplies the vector by."""
        return self.sigma if self.unit == "sigma" else 1.0

    @property
    def strength_range(self) -> tuple[float, float]:
        """Slider bounds: ±5σ for sigma units, ClothingGAN's ±20 for raw ones."""
        return SIGMA_RANGE if self.unit == "sigma" else RAW_RANGE

    def layers(self, num_ws: int) -> tuple[int, int]:
        """The concrete [start, end) for a model with ``num_ws`` ws."""
        return self.layer_start, num_ws if self.layer_end is None else self.layer_end

    def check(self, w_dim: int, num_ws: int) -> None:
        """Raise ValueError when this direction cannot apply to a model of these shapes."""
        if self.vector.shape != (w_dim,):
            raise ValueError(f"direction {self.name!r} has {self.vector.size} values, the model's w has {w_dim}")
        start, end = self.layers(num_ws)
        if not 0 <= start < end <= num_ws:
            raise ValueError(f"direction {self.name!r}: layers [{start}, {end}) are outside the model's 0..{num_ws}")


_FIELDS = tuple(NamedDirection.__dataclass_fields__)


def direction_from_component(components: Components, i: int, name: str, layer_start: int = 0,
                             layer_end: int | None = None, *, default_strength: float = 0.0,
                             unit: Unit | None = None, description: str = "",
                             source: DirectionSource = "model") -> NamedDirection:
    """Principal component ``i`` as a named direction over ws [layer_start, layer_end) (None: all).

    The unit defaults to "sigma" for computed components and to "raw" for imported GANSpace
    files, so ClothingGAN's slider values mean the same here.
    """
    if not 0 <= i < components.n_components:
        raise ValueError(f"component {i} does not exist: there are {components.n_components} (0..{components.n_components - 1})")
    if unit is None:
        unit = "raw" if components.source == "ganspace-file" else "sigma"
    sigma = float(components.stdev[i])
    return NamedDirection(name=name, vector=components.components[i], layer_start=layer_start, layer_end=layer_end,
                          default_strength=default_strength, unit=unit, sigma=sigma if sigma > 0 else 1.0,
                          component=i, description=description or f"principal component {i}", source=source)


def component_directions(components: Components, names: dict[int, str] | None = None,
                         count: int | None = None) -> list[NamedDirection]:
    """Directions for the first components, named by ``names`` where given ("PC 3" otherwise)."""
    names = names or {}
    n = components.n_components if count is None else min(count, components.n_components)
    return [direction_from_component(components, i, names.get(i, f"PC {i}")) for i in range(n)]


# -- applying ------------------------------------------------------------------------------------
def apply_edits(ws: np.ndarray, edits: Sequence[Edit]) -> np.ndarray:
    """ws (num_ws, w_dim) or (N, num_ws, w_dim) plus every edit: a new float32 array.

    Each edit adds ``vector * strength * scale`` to ws[layer_start:layer_end]; edits add up and
    their order does not matter. The input is never modified.
    """
    out = np.array(as_float32(ws), dtype=np.float32, copy=True)
    if out.ndim not in (2, 3):
        raise ValueError(f"ws must be (num_ws, w_dim) or (N, num_ws, w_dim), got shape {out.shape}")
    num_ws, w_dim = out.shape[-2:]
    for direction, strength in edits:
        direction.check(w_dim, num_ws)
        start, end = direction.layers(num_ws)
        out[..., start:end, :] += direction.vector * np.float32(float(strength) * direction.scale)
    return out


def edit_design(design: Any, edits: Sequence[Edit], name: str | None = None) -> Any:
    """A new Design: ``design`` with edits applied, remembering which edits made it."""
    from clothinggan.designs import Design, edit_provenance, fit_name

    num_ws = design.ws.shape[0]
    record = [{"name": d.name, "strength": float(s), "layers": list(d.layers(num_ws))} for d, s in edits]
    summary = ", ".join(f"{d.name} {float(s):+g}" for d, s in edits) or "no change"
    return Design(ws=apply_edits(design.ws, edits), model_id=design.model_id,
                  name=name or fit_name(f"{design.name} ({summary})"),
                  provenance=edit_provenance(design, record))


def component_strip(G: Any, design_ws: np.ndarray, components: Components, i: int, k_sigma: float = 3.0,
                    steps: int = 7, layer_start: int = 0, layer_end: int | None = None) -> np.ndarray:
    """ws (steps, num_ws, w_dim) walking component ``i`` from -kσ to +kσ (rendering is the caller's)."""
    _check_model(G, components)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    base = as_float32(design_ws)
    if base.shape == (G.w_dim,):
        base = np.broadcast_to(base, (G.num_ws, G.w_dim))
    if base.shape != (G.num_ws, G.w_dim):
        raise ValueError(f"design ws must be ({G.num_ws}, {G.w_dim}), got {base.shape}")
    d = direction_from_component(components, i, f"PC {i}", layer_start, layer_end, unit="sigma")
    return np.stack([apply_edits(base, [(d, s)]) for s in np.linspace(-k_sigma, k_sigma, steps)])


def project(ws: np.ndarray, components: Components, in_sigma: bool = False) -> np.ndarray:
    """Coordinates (N, K) of w's on the components, relative to their mean (PCA explorer scatter).

    Takes w (w_dim,), (N, w_dim) or W+ (N, num_ws, w_dim), whose ws are averaged (seed designs
    have equal ws). ``in_sigma`` divides by each component's stdev.
    """
    x = as_float32(ws)
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 3:
        x = x.mean(axis=1)
    if x.ndim != 2 or x.shape[1] != components.w_dim:
        raise ValueError(f"ws must end in w_dim={components.w_dim}, got shape {as_float32(ws).shape}")
    coords = (x - components.mean) @ components.components.T
    if in_sigma:
        coords = coords / np.where(components.stdev > 0, components.stdev, 1.0)
    return coords.astype(np.float32)


def _check_model(G: Any, components: Components) -> None:
    if components.w_dim != G.w_dim:
        raise ModelMismatchError(f"components have w_dim {components.w_dim}, the model has {G.w_dim}")
    if components.model_id and components.model_id != G.fingerprint:
        raise ModelMismatchError(f"components belong to model {components.model_id}, not {G.fingerprint}")


# -- JSON files ----------------------------------------------------------------------------------
def direction_to_dict(d: NamedDirection) -> dict[str, Any]:
    """A JSON-ready dict (float32 values survive the float64 round trip exactly)."""
    out = asdict(d)
    out["vector"] = [float(v) for v in d.vector]
    return out


def direction_from_dict(data: dict[str, Any], source: DirectionSource | None = None) -> NamedDirection:
    """The inverse of ``direction_to_dict``; ``source`` overrides the stored one."""
    if not isinstance(data, dict):
        raise LatentFormatError(f"a direction must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - set(_FIELDS)
    if unknown:
        raise LatentFormatError(f"direction {data.get('name')!r} has unknown fields: {', '.join(sorted(unknown))}")
    fields = dict(data)
    if source is not None:
        fields["source"] = source
    try:
        return NamedDirection(**fields)
    except TypeError as exc:
        raise LatentFormatError(f"direction {data.get('name')!r} is incomplete ({exc})") from None


def write_directions_file(path: str | Path, directions: Sequence[NamedDirection], model_id: str,
                          w_dim: int, num_ws: int) -> Path:
    """Write a directions file atomically, refusing duplicate names and wrong shapes."""
    _check_unique(directions)
    for d in directions:
        d.check(w_dim, num_ws)
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "model_id": model_id, "w_dim": w_dim, "num_ws": num_ws,
           "directions": [direction_to_dict(d) for d in directions]}
    return write_atomic(path, json.dumps(doc, indent=1))


def _file_version(path: str | Path) -> tuple[str, int, int]:
    """(resolved path, mtime, size): a key that changes whenever the file is rewritten."""
    st = os.stat(path)
    return str(Path(path).resolve()), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=32)
def _parse_json(version: tuple[str, int, int]) -> Any:
    """A JSON file parsed once per version: every page run reads the directions (60 KB of numbers)."""
    return json.loads(Path(version[0]).read_text(encoding="utf-8"))


def read_directions_file(path: str | Path, model_id: str | None = None, w_dim: int | None = None,
                         num_ws: int | None = None, source: DirectionSource | None = None) -> list[NamedDirection]:
    """Read a directions file; given a model's identity and shapes, refuse files of another model.

    Parsed and checked once per version of the file (its mtime and size); the directions are frozen
    values, so every caller may share them.
    """
    try:
        return list(_read_directions(_file_version(path), model_id, w_dim, num_ws, source))
    except FileNotFoundError:
        raise LatentFormatError(f"{path}: no such directions file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LatentFormatError(f"{path}: not a readable directions file ({exc})") from None


@functools.lru_cache(maxsize=32)
def _read_directions(version: tuple[str, int, int], model_id: str | None, w_dim: int | None, num_ws: int | None,
                     source: DirectionSource | None) -> tuple[NamedDirection, ...]:
    path = version[0]
    doc = _parse_json(version)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("directions"), list):
        raise LatentFormatError(f"{path}: not a clothinggan directions file")
    if model_id is not None and doc.get("model_id") != model_id:
        raise ModelMismatchError(f"{path}: directions of model {doc.get('model_id')}, not {model_id}")
    try:
        directions = [direction_from_dict(d, source) for d in doc["directions"]]
        _check_unique(directions)
        for d in directions:
            d.check(int(w_dim if w_dim is not None else doc["w_dim"]), int(num_ws if num_ws is not None else doc["num_ws"]))
    except (ValueError, KeyError) as exc:
        raise LatentFormatError(f"{path}: {exc}") from None
    return tuple(directions)


def shipped_directions_path(G: Any, models_dir: str | Path | None = None) -> Path | None:
    """``<model stem>.directions.json`` next to the model whose stored fingerprint is G's, or None."""
    folder = Path(models_dir) if models_dir is not None else MODELS_DIR
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.directions.json")):
        try:
            if _parse_json(_file_version(path)).get("model_id") == G.fingerprint:
                return path
        except (OSError, ValueError, AttributeError):
            continue
    return None


def user_directions_path(G: Any) -> Path:
    """Where the directions a user named for this model are kept."""
    return cache_dir("directions") / f"{G.fingerprint}.json"


def load_directions(G: Any, models_dir: str | Path | None = None) -> list[NamedDirection]:
    """Shipped directions of G's model, then the user's own (a user name that clashes is skipped)."""
    shipped_path = shipped_directions_path(G, models_dir)
    shipped = [] if shipped_path is None else read_directions_file(shipped_path, G.fingerprint, G.w_dim, G.num_ws,
                                                                   source="model")
    taken = {d.name for d in shipped}
    user = []
    for d in _user_directions(G):
        if d.name in taken:
            warnings.warn(f"user direction {d.name!r} is hidden by the model's own direction of that name")
            continue
        user.append(d)
    return shipped + user


def save_user_direction(G: Any, d: NamedDirection, overwrite: bool = False,
                        models_dir: str | Path | None = None) -> Path:
    """Add (or with ``overwrite`` replace) a user direction of G's model.

    Names are unique regardless of case ("darker" beside the model's "Darker" would be two sliders
    that read the same) and at most ``MAX_DIRECTION_NAME_CHARS`` long: a name is a slider's label.
    """
    d.check(G.w_dim, G.num_ws)
    if len(d.name) > MAX_DIRECTION_NAME_CHARS:
        raise ValueError(f"a direction's name is limited to {MAX_DIRECTION_NAME_CHARS} characters; "
                         f"this one has {len(d.name)}")
    key = d.name.casefold()
    shipped_path = shipped_directions_path(G, models_dir)
    shipped = [x.name for x in read_directions_file(shipped_path)] if shipped_path is not None else []
    for taken in shipped:
        if taken.casefold() == key:
            raise ValueError(f"the model already ships a direction named {taken!r}: choose another name")
    existing = _user_directions(G)
    clash = next((x.name for x in existing if x.name.casefold() == key), None)
    if not overwrite and clash is not None:
        raise ValueError(f"a direction named {clash!r} already exists")
    kept = [x for x in existing if x.name.casefold() != key]
    if d.source == "model":  # a user's file holds user (or supervised) directions only
        d = NamedDirection(**{**_fields(d), "source": "user"})
    return write_directions_file(user_directions_path(G), kept + [d], G.fingerprint, G.w_dim, G.num_ws)


def delete_user_direction(G: Any, name: str) -> None:
    """Remove a user direction of G's model; ValueError if there is none of that name."""
    existing = _user_directions(G)
    if not any(x.name == name for x in existing):
        raise ValueError(f"there is no user direction named {name!r}")
    write_directions_file(user_directions_path(G), [x for x in existing if x.name != name], G.fingerprint,
                          G.w_dim, G.num_ws)


def _user_directions(G: Any) -> list[NamedDirection]:
    path = user_directions_path(G)
    if not path.is_file():
        return []
    return read_directions_file(path, G.fingerprint, G.w_dim, G.num_ws)


def _fields(d: NamedDirection) -> dict[str, Any]:
    return {f: getattr(d, f) for f in _FIELDS}


def _check_unique(directions: Sequence[NamedDirection]) -> None:
    seen: set[str] = set()
    for d in directions:
        if d.name in seen:
            raise ValueError(f"two directions are named {d.name!r}: names must be unique")
        seen.add(d.name)




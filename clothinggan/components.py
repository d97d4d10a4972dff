"""GANSpace principal components of a model's W space: compute, cache, save, load, import.

Components are the raw material of edits and of the PCA explorer; they cost a minute of sampling,
so they are a cached artefact keyed by the model fingerprint and the sampling settings.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from clothinggan.errors import LatentFormatError
from clothinggan.paths import MODELS_DIR, atomic_path, cache_dir

ComponentSource = Literal["pca", "ganspace-file"]
Progress = Callable[[float], None]

FORMAT = "clothinggan-components"
FORMAT_VERSION = 1
SAMPLE_BATCH = 10_000  # small enough for a smooth progress bar, large enough to keep mapping efficient
UNIT_NORM_TOLERANCE = 1e-3
# z of the PCA samples come from numpy's PCG64 Generator: 3-4x faster than the legacy RandomState
# that seeds_to_z must keep (NVlabs' convention), and a million samples are drawn per PCA.
SAMPLE_RNG = "pcg64"


@dataclass(frozen=True, eq=False)  # compared by identity: element-wise array equality is not a bool
class Components:
    """Principal directions of W, largest variance first.

    components: (K, w_dim) float32, unit-norm rows.
    mean:       (w_dim,) mean of the sampled w.
    stdev:      (K,) standard deviation of the samples' projections on each row (1σ of an edit).
    var_ratio:  (K,) fraction of the total variance each row explains.
    model_id:   fingerprint of the model the samples came from ("" when unknown, e.g. imported).
    n_samples:  how many w were sampled (0 when unknown).
    seed:       seed of the sampling RNG (-1 when unknown).
    source:     "pca" (computed here) or "ganspace-file" (imported from GANSpace).
    """

    components: np.ndarray
    mean: np.ndarray
    stdev: np.ndarray
    var_ratio: np.ndarray
    model_id: str = ""
    n_samples: int = 0
    seed: int = -1
    source: ComponentSource = "pca"

    def __post_init__(self) -> None:
        comps = _frozen(self.components, 2, "components")
        k, w_dim = comps.shape
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "mean", _frozen(self.mean, 1, "mean", (w_dim,)))
        object.__setattr__(self, "stdev", _frozen(self.stdev, 1, "stdev", (k,)))
        object.__setattr__(self, "var_ratio", _frozen(self.var_ratio, 1, "var_ratio", (k,)))
        if self.source not in ("pca", "ganspace-file"):
            raise ValueError(f"source must be 'pca' or 'ganspace-file', got {self.source!r}")
        norms = np.linalg.norm(comps, axis=1)
        if k and np.abs(norms - 1).max() > UNIT_NORM_TOLERANCE:
            raise LatentFormatError(f"components must be unit vectors; norms range {norms.min():.4g}..{norms.max():.4g}")
        if (self.stdev < 0).any():
            raise LatentFormatError("component standard deviations must not be negative")

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def w_dim(self) -> int:
        return int(self.components.shape[1])


def _frozen(x: Any, ndim: int, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only float32 copy, checked for shape and finiteness: components are shared values."""
    arr = np.array(x, dtype=np.float32)
    if arr.ndim != ndim or (shape is not None and arr.shape != shape):
        want = shape if shape is not None else f"{ndim} dimensions"
        raise LatentFormatError(f"{what} must have shape {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise LatentFormatError(f"{what} contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


# -- computing ------------------------------------------------------------------------------------
def default_n_components(w_dim: int) -> int:
    """64 directions are more than anyone names; a tiny model cannot have more than w_dim."""
    return min(64, w_dim)


def cache_path(fingerprint: str, n_samples: int, seed: int, n_components: int) -> Path:
    """Where computed components of a model live in the user cache."""
    return cache_dir("components") / f"{fingerprint}_n{n_samples}_s{seed}_k{n_components}.npz"


def compute_components(G: Any, n_samples: int = 100_000, n_components: int | None = None, seed: int = 0,
                       progress: Progress | None = None, use_cache: bool = True) -> Components:
    """PCA of ``n_samples`` untruncated w of ``G`` (GANSpace's ``use_w``), cached on disk.

    Exact for any ``n_samples`` in constant memory: one streaming pass accumulates the float64
    covariance of the mapped w (``CovarianceAccumulator``), then one ``eigh`` of w_dim x w_dim.
    ``progress(fraction)`` is called after each batch of samples (the eigh at the end is instant).
    A second call with the same model and settings reads the cache and returns at once.
    """
    k = default_n_components(G.w_dim) if n_components is None else int(n_components)
    if not 1 <= k <= G.w_dim:
        raise ValueError(f"n_components must be between 1 and w_dim={G.w_dim}, got {k}")
    if n_samples < max(2, k):
        raise ValueError(f"need at least {max(2, k)} samples for {k} components, got {n_samples}")
    path = cache_path(G.fingerprint, n_samples, seed, k)
    if use_cache and path.is_file():
        try:
            cached = load_components(path)
            if cached.model_id == G.fingerprint:
                _report(progress, 1.0)
                return cached
        except LatentFormatError:
            pass  # a truncated or stale cache file is recomputed and overwritten
    comps = streamed_pca(G, n_samples, k, seed, progress)
    if use_cache:
        save_components(comps, path)
    _report(progress, 1.0)
    return comps


def sample_w(G: Any, n_samples: int, seed: int = 0, progress: Progress | None = None) -> np.ndarray:
    """(n_samples, w_dim) float32 mapping outputs, in batches so progress can be reported."""
    out = np.empty((n_samples, G.w_dim), dtype=np.float32)
    for start, batch in _w_batches(G, n_samples, seed, progress):
        out[start:start + len(batch)] = batch
    return out


def _w_batches(G: Any, n_samples: int, seed: int, progress: Progress | None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (offset, batch of w) covering n_samples.

    Each batch has its own seed derived from (seed, batch index), so the sample is reproducible;
    a remainder joins the last full batch (as it always has, so the batches, and therefore the
    samples, of a given n_samples and seed stay the same).
    """
    sizes = [SAMPLE_BATCH] * (n_samples // SAMPLE_BATCH) or [0]
    sizes[-1] += n_samples % SAMPLE_BATCH
    start = 0
    for b, n in enumerate(sizes):
        batch_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        yield start, as_float32(G.sample_ws(n, seed=batch_seed, rng=SAMPLE_RNG))
        start += n
        _report(progress, 0.95 * start / n_samples)


def pca(samples: np.ndarray, n_components: int, model_id: str = "", seed: int = 0) -> Components:
    """Exact PCA of in-memory samples (N, w_dim) with scikit-learn: the reference ``streamed_pca`` matches."""
    from sklearn.decomposition import PCA  # scikit-learn costs ~1 s to import: only when asked for

    x = np.asarray(samples)
    x = x if x.dtype == np.float64 else x.astype(np.float32)
    model = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(x)
    return _components(model.components_, model.mean_, model.explained_variance_,
                       model.explained_variance_ratio_, model_id, int(x.shape[0]), seed)


class CovarianceAccumulator:
    """Mean and covariance of a stream of batches (N_i, dim) in one pass and constant memory.

    Sums are float64 and taken around a shift (the first batch's mean), so ``Σxxᵀ − n·mmᵀ`` does
    not cancel catastrophically: the result equals the two-pass covariance to float64 rounding.
    ``x.T @ x`` is numpy's symmetric rank-k update (BLAS syrk), half the work of a general product.
    """

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.n = 0
        self.shift: np.ndarray | None = None
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.gram = np.zeros((self.dim, self.dim), dtype=np.float64)

    def add(self, batch: Any) -> None:
        x = np.array(batch.detach().cpu().numpy() if hasattr(batch, "detach") else batch, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"batch must have shape (N, {self.dim}), got {x.shape}")
        if not len(x):
            return
        if self.shift is None:
            self.shift = x.mean(axis=0)
        x -= self.shift
        self.sum += x.sum(axis=0)
        self.gram += x.T @ x
        self.n += len(x)

    def mean(self) -> np.ndarray:
        if self.shift is None:
            raise ValueError("no samples were added")
        return self.shift + self.sum / self.n

    def covariance(self) -> np.ndarray:
        """The unbiased (N − 1) sample covariance, as scikit-learn's PCA uses."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.n}")
        centred = self.gram - np.outer(self.sum, self.sum) / self.n
        return (centred + centred.T) / (2 * (self.n - 1))


def streamed_pca(G: Any, n_samples: int, n_components: int, seed: int = 0,
                 progress: Progress | None = None) -> Components:
    """Exact PCA of ``n_samples`` w of ``G``: float64 covariance over batches, then ``eigh``.

    The same answer as scikit-learn's exact PCA of all samples held at once (``pca``), for any
    number of samples: memory is one batch plus a w_dim x w_dim matrix.
    """
    acc = CovarianceAccumulator(G.w_dim)
    for _, batch in _w_batches(G, n_samples, seed, progress):
        acc.add(batch)
    return pca_from_covariance(acc.covariance(), acc.mean(), n_components, G.fingerprint, acc.n, seed)


def pca_from_covariance(cov: np.ndarray, mean: np.ndarray, n_components: int, model_id: str = "",
                        n_samples: int = 0, seed: int = 0) -> Components:
    """Components from a covariance matrix: its top eigenvectors, variances and variance ratios."""
    evals, evecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    evals, evecs = np.clip(evals[::-1], 0.0, None), evecs[:, ::-1]
    total = evals.sum()
    ratio = evals / total if total > 0 else evals
    return _components(evecs[:, :n_components].T, mean, evals[:n_components], ratio[:n_components],
                       model_id, n_samples, seed)


def _components(rows: np.ndarray, mean: np.ndarray, variance: np.ndarray, var_ratio: np.ndarray,
                model_id: str, n_samples: int, seed: int) -> Components:
    comps = np.array(rows, dtype=np.float64)
    comps /= np.linalg.norm(comps, axis=1, keepdims=True)
    comps *= _sign_flips(comps)[:, None]
    return Components(components=comps, mean=mean, stdev=np.sqrt(np.clip(variance, 0.0, None)),
                      var_ratio=var_ratio, model_id=model_id, n_samples=n_samples, seed=seed, source="pca")


def _sign_flips(comps: np.ndarray) -> np.ndarray:
    """+1/-1 per row so that each row's largest-magnitude entry is positive."""
    idx = np.abs(comps).argmax(axis=1)
    return np.where(comps[np.arange(len(comps)), idx] < 0, -1.0, 1.0)


def as_float32(x: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a float32 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _report(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))))


# -- files ----------------------------------------------------------------------------------------
def save_components(c: Components, path: str | Path) -> Path:
    """Write components as a pickle-free npz, atomically (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"format": np.array(FORMAT), "version": np.array(FORMAT_VERSION),
              "components": c.components, "mean": c.mean, "stdev": c.stdev, "var_ratio": c.var_ratio,
              "model_id": np.array(c.model_id), "n_samples": np.array(c.n_samples),
              "seed": np.array(c.seed), "source": np.array(c.source)}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_components(path: str | Path) -> Components:
    """Read components saved by ``save_components`` (or a GANSpace file, recognised by its keys)."""
    data = _read_npz(path)
    if "lat_comp" in data and "components" not in data:
        return _from_ganspace(data, path)
    if str(data.get("format", "")) != FORMAT:
        raise LatentFormatError(f"{path}: not a components file (no '{FORMAT}' marker)")
    try:
        return Components(components=data["components"], mean=data["mean"], stdev=data["stdev"],
                          var_ratio=data["var_ratio"], model_id=str(data["model_id"]),
                          n_samples=int(data["n_samples"]), seed=int(data["seed"]),
                          source=str(data["source"]))  # type: ignore[arg-type]
    except KeyError as exc:
        raise LatentFormatError(f"{path}: components file lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise LatentFormatError(f"{path}: malformed components file ({exc})") from None


def import_ganspace(path: str | Path, model_id: str = "") -> Components:
    """Read a GANSpace components cache (``lat_comp`` (K, 1, w_dim), ``lat_mean``, ``lat_stdev``, ``var_ratio``).

    GANSpace files do not say which model they belong to; pass ``model_id`` when you know it.
    """
    return _from_ganspace(_read_npz(path), path, model_id)


def _from_ganspace(data: dict[str, np.ndarray], path: str | Path, model_id: str = "") -> Components:
    missing = [k for k in ("lat_comp", "lat_mean", "lat_stdev") if k not in data]
    if missing:
        raise LatentFormatError(f"{path}: not a GANSpace components file (missing {', '.join(missing)})")
    comp, mean, stdev = data["lat_comp"], data["lat_mean"], data["lat_stdev"]
    if comp.ndim == 3 and comp.shape[1] == 1:
        comp = comp[:, 0]  # GANSpace keeps a singleton layer axis
    if comp.ndim != 2:
        raise LatentFormatError(f"{path}: lat_comp must be (K, 1, w_dim), got {data['lat_comp'].shape}")
    k = comp.shape[0]
    var_ratio = data.get("var_ratio")
    if var_ratio is None:  # older GANSpace caches: the ratio follows from the stdevs (up to the tail)
        var = np.asarray(stdev, np.float64) ** 2
        var_ratio = var / var.sum() if var.sum() > 0 else var
    n = re.search(r"_n(\d+)", Path(path).name)
    try:
        return Components(components=comp, mean=np.reshape(mean, -1), stdev=np.reshape(stdev, -1),
                          var_ratio=np.reshape(var_ratio, -1)[:k], model_id=model_id,
                          n_samples=int(n.group(1)) if n else 0, seed=-1, source="ganspace-file")
    except ValueError as exc:
        raise LatentFormatError(f"{path}: malformed GANSpace components ({exc})") from None


def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an npz, refusing pickled objects: a components file is data, never code."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise LatentFormatError(f"{path}: no such file") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise LatentFormatError(f"{path}: contains pickled objects, which are refused") from None
        raise LatentFormatError(f"{path}: not a readable npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise LatentFormatError(f"{path}: not a readable npz file ({exc})") from None


# -- shipped with a model -----------------------------------------------------------------------
def shipped_components(G: Any, models_dir: str | Path | None = None) -> Components | None:
    """Components shipped next to the model (``<stem>.components.npz``), or None.

    A file counts only when the fingerprint it stores is the loaded model's, so a retrained model
    never inherits stale directions. The model's own stem is tried first.
    """
    folder = Path(models_dir) if models_dir is not None else MODELS_DIR
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob("*.components.npz"))
    stem = Path(str(G.meta.get("source", ""))).stem
    candidates.sort(key=lambda p: p.name != f"{stem}.components.npz")
    for path in candidates:
        try:
            comps = load_components(path)
        except LatentFormatError:
            continue
        if comps.model_id == G.fingerprint:
            return comps
    return None


def components_for(G: Any, n_samples: int = 100_000, n_components: int | None = None, seed: int = 0,
                   progress: Progress | None = None) -> Components:
    """The components the app and CLI use: shipped ones when present, else computed (and cached)."""
    shipped = shipped_components(G)
    if shipped is not None:
        _report(progress, 1.0)
        return shipped
    return compute_components(G, n_samples=n_samples, n_components=n_components, seed=seed, progress=progress)

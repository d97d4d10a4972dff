"""Offline quality of a generator: Fréchet distance and k-NN precision/recall in garment-classifier features.

Every score comes with its real-vs-real baseline at the same sample size, the floor it can reach.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from clothinggan.train.data import images_to_tensor

SampleFn = Callable[[int], torch.Tensor]
METRIC_RESOLUTION = 64  # the classifier's input size


# -- distances between feature sets ---------------------------------------------------------
def frechet_distance(feats1: np.ndarray | torch.Tensor, feats2: np.ndarray | torch.Tensor) -> float:
    """FD between Gaussians fitted to two (N, D) feature sets: |μ1-μ2|² + tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½).

    Both square roots come from symmetric eigen-decompositions in float64 with negative round-off
    eigenvalues clipped, which stays real and stable where sqrtm of the non-symmetric S1·S2 does not.
    """
    a, b = _as_float64(feats1), _as_float64(feats2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} vs {b.shape[1]}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = _covariance(a), _covariance(b)
    s1_half = _psd_sqrt(s1)
    middle = s1_half @ s2 @ s1_half
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
    fd = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)
    return max(fd, 0.0)  # tiny negatives are round-off of identical sets


def _as_float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {arr.shape}")
    return arr


def _covariance(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(0)
    return centred.T @ centred / (len(x) - 1)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    eig, vec = np.linalg.eigh((s + s.T) / 2)
    return (vec * np.sqrt(np.clip(eig, 0.0, None))) @ vec.T


def knn_radii(feats: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    if len(feats) <= k:
        raise ValueError(f"need more than k={k} points to estimate a manifold, got {len(feats)}")
    radii = []
    for i in range(0, len(feats), chunk):
        d = torch.cdist(feats[i:i + chunk], feats)
        # Index k of the k+1 smallest: position 0 is the point itself (distance 0).
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def inside_manifold(queries: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Boolean per query: within the k-NN radius of at least one reference point."""
    hits = []
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i:i + chunk], ref)
        hits.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(hits)


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = share of fakes inside the real manifold, recall = vice versa."""
    r, f = torch.as_tensor(real).float(), torch.as_tensor(fake).float()
    precision = inside_manifold(f, r, knn_radii(r, k)).float().mean()
    recall = inside_manifold(r, f, knn_radii(f, k)).float().mean()
    return float(precision), float(recall)


# -- generator evaluation --------------------------------------------------------------------
@torch.no_grad()
def extract_features(classifier: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Classifier features of float images in [-1, 1], resized to 64 px, on the classifier's device."""
    device = next(classifier.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = to_metric_images(images[i:i + batch]).to(device)
        out.append(classifier.features(x).float().cpu())
    return torch.cat(out)


def to_metric_images(images: torch.Tensor) -> torch.Tensor:
    """Float images → 64 px, quantised to 8-bit like the real photos (so rounding is no tell-tale)."""
    x = images.detach().float().cpu()
    if x.shape[-2:] != (METRIC_RESOLUTION, METRIC_RESOLUTION):
        x = F.interpolate(x, size=(METRIC_RESOLUTION, METRIC_RESOLUTION), mode="bilinear", antialias=True,
                          align_corners=False)
    return ((x + 1) * 127.5).round().clamp(0, 255) / 127.5 - 1


def generator_sampler(G: Any, psi: float = 1.0, batch: int = 32, first_seed: int = 0) -> SampleFn:
    """sample_fn(n) for a clothinggan Generator: seeds first_seed… → ws → images (noise_mode const)."""
    def sample(n: int) -> torch.Tensor:
        out = []
        for start in range(first_seed, first_seed + n, batch):
            seeds = list(range(start, min(start + batch, first_seed + n)))
            ws = G.seeds_to_ws(seeds, psi=psi)
            out.append(G.synthesis(ws, noise_mode="const").float().cpu())
        return torch.cat(out)

    return sample


@torch.no_grad()
def evaluate_generator(G: Any, real_images_uint8: np.ndarray | torch.Tensor, n: int = 2000, psi: float = 1.0,
                       batch: int = 32, k: int = 3, classifier: torch.nn.Module | None = None,
                       seed: int = 0) -> dict[str, float]:
    """FD, precision and recall of a generator (or any ``sample_fn(n) -> images in [-1, 1]``) against real photos.

    The real photos are split into two disjoint random halves A and B. The generator is compared with
    A, and B with A at the same sample size, giving the ``*_baseline`` scores a perfect generator
    would get. m = min(n, len(real) // 2) samples are used on every side.
    """
    clf = classifier if classifier is not None else _default_classifier()
    real = torch.as_tensor(real_images_uint8)
    m = min(int(n), len(real) // 2)
    if m <= k:
        raise ValueError(f"need more than {2 * (k + 1)} real images for a split comparison, got {len(real)}")
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    feats_a = extract_features(clf, images_to_tensor(real[perm[:m]]))
    feats_b = extract_features(clf, images_to_tensor(real[perm[m:2 * m]]))
    sample_fn = generator_sampler(G, psi, batch) if hasattr(G, "seeds_to_ws") else G
    feats_g = extract_features(clf, sample_fn(m))
    precision, recall = precision_recall(feats_a, feats_g, k)
    precision_b, recall_b = precision_recall(feats_a, feats_b, k)
    result = {"fd": frechet_distance(feats_a, feats_g), "precision": precision, "recall": recall,
              "fd_baseline": frechet_distance(feats_a, feats_b), "precision_baseline": precision_b,
              "recall_baseline": recall_b, "n": float(m), "k": float(k), "psi": float(psi)}
    result.update(_classifier_accuracy(clf))
    return result


def _default_classifier() -> torch.nn.Module:
    from clothinggan.train.classifier import load_classifier

    return load_classifier()


def _classifier_accuracy(clf: torch.nn.Module) -> dict[str, float]:
    metrics = getattr(clf, "metrics", {}) or {}
    return {f"classifier_{k}": float(v) for k, v in metrics.items() if k.startswith("holdout_accuracy_")}

"""PCA of W at GANSpace's scale: our one-pass exact PCA against IncrementalPCA, same process, same samples.

Times mapping N z → w plus the PCA end to end for three ways of doing it, and compares each one's
components with scikit-learn's exact PCA of the very same samples held in memory:
  ours          ``compute_components``: float64 covariance streamed over batches, then eigh
  previous      what ``compute_components`` did above 256 MB of samples until 2026-12: legacy
                RandomState z, IncrementalPCA.partial_fit per batch of 10,000
  GANSpace IPCA GANSpace's ``IPCAEstimator`` (IncrementalPCA, ``fit_partial`` per batch of 10,000)
                on our samples, timed for the fit alone (its sampling is the same as ours)
Run: ``python bench/bench_pca.py [--samples 1000000] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # numpy/scipy BLAS too, before numpy loads: one core for everyone

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA, IncrementalPCA  # noqa: E402

import clothinggan as cg  # noqa: E402
from clothinggan import components as comp  # noqa: E402


def top_cos(a: np.ndarray, b: np.ndarray, k: int = 20) -> np.ndarray:
    """|cos| between matching rows of two component matrices (signs are arbitrary)."""
    a, b = a[:k] / np.linalg.norm(a[:k], axis=1, keepdims=True), b[:k] / np.linalg.norm(b[:k], axis=1, keepdims=True)
    return np.abs(np.sum(a * b, axis=1))


def previous_path(G: cg.Generator, n: int, k: int, seed: int) -> IncrementalPCA:
    """The replaced fallback: RandomState sampling through ``sample_ws`` and IncrementalPCA."""
    model = IncrementalPCA(n_components=k)
    sizes = [comp.SAMPLE_BATCH] * (n // comp.SAMPLE_BATCH) or [0]
    sizes[-1] += n % comp.SAMPLE_BATCH
    for b, size in enumerate(sizes):
        batch_seed = int(np.random.SeedSequence([seed, b]).generate_state(1)[0])
        model.partial_fit(G.sample_ws(size, seed=batch_seed).numpy())
    return model


def ganspace_ipca(samples: np.ndarray, k: int, batch: int = 10_000) -> IncrementalPCA:
    """GANSpace's IPCAEstimator: IncrementalPCA(k, batch_size=max(100, 5k)), fit_partial per batch."""
    model = IncrementalPCA(k, whiten=False, batch_size=max(100, 5 * k))
    for start in range(0, len(samples), batch):
        model.partial_fit(samples[start:start + batch])
    return model


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of ours (the fastest is reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    G = cg.load_generator("default", device="cpu")
    n, seed = args.samples, 0
    k = comp.default_n_components(G.w_dim)
    print(f"{G.name}: w_dim {G.w_dim}, {n:,} samples, {k} components, {torch.get_num_threads()} torch thread(s)")

    ours_times, prev_time = [], None
    ours = prev = None
    for r in range(args.repeats):  # interleaved: ours, previous, ours, …
        ours, t = timed(lambda: comp.compute_components(G, n_samples=n, n_components=k, seed=seed, use_cache=False))
        ours_times.append(t)
        if r == 0:
            prev, prev_time = timed(lambda: previous_path(G, n, k, seed))
    t_ours = min(ours_times)

    samples, t_sample = timed(lambda: comp.sample_w(G, n, seed))
    ref, t_exact = timed(lambda: PCA(n_components=k, svd_solver="covariance_eigh").fit(samples.astype(np.float64)))
    gs, t_gs = timed(lambda: ganspace_ipca(samples, k))
    del samples

    print(f"  ours (stream + float64 covariance + eigh), end to end : {t_ours:7.2f} s   "
          f"(rounds: {', '.join(f'{t:.2f}' for t in ours_times)})")
    print(f"  previous (RandomState + IncrementalPCA), end to end    : {prev_time:7.2f} s   "
          f"ours/previous {t_ours / prev_time:5.3f}  ({prev_time / t_ours:.1f}x faster)")
    print(f"  sampling the same w into memory                       : {t_sample:7.2f} s")
    print(f"  scikit-learn exact PCA of them (float64 covariance_eigh): {t_exact:6.2f} s")
    print(f"  GANSpace IPCA fit of them (sampling not included)      : {t_gs:7.2f} s   "
          f"ours (incl. sampling)/GANSpace fit {t_ours / t_gs:5.3f}")
    print("  against scikit-learn exact PCA of the same samples (top 20):")
    for name, c, ratio in [("ours", ours.components, ours.var_ratio),
                           ("previous IPCA", prev.components_, prev.explained_variance_ratio_),
                           ("GANSpace IPCA", gs.components_, gs.explained_variance_ratio_)]:
        cos = top_cos(c, ref.components_)
        dr = np.abs(np.asarray(ratio[:20], np.float64) - ref.explained_variance_ratio_[:20]).max()
        same = "same samples" if name != "previous IPCA" else "its own RandomState samples"
        print(f"    {name:14s} |cos| min {cos.min():.6f} (1 - min {1 - cos.min():.1e}) mean {cos.mean():.6f}   "
              f"max |Δ var ratio| {dr:.2e}   ({same})")


if __name__ == "__main__":
    main()

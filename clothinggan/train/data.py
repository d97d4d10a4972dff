"""Training data: product photos framed like the generator's output, cached as one uint8 array.

Framing (square on white) is shared with uploads, so inverted photos look like what the GAN saw.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from clothinggan.framing import frame_image
from clothinggan.paths import atomic_path, cache_dir

LABEL_FIELDS = ("articleType", "baseColour", "subCategory", "gender", "usage")
CACHE_VERSION = 1  # bump when framing or the cache layout changes, so stale caches are not reused
DEFAULT_EXCLUDED = ("Innerwear", "Socks")


# -- tensors for the trainer ------------------------------------------------------------------
def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, R, R) → float32 in [-1, 1], the generator's output range."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {x.dtype}")
    return x.float() / 127.5 - 1.0


class ImageDataset(torch.utils.data.Dataset):
    """uint8 (N, 3, R, R) images served as float (3, R, R) tensors in [-1, 1], optionally x-flipped."""

    def __init__(self, images: np.ndarray | torch.Tensor, xflip: bool = False, seed: int = 0) -> None:
        self.images = torch.as_tensor(images)
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, R, R), got {tuple(self.images.shape)}")
        self.xflip = xflip
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        x = images_to_tensor(self.images[index])
        if self.xflip and torch.rand((), generator=self._generator) < 0.5:
            x = x.flip(-1)
        return x


# -- prepared data set ------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """One side of the train/holdout split: images and the labels of the same rows."""

    images: np.ndarray  # uint8 (N, 3, R, R)
    ids: np.ndarray  # int64 (N,)
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # field → str array (N,)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PreparedData:
    """Framed images of a whole data set, split deterministically by id into train and holdout."""

    train: Split
    holdout: Split
    vocab: dict[str, tuple[str, ...]]  # field → values, most frequent first (ties by name)
    resolution: int
    skipped: int  # images that could not be read or had no label row
    cache_path: Path


def prepare_dataset(source: str | Path, resolution: int = 64,
                    exclude_subcategories: Sequence[str] = DEFAULT_EXCLUDED,
                    holdout_fraction: float = 0.1, use_cache: bool = True,
                    progress: bool = False) -> PreparedData:
    """Frame every labelled photo of ``source`` (images.zip, or a folder with it / images/ + styles.csv).

    The framed array is cached under ``cache_dir("data")`` keyed by the source files' size and
    mtime and the settings, so later calls load it instead of decoding ~20k JPEGs again. The split
    hashes each id, so an image stays on the same side across runs, machines and subsets.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    images_src, styles_path = locate_source(Path(source))
    excluded = tuple(sorted(exclude_subcategories))
    cache_path = cache_dir("data") / f"{_cache_key(images_src, styles_path, resolution, excluded)}.npz"
    if use_cache and cache_path.exists():
        arrays = _load_cache(cache_path)
    else:
        arrays = _build_arrays(images_src, styles_path, resolution, excluded, progress)
        _save_cache(cache_path, arrays)
    return _split(arrays, resolution, holdout_fraction, cache_path)


def locate_source(source: Path) -> tuple[Path, Path]:
    """(images.zip or images/ folder, styles.csv) for a zip path or a data-set folder."""
    if source.is_file():
        images, styles = source, source.parent / "styles.csv"
    elif (source / "images.zip").is_file():
        images, styles = source / "images.zip", source / "styles.csv"
    elif (source / "images").is_dir():
        images, styles = source / "images", source / "styles.csv"
    else:
        raise FileNotFoundError(f"{source}: expected images.zip, a folder with images.zip or images/, and styles.csv")
    if not styles.is_file():
        raise FileNotFoundError(f"{styles}: styles.csv (the labels) is missing next to the images")
    return images, styles


def is_holdout(ids: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask: True where the id's hash falls in the holdout fraction (machine-independent)."""
    def unit(i: int) -> float:
        digest = hashlib.blake2b(str(int(i)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0 ** 64

    return np.array([unit(i) < fraction for i in ids], dtype=bool)


def _cache_key(images: Path, styles: Path, resolution: int, excluded: tuple[str, ...]) -> str:
    stamp = [CACHE_VERSION, resolution, excluded]
    for p in (images, styles):
        st = p.stat()
        stamp += [str(p.resolve()), st.st_size, st.st_mtime_ns]
    digest = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:20]
    return f"{images.stem}-{resolution}px-{digest}"


def _read_styles(styles: Path, excluded: tuple[str, ...]) -> dict[int, dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    with open(styles, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                key = int(row["id"])
            except (KeyError, TypeError, ValueError):
                continue  # a malformed line must not sink the whole data set
            if row.get("subCategory", "") in excluded:
                continue
            rows[key] = {f: (row.get(f) or "").strip() for f in LABEL_FIELDS}
    return rows


def _iter_image_bytes(images: Path) -> Iterator[tuple[int, bytes]]:
    """(id, encoded bytes) for every ``{id}.jpg|png`` in a zip or folder, in id order."""
    if images.is_dir():
        files = {_id_of(p.name): p for p in images.iterdir() if p.is_file()}
        for key in sorted(k for k in files if k is not None):
            yield key, files[key].read_bytes()
        return
    with zipfile.ZipFile(images) as zf:
        names = {_id_of(n): n for n in zf.namelist() if not n.endswith("/")}
        for key in sorted(k for k in names if k is not None):
            yield key, zf.read(names[key])


def _id_of(name: str) -> int | None:
    stem = os.path.splitext(os.path.basename(name))[0]
    return int(stem) if stem.isdigit() else None


def _build_arrays(images: Path, styles: Path, resolution: int, excluded: tuple[str, ...],
                  progress: bool) -> dict[str, np.ndarray]:
    rows = _read_styles(styles, excluded)
    start = time.perf_counter()
    framed: list[np.ndarray] = []
    ids: list[int] = []
    unreadable: list[int] = []
    for key, data in _iter_image_bytes(images):
        if key not in rows:
            continue  # excluded subcategory, or no label row
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                framed.append(np.asarray(frame_image(im, resolution)).transpose(2, 0, 1))
        except Exception:  # any decoder failure: a damaged photo is skipped, not fatal
            unreadable.append(key)
            continue
        ids.append(key)
    if unreadable:
        warnings.warn(f"skipped {len(unreadable)} unreadable images (e.g. ids {unreadable[:5]})", stacklevel=3)
    if progress:
        print(f"framed {len(ids)} images at {resolution}px in {time.perf_counter() - start:.1f}s")
    if not ids:
        raise ValueError(f"{images}: no readable, labelled images found")
    arrays = {"images": np.stack(framed), "ids": np.asarray(ids, dtype=np.int64),
              "skipped": np.asarray(len(unreadable))}
    for f in LABEL_FIELDS:
        arrays[f] = np.asarray([rows[k][f] for k in ids], dtype=str)
    return arrays


def _save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:  # a concurrent reader never sees half a file
        np.savez(tmp, **arrays)


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _vocab(values: np.ndarray) -> tuple[str, ...]:
    names, counts = np.unique(values, return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    return tuple(str(names[i]) for i in order)


def _split(arrays: dict[str, np.ndarray], resolution: int, fraction: float, cache_path: Path) -> PreparedData:
    held = is_holdout(arrays["ids"], fraction)

    def side(mask: np.ndarray) -> Split:
        return Split(images=arrays["images"][mask], ids=arrays["ids"][mask],
                     labels={f: arrays[f][mask] for f in LABEL_FIELDS})

    return PreparedData(train=side(~held), holdout=side(held),
                        vocab={f: _vocab(arrays[f]) for f in LABEL_FIELDS}, resolution=resolution,
                        skipped=int(arrays["skipped"]), cache_path=cache_path)

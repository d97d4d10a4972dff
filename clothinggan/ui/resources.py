"""Process-wide cached resources of the app: generators, rendered images, PCA components, the library.

A model is loaded once per process (``st.cache_resource``) and shared by every session; rendered
images are cached per W+ code by (model fingerprint, ws digest) in one LRU, so a grid renders
only its new designs, in one batched call.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st
from PIL import Image

import clothinggan as cg
from clothinggan import components as comp
from clothinggan import precision
from clothinggan.batching import renderer_for
from clothinggan import settings
from clothinggan.generator import pick_device
from clothinggan.images import upscale
from clothinggan.ui import load
from clothinggan.paths import cache_dir, file_sha256, safe_stem, write_atomic

SCATTER_SAMPLES = 300
SCATTER_SEED = 12345  # fixed, so the scatter plot (and a picked point) stay the same across reruns


def default_spec() -> str:
    """The model a new session starts with: ``CLOTHINGGAN_DEFAULT_MODEL`` or the embedded default."""
    return settings.default_model()


def pca_samples() -> int:
    """How many w samples a PCA computed in the app uses (GANSpace used 300k–1M; 100k is enough here)."""
    return settings.pca_samples()


def load_model(spec: str) -> cg.Generator:
    """One Generator per model spec per process, on the best device (CUDA > MPS > CPU).

    It renders in ``CLOTHINGGAN_PRECISION`` (auto: bf16 where the machine has it natively and this
    model's bf16 renders stay within a grey level of fp32); the setting is part of the cache key, so
    changing it loads the model anew.
    """
    return _load_model(spec, str(pick_device()), settings.precision())


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model(spec: str, device: str, choice: str) -> cg.Generator:
    return precision.apply(cg.load_generator(spec, device=device), choice)


@st.cache_data(show_spinner=False, max_entries=32)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def model_file_sha256(G: cg.Generator) -> str | None:
    """The sha256 of the file G was loaded from (hashed once per file version), None if it has none."""
    source = G.meta.get("source")
    try:
        stat = os.stat(source) if source else None
    except OSError:
        return None
    return _sha256_of(str(source), stat.st_size, stat.st_mtime_ns) if stat else None


# -- rendering -------------------------------------------------------------------------------------
class ByteBoundedLRU:
    """A process-wide LRU bounded by the bytes of its values, safe to share between sessions' threads.

    ``size_of`` tells a value's bytes. Lookups hold a lock; the work that makes a value runs
    outside it. Through :meth:`get_or_make_many` a value is made once even when several threads ask
    for it at the same moment (the server's warm-up and the first session want the same garments).
    """

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int]) -> None:
        self.max_bytes = int(max_bytes)
        self.size_of = size_of
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._making: dict[Any, threading.Event] = {}  # keys some thread is making now

    def get(self, key: Any) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += self.size_of(value)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= self.size_of(old)

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        """The value of ``key``, made by ``make()`` if nobody has made or is making it."""
        return self.get_or_make_many([key], lambda _: [make()])[0]

    def get_or_make_many(self, keys: Sequence[Any], make: Callable[[list[int]], Sequence[Any]]) -> list[Any]:
        """The values of ``keys``; the missing ones made by one call ``make(indices)`` (values in order).

        A key another thread is making now is waited for, not made again: a duplicate render
        would fight the first one for the same cores. This thread waits only after its own part
        is done, so two threads waiting on each other cannot both be stuck; a key whose maker
        failed (or whose value is evicted already) is made here after all.
        """
        values: list[Any] = [None] * len(keys)
        mine: dict[Any, int] = {}
        theirs: dict[Any, threading.Event] = {}
        with self._lock:
            for i, key in enumerate(keys):
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                    values[i] = value
                elif key in mine or key in theirs:
                    continue
                elif key in self._making:
                    theirs[key] = self._making[key]
                else:
                    self._making[key] = threading.Event()
                    mine[key] = i
        made: dict[Any, Any] = {}
        try:
            if mine:
                for key, value in zip(mine, make(list(mine.values()))):
                    self.put(key, value)
                    made[key] = value
        finally:
            with self._lock:
                for key in mine:
                    self._making.pop(key).set()
        for done in theirs.values():
            done.wait()
        for i, key in enumerate(keys):
            if values[i] is None:
                values[i] = made[key] if key in made else self.get(key)
        late = [i for i, value in enumerate(values) if value is None]
        if late:
            for i, value in zip(late, make(late)):
                self.put(keys[i], value)
                values[i] = value
        return values

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _pixel_bytes(image: Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


class ImageCache(ByteBoundedLRU):
    """Rendered images, one entry per W+ code, bounded by pixel bytes.

    Keys are (model fingerprint, digest of the code's float32 bytes): a design renders once per
    process whichever page or session shows it.
    """

    def __init__(self, max_bytes: int = 128 * 2**20) -> None:
        super().__init__(max_bytes, _pixel_bytes)

    @staticmethod
    def key(fingerprint: str, ws: np.ndarray) -> tuple[str, bytes]:
        return fingerprint, hashlib.blake2b(ws.tobytes(), digest_size=16).digest()


IMAGES = ImageCache()
# What the browser is sent for an image shown at a size: enlarged and JPEG-encoded once per process,
# not on every rerun of every session (that was a fifth of the server's CPU per click under load).
SHOWN = ByteBoundedLRU(64 * 2**20, len)
SHOWN_JPEG_QUALITY = 95
JPEG_DATA_URL = "data:image/jpeg;base64,"


def shown_url(image: Image.Image, px: int, exact: bool = False) -> str:
    """``image`` as a JPEG ``data:`` URL for ``st.image``, enlarged (Lanczos) and encoded once per
    picture and size.

    ``exact``: exactly ``px`` wide, for an image shown at a fixed width (Streamlit would otherwise
    shrink a wider one on every rerun); else a whole-factor enlargement to at least ``px`` wide, for
    one that fills its column. Keyed by a digest of the pixels, so the same picture is encoded once
    whichever page, session or render made it: microseconds against milliseconds of resize and JPEG.
    A data URL travels inside the page's own message: Streamlit neither re-reads nor re-registers it
    on each rerun, the browser fetches nothing more, and the browser's message cache sends an
    unchanged one only once (a garment is 10-40 KB).
    """
    key = (hashlib.blake2b(image.tobytes(), digest_size=16).digest(), image.size, image.mode, int(px), exact)
    return SHOWN.get_or_make(key, lambda: _jpeg_data_url(image, int(px), exact))


def _jpeg_data_url(image: Image.Image, px: int, exact: bool) -> str:
    rgb = image.convert("RGB")
    if exact and rgb.width != px:
        shown = rgb.resize((px, max(1, round(rgb.height * px / rgb.width))), Image.LANCZOS)
    else:
        shown = upscale(rgb, px)
    buf = io.BytesIO()
    shown.save(buf, format="JPEG", quality=SHOWN_JPEG_QUALITY, subsampling=0)
    return JPEG_DATA_URL + base64.b64encode(buf.getvalue()).decode("ascii")


def render(G: cg.Generator, ws: Any) -> list[Image.Image]:
    """Images of W+ codes (num_ws, w_dim) or (N, num_ws, w_dim), at the model's resolution.

    Each code is cached on its own; the ones not cached yet are rendered in one batched call,
    shared with whatever other sessions are waiting for at the same moment, and a code being
    rendered for another session already is waited for instead of rendered twice.
    """
    arr = np.ascontiguousarray(np.asarray(ws, dtype=np.float32))
    if arr.ndim == 2:
        arr = arr[None]
    keys = [IMAGES.key(G.fingerprint, code) for code in arr]
    # One render at a time per model, joined with other sessions' waiting requests; a code another
    # thread is rendering now is waited for.
    return IMAGES.get_or_make_many(
        keys, lambda missing: cg.to_pil(renderer_for(G).synthesis(arr[missing], threads=load.render_threads())))


def render_designs(G: cg.Generator, designs: list) -> list[Image.Image]:
    """One image per design, each cached on its own; the uncached ones in one batched call."""
    if not designs:
        return []
    return render(G, np.stack([np.asarray(d.ws, dtype=np.float32) for d in designs]))


# -- PCA ---------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _shipped_components(_G: cg.Generator, fingerprint: str) -> comp.Components | None:
    return comp.shipped_components(_G)


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached_components(_G: cg.Generator, fingerprint: str, n_samples: int) -> comp.Components:
    return comp.compute_components(_G, n_samples=n_samples)


def available_components(G: cg.Generator) -> comp.Components | None:
    """The model's components when shipped or already computed (disk cache); None means "compute first"."""
    shipped = _shipped_components(G, G.fingerprint)
    if shipped is not None:
        return shipped
    n = pca_samples()
    path = comp.cache_path(G.fingerprint, n, 0, comp.default_n_components(G.w_dim))
    if path.is_file():
        return _cached_components(G, G.fingerprint, n)
    return None


def compute_components(G: cg.Generator, progress: Callable[[float], None]) -> comp.Components:
    """Run the PCA (cached on disk per model), reporting progress in [0, 1]."""
    return comp.compute_components(G, n_samples=pca_samples(), progress=progress)


@st.cache_data(max_entries=8, show_spinner=False)
def scatter_samples(_G: cg.Generator, fingerprint: str, n: int = SCATTER_SAMPLES,
                    seed: int = SCATTER_SEED) -> np.ndarray:
    """(n, w_dim) untruncated w for the PCA scatter plot, reproducible from the seed."""
    return _G.sample_ws(n, seed=seed).cpu().numpy().astype(np.float32)


# -- uploaded models and the design library ------------------------------------------------------------
def save_uploaded_model(data: bytes, filename: str) -> Path:
    """Keep an uploaded checkpoint in a folder named by its hash (one upload is loaded and cached
    once), under the name it was uploaded as, which the sidebar shows as the model's name."""
    name = Path(filename).name
    suffix = Path(name).suffix.lower() or ".bin"
    stem = safe_stem(Path(name).stem, "model", max_chars=80)
    digest = hashlib.sha256(data).hexdigest()[:20]
    path = cache_dir("uploaded_models", digest) / f"{stem}{suffix}"
    if not path.is_file():
        write_atomic(path, data)
    return path


def forget_uploaded_model(path: Path) -> None:
    """Delete a refused upload: it is never loaded again, and may be hundreds of MB."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def library_url() -> str | None:
    """``st.secrets["library_url"]`` when set, else ``CLOTHINGGAN_LIBRARY_URL``, else the SQLite default."""
    try:
        url = st.secrets.get("library_url")
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        url = None
    return url or settings.library_url()


@st.cache_resource(show_spinner=False, max_entries=2)
def design_library(url: str | None):
    """The persistent design library (shared by every session of this process)."""
    from clothinggan.library import DesignLibrary

    return DesignLibrary(url) if url else DesignLibrary()

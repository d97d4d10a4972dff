"""Where clothinggan keeps things on disk: shipped assets and the per-user cache.

One place decides, so tests can redirect the cache with CLOTHINGGAN_CACHE.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from clothinggan import settings

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = settings.assets_dir(PACKAGE_DIR)
MODELS_DIR = ASSETS_DIR / "models"
MODEL_DIRS_ENV = settings.MODEL_DIRS
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pkl")


def safe_stem(name: str, fallback: str, max_chars: int | None = None) -> str:
    """A file name stem made of letters, digits, "-" and "_" from a name people gave (a design's, an
    uploaded file's), cut to ``max_chars``; ``fallback`` when nothing is left."""
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in name.strip()).strip("_")
    return keep[:max_chars] or fallback


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the user cache (``CLOTHINGGAN_CACHE`` overrides)."""
    path = settings.cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temp file beside ``path`` to write to; renamed over ``path`` when the block succeeds.

    Readers (other sessions, processes, a resumed run) never see half a file, and a crash or an
    error mid-write leaves the previous file in place. The temp name ends with ``path``'s suffix,
    so writers that pick a format by suffix (PIL, numpy) write the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, created by the writer itself, so the file gets the usual permissions (umask).
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MB chunks (model files can be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_dirs() -> list[Path]:
    """The folders whose model files the app may load by path: ``CLOTHINGGAN_MODEL_DIRS``, else the
    user cache and the working directory. Other files come in by upload."""
    folders = settings.model_dirs() or [cache_dir(), Path.cwd()]
    return [Path(os.path.realpath(f)) for f in folders]


def checked_model_path(text: str) -> Path:
    """A typed server path, resolved (symlinks included), if it is a model file inside ``model_dirs()``.

    In a shared deployment a path box is a probe of the server's files (``/proc/self/environ``), so
    only model files in the configured folders are accepted; ModelPathError says which folders.
    """
    from clothinggan.errors import ModelPathError

    raw = Path(text.strip()).expanduser()
    path = Path(os.path.realpath(raw if raw.is_absolute() else Path.cwd() / raw))
    folders = model_dirs()
    if not any(path.is_relative_to(folder) for folder in folders):
        shown = ", ".join(str(f) for f in folders)
        raise ModelPathError(f"The app loads model files only from its model folders ({shown}); upload the file "
                              f"instead, or ask whoever runs the app to add its folder to {MODEL_DIRS_ENV}.")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelPathError(f"“{path.name}” is not a model file: expected one of {', '.join(MODEL_SUFFIXES)}.")
    if not path.is_file():
        raise ModelPathError(f"There is no model file at {path}.")
    return path

"""Where clothinggan keeps things on disk: shipped assets and the per-user cache.

One place decides, so tests can redirect the cache with CLOTHINGGAN_CACHE.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = Path(os.environ.get("CLOTHINGGAN_ASSETS", PACKAGE_DIR.parent / "assets"))
MODELS_DIR = ASSETS_DIR / "models"


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the user cache (``CLOTHINGGAN_CACHE`` overrides)."""
    root = os.environ.get("CLOTHINGGAN_CACHE")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clothinggan"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it over: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MB chunks (model files can be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""Where clothinggan keeps things on disk: shipped assets and the per-user cache.

One place decides, so tests can redirect the cache with CLOTHINGGAN_CACHE.
"""
from __future__ import annotations

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

"""Known downloadable models (placeholder registry; filled in by the model-zoo work)."""
from __future__ import annotations

from pathlib import Path

MODELS: dict[str, dict] = {}


def fetch(name: str) -> Path:
    raise KeyError(name)

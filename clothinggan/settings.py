"""Every setting clothinggan reads from the environment, in one place, read when asked (not at import).

The app adds Streamlit secrets on top (``clothinggan.ui.resources.library_url``); everything else
reads these functions, so a test or a deployment changes a setting in one way only.
"""
from __future__ import annotations

import os
from pathlib import Path

ASSETS = "CLOTHINGGAN_ASSETS"            # folder of the shipped models (default: assets/ beside the package)
CACHE = "CLOTHINGGAN_CACHE"              # downloads, converted models, components, the default library
DEVICE = "CLOTHINGGAN_DEVICE"            # cpu | cuda | mps (default: the best one present)
DEFAULT_MODEL = "CLOTHINGGAN_DEFAULT_MODEL"  # the model a new app session starts on (default: "default")
LIBRARY_URL = "CLOTHINGGAN_LIBRARY_URL"  # any SQLAlchemy URL of the design library
MODEL_DIRS = "CLOTHINGGAN_MODEL_DIRS"    # folders the app's "File path" may load models from (os.pathsep)
PRECISION = "CLOTHINGGAN_PRECISION"      # auto | fp32 | bf16: the app's render precision (default auto)
PRECISIONS = ("auto", "fp32", "bf16")
PCA_SAMPLES = "CLOTHINGGAN_PCA_SAMPLES"  # w samples of a PCA computed in the app
STARTER_SEEDS = "CLOTHINGGAN_STARTER_SEEDS"  # e.g. "0-5": new app sessions start with these designs (demos)
DEFAULT_PCA_SAMPLES = 100_000


def _text(name: str) -> str:
    return os.environ.get(name, "").strip()


def assets_dir(package_dir: Path) -> Path:
    return Path(_text(ASSETS) or package_dir.parent / "assets")


def cache_root() -> Path:
    """``CLOTHINGGAN_CACHE``, else ``$XDG_CACHE_HOME/clothinggan``, else ``~/.cache/clothinggan``."""
    root = _text(CACHE)
    return Path(root) if root else Path(_text("XDG_CACHE_HOME") or Path.home() / ".cache") / "clothinggan"


def device() -> str | None:
    return _text(DEVICE) or None


def default_model() -> str:
    return _text(DEFAULT_MODEL) or "default"


def library_url() -> str | None:
    return _text(LIBRARY_URL) or None


def model_dirs() -> list[Path] | None:
    """The configured model folders, or None where the setting is absent (the caller's default applies)."""
    text = _text(MODEL_DIRS)
    return [Path(p) for p in text.split(os.pathsep) if p.strip()] if text else None


def pca_samples() -> int:
    """At least 1,000 (GANSpace used 300k–1M; 100k is plenty for a 64-px model); bad values give the default."""
    try:
        return max(1000, int(_text(PCA_SAMPLES) or DEFAULT_PCA_SAMPLES))
    except ValueError:
        return DEFAULT_PCA_SAMPLES


def precision() -> str:
    """``auto`` (bf16 where the machine has it natively, else fp32), ``fp32`` or ``bf16``; bad values give auto."""
    choice = _text(PRECISION).lower()
    return choice if choice in PRECISIONS else "auto"


def starter_seeds() -> str:
    return _text(STARTER_SEEDS)

"""``load_generator`` / ``save_generator``: from a name or a path to a ready Generator.

"default" is the embedded model in assets/ (works offline on a CPU); ``hf://owner/repo[@rev]/file``
is a file on the Hugging Face Hub (see hub.py); any other name is looked up in the model zoo;
anything else is a file path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clothinggan import hub
from clothinggan.checkpoints import load_network, save_safetensors
from clothinggan.errors import CheckpointError
from clothinggan.generator import Generator, placeholder_network
from clothinggan.paths import MODELS_DIR

DEFAULT_MODEL_FILE = MODELS_DIR / "fashion64.safetensors"


def load_generator(spec: str | Path = "default", device: str | torch.device | None = None,
                   dtype: torch.dtype = torch.float32, max_batch: int = 16) -> Generator:
    """Load a generator by name ("default", a zoo key), hub address (``hf://…``) or file path of any format."""
    spec_str = str(spec)
    if hub.is_hub_spec(spec):  # not spec_str: Path("hf://a/b") would have collapsed the "//" already
        net, meta = load_network(hub.download(spec_str))
        meta["hub"] = spec_str
        return Generator(net, name=spec_str, meta=meta, device=device, dtype=dtype, max_batch=max_batch)
    if spec_str == "default":
        if DEFAULT_MODEL_FILE.is_file():
            net, meta = load_network(DEFAULT_MODEL_FILE)
            return Generator(net, name="default", meta=meta, device=device, dtype=dtype, max_batch=max_batch)
        meta: dict[str, Any] = {"trained": False, "format": "placeholder",
                                "note": "untrained placeholder: the trained default model is not installed"}
        return Generator(placeholder_network(), name="default (untrained placeholder)", meta=meta,
                         device=device, dtype=dtype, max_batch=max_batch)
    path = Path(spec_str).expanduser()
    if not path.exists():
        from clothinggan import zoo

        if spec_str in zoo.MODELS:
            path = zoo.fetch(spec_str)
        else:
            raise CheckpointError(path, "does not exist, and is not the name of a known model "
                                        f"(known: default, {', '.join(sorted(zoo.MODELS))})")
    net, meta = load_network(path)
    return Generator(net, name=path.name, meta=meta, device=device, dtype=dtype, max_batch=max_batch)


def save_generator(G: Generator, path: str | Path, half: bool = False) -> Path:
    """Save a generator as safetensors (weights + config + meta); loading it back is exact."""
    meta = {k: v for k, v in G.meta.items() if k not in ("source",)}
    return save_safetensors(G.net, path, meta=meta, half=half)

"""Start a run from a trained model: continue the embedded model, or fine-tune it on new photos.

``--resume-from default`` (or a path) takes the generator's weights into G and G_ema. Where the
model's complete training state is shipped beside it (see ``train.state_files``) the run
resumes exactly; otherwise the discriminator starts fresh, as in transfer learning.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clothinggan.checkpoints import load_network
from clothinggan.errors import CheckpointError
from clothinggan.train.configs import TrainConfig, get_config


def model_path(spec: str | Path) -> Path:
    """"default" → the embedded model's file; anything else is a path to a generator file."""
    if str(spec) == "default":
        from clothinggan.loading import DEFAULT_MODEL_FILE

        return DEFAULT_MODEL_FILE
    return Path(spec).expanduser()


def config_of_model(meta: dict[str, Any], fallback: str) -> TrainConfig:
    """The training recipe a model was made with (from its meta), else the named preset."""
    cfg_json = meta.get("train_config_json")
    if isinstance(cfg_json, dict):
        return TrainConfig.from_json(json.dumps(cfg_json))
    if isinstance(cfg_json, str):
        return TrainConfig.from_json(cfg_json)
    return get_config(fallback)


def config_to_resume(path: Path, fallback: str) -> tuple[TrainConfig, Path | None]:
    """The recipe to continue ``path`` with, and its training-state manifest if one is shipped."""
    from clothinggan.train.state_files import config_of_state, manifest_path

    manifest = manifest_path(path)
    if manifest.is_file():
        return config_of_state(manifest), manifest
    _, meta = load_network(path)
    return config_of_model(meta, fallback), None


def start_from_model(trainer: Any, path: Path, manifest: Path | None = None) -> str:
    """Put the model (and its training state, if given) into a fresh trainer; says which it did.

    With a state, G, D, G_ema, Adam, the augmentation p, counters and random streams continue
    exactly. Without one, G and G_ema take the model's weights, the kimg count continues from its
    meta and D starts fresh.
    """
    if manifest is not None:
        from clothinggan.train.state_files import load_training_state

        load_training_state(trainer, manifest)
        return "exact: the full training state"
    net, meta = load_network(path)
    if net.config != trainer.G.config:
        raise CheckpointError(path, f"is a generator of another architecture than the run's "
                                    f"({net.config} vs {trainer.G.config})")
    state = net.state_dict()
    trainer.G.load_state_dict(state)
    trainer.G_ema.load_state_dict(state)
    trainer.nimg = int(round(float(meta.get("kimg", 0.0)) * 1000))
    trainer.step = int(meta.get("steps", 0))
    trainer.train_seconds = float(meta.get("train_minutes", 0.0)) * 60
    trainer.ada.p = float(meta.get("augment_p", 0.0))
    return "G and G_ema from the model; a new D"

"""The garment classifier: a small CNN that names a garment's type and colour, and its file format.

Its penultimate layer is the feature space that FD/precision/recall, the inversion's perceptual
loss and direction measurements share. Inference needs only this module; training it lives in
``clothinggan.train.classifier``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from clothinggan.errors import CheckpointError
from clothinggan.paths import MODELS_DIR

FORMAT = "clothinggan-garment-classifier"
DEFAULT_PATH = MODELS_DIR / "garment-classifier.safetensors"
OTHER = "Other"
HEADS = ("articleType", "baseColour")


class ClassifierFormatError(CheckpointError, ValueError):
    """A classifier file is missing its config or does not match it (also a ValueError for callers
    that guard optional loading with ``except ValueError``)."""


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and label vocabulary; saved as JSON beside the weights and restores the model exactly."""

    article_types: tuple[str, ...]  # class names of the articleType head, "Other" last
    colours: tuple[str, ...]  # class names of the baseColour head, "Other" last
    resolution: int = 64  # input side; other sizes are resized to it
    channels: tuple[int, ...] = (32, 64, 128, 256)  # one conv stage per entry, halving resolution between
    feature_dim: int = 256  # width of features(x)

    def __post_init__(self) -> None:
        if len(self.article_types) < 2 or len(self.colours) < 2:
            raise ValueError("each head needs at least two classes")
        if self.feature_dim < 1 or not self.channels:
            raise ValueError("feature_dim and channels must be positive")

    @classmethod
    def from_json(cls, text: str) -> "ClassifierConfig":
        raw = json.loads(text)
        return cls(article_types=tuple(raw["article_types"]), colours=tuple(raw["colours"]),
                   resolution=int(raw["resolution"]), channels=tuple(raw["channels"]),
                   feature_dim=int(raw["feature_dim"]))


def _conv_stage(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # One conv per stage: two per stage tripled the CPU training time and passed the 5 MB budget.
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class GarmentClassifier(nn.Module):
    """Images (N, 3, R, R) in [-1, 1] → articleType and baseColour logits; ``features`` → (N, feature_dim)."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        # A strided stem keeps the 64-px stage cheap on CPU; the first stage then runs at 32 px.
        self.stem = _conv_stage(3, ch[0], stride=2)
        self.stages = nn.ModuleList(_conv_stage(cin, cout) for cin, cout in zip((ch[0],) + ch[:-1], ch))
        self.embed = nn.Sequential(nn.Linear(ch[-1], config.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.type_head = nn.Linear(config.feature_dim, len(config.article_types))
        self.colour_head = nn.Linear(config.feature_dim, len(config.colours))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N, feature_dim): the shared feature space for metrics and losses."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got {tuple(x.shape)}")
        r = self.config.resolution
        if x.shape[-2:] != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", antialias=True, align_corners=False)
        h = self.stem(x)
        for i, stage in enumerate(self.stages):
            h = stage(h if i == 0 else F.max_pool2d(h, 2))
        # Mean keeps colour/texture statistics, max keeps localized details (collars, prints).
        pooled = h.mean((2, 3)) + h.amax((2, 3))
        return self.embed(pooled)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.dropout(self.features(x))
        return self.type_head(f), self.colour_head(f)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, list[str]]:
        """Class names per image: {"articleType": [...], "baseColour": [...]}."""
        type_logits, colour_logits = self(x)
        return {"articleType": [self.config.article_types[i] for i in type_logits.argmax(1).tolist()],
                "baseColour": [self.config.colours[i] for i in colour_logits.argmax(1).tolist()]}


def save_classifier(model: GarmentClassifier, path: str | Path, metrics: dict[str, float]) -> Path:
    """Weights as safetensors; config, vocabulary and measured accuracies as JSON metadata (+ a .json copy)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(asdict(model.config)), "metrics": json.dumps(metrics)}
    save_file(state, str(path), metadata=meta)
    path.with_suffix(".json").write_text(json.dumps({"config": asdict(model.config), "metrics": metrics}, indent=2) + "\n")
    return path


def read_metadata(path: str | Path = DEFAULT_PATH) -> dict[str, dict]:
    """{"config": {...}, "metrics": {...}} from a classifier file's header, without loading weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own types for corrupt headers
        raise ClassifierFormatError(path, f"not a safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise ClassifierFormatError(path, f"not a garment classifier (format {meta.get('format')!r})")
    return {"config": json.loads(meta["config"]), "metrics": json.loads(meta.get("metrics", "{}"))}


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu") -> GarmentClassifier:
    """The garment classifier (shipped one by default) in eval mode with gradients off."""
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no garment classifier there (rebuild: python -m clothinggan.train.classifier)")
    meta = read_metadata(path)
    model = GarmentClassifier(ClassifierConfig.from_json(json.dumps(meta["config"])))
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ClassifierFormatError(path, f"weights do not match the saved config ({exc})") from exc
    model.metrics = meta["metrics"]  # measured holdout accuracies, reported next to metrics that use it
    return model.to(device).eval().requires_grad_(False)


def resolve_classifier(spec: Any, device: torch.device) -> Any | None:
    """``"auto"`` → the shipped classifier on ``device`` (None if there is none); None → None; a model → itself."""
    if spec is None:
        return None
    if spec != "auto":
        return spec
    try:
        clf = load_classifier()
    except (OSError, FileNotFoundError, RuntimeError, ValueError):
        return None  # no classifier shipped: the multi-scale pixel loss stands in
    return clf.to(device).eval().requires_grad_(False)

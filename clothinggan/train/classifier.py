"""A small CNN that names a garment's type and colour; its penultimate layer is our feature space.

FD/precision/recall, the inversion's perceptual loss and direction measurements all use its features.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from clothinggan.errors import CheckpointError
from clothinggan.paths import MODELS_DIR
from clothinggan.train.data import PreparedData, Split, images_to_tensor, prepare_dataset

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


# -- labels ----------------------------------------------------------------------------------
def top_classes(values: Sequence[str], k: int) -> tuple[str, ...]:
    """The k most frequent values (ties by name), plus "Other" for the rest."""
    counts = Counter(v for v in values if v and v != OTHER)
    ranked = sorted(counts, key=lambda v: (-counts[v], v))[:k]
    return tuple(ranked) + (OTHER,)


def encode_labels(values: Sequence[str], classes: Sequence[str]) -> torch.Tensor:
    """Class indices; values outside ``classes`` map to "Other" (the last class)."""
    index = {c: i for i, c in enumerate(classes)}
    other = index[OTHER]
    return torch.tensor([index.get(str(v), other) for v in values], dtype=torch.long)


# -- training --------------------------------------------------------------------------------
def shift_and_flip(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random x-flip and integer shifts up to ``max_shift`` px, uncovered area filled with white."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if max_shift <= 0:
        return x
    pad = F.pad(x, (max_shift,) * 4, value=1.0)  # 1.0 is white in [-1, 1]
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)).tolist()
    size = x.shape[-1]
    return torch.stack([pad[i, :, dy[i]:dy[i] + size, dx[i]:dx[i] + size] for i in range(n)])


def train_classifier(data: PreparedData, epochs: int = 8, batch: int = 128, lr: float = 3e-3,
                     n_types: int = 20, n_colours: int = 12, max_shift: int = 4, seed: int = 0,
                     progress: bool = True) -> tuple[GarmentClassifier, dict[str, float]]:
    """Train on ``data.train`` and measure accuracy on ``data.holdout``; returns (model in eval mode, metrics)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    config = ClassifierConfig(article_types=top_classes(data.train.labels["articleType"], n_types),
                              colours=top_classes(data.train.labels["baseColour"], n_colours),
                              resolution=data.resolution)
    model = GarmentClassifier(config)
    images = torch.as_tensor(data.train.images)
    targets = _targets(data.train, config)
    steps = epochs * math.ceil(len(images) / batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            x = shift_and_flip(images_to_tensor(images[idx]), max_shift, gen)
            type_logits, colour_logits = model(x)
            loss = F.cross_entropy(type_logits, targets[0][idx]) + F.cross_entropy(colour_logits, targets[1][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if progress:
            acc = evaluate_accuracy(model, data.holdout)
            print(f"epoch {epoch + 1}/{epochs}: loss {total / len(images):.3f}, holdout "
                  f"type {acc['articleType']:.3f} colour {acc['baseColour']:.3f} ({time.perf_counter() - start:.0f}s)")
    model.eval()
    metrics = {f"holdout_accuracy_{k}": v for k, v in evaluate_accuracy(model, data.holdout).items()}
    metrics.update({f"majority_baseline_{h}": _majority_rate(t) for h, t in zip(HEADS, _targets(data.holdout, config))})
    metrics.update(holdout_size=float(len(data.holdout)), train_size=float(len(data.train)), epochs=float(epochs),
                   train_seconds=round(time.perf_counter() - start, 1))
    return model, metrics


def _targets(split: Split, config: ClassifierConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return (encode_labels(split.labels["articleType"], config.article_types),
            encode_labels(split.labels["baseColour"], config.colours))


def _majority_rate(targets: torch.Tensor) -> float:
    return float(torch.bincount(targets).max()) / max(len(targets), 1)


@torch.no_grad()
def evaluate_accuracy(model: GarmentClassifier, split: Split, batch: int = 512) -> dict[str, float]:
    """Top-1 accuracy of each head on a split (labels outside the vocabulary count as "Other")."""
    was_training = model.training
    model.eval()
    targets = _targets(split, model.config)
    correct = [0, 0]
    for i in range(0, len(split), batch):
        logits = model(images_to_tensor(split.images[i:i + batch]))
        for h in range(2):
            correct[h] += int((logits[h].argmax(1) == targets[h][i:i + batch]).sum())
    model.train(was_training)
    return {head: c / max(len(split), 1) for head, c in zip(HEADS, correct)}


# -- files -----------------------------------------------------------------------------------
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clothinggan.train.classifier", description=__doc__)
    parser.add_argument("--data", required=True, help="images.zip or the data-set folder (with styles.csv)")
    parser.add_argument("--out", default=str(DEFAULT_PATH), help="where to write the .safetensors")
    parser.add_argument("--epochs", type=int, default=8, help="the shipped model: 8 (about 10 min on 2 shared cores)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = prepare_dataset(args.data, resolution=64, progress=True)
    model, metrics = train_classifier(data, epochs=args.epochs, batch=args.batch, seed=args.seed)
    out = save_classifier(model, args.out, metrics)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

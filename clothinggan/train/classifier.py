"""Training the garment classifier (the model and its file format are in ``clothinggan.classifier``).

Run: ``python -m clothinggan.train.classifier --data path/to/fashion-product-images-small``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from typing import Sequence

import torch
import torch.nn.functional as F

from clothinggan.classifier import (DEFAULT_PATH, FORMAT, HEADS, OTHER, ClassifierConfig,  # noqa: F401 - re-exported
                                    ClassifierFormatError, GarmentClassifier, load_classifier, read_metadata,
                                    save_classifier)
from clothinggan.train.data import PreparedData, Split, images_to_tensor, prepare_dataset

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

"""Train the inversion encoder of one generator, on its own samples and on real training photos.

Generated pairs teach it the W+ code exactly; real photos (cycle loss) teach it the photos users upload.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from clothinggan import precision
from clothinggan.encoder import Encoder, load_encoder, new_encoder, save_encoder
from clothinggan.classifier import resolve_classifier
from clothinggan.invert import LossWeights, ReconstructionLoss

# Real photos of the training split only; the hold-out split is for bench/ and never seen here.
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-product-images-small"


@dataclass
class EncoderTrainConfig:
    """Hyper-parameters of encoder training.

    batch:        pairs per latent-regression step (cheap: no generator backward).
    image_batch:  images per step that re-synthesises the prediction (costly: generator backward).
    image_every:  run one image-space step (alternating generated / real) every this many steps.
    pool_size:    generated pairs kept and re-used, so each generator forward feeds many steps.
    fresh:        new generated pairs per step.
    psi_range:    truncation of generated pairs, drawn uniformly per sample.
    lr:           Adam learning rate at the start; it decays (cosine, over the time budget) to lr_final.
    """

    batch: int = 32
    image_batch: int = 8
    image_every: int = 3
    pool_size: int = 4096
    fresh: int = 8
    psi_range: tuple[float, float] = (0.5, 1.0)
    lr: float = 2e-3
    lr_final: float = 1e-4
    latent_weight: float = 1.0
    image_weight: float = 1.0


class PairPool:
    """A ring buffer of generated (W+, image) pairs with per-sample truncation."""

    def __init__(self, G: Any, cfg: EncoderTrainConfig, seed: int) -> None:
        self.G, self.cfg = G, cfg
        self.rng = torch.Generator().manual_seed(seed)
        self.ws: list[torch.Tensor] = []
        self.images: list[torch.Tensor] = []
        self.next = 0

    def add(self, n: int) -> None:
        ws = sample_truncated_ws(self.G, n, self.cfg.psi_range, self.rng)
        images = self.G.synthesis(ws, noise_mode="const").float().cpu()
        for w, im in zip(ws.cpu(), images):
            if len(self.ws) < self.cfg.pool_size:
                self.ws.append(w)
                self.images.append(im)
            else:
                self.ws[self.next], self.images[self.next] = w, im
                self.next = (self.next + 1) % self.cfg.pool_size

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.ws), (n,), generator=self.rng).tolist()
        return torch.stack([self.ws[i] for i in idx]), torch.stack([self.images[i] for i in idx])


def sample_truncated_ws(G: Any, n: int, psi_range: tuple[float, float], rng: torch.Generator) -> torch.Tensor:
    """z → w with psi ~ U(psi_range) per sample, broadcast to W+ (n, num_ws, w_dim)."""
    z = torch.randn(n, G.z_dim, generator=rng)
    psi = torch.empty(n, 1).uniform_(*psi_range, generator=rng).to(G.device)
    w_avg = G.w_avg.detach().to(G.device)
    w = w_avg + psi * (G.mapping(z, psi=1.0) - w_avg)
    return w.unsqueeze(1).repeat(1, G.num_ws, 1)


def real_photo_sampler(train_images: torch.Tensor | None, seed: int) -> Callable[[int], torch.Tensor] | None:
    """uint8 (N, 3, R, R) training photos → a sampler of float [-1, 1] batches (None without photos)."""
    if train_images is None or len(train_images) == 0:
        return None
    rng = torch.Generator().manual_seed(seed + 1)

    def sample(n: int) -> torch.Tensor:
        idx = torch.randint(len(train_images), (n,), generator=rng)
        return torch.as_tensor(train_images[idx]).float() / 127.5 - 1

    return sample


def image_step_loss(G: Any, encoder: Encoder, images: torch.Tensor, classifier: Any | None,
                    target_ws: torch.Tensor | None = None) -> torch.Tensor:
    """Re-synthesise the encoder's guess and compare it with the input in pixels and features."""
    images = images.to(G.device)
    pred = encoder(images)
    recon = G.synthesis(pred, noise_mode="const", differentiable=True)
    recon_loss = ReconstructionLoss(images, LossWeights(), classifier)(recon).mean()
    if target_ws is None:
        return recon_loss
    return recon_loss + latent_loss(encoder, pred, target_ws.to(G.device))


def latent_loss(encoder: Encoder, pred: torch.Tensor, target_ws: torch.Tensor) -> torch.Tensor:
    # In units of W's spread, so every dimension counts alike whatever its scale.
    return ((pred.float() - target_ws.float()) / encoder.w_std).square().mean()


def train_encoder(G: Any, *, minutes: float, cfg: EncoderTrainConfig = EncoderTrainConfig(),
                  train_images: torch.Tensor | None = None, classifier: Any | None = None,
                  init: Encoder | None = None, seed: int = 0, max_steps: int | None = None,
                  dtype: torch.dtype = torch.float32,
                  log: Callable[[str], None] = print) -> tuple[Encoder, dict[str, Any]]:
    """Train for ``minutes`` of wall time (or ``max_steps``); return the encoder and a summary.

    ``dtype=torch.bfloat16`` runs each step's forward passes under bf16 autocast (weights and Adam
    stay fp32): on CPUs with native bf16 about 1.6x the steps per minute, so a time budget buys more.
    """
    torch.manual_seed(seed)
    encoder = init if init is not None else new_encoder(G, seed=seed)
    encoder = encoder.to(G.device).train().requires_grad_(True)
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    pool = PairPool(G, cfg, seed)
    pool.add(max(cfg.batch, 64))
    real = real_photo_sampler(train_images, seed)
    start = time.monotonic()
    deadline = start + minutes * 60
    step, recent = 0, {"latent": math.nan, "generated": math.nan, "real": math.nan}
    autocast = torch.autocast(G.device.type, dtype=dtype, enabled=dtype != torch.float32)
    while time.monotonic() < deadline and (max_steps is None or step < max_steps):
        with autocast:
            pool.add(cfg.fresh)
            ws, images = pool.batch(cfg.batch)
            loss = cfg.latent_weight * latent_loss(encoder, encoder(images.to(G.device)), ws.to(G.device))
            recent["latent"] = float(loss.detach())
            if step % cfg.image_every == 0:
                kind = "real" if real is not None and (step // cfg.image_every) % 2 else "generated"
                if kind == "real":
                    img_loss = image_step_loss(G, encoder, real(cfg.image_batch), classifier)
                else:
                    gws, gimages = pool.batch(cfg.image_batch)
                    img_loss = image_step_loss(G, encoder, gimages, classifier, gws)
                recent[kind] = float(img_loss.detach())
                loss = loss + cfg.image_weight * img_loss
        done = max((time.monotonic() - start) / (minutes * 60), step / max_steps if max_steps else 0.0)
        for group in opt.param_groups:  # runs are minutes long: decay by elapsed fraction, not by step
            group["lr"] = cfg.lr_final + (cfg.lr - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in recent.items()))
    encoder.eval().requires_grad_(False)
    summary = {"steps": step, "minutes": minutes, "pairs_seen": step * cfg.batch, "seed": seed,
               "real_photos": 0 if train_images is None else int(len(train_images)),
               "precision": precision.label(dtype),
               "perceptual": classifier is not None, **{f"final_{k}": v for k, v in recent.items()}}
    return encoder, summary


def load_train_photos(source: Path, resolution: int) -> torch.Tensor | None:
    """The data module's training split (uint8 N×3×R×R); None when the data set is not there."""
    try:
        from clothinggan.train.data import prepare_dataset

        return torch.as_tensor(prepare_dataset(source, resolution=resolution).train.images)
    except (ImportError, OSError, FileNotFoundError, ValueError) as exc:
        print(f"no real photos ({exc}); training on generated pairs only")
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clothinggan.train.encoder_training", description=__doc__)
    parser.add_argument("--model", default="default", help="generator to train the encoder for")
    parser.add_argument("--out", required=True, help="encoder file to write (.encoder.safetensors)")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall-clock training budget")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="training photos (the data set folder)")
    parser.add_argument("--no-real", action="store_true", help="train on generated pairs only")
    parser.add_argument("--init", help="warm start from this encoder file (any model with the same shapes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--precision", default="auto", choices=precision.CHOICES,
                        help="bf16 autocast for the steps (auto: where this machine has native bf16)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from clothinggan.loading import load_generator

    G = load_generator(args.model)
    photos = None if args.no_real else load_train_photos(Path(args.data), G.resolution)
    classifier = resolve_classifier("auto", G.device)
    init = _warm_start(G, args.init) if args.init else None
    print(f"training the encoder of {G} for {args.minutes} min "
          f"({'no' if photos is None else len(photos)} real photos, classifier: {classifier is not None})")
    encoder, summary = train_encoder(G, minutes=args.minutes, train_images=photos, classifier=classifier,
                                     init=init, seed=args.seed, dtype=precision.resolve(args.precision, G.device))
    save_encoder(encoder, args.out, G.fingerprint, meta={"generator": G.name, **summary})
    print(f"wrote {args.out}: {summary}")
    return 0


def _warm_start(G: Any, path: str) -> Encoder:
    """Copy every tensor of a previous encoder whose shape fits (its fingerprint may differ)."""
    old = load_encoder(path)
    fresh = new_encoder(G)
    own = fresh.state_dict()
    keep = {k: v for k, v in old.state_dict().items()
            if k in own and v.shape == own[k].shape and k not in ("w_avg", "w_std")}
    fresh.load_state_dict(keep, strict=False)
    print(f"warm start: {len(keep)}/{len(own)} tensors from {path}")
    return fresh


if __name__ == "__main__":
    raise SystemExit(main())

"""Photo → W+ design: the encoder's one-pass guess, optionally refined by optimising the latent.

Only the latent is optimised; the generator is shared read-only, so many sessions can invert at once.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from clothinggan.classifier import resolve_classifier
from clothinggan.encoder import Encoder, find_encoder, load_encoder
from clothinggan.images import from_pil, to_pil

if TYPE_CHECKING:
    from clothinggan.designs import Design

# 200 steps took 15 s per photo for the 64-px model on the 2-core CPU while it was also training a GAN
# (load 8), inside the 20 s budget; the app's slider goes beyond.
DEFAULT_REFINE_STEPS = 200
PREVIEW_EVERY = 10
CLASSIFIER_SIZE = 64

ProgressFn = Callable[[int, int, list[Image.Image]], "bool | None"]
StopFn = Callable[[], bool]
EncoderSpec = Literal["auto"] | str | Path | Encoder | None | bool


@dataclass(frozen=True)
class LossWeights:
    """Weights of the reconstruction loss; the defaults were picked on held-out photos (see bench/)."""

    mse: float = 1.0
    l1: float = 0.5
    # Classifier features are pooled and easy to match without looking alike: at 0.5 they cost
    # 3 dB of PSNR on held-out photos; 0.05 cut the feature distance 3× for 0.6 dB.
    perceptual: float = 0.05
    w_reg: float = 1e-3      # pull toward w_avg (in units of W's spread), keeps designs on-manifold
    layer_reg: float = 1e-2  # pull W+ layers toward their mean, so W-space edits still act


class ReconstructionLoss:
    """Pixel MSE + L1, plus distance in the garment classifier's feature space.

    The classifier sees 64-px images (its training size), whatever the model's resolution; without a
    classifier a multi-scale pixel loss stands in for the perceptual term.
    """

    def __init__(self, target: torch.Tensor, weights: LossWeights = LossWeights(),
                 classifier: Any | None = None) -> None:
        self.weights = weights
        self.classifier = classifier
        self.target = target
        self.target_features = None
        if classifier is not None:
            with torch.no_grad():
                self.target_features = self._features(target)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        images = _resize(images, CLASSIFIER_SIZE)
        return F.normalize(self.classifier.features(images).flatten(1), dim=1)

    def perceptual(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image perceptual distance (N,)."""
        if self.classifier is None:
            return multiscale_l1(images, self.target.expand_as(images))
        return (self._features(images) - self.target_features).square().sum(dim=1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image loss (N,) of images against the target (broadcast)."""
        target = self.target.expand_as(images)
        w = self.weights
        loss = w.mse * (images - target).square().mean(dim=(1, 2, 3))
        loss = loss + w.l1 * (images - target).abs().mean(dim=(1, 2, 3))
        if w.perceptual:
            loss = loss + w.perceptual * self.perceptual(images)
        return loss


def multiscale_l1(a: torch.Tensor, b: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """L1 at 1/2, 1/4, … resolution: coarse shape and colour, which plain per-pixel loss underweights."""
    total = torch.zeros(a.shape[0], device=a.device)
    for _ in range(scales):
        if a.shape[-1] < 4:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        total = total + (a - b).abs().mean(dim=(1, 2, 3))
    return total


def invert(G: Any, image: Image.Image, *, steps: int = 0, w_steps: int | None = None, lr: float = 0.1,
           encoder: EncoderSpec = "auto", progress: ProgressFn | None = None, name: str | None = None,
           perceptual_weight: float = LossWeights.perceptual, seed: int = 0, filename: str | None = None,
           crop: tuple[float, float, float, float] | None = None,
           classifier: Any | None | str = "auto", stop: StopFn | None = None) -> "Design":
    """Invert a garment photo into a Design of G.

    steps:      refinement steps after the starting guess (0: the encoder's guess only, fast).
    w_steps:    of those, how many optimise one shared w before every W+ layer is freed
                (default steps // 3): a shared w first finds the garment, W+ then fits the details.
    lr:         Adam step size, in units of W's per-dimension spread (0.1 beat 0.05 by 0.4 dB at 100 steps).
    encoder:    "auto" (the encoder shipped beside the model, if trained for it), a path, an Encoder,
                or None/False to start from w_avg.
    progress:   progress(step, total, [preview]) every few steps; returning False stops early and
                keeps the best latent so far.
    perceptual_weight: weight of the classifier-feature term relative to pixel MSE.
    seed:       seeds the latent noise of early refinement; the same inputs and seed give the same design.
    filename, crop: where the photo came from (kept in provenance) and an optional crop in fractions.
    classifier: "auto" (the garment classifier when available), an object with ``features``, or None.
    stop:       asked before every refinement step; True ends refinement there and keeps the best latent
                so far. A Stop button on another thread needs this: ``progress`` only runs every few steps.
    """
    from clothinggan.designs import Design
    from clothinggan.uploads import frame_upload

    steps, w_steps = _check_steps(steps, w_steps)
    framed = frame_upload(image.convert("RGB"), G.resolution, crop)
    target = from_pil([framed]).to(G.device)
    enc = resolve_encoder(G, encoder)
    with torch.no_grad():
        ws = enc(target.to(next(enc.parameters()).device)).to(G.device) if enc is not None else _mean_ws(G)
    steps_run = 0
    if steps > 0:
        loss_fn = ReconstructionLoss(target, LossWeights(perceptual=perceptual_weight),
                                     resolve_classifier(classifier, G.device))
        ws, steps_run = refine(G, ws, loss_fn, steps=steps, w_steps=w_steps, lr=lr, progress=progress, seed=seed,
                               stop=stop)
    filename = filename if filename is not None else Path(getattr(image, "filename", "") or "").name
    provenance = {"kind": "inverted", "filename": filename, "steps": steps_run, "encoder": enc is not None,
                  "seed": int(seed)}
    return Design(ws=ws[0].detach().cpu().float().numpy(), model_id=G.fingerprint,
                  name=name or (f"upload {Path(filename).stem}" if filename else "upload"),
                  provenance=provenance)


def refine(G: Any, ws0: torch.Tensor, loss_fn: ReconstructionLoss, *, steps: int, w_steps: int,
           lr: float = 0.1, progress: ProgressFn | None = None, seed: int = 0,
           stop: StopFn | None = None) -> tuple[torch.Tensor, int]:
    """Optimise the latent from ws0 (1, num_ws, w_dim); return the best ws seen and the steps run.

    Ending early (``stop`` says so, or ``progress`` returns False) still scores the latest latent, so the
    steps taken since the last preview count.
    """
    w_avg = G.w_avg.detach().to(G.device, torch.float32)
    w_std = w_spread(G)
    noise_rng = torch.Generator(device="cpu").manual_seed(int(seed))
    u0 = ((ws0.detach().to(G.device) - w_avg) / w_std).float()  # optimise in units of W's spread
    shared = torch.zeros(1, 1, G.w_dim, device=G.device, requires_grad=True)
    best = _Best()
    steps_run = steps
    with torch.enable_grad():
        opt = torch.optim.Adam([shared], lr=lr, betas=(0.9, 0.999))
        u_plus: torch.Tensor | None = None
        for step in range(steps):
            if stop is not None and stop():
                steps_run = step
                break
            if step == w_steps:  # free every layer, starting where the shared phase ended
                u_plus = (u0 + shared.detach()).clone().requires_grad_(True)
                opt = torch.optim.Adam([u_plus], lr=lr, betas=(0.9, 0.999))
            u = u0 + shared if u_plus is None else u_plus
            phase_t, phase_len = (step, w_steps) if u_plus is None else (step - w_steps, steps - w_steps)
            _set_lr(opt, lr * _lr_schedule(phase_t / max(1, phase_len)))
            noise = _latent_noise(step, steps, u.shape, noise_rng).to(G.device)
            ws = w_avg + w_std * (u + noise)
            images = G.synthesis(ws, noise_mode="const", differentiable=True)
            loss = loss_fn(images).sum() + _regulariser(u, loss_fn.weights)
            best.offer(float(loss.detach()), w_avg + w_std * u.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress is not None and ((step + 1) % PREVIEW_EVERY == 0 or step + 1 == steps):
                if progress(step + 1, steps, to_pil(images.detach())) is False:
                    steps_run = step + 1
                    break
    latest = (u0 + shared if u_plus is None else u_plus).detach()  # after the last optimiser step
    return _final(G, best, latest, w_avg, w_std, loss_fn), steps_run


def resolve_encoder(G: Any, spec: EncoderSpec) -> Encoder | None:
    """Turn the ``encoder`` argument into an Encoder for G, or None for a w_avg start."""
    if spec is None or spec is False:
        return None
    if isinstance(spec, Encoder):
        return spec.eval()
    if spec == "auto" or spec is True:
        return find_encoder(G)
    return load_encoder(spec, G.fingerprint).to(G.device)  # explicit file: a mismatch is an error


def w_spread(G: Any, n: int = 2048) -> torch.Tensor:
    """Per-dimension standard deviation of W, from a fixed private sample (deterministic)."""
    return G.sample_ws(n, seed=123).to(G.device).float().std(dim=0).clamp_min(1e-4)


# -- the command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``clothinggan invert``."""
    parser.add_argument("--model", default="default", help="model name or file (default: the embedded model)")
    parser.add_argument("--image", required=True, help="photo of a garment (JPEG, PNG or WebP)")
    parser.add_argument("--steps", type=int, default=DEFAULT_REFINE_STEPS,
                        help=f"refinement steps after the encoder's guess (0: guess only; default {DEFAULT_REFINE_STEPS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the refinement noise")
    parser.add_argument("--no-encoder", action="store_true", help="start from the average design instead")
    parser.add_argument("--out", help="write the reconstruction (PNG) here")
    parser.add_argument("--design-out", help="write the design (NPZ) here")


def cli_main(args: argparse.Namespace) -> int:
    """Run ``clothinggan invert``; user errors print one ``error:`` line and return 2, like every command."""
    import sys

    from clothinggan.errors import ClothingGANError
    from clothinggan.loading import load_generator
    from clothinggan.uploads import read_upload

    try:
        data = Path(args.image).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.image}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        G = load_generator(args.model)
        photo = read_upload(data, Path(args.image).name)
        design = invert(G, photo, steps=max(0, int(args.steps)), encoder=None if args.no_encoder else "auto",
                        seed=int(args.seed), filename=Path(args.image).name, progress=_cli_progress)
        _write_outputs(G, design, args)
    except ClothingGANError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cli_progress(step: int, total: int, _previews: list[Image.Image]) -> None:
    import sys

    print(f"\rrefining {step}/{total}", end="\n" if step == total else "", file=sys.stderr, flush=True)


def _write_outputs(G: Any, design: Any, args: argparse.Namespace) -> None:
    import numpy as np

    from clothinggan.store import LatentStore

    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        to_pil(G.synthesis(torch.tensor(np.asarray(design.ws))[None]))[0].save(args.out)
        print(f"wrote {args.out}")
    if args.design_out:
        Path(args.design_out).parent.mkdir(parents=True, exist_ok=True)
        store = LatentStore(model_id=G.fingerprint)
        store.add(design)
        store.save(args.design_out)  # the same npz every page and `clothinggan edit` read
        print(f"wrote {args.design_out}")


# -- small pieces ---------------------------------------------------------------------------------
class _Best:
    """The lowest-loss latent seen, so stopping early or a late loss bump never loses progress."""

    def __init__(self) -> None:
        self.loss = math.inf
        self.ws: torch.Tensor | None = None

    def offer(self, loss: float, ws: torch.Tensor) -> None:
        if loss < self.loss:
            self.loss, self.ws = loss, ws.clone()


def _final(G: Any, best: _Best, u: torch.Tensor, w_avg: torch.Tensor, w_std: torch.Tensor,
           loss_fn: ReconstructionLoss) -> torch.Tensor:
    """Score the last update too (the loop only scored latents before each step)."""
    ws = w_avg + w_std * u.detach()
    with torch.no_grad():
        loss = float(loss_fn(G.synthesis(ws, noise_mode="const")).sum() + _regulariser(u.detach(), loss_fn.weights))
    best.offer(loss, ws)
    assert best.ws is not None
    return best.ws


def _regulariser(u: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    toward_mean = u.square().mean()
    layer_spread = (u - u.mean(dim=1, keepdim=True)).square().mean()
    return weights.w_reg * toward_mean + weights.layer_reg * layer_spread


def _lr_schedule(t: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """NVlabs projector schedule: short warm-up, cosine ramp-down over the last quarter of a phase."""
    down = min(1.0, (1.0 - t) / rampdown)
    return (0.5 - 0.5 * math.cos(down * math.pi)) * min(1.0, t / rampup if rampup else 1.0) + 1e-3


def _latent_noise(step: int, steps: int, shape: Sequence[int], rng: torch.Generator,
                  scale: float = 0.05, ramp: float = 0.5) -> torch.Tensor:
    """Decaying noise on the latent early on, to shake it out of poor local minima (NVlabs projector)."""
    strength = scale * max(0.0, 1.0 - step / (ramp * steps)) ** 2
    noise = torch.randn(tuple(shape), generator=rng)
    return noise * strength


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def _mean_ws(G: Any) -> torch.Tensor:
    return G.w_avg.detach().to(G.device, torch.float32).reshape(1, 1, -1).repeat(1, G.num_ws, 1)


def _check_steps(steps: int, w_steps: int | None) -> tuple[int, int]:
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    w_steps = steps // 3 if w_steps is None else int(w_steps)
    if not 0 <= w_steps <= steps:
        raise ValueError(f"w_steps must be between 0 and steps ({steps}), got {w_steps}")
    return steps, w_steps


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    if images.shape[-1] > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)

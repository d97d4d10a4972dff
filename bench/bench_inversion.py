"""How well do uploads invert? PSNR, SSIM and classifier-feature distance on held-out photos.

Runs every starting point / refinement side by side in one process, and checks that the model's
named directions still act on inverted designs as they do on generated ones.

    python bench/bench_inversion.py --model default --n 32 --steps 150
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clothinggan.images import from_pil  # noqa: E402
from clothinggan.invert import DEFAULT_REFINE_STEPS, invert, resolve_encoder  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-product-images-small"


# -- metrics --------------------------------------------------------------------------------------
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.clamp(-1, 1) - b.clamp(-1, 1)).square().mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(4.0 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float()


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004): 11×11 Gaussian window, σ 1.5, on [0, 1], mean over channels."""
    a = (a.clamp(-1, 1) + 1) / 2
    b = (b.clamp(-1, 1) + 1) / 2
    c = a.shape[1]
    win = gaussian_window(size, sigma).to(a)[None, None].repeat(c, 1, 1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, win, groups=c)  # "valid" window positions only, as the reference code

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def feature_distance(classifier: Any | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − cosine similarity of the garment classifier's features (NaN without a classifier)."""
    if classifier is None:
        return torch.full((a.shape[0],), float("nan"))
    with torch.no_grad():
        fa, fb = classifier.features(_to64(a)), classifier.features(_to64(b))
    return 1 - F.cosine_similarity(fa, fb, dim=1)


def _to64(x: torch.Tensor) -> torch.Tensor:
    return x if x.shape[-1] == 64 else F.interpolate(x, size=(64, 64), mode="area" if x.shape[-1] > 64 else "bilinear")


# -- data -----------------------------------------------------------------------------------------
def holdout_photos(source: Path, n: int) -> list[Image.Image]:
    """n photos spread evenly over the hold-out split (never seen by the GAN, encoder or classifier)."""
    from clothinggan.train.data import prepare_dataset

    holdout = prepare_dataset(source, resolution=64).holdout
    idx = np.linspace(0, len(holdout) - 1, num=min(n, len(holdout))).round().astype(int)
    return [Image.fromarray(holdout.images[i].transpose(1, 2, 0)) for i in idx]


# -- inversion runs -------------------------------------------------------------------------------
def run_method(G: Any, photos: list[Image.Image], steps: int, encoder: Any) -> tuple[np.ndarray, float]:
    """Invert every photo; return ws (N, num_ws, w_dim) and seconds per photo."""
    t0 = time.perf_counter()
    ws = [np.asarray(invert(G, im, steps=steps, encoder=encoder).ws) for im in photos]
    return np.stack(ws), (time.perf_counter() - t0) / len(photos)


def render(G: Any, ws: np.ndarray) -> torch.Tensor:
    return G.synthesis(torch.tensor(ws), noise_mode="const").cpu()


def quality_rows(G: Any, classifier: Any | None, photos: list[Image.Image], methods: dict[str, tuple[np.ndarray, float]]
                 ) -> list[tuple[str, float, float, float, float]]:
    target = from_pil(photos, resolution=G.resolution)
    rows = []
    for name, (ws, seconds) in methods.items():
        recon = render(G, ws)
        rows.append((name, float(psnr(recon, target).mean()), float(ssim(recon, target).mean()),
                     float(feature_distance(classifier, recon, target).mean()), seconds))
    return rows


# -- directions -----------------------------------------------------------------------------------
def direction_target(classifier: Any, direction: Any) -> tuple[str, int, str] | None:
    """What a direction is meant to change: (head, class index, label), from its description or name.

    Shipped directions say what was measured ("… measured articleType:Shirts +0.31 …"); otherwise a
    class named in the direction's name counts; "lightness" is measured on the pixels.
    """
    heads = {"articleType": ("type", classifier.config.article_types),
             "baseColour": ("colour", classifier.config.colours)}
    found = re.search(r"(articleType|baseColour):([^+\-−,;()]+?)(?:\s[+\-−]|\s*$|[,;()])", direction.description or "")
    if found:
        head, classes = heads[found.group(1)]
        label = found.group(2).strip()
        if label in classes:
            return head, classes.index(label), label
    if "lightness" in (direction.description or "").lower():
        return "lightness", 0, "lightness"
    words = {w.rstrip("s") for w in re.findall(r"[a-z]+", direction.name.lower())}
    for head, classes in heads.values():
        for i, cls in enumerate(classes):
            if cls != "Other" and cls.lower().rstrip("s") in words:
                return head, i, cls
    return None


def measures(classifier: Any, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Class probabilities of both heads and mean lightness in [0, 1] (N, 1)."""
    with torch.no_grad():
        type_logits, colour_logits = classifier(_to64(images))
    lightness = ((images.clamp(-1, 1) + 1) / 2).mean(dim=(1, 2, 3))[:, None]
    return {"type": type_logits.softmax(1), "colour": colour_logits.softmax(1), "lightness": lightness}


def direction_rows(G: Any, classifier: Any, directions: list, inverted: np.ndarray, generated: np.ndarray,
                   strength: float = 2.0) -> list[tuple[str, str, float, float]]:
    """Mean change of each direction's target at +strength σ: on inverted vs on generated designs."""
    from clothinggan.directions import apply_edits

    designs = {"inverted": inverted, "generated": generated}
    base = {k: measures(classifier, render(G, ws)) for k, ws in designs.items()}
    rows = []
    for d in directions:
        edited = {k: measures(classifier, render(G, apply_edits(ws, [(d, strength)]))) for k, ws in designs.items()}
        target = direction_target(classifier, d)
        if target is None:  # judge it by the class it moves most on generated designs
            change = {h: (edited["generated"][h] - base["generated"][h]).mean(0) for h in ("type", "colour")}
            head = max(change, key=lambda h: float(change[h].abs().max()))
            i = int(change[head].abs().argmax())
            classes = classifier.config.article_types if head == "type" else classifier.config.colours
            target = (head, i, f"{classes[i]} (largest change)")
        head, i, label = target
        delta = {k: float((edited[k][head][:, i] - base[k][head][:, i]).mean()) for k in designs}
        rows.append((d.name, label, delta["inverted"], delta["generated"]))
    return rows


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=32, help="held-out photos to invert")
    parser.add_argument("--steps", type=int, default=DEFAULT_REFINE_STEPS, help="refinement steps")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--encoder", default="auto", help="encoder file (default: the model's shipped encoder)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from clothinggan.loading import load_generator

    G = load_generator(args.model)
    classifier = _classifier()
    encoder = resolve_encoder(G, args.encoder)
    photos = holdout_photos(Path(args.data), args.n)
    print(f"{G}\n{len(photos)} held-out photos, {args.steps} refinement steps, encoder: {encoder is not None}, "
          f"classifier: {classifier is not None}, torch threads: {torch.get_num_threads()}")
    if encoder is not None:
        print(f"encoder forward: {_encoder_seconds(encoder, G) * 1000:.1f} ms per photo")

    methods: dict[str, tuple[np.ndarray, float]] = {"w_avg (no inversion)": run_method(G, photos, 0, None)}
    if encoder is not None:
        methods["encoder only"] = run_method(G, photos, 0, encoder)
    if args.steps > 0:
        methods[f"w_avg start + {args.steps} steps"] = run_method(G, photos, args.steps, None)
        if encoder is not None:
            methods[f"encoder + {args.steps} steps"] = run_method(G, photos, args.steps, encoder)

    print(f"\n{'method':<28}{'PSNR dB':>9}{'SSIM':>8}{'feat dist':>11}{'s/photo':>9}")
    for name, p, s, fd, sec in quality_rows(G, classifier, photos, methods):
        print(f"{name:<28}{p:9.2f}{s:8.3f}{fd:11.4f}{sec:9.2f}")

    _print_directions(G, classifier, methods, len(photos))
    return 0


def _print_directions(G: Any, classifier: Any | None, methods: dict[str, tuple[np.ndarray, float]], n: int) -> None:
    from clothinggan.directions import load_directions, shipped_directions_path

    if classifier is None or shipped_directions_path(G) is None:
        print("\nno shipped directions for this model (or no classifier): direction check skipped")
        return
    directions = [d for d in load_directions(G) if d.source == "model"]
    inverted = list(methods.values())[-1][0]
    generated = G.seeds_to_ws(list(range(n)), psi=0.7).cpu().numpy()
    print(f"\ndirections at +2σ: mean change of the class probability ({list(methods)[-1]} vs generated, psi 0.7)")
    print(f"{'direction':<24}{'class':<30}{'inverted':>10}{'generated':>11}")
    for name, label, d_inv, d_gen in direction_rows(G, classifier, directions, inverted, generated):
        print(f"{name:<24}{label:<30}{d_inv:+10.3f}{d_gen:+11.3f}")


def _classifier() -> Any | None:
    try:
        from clothinggan.classifier import load_classifier

        return load_classifier()
    except (ImportError, OSError, ValueError) as exc:
        print(f"no garment classifier ({exc}); feature distance and direction check skipped")
        return None


def _encoder_seconds(encoder: Any, G: Any, repeats: int = 20) -> float:
    x = torch.zeros(1, 3, G.resolution, G.resolution)
    with torch.no_grad():
        encoder(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            encoder(x)
    return (time.perf_counter() - t0) / repeats


if __name__ == "__main__":
    raise SystemExit(main())

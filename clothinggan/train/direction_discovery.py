"""Find and name a model's edit directions by measuring them, not by guessing.

For each top principal component and each candidate layer range, the garment classifier is run
over designs pushed from −kσ to +kσ; the class or lightness that moves most (per unit of image
change) names the direction. Labels PCA misses get a supervised (InterFaceGAN-style) boundary.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from clothinggan.components import Components, components_for, save_components
from clothinggan.directions import (NamedDirection, apply_edits, direction_from_component, write_directions_file)
from clothinggan.mixing import fine_layer_groups, layer_groups


@dataclass(frozen=True)
class Measurement:
    """What moving along one direction does, averaged over many designs (strength −k → +k)."""

    name: str
    component: int | None
    layers: tuple[int, int]
    target: str             # "articleType:Shirts", "baseColour:Black" or "lightness"
    effect: float           # change of the target (probability, or lightness in [0, 1]) from −k to +k
    image_change: float     # mean |Δpixel| in [0, 1] from −k to +k: what the edit costs
    clarity: float          # |effect| / image_change
    towards: str            # what the positive end is ("Shirts", "darker", …)
    away_from: str          # what the negative end is


def candidate_ranges(num_ws: int) -> dict[str, tuple[int, int]]:
    """All ws, and the structure/style and coarse/middle/fine groups of mixing."""
    out = {"all": (0, num_ws)}
    for groups in (layer_groups(num_ws), fine_layer_groups(num_ws)):
        for name, r in groups.items():
            if len(r):
                out[name] = (r.start, r.stop)
    return out


def _classify(G: Any, clf: torch.nn.Module, ws: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    """Render ws and return class probabilities of both heads and the image lightness."""
    types, colours, light, images = [], [], [], []
    for i in range(0, len(ws), batch):
        img = G.synthesis(ws[i:i + batch]).clamp(-1, 1).cpu()
        with torch.no_grad():
            t, c = clf(img)
        types.append(t.softmax(1).numpy())
        colours.append(c.softmax(1).numpy())
        light.append(((img + 1) / 2).mean(dim=(1, 2, 3)).numpy())
        images.append(((img + 1) / 2).numpy())
    return {"articleType": np.concatenate(types), "baseColour": np.concatenate(colours),
            "lightness": np.concatenate(light), "images": np.concatenate(images)}


def measure(G: Any, clf: torch.nn.Module, direction: NamedDirection, base_ws: np.ndarray,
            k: float = 3.0, target: str | None = None) -> Measurement:
    """Measure one direction on base designs (N, num_ws, w_dim) between strength −k and +k.

    Without ``target`` the class (or lightness) that moves most is reported; ``towards`` is always
    what the positive end gains, so names describe the slider as it is.
    """
    lo = _classify(G, clf, apply_edits(base_ws, [(direction, -k)]))
    hi = _classify(G, clf, apply_edits(base_ws, [(direction, +k)]))
    image_change = float(np.abs(hi["images"] - lo["images"]).mean()) + 1e-6
    candidates: list[tuple[float, str, str, str]] = []  # (signed effect on target, target, towards, away)
    config = clf.config
    for head, names in (("articleType", config.article_types), ("baseColour", config.colours)):
        delta = (hi[head] - lo[head]).mean(axis=0)
        named = np.array([n != "Other" for n in names])  # "Other" names nothing a designer wants
        gain = names[int(np.argmax(np.where(named, delta, -np.inf)))]
        loss = names[int(np.argmin(np.where(named, delta, np.inf)))]
        for j, cls in enumerate(names):
            if cls != "Other":
                candidates.append((float(delta[j]), f"{head}:{cls}", gain, loss))
    d_light = float((hi["lightness"] - lo["lightness"]).mean())
    # Lightness moves less than probabilities do; ×3 puts a clear darkening on the same footing.
    candidates.append((3 * d_light, "lightness", "lighter" if d_light > 0 else "darker",
                       "darker" if d_light > 0 else "lighter"))
    if target is not None:
        chosen = [c for c in candidates if c[1] == target]
        if not chosen:
            raise ValueError(f"unknown measurement target {target!r}")
        effect, target, towards, away = chosen[0]
        if target == "lightness":
            towards, away = ("lighter", "darker") if effect > 0 else ("darker", "lighter")
    else:
        effect, target, towards, away = max(candidates, key=lambda c: abs(c[0]))
        if target != "lightness":  # report the class the positive end gains
            head = target.split(":")[0]
            target = f"{head}:{towards}"
            effect = max(c[0] for c in candidates if c[1] == target)
    return Measurement(name=direction.name, component=direction.component,
                       layers=direction.layers(base_ws.shape[1]), target=target, effect=effect,
                       image_change=image_change, clarity=abs(effect) / image_change,
                       towards=towards, away_from=away)


def _label(m: Measurement) -> str:
    if m.target == "lightness":
        return m.towards.capitalize()
    head = m.target.split(":")[0]
    if head == "baseColour":
        return f"More {m.towards.lower()}"
    return f"{m.away_from} → {m.towards}"


def discover_component_directions(G: Any, clf: torch.nn.Module, components: Components, top: int = 12,
                                  n_designs: int = 48, k: float = 3.0, psi: float = 0.7,
                                  seed: int = 123) -> list[tuple[NamedDirection, Measurement]]:
    """For each of the top components pick its cleanest layer range and name it by what it changes.

    The name describes the positive end of the slider (what it gains).
    """
    seeds = list(np.random.RandomState(seed).randint(0, 2**31 - 1, size=n_designs))
    base = G.seeds_to_ws(seeds, psi=psi).cpu().numpy()
    found: list[tuple[NamedDirection, Measurement]] = []
    used: set[str] = set()
    for i in range(min(top, components.n_components)):
        best: tuple[NamedDirection, Measurement] | None = None
        for start, end in candidate_ranges(G.num_ws).values():
            d = direction_from_component(components, i, f"PC {i}", start, end, unit="sigma")
            m = measure(G, clf, d, base, k)
            if best is None or m.clarity > best[1].clarity:
                best = (d, m)
        assert best is not None
        d, m = best
        name = _label(m)
        if name in used:
            name = f"{name} (PC {i})"
        used.add(name)
        description = (f"PC {i} on ws {m.layers[0]}–{m.layers[1] - 1}: measured {m.target} "
                       f"{m.effect:+.2f} from −{k:g}σ to +{k:g}σ")
        named = replace(d, name=name, source="model", description=description)
        found.append((named, replace(m, name=name)))
    return found


def supervised_direction(G: Any, clf: torch.nn.Module, target: str, name: str, n: int = 3000,
                         seed: int = 7, quantile: float = 0.2) -> NamedDirection:
    """An InterFaceGAN-style boundary in W for ``target`` ("articleType:Dresses", "lightness", …).

    Samples w, labels the top and bottom ``quantile`` by the classifier's score, fits a linear
    classifier on w and returns its unit normal; σ is the std of the samples along it.
    """
    from sklearn.linear_model import LogisticRegression

    w = G.sample_ws(n, seed=seed).numpy()
    ws = np.repeat(w[:, None], G.num_ws, axis=1)
    out = _classify(G, clf, ws)
    score = _target_score(out, clf, target)
    lo, hi = np.quantile(score, [quantile, 1 - quantile])
    keep = (score <= lo) | (score >= hi)
    model = LogisticRegression(max_iter=2000, C=1.0).fit(w[keep], (score[keep] >= hi).astype(int))
    normal = model.coef_[0] / np.linalg.norm(model.coef_[0])
    sigma = float((w @ normal).std())
    return NamedDirection(name=name, vector=normal.astype(np.float32), unit="sigma", sigma=max(sigma, 1e-6),
                          source="supervised", description=f"linear boundary in W for {target}")


def _target_score(out: dict[str, np.ndarray], clf: torch.nn.Module, target: str) -> np.ndarray:
    if target == "lightness":
        return out["lightness"]
    head, cls = target.split(":", 1)
    names = clf.config.article_types if head == "articleType" else clf.config.colours
    if cls not in names:
        raise ValueError(f"the classifier has no class {cls!r} in {head}")
    return out[head][:, names.index(cls)]


# Labels designers ask for; each gets a supervised direction unless PCA already has a clean one.
# Garment types come first: a designer asks "make it a dress", and PCA of this model names colours.
WANTED = {"Darker": "lightness", "Dress": "articleType:Dresses", "Kurta": "articleType:Kurtas",
          "Jeans": "articleType:Jeans", "T-shirt": "articleType:Tshirts", "Shirt": "articleType:Shirts",
          "Top": "articleType:Tops", "Trousers": "articleType:Trousers", "Shorts": "articleType:Shorts",
          "Track pants": "articleType:Track Pants", "Sweatshirt": "articleType:Sweatshirts",
          "Jacket": "articleType:Jackets", "Saree": "articleType:Sarees", "Skirt": "articleType:Skirts",
          "Leggings": "articleType:Leggings"}


MIN_EFFECT = 0.05  # smallest measured change (probability or 3×lightness) worth a slider


def build_directions(G: Any, clf: torch.nn.Module, components: Components, top: int = 12,
                     n_designs: int = 48) -> tuple[list[NamedDirection], list[Measurement]]:
    """Measured PCA directions plus supervised ones for wanted labels, each measured the same way."""
    found = discover_component_directions(G, clf, components, top=top, n_designs=n_designs)
    directions = [d for d, _ in found]
    measurements = [m for _, m in found]
    covered = {m.target for m in measurements if m.clarity > 1.0}
    base = G.seeds_to_ws(list(range(1000, 1000 + n_designs)), psi=0.7).cpu().numpy()
    names = {d.name for d in directions}
    for label, target in WANTED.items():
        if target in covered or (target != "lightness" and target.split(":", 1)[1] not in
                                 (clf.config.article_types + clf.config.colours)):
            continue
        d = supervised_direction(G, clf, target, label if label not in names else f"{label} (supervised)")
        if target == "lightness":  # the boundary points to lighter; "Darker" must point the other way
            d = replace(d, vector=-d.vector)
        # Pick the layer range where it acts most cleanly, as for components.
        best = max((measure(G, clf, replace(d, layer_start=s, layer_end=e), base, target=target)
                    for s, e in candidate_ranges(G.num_ws).values()), key=lambda m: m.clarity)
        if abs(best.effect) < MIN_EFFECT:  # the model cannot draw it; a slider would promise too much
            continue
        d = replace(d, layer_start=best.layers[0], layer_end=best.layers[1])
        directions.append(d)
        measurements.append(best)
        names.add(d.name)
    return directions, measurements


def measurement_table(measurements: Sequence[Measurement]) -> str:
    """A markdown table for the model card."""
    rows = ["| direction | from PC | ws | measured effect (−3σ → +3σ) | image change | clarity |",
            "| --- | --- | --- | --- | --- | --- |"]
    for m in measurements:
        pc = "supervised" if m.component is None else str(m.component)
        rows.append(f"| {m.name} | {pc} | {m.layers[0]}–{m.layers[1] - 1} | {m.target} {m.effect:+.2f} "
                    f"| {m.image_change:.3f} | {m.clarity:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m clothinggan.train.direction_discovery --model default --out-dir assets/models``."""
    import clothinggan as cg
    from clothinggan.train.classifier import load_classifier

    p = argparse.ArgumentParser(description="Measure and name a model's edit directions with the garment classifier.")
    p.add_argument("--model", default="default")
    p.add_argument("--out-dir", default="assets/models")
    p.add_argument("--stem", default="fashion64", help="file stem: <stem>.components.npz, <stem>.directions.json")
    p.add_argument("--samples", type=int, default=100_000, help="W samples for PCA")
    p.add_argument("--top", type=int, default=12, help="principal components to measure")
    p.add_argument("--designs", type=int, default=48, help="designs each direction is measured on")
    args = p.parse_args(argv)
    G = cg.load_generator(args.model)
    clf = load_classifier().eval()
    components = components_for(G, n_samples=args.samples)
    out = Path(args.out_dir)
    save_components(components, out / f"{args.stem}.components.npz")
    directions, measurements = build_directions(G, clf, components, top=args.top, n_designs=args.designs)
    write_directions_file(out / f"{args.stem}.directions.json", directions, model_id=G.fingerprint,
                          w_dim=G.w_dim, num_ws=G.num_ws)
    (out / f"{args.stem}.directions-measured.json").write_text(
        json.dumps([asdict(m) for m in measurements], indent=1) + "\n")
    print(measurement_table(measurements))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Measured directions: the classifier-driven naming and the supervised boundaries."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from clothinggan.components import compute_components
from clothinggan.directions import apply_edits
from clothinggan.train.direction_discovery import (build_directions, candidate_ranges, measure,
                                                   measurement_table, supervised_direction)


@dataclass(frozen=True)
class FakeConfig:
    article_types: tuple[str, ...] = ("Bright", "Dim", "Other")
    colours: tuple[str, ...] = ("Red", "Blue", "Other")


class BrightnessClassifier(nn.Module):
    """Calls bright images "Bright" and red-dominant images "Red": a classifier we can predict."""

    config = FakeConfig()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        light = x.mean(dim=(1, 2, 3)) * 20
        red = (x[:, 0] - x[:, 2]).mean(dim=(1, 2)) * 20
        zero = torch.zeros_like(light)
        return torch.stack([light, -light, zero - 5], 1), torch.stack([red, -red, zero - 5], 1)


def test_candidate_ranges_cover_all_and_groups() -> None:
    ranges = candidate_ranges(10)
    assert ranges["all"] == (0, 10)
    assert ranges["structure"][0] == 0 and ranges["style"][1] == 10


def test_supervised_lightness_direction_makes_images_lighter(tiny_generator) -> None:
    G, clf = tiny_generator, BrightnessClassifier()
    d = supervised_direction(G, clf, "lightness", "Lighter", n=400)
    base = G.seeds_to_ws(list(range(16)), psi=0.7).numpy()
    lo = G.synthesis(apply_edits(base, [(d, -2.0)])).mean().item()
    hi = G.synthesis(apply_edits(base, [(d, 2.0)])).mean().item()
    assert hi > lo + 0.01
    assert abs(np.linalg.norm(d.vector) - 1) < 1e-5 and d.sigma > 0


def test_discovered_directions_point_towards_what_they_are_named(tiny_generator) -> None:
    G, clf = tiny_generator, BrightnessClassifier()
    comps = compute_components(G, n_samples=2000, n_components=4, seed=0)
    directions, measurements = build_directions(G, clf, comps, top=3, n_designs=8)
    names = [d.name for d in directions]
    assert len(names) == len(set(names)) >= 3
    base = G.seeds_to_ws(list(range(500, 508)), psi=0.7).numpy()
    for d, m in zip(directions[:3], measurements[:3]):
        # The name describes the positive end: classes it gains, or the way lightness moves.
        assert m.image_change > 0
        assert m.effect > 0 if m.target != "lightness" else (m.effect < 0) == (m.towards == "darker")
        again = measure(G, clf, d, base, target=m.target)  # on other designs, the same way
        assert np.sign(again.effect) == np.sign(m.effect)
    table = measurement_table(measurements)
    assert table.count("\n") == len(measurements) + 1

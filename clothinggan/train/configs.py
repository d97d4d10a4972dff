"""Named training configurations (tiny for tests, cpu64 for a 2-core laptop hour, gpu64 for a GPU).

A TrainConfig fixes both networks and every hyper-parameter of the StyleGAN2 recipe; it is stored
as JSON inside each checkpoint so a resumed or exported run knows exactly what it was.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from clothinggan.networks import GeneratorConfig


@dataclass
class TrainConfig:
    """Hyper-parameters of one run.

    name:            the preset it came from.
    generator:       GeneratorConfig fields (as a dict, so the config stays plain JSON).
    d_channels:      discriminator feature maps per resolution (keys are ints).
    batch:           images per optimiser step, summed over all GPUs.
    lr_g / lr_d:     Adam learning rates (betas 0, 0.99 as in StyleGAN2).
    r1_gamma:        R1 weight; the ADA heuristic 0.0002·res²/batch is a good start.
    r1_interval:     lazy regularisation: R1 every this many D steps, scaled up by the interval.
    pl_weight:       path-length regularisation weight (0 = off, the default at 64 px).
    pl_interval:     path-length regularisation every this many G steps.
    style_mixing:    probability of mixing two latents at a random crossover layer.
    ema_kimg:        half-life of the EMA generator in thousands of images.
    ema_rampup:      while training is young the half-life is at most nimg·ema_rampup (None: off).
    augment:         ADA-lite (colour, translation, cutout) with adaptive p.
    ada_target:      E[sign D(real)] that the controller aims for.
    ada_kimg:        how fast p can move (kimg for a 0 → 1 change).
    mirror:          random horizontal flips of the reals (garment photos are near-symmetric).
    mbstd_group:     minibatch-stddev group size.
    """

    name: str = "custom"
    generator: dict[str, Any] = field(default_factory=dict)
    d_channels: dict[int, int] = field(default_factory=dict)
    batch: int = 16
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    r1_gamma: float = 0.05
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    style_mixing: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float | None = 0.05
    augment: bool = True
    ada_target: float = 0.6
    ada_kimg: float = 100.0
    mirror: bool = True
    mbstd_group: int = 4

    def __post_init__(self) -> None:
        self.d_channels = {int(k): int(v) for k, v in self.d_channels.items()}
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.r1_interval < 1 or self.pl_interval < 1:
            raise ValueError("regularisation intervals must be at least 1")
        gcfg = self.generator_config()
        missing = [r for r in gcfg.block_resolutions if r not in self.d_channels]
        if missing:
            raise ValueError(f"d_channels has no count for resolutions {missing}")

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(**self.generator)

    @property
    def resolution(self) -> int:
        return self.generator_config().resolution

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        data = json.loads(text)
        data["generator"]["channels"] = {int(k): v for k, v in data["generator"]["channels"].items()}
        return cls(**data)


def _gen(resolution: int, z: int, mapping_layers: int, channels: dict[int, int]) -> dict[str, Any]:
    return dict(resolution=resolution, z_dim=z, w_dim=z, mapping_layers=mapping_layers, channels=channels)


CONFIGS: dict[str, TrainConfig] = {
    # Seconds on a CPU: the unit test trains this.
    "tiny": TrainConfig(name="tiny", generator=_gen(16, 32, 2, {4: 32, 8: 32, 16: 16}),
                        d_channels={4: 32, 8: 32, 16: 16}, batch=4, ema_kimg=0.01, ada_kimg=1.0),
    # An hour on 2 CPU cores: narrow at high resolution, where the FLOPs are, small batch for
    # many optimiser steps per kimg.
    "cpu64": TrainConfig(name="cpu64", generator=_gen(64, 128, 4, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32}),
                         d_channels={4: 256, 8: 256, 16: 128, 32: 64, 64: 32}, batch=16, ema_kimg=5.0,
                         r1_gamma=0.05),
    # A real GPU run (bf16, batch 64); synthesis stays within ~20 ms per image on the 2-core CPU.
    "gpu64": TrainConfig(name="gpu64", generator=_gen(64, 512, 8, {4: 256, 8: 256, 16: 256, 32: 128, 64: 64}),
                         d_channels={4: 256, 8: 256, 16: 256, 32: 128, 64: 64}, batch=64, ema_kimg=20.0,
                         r1_gamma=0.05, ada_kimg=500.0),
}


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown training config {name!r}; choose one of {', '.join(CONFIGS)}")
    return TrainConfig.from_json(CONFIGS[name].to_json())  # a copy the caller may change

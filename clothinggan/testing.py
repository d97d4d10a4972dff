"""Tiny random-weight generators for tests, benchmarks and examples: a 16-px StyleGAN2 in milliseconds.

One definition, so every test that says "the tiny generator" means the same network (same seed,
same shapes) and a change to it is made once.
"""
from __future__ import annotations

import torch

from clothinggan.generator import Generator
from clothinggan.networks import GeneratorConfig, StyleGAN2

TINY_W_DIM = 32


def tiny_config() -> GeneratorConfig:
    """16 px, 32-dim z and w, two mapping layers: 6 ws, about 60k parameters."""
    return GeneratorConfig(resolution=16, z_dim=32, w_dim=TINY_W_DIM, mapping_layers=2,
                           channels={4: 32, 8: 32, 16: 16})


def tiny_net(seed: int = 0) -> StyleGAN2:
    """The tiny network with weights drawn from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return StyleGAN2(tiny_config())


def tiny_generator(seed: int = 0, name: str = "tiny", device: str = "cpu") -> Generator:
    """The tiny network wrapped as a Generator on ``device``."""
    return Generator(tiny_net(seed), name=name, device=device)

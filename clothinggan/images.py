"""The one place that turns generator tensors into pictures (and pictures into tensors).

Generator outputs are float images in about [-1, 1]; everything shown or saved goes through here.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) float in [-1, 1] → (N, H, W, C) uint8, clamped and rounded."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W), got shape {tuple(images.shape)}")
    x = images.detach().float().cpu()
    x = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Generator output → list of RGB PIL images (grayscale outputs are repeated to RGB)."""
    arr = to_uint8(images)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return [Image.fromarray(a[..., :3], mode="RGB") for a in arr]


def from_pil(images: Sequence[Image.Image], resolution: int | None = None) -> torch.Tensor:
    """RGB PIL images → (N, 3, H, W) float in [-1, 1] (resized to ``resolution`` if given)."""
    arrays = []
    for im in images:
        im = im.convert("RGB")
        if resolution is not None and im.size != (resolution, resolution):
            im = im.resize((resolution, resolution), Image.LANCZOS)
        arrays.append(np.asarray(im, dtype=np.float32))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return x / 127.5 - 1


def upscale(image: Image.Image, px: int) -> Image.Image:
    """The image enlarged by a whole factor (Lanczos) to at least ``px`` wide, so small garments stay legible."""
    if image.width >= px:
        return image
    factor = -(-px // image.width)
    return image.resize((image.width * factor, image.height * factor), Image.LANCZOS)


def image_grid(images: Sequence[Image.Image], cols: int | None = None, pad: int = 2,
               background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Tile same-sized images into one picture, row by row, with a thin white gap."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w + (cols - 1) * pad, rows * h + (rows - 1) * pad), background)
    for i, im in enumerate(images):
        grid.paste(im, ((i % cols) * (w + pad), (i // cols) * (h + pad)))
    return grid

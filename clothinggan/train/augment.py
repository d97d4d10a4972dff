"""Differentiable augmentation for the discriminator (ADA-lite): colour, translation, cutout.

The data set is small (~17k photos), so D would memorise it; every image D sees, real or fake,
is augmented with probability p, and p adapts to how sure D is about reals (sign of D(real)).
All ops are differentiable in the image, so G's gradients pass through them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_sample(p: float, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """(n,) float mask of samples that get an augmentation, each with probability p."""
    return (torch.rand(n, device=device, generator=generator) < p).float()


def _rand(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=device, generator=generator)


def colour(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness ±0.25, saturation ×[0,2], contrast ×[0.5,1.5] (DiffAugment's ranges), each with prob p."""
    n, dev = x.shape[0], x.device
    m = _per_sample(p, n, dev, generator).reshape(n, 1, 1, 1)
    x = x + m * (_rand(n, dev, generator) - 0.5) * 0.5                      # images are in [-1, 1]: ±0.25 of 0..1 range
    mean = x.mean(dim=1, keepdim=True)
    m = _per_sample(p, n, dev, generator).reshape(n, 1, 1, 1)
    x = mean + (x - mean) * (1 + m * (_rand(n, dev, generator) * 2 - 1))
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    m = _per_sample(p, n, dev, generator).reshape(n, 1, 1, 1)
    return mean + (x - mean) * (1 + m * (_rand(n, dev, generator) - 0.5))


def translation(x: torch.Tensor, p: float, ratio: float = 0.125,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Integer shifts up to ``ratio`` of the size, border pixels repeated (backgrounds are white).

    Built from padding and gather rather than grid_sample, so even second derivatives exist.
    """
    n, c, h, w = x.shape
    dev = x.device
    s = max(1, int(h * ratio + 0.5))
    m = _per_sample(p, n, dev, generator).long()
    dy = (torch.randint(-s, s + 1, (n,), device=dev, generator=generator) * m).reshape(n, 1, 1)
    dx = (torch.randint(-s, s + 1, (n,), device=dev, generator=generator) * m).reshape(n, 1, 1)
    ys = (torch.arange(h, device=dev).reshape(1, h, 1) + dy + s).expand(n, h, w)
    xs = (torch.arange(w, device=dev).reshape(1, 1, w) + dx + s).expand(n, h, w)
    padded = F.pad(x, [s, s, s, s], mode="replicate")
    flat = padded.flatten(2)                                                 # (n, c, (h+2s)(w+2s))
    index = (ys * (w + 2 * s) + xs).reshape(n, 1, h * w).expand(n, c, h * w)
    return flat.gather(2, index).reshape(n, c, h, w)


def cutout(x: torch.Tensor, p: float, ratio: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a random square of ``ratio`` × size (to mid-grey, 0 in [-1, 1]), with prob p."""
    n, _, h, w = x.shape
    dev = x.device
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=dev, generator=generator)
    cx = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=dev, generator=generator)
    yy = torch.arange(h, device=dev).reshape(1, h, 1)
    xx = torch.arange(w, device=dev).reshape(1, 1, w)
    oy, ox = yy - cy + ch // 2, xx - cx + cw // 2                            # square centred on (cy, cx)
    inside = (oy >= 0) & (oy < ch) & (ox >= 0) & (ox < cw)                  # (n, h, w)
    m = _per_sample(p, n, dev, generator).reshape(n, 1, 1).bool()
    keep = (~(inside & m)).to(x.dtype).unsqueeze(1)
    return x * keep


def augment(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The full pipeline D sees; p = 0 returns x unchanged (and costs nothing)."""
    if p <= 0:
        return x
    x = colour(x, p, generator)
    x = translation(x, p, generator=generator)
    return cutout(x, p, generator=generator)


class AdaptiveP:
    """ADA's controller: raise p when D is too sure about reals (E[sign D(real)] > target).

    target:    0.6 in the ADA paper.
    interval:  adjust every this many steps.
    speed_kimg: images (in thousands) for p to go from 0 to 1 at full overfitting.
    """

    def __init__(self, p: float = 0.0, target: float = 0.6, interval: int = 4, speed_kimg: float = 100.0,
                 p_max: float = 0.8) -> None:
        self.p, self.target, self.interval, self.speed_kimg, self.p_max = p, target, interval, speed_kimg, p_max
        self._sum, self._count = 0.0, 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self._sum += float(torch.sign(real_logits.detach()).sum())
        self._count += real_logits.numel()

    def update(self, step: int, batch: int, reduce=None) -> float:
        """Every ``interval`` steps move p by ±(batch·interval)/(speed_kimg·1000); returns E[sign]."""
        if step % self.interval != 0 or self._count == 0:
            return float("nan")
        stats = torch.tensor([self._sum, float(self._count)], dtype=torch.float64)
        if reduce is not None:  # average over ranks so every process moves p the same way
            stats = reduce(stats)
        rt = float(stats[0] / stats[1])
        delta = batch * self.interval / (self.speed_kimg * 1000)
        self.p = min(max(self.p + delta * (1 if rt > self.target else -1), 0.0), self.p_max)
        self._sum, self._count = 0.0, 0
        return rt

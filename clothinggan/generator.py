"""The Generator facade every page, CLI command and script uses: seeds → z → w → images.

It owns the device and dtype choice, batching and truncation, and runs inference without autograd
and without mutating anything, so one loaded model can serve many app sessions' threads at once.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import torch

from clothinggan import settings
from clothinggan.errors import InvalidSeedError
from clothinggan.networks import (GeneratorConfig, NoiseMode, StyleGAN2, seeds_to_z, set_channels_last,
                                  set_fold_upsampling)

MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32)


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; ``preference`` or ``CLOTHINGGAN_DEVICE`` overrides."""
    preference = preference or settings.device()
    if preference:
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def validate_seeds(seeds: Iterable[int]) -> list[int]:
    """Return seeds as ints, or raise InvalidSeedError naming the first bad one."""
    out = []
    for s in seeds:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise InvalidSeedError(f"seed {s!r} is not a whole number")
        if not 0 <= int(s) <= MAX_SEED:
            raise InvalidSeedError(f"seed {s} is out of range: seeds go from 0 to {MAX_SEED}")
        out.append(int(s))
    return out


def fingerprint_state(config: GeneratorConfig, state: dict[str, torch.Tensor]) -> str:
    """A short sha256 of the config and every tensor: the model's identity for designs and caches."""
    h = hashlib.sha256(config.to_json().encode())
    for key in sorted(state):
        t = state[key].detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


class Generator:
    """A loaded StyleGAN2 with the public API of DESIGN.md.

    net:       the StyleGAN2 module (moved to ``device``, eval mode, gradients off).
    name:      a human name for the model ("default", a file name, a zoo key).
    meta:      free-form facts from the checkpoint (format, source path, trained or not, …).
    device:    where to run; None picks CUDA > MPS > CPU.
    dtype:     compute dtype of inference (autocast): float16/bfloat16 on CUDA; bfloat16 or float32
               on the CPU (fp16 CPU convolutions are slow or missing). Gradients (inversion) always
               run in fp32 on the CPU. ``clothinggan.precision.resolve`` picks one for a machine.
    max_batch: largest batch sent through synthesis at once, bounding peak memory.
    """

    def __init__(self, net: StyleGAN2, name: str = "model", meta: dict[str, Any] | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                 max_batch: int = 16) -> None:
        self.device = pick_device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        set_fold_upsampling(self.net, self.device.type == "cuda")
        set_channels_last(self.net, self.device.type == "cpu")
        self.config: GeneratorConfig = net.config
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        cpu_ok = self.device.type == "cpu" and dtype == torch.bfloat16
        self.dtype = dtype if self.device.type == "cuda" or cpu_ok else torch.float32
        self.max_batch = max(1, int(max_batch))
        self.fingerprint = fingerprint_state(self.config, net.state_dict())

    # -- shapes -------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def c_dim(self) -> int:
        return self.config.c_dim

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def trained(self) -> bool:
        """False only for the labelled placeholder network."""
        return bool(self.meta.get("trained", True))

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre (w_dim,)."""
        return self.net.mapping.w_avg

    @w_avg.setter
    def w_avg(self, value: torch.Tensor | np.ndarray) -> None:
        value = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
        if value.numel() != self.w_dim:
            raise ValueError(f"w_avg must have {self.w_dim} values, got {value.numel()}")
        self.net.mapping.w_avg.copy_(value.to(self.device))

    # -- inference ----------------------------------------------------------------------------
    def _tensor(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).to(self.device)

    def _autocast(self, grad: bool = False):
        """Autocast to ``dtype`` on CUDA, and on the CPU without gradients; a no-op otherwise."""
        if self.dtype == torch.float32 or (grad and self.device.type != "cuda"):
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def mapping(self, z: torch.Tensor | np.ndarray, psi: float = 1.0,
                c: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """z (N, z_dim) → w (N, w_dim), truncated toward w_avg by psi."""
        z = self._tensor(z)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        c_t = None if c is None else self._tensor(c).reshape(z.shape[0], -1)
        with torch.no_grad():
            w = self.net.mapping(z, c_t)
            return self.net.mapping.truncate(w, float(psi))

    def synthesis(self, ws: torch.Tensor | np.ndarray, noise_mode: NoiseMode = "const",
                  differentiable: bool = False) -> torch.Tensor:
        """W+ codes (N, num_ws, w_dim) → float images (N, 3, H, W) in about [-1, 1].

        Runs in chunks of ``max_batch``. ``differentiable=True`` keeps autograd (for inversion)
        and runs in one piece.
        """
        ws = ws.to(self.device, torch.float32) if isinstance(ws, torch.Tensor) else self._tensor(ws)
        if ws.ndim == 2:
            ws = ws.unsqueeze(0)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if differentiable:
            with self._autocast(grad=True):
                return self.net.synthesis(ws, noise_mode).float()
        with torch.no_grad(), self._autocast():
            chunks = [self.net.synthesis(ws[i:i + self.max_batch], noise_mode).float()
                      for i in range(0, ws.shape[0], self.max_batch)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.config.img_channels,
                                                            self.resolution, self.resolution)

    def seeds_to_z(self, seeds: Sequence[int]) -> np.ndarray:
        """z of seed s is ``np.random.RandomState(s).randn(z_dim)`` (NVlabs and GANSpace convention)."""
        return seeds_to_z(validate_seeds(seeds), self.z_dim)

    def seeds_to_ws(self, seeds: Sequence[int], psi: float = 1.0,
                    c: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Seeds → W+ codes (N, num_ws, w_dim), every layer the same truncated w.

        Each seed is mapped in a call of its own: a matrix product's rounding depends on how many
        rows it gets, and a seed must give the same bits in every grid (image caches key on them).
        """
        z = self._tensor(self.seeds_to_z(seeds) if len(seeds) else np.zeros((0, self.z_dim), np.float32))
        c_rows = None if c is None else self._tensor(c).reshape(len(z), -1)
        with torch.no_grad():
            rows = [self.net.mapping(z[i:i + 1], None if c_rows is None else c_rows[i:i + 1])
                    for i in range(len(z))]
            w = self.net.mapping.truncate(torch.cat(rows), float(psi)) if rows else z.new_empty(0, self.w_dim)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def generate(self, seeds: Sequence[int], psi: float = 1.0, noise_mode: NoiseMode = "const") -> torch.Tensor:
        """Seeds → images, the common case in one call."""
        return self.synthesis(self.seeds_to_ws(seeds, psi), noise_mode)

    def sample_ws(self, n: int, seed: int = 0, psi: float = 1.0, batch: int = 4096,
                  rng: Literal["randomstate", "pcg64"] = "randomstate") -> torch.Tensor:
        """n mapping outputs (n, w_dim) from a private RNG, for PCA and statistics.

        ``rng="randomstate"`` draws z with numpy's legacy RandomState (float64 Box-Muller, the
        stream earlier results were computed with); ``"pcg64"`` with numpy's Generator (float32
        ziggurat), 3-4x faster, for large samples such as a PCA's million.
        """
        if rng == "randomstate":
            legacy = np.random.RandomState(seed)
            draw = lambda m: legacy.randn(m, self.z_dim).astype(np.float32)  # noqa: E731
        elif rng == "pcg64":
            gen = np.random.Generator(np.random.PCG64(seed))
            draw = lambda m: gen.standard_normal((m, self.z_dim), dtype=np.float32)  # noqa: E731
        else:
            raise ValueError(f"rng must be 'randomstate' or 'pcg64', got {rng!r}")
        out = []
        for i in range(0, n, batch):
            out.append(self.mapping(draw(min(batch, n - i)), psi).cpu())
        return torch.cat(out) if out else torch.empty(0, self.w_dim)

    def __repr__(self) -> str:
        return (f"Generator({self.name!r}, {self.resolution}px, z_dim={self.z_dim}, w_dim={self.w_dim}, "
                f"num_ws={self.num_ws}, device={self.device}, fingerprint={self.fingerprint})")


def placeholder_network(seed: int = 0) -> StyleGAN2:
    """A clearly untrained 64-px network, used only while no trained default model is shipped."""
    torch.manual_seed(seed)
    cfg = GeneratorConfig(resolution=64, z_dim=256, w_dim=256, mapping_layers=4,
                          channels={4: 256, 8: 256, 16: 128, 32: 128, 64: 64})
    return StyleGAN2(cfg)

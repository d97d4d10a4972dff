"""The StyleGAN2 training loop: losses, lazy R1, EMA, style mixing, ADA-lite, checkpoints, export.

One Trainer object holds G, D, G_ema and their optimisers; ``train`` runs it to a kimg target
with periodic sample grids, metrics and atomic checkpoints, so a killed run resumes exactly.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from clothinggan.checkpoints import save_safetensors
from clothinggan.images import image_grid, to_pil
from clothinggan.networks import StyleGAN2, count_parameters, seeds_to_z
from clothinggan.paths import atomic_path
from clothinggan.precision import bf16_is_native
from clothinggan.train import distributed as dist_util
from clothinggan.train.augment import AdaptiveP, augment
from clothinggan.train.configs import TrainConfig
from clothinggan.train.discriminator import Discriminator

CHECKPOINT_FORMAT = "clothinggan-train-checkpoint"
SAMPLE_SEEDS = list(range(64))  # fixed, so grids from different kimg compare like for like
W_AVG_BETA = 0.995


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float in [-1, 1], the range the generator produces."""
    try:
        from clothinggan.train.data import images_to_tensor
    except ImportError:  # data module not there yet: same maths
        return x.float() / 127.5 - 1
    return images_to_tensor(x)


class Trainer:
    """G, D, G_ema, optimisers and counters of one run.

    cfg:            the TrainConfig.
    device:         where to train.
    seed:           seeds network initialisation and every random draw (offset by rank).
    mixed_precision: bf16 autocast of G's synthesis and D; None (the default) turns it on where
                    bf16 is native (CUDA, or a CPU with AVX-512 BF16 / AMX) and off elsewhere,
                    where emulated bf16 is slower than fp32. The mapping network and the R1
                    pass always run in fp32.
    channels_last:  memory format for convolutions (default: on CUDA).
    compile:        torch.compile the main forward passes (R1 uses the eager D: no double backward).
    """

    def __init__(self, cfg: TrainConfig, device: str | torch.device = "cpu", seed: int = 0,
                 mixed_precision: bool | None = None, channels_last: bool | None = None, compile: bool = False) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.rank, self.world = dist_util.rank(), dist_util.world_size()
        if cfg.batch % self.world != 0:
            raise ValueError(f"batch {cfg.batch} does not split evenly over {self.world} processes")
        self.batch_gpu = cfg.batch // self.world
        torch.manual_seed(seed)  # same initial weights on every rank
        gcfg = cfg.generator_config()
        self.G = StyleGAN2(gcfg).to(self.device).train()
        self.D = Discriminator(gcfg.resolution, cfg.d_channels, gcfg.img_channels,
                               mbstd_group_size=cfg.mbstd_group).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # channels_last: faster on CUDA and on an AVX-512 CPU (0.6 vs 0.84 s per cpu64 step), slower
        # on an AVX2-only CPU (1.44 vs 1.22 s per step on a 2-core AMD EPYC).
        self.channels_last = _channels_last_pays(self.device) if channels_last is None else channels_last
        if self.channels_last:
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        self.amp = bf16_is_native(self.device) if mixed_precision is None else bool(mixed_precision)
        # R1 is folded into the D step that falls on its interval (scaled by the interval), so
        # both optimisers take exactly one step per iteration and need no lazy-reg lr correction.
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.0, 0.99), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.0, 0.99), eps=1e-8)
        self.ada = AdaptiveP(target=cfg.ada_target, speed_kimg=cfg.ada_kimg)
        self.step, self.nimg, self.train_seconds = 0, 0, 0.0
        self.pl_mean = torch.zeros([], device=self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed * 1000 + self.rank + 1)
        self.data_gen = torch.Generator().manual_seed(seed * 1000 + self.rank + 7)
        self.run_G_synthesis: Callable = self.G.synthesis
        self.run_D: Callable = self.D
        if compile:
            self.run_G_synthesis = torch.compile(self.G.synthesis)
            self.run_D = torch.compile(self.D)
        dist_util.broadcast_module(self.G)
        dist_util.broadcast_module(self.D)
        self.G_ema.load_state_dict(self.G.state_dict())

    # -- pieces of one step -------------------------------------------------------------------
    @property
    def kimg(self) -> float:
        return self.nimg / 1000

    def _autocast(self, enabled: bool = True):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp and enabled)

    @property
    def precision(self) -> str:
        return "bf16" if self.amp else "fp32"

    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, generator=self.gen)

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def sample_ws(self, n: int, track_w_avg: bool = True) -> torch.Tensor:
        """Mapped latents for n images, with style mixing, updating w_avg as NVlabs does."""
        G, num_ws = self.G, self.G.num_ws
        w = G.mapping(self._randn(n, G.config.z_dim))  # fp32: w_avg and GANSpace live here
        if track_w_avg:
            with torch.no_grad():
                batch_mean = dist_util.mean(w.detach().float().mean(dim=0))
                G.mapping.w_avg.copy_(batch_mean.lerp(G.mapping.w_avg, W_AVG_BETA))
        ws = w.unsqueeze(1).repeat(1, num_ws, 1)
        if self.cfg.style_mixing > 0 and num_ws > 1:
            r = torch.rand([], device=self.device, generator=self.gen)
            cutoff = int(torch.randint(1, num_ws, [], device=self.device, generator=self.gen))
            if float(r) < self.cfg.style_mixing:
                w2 = G.mapping(self._randn(n, G.config.z_dim))
                ws = torch.cat([ws[:, :cutoff], w2.unsqueeze(1).repeat(1, num_ws - cutoff, 1)], dim=1)
        return ws

    def _D(self, img: torch.Tensor, eager: bool = False) -> torch.Tensor:
        img = augment(img, self.ada.p, self.gen) if self.cfg.augment else img
        with self._autocast():
            return (self.D if eager else self.run_D)(self._fmt(img)).float()

    def _real_batch(self, reals: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(0, reals.shape[0], (self.batch_gpu,), generator=self.data_gen)
        x = uint8_to_float(reals[idx]).to(self.device, non_blocking=True)
        if self.cfg.mirror:
            flip = torch.rand(self.batch_gpu, generator=self.data_gen) < 0.5
            x = torch.where(flip.to(self.device).reshape(-1, 1, 1, 1), x.flip(3), x)
        return x

    def train_step(self, reals: torch.Tensor) -> dict[str, float]:
        """One iteration: a D step (with R1 on its interval), then a G step on the same fakes.

        Reusing one generator forward for both steps saves a third of G's cost per iteration,
        which matters on a CPU; D sees the fakes detached, G sees them through the updated D.
        """
        cfg, stats = self.cfg, {}
        real = self._real_batch(reals)
        self.G.requires_grad_(True)
        ws = self.sample_ws(self.batch_gpu)
        with self._autocast():
            fake = self.run_G_synthesis(ws, noise_mode="random").float()

        # D: logistic loss on fakes and reals; R1 on reals every r1_interval steps.
        self.D.requires_grad_(True)
        do_r1 = cfg.r1_gamma > 0 and self.step % cfg.r1_interval == 0
        logits_fake = self._D(fake.detach())
        # R1 is taken at the augmented reals (the points D actually judges): this keeps the
        # augmentation out of the double backward and costs the same.
        real_aug = augment(real, self.ada.p, self.gen) if cfg.augment else real
        real_aug = real_aug.detach().requires_grad_(do_r1)
        with self._autocast(enabled=not do_r1):  # R1's double backward stays in fp32
            logits_real = (self.D if do_r1 else self.run_D)(self._fmt(real_aug)).float()
        loss_D = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        if do_r1:
            (grad,) = torch.autograd.grad(logits_real.sum(), real_aug, create_graph=True)
            r1 = grad.float().square().sum(dim=[1, 2, 3]).mean()
            loss_D = loss_D + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
            stats["r1"] = float(r1.detach())
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        dist_util.average_gradients(self.D)
        self.opt_D.step()
        self.ada.accumulate(logits_real)
        stats["loss_D"] = float(loss_D.detach())
        stats["D_real"] = float(logits_real.detach().mean())
        stats["D_fake"] = float(logits_fake.detach().mean())

        # G: non-saturating logistic loss through the freshly updated D.
        self.D.requires_grad_(False)
        loss_G = F.softplus(-self._D(fake)).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        if cfg.pl_weight > 0 and self.step % cfg.pl_interval == 0:
            stats["pl"] = self._path_length_backward()
        dist_util.average_gradients(self.G)
        self.opt_G.step()
        self.G.requires_grad_(False)
        stats["loss_G"] = float(loss_G.detach())

        self._update_ema()
        self.step += 1
        self.nimg += cfg.batch
        if cfg.augment:
            self.ada.update(self.step, cfg.batch, reduce=dist_util.sum_tensor)
        stats["p"] = self.ada.p
        return stats

    def _path_length_backward(self) -> float:
        """StyleGAN2's path-length penalty on half a batch, added to G's gradients."""
        n = max(1, self.batch_gpu // 2)
        ws = self.sample_ws(n, track_w_avg=False)
        ws.requires_grad_(True)
        with self._autocast():
            img = self.G.synthesis(ws, noise_mode="random").float()
        noise = torch.randn(img.shape, device=self.device, generator=self.gen) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean.copy_(self.pl_mean.lerp(dist_util.mean(lengths.detach().mean()), 0.01))
        penalty = (lengths - self.pl_mean).square().mean()
        (penalty * self.cfg.pl_weight * self.cfg.pl_interval).backward()
        return float(penalty.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, max(self.nimg, self.cfg.batch) * self.cfg.ema_rampup)
        beta = 0.5 ** (self.cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- outputs ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, path: Path, psi: float = 1.0, seeds: list[int] = SAMPLE_SEEDS) -> Path:
        """An 8×8 grid of G_ema at fixed seeds (NVlabs z convention), with constant noise."""
        z = torch.from_numpy(seeds_to_z(seeds, self.G_ema.config.z_dim)).to(self.device)
        images = [self.G_ema(z[i:i + 16], psi=psi, noise_mode="const").float().cpu() for i in range(0, len(seeds), 16)]
        path.parent.mkdir(parents=True, exist_ok=True)
        grid = image_grid(to_pil(torch.cat(images)), cols=8)
        with atomic_path(path) as tmp:
            grid.save(tmp)
        return path

    def state_dict(self) -> dict[str, Any]:
        """Only tensors, numbers, strings and containers: loads with ``weights_only=True``."""
        rng = {"torch": torch.get_rng_state(), "gen": self.gen.get_state(), "data": self.data_gen.get_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {"format": CHECKPOINT_FORMAT, "version": 1, "config": self.cfg.to_json(),
                "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "step": self.step, "nimg": self.nimg, "augment_p": self.ada.p, "pl_mean": self.pl_mean.cpu(),
                "ada_sum": self.ada._sum, "ada_count": self.ada._count,
                "train_seconds": self.train_seconds, "world_size": self.world, "rng": rng}

    def save_checkpoint(self, path: Path) -> Path:
        """Write atomically (temp file + rename): a kill mid-save leaves the previous checkpoint."""
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)
        return path

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        self.ada.p = float(state["augment_p"])
        self.ada._sum, self.ada._count = float(state.get("ada_sum", 0.0)), int(state.get("ada_count", 0))
        self.pl_mean.copy_(state["pl_mean"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if int(state.get("world_size", 1)) == self.world:  # per-rank streams only match at equal world size
            self.gen.set_state(rng["gen"])
            self.data_gen.set_state(rng["data"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)


def _channels_last_pays(device: torch.device) -> bool:
    avx512 = getattr(torch.cpu, "_is_avx512_supported", None)
    return device.type == "cuda" or (device.type == "cpu" and avx512 is not None and bool(avx512()))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint without executing code (``weights_only=True``)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a clothinggan training checkpoint")
    return state


def trainer_from_checkpoint(path: str | Path, device: str | torch.device = "cpu", **kwargs: Any) -> Trainer:
    state = read_checkpoint(path)
    trainer = Trainer(TrainConfig.from_json(state["config"]), device=device, **kwargs)
    trainer.load_state_dict(state)
    return trainer


def export_generator(checkpoint: str | Path, out: str | Path, data: str = "", max_mb: float = 20.0,
                     extra_meta: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the run's EMA generator as safetensors (fp16 only if fp32 would exceed ``max_mb``)."""
    state = read_checkpoint(checkpoint)
    cfg = TrainConfig.from_json(state["config"])
    net = StyleGAN2(cfg.generator_config())
    net.load_state_dict(state["G_ema"])
    n_params = count_parameters(net)
    half = n_params * 4 / 1e6 > max_mb
    meta = {"trained": True, "kimg": round(state["nimg"] / 1000, 3), "data": data, "train_config": cfg.name,
            "train_minutes": round(float(state.get("train_seconds", 0)) / 60, 1), "steps": int(state["step"]),
            "augment_p": round(float(state["augment_p"]), 4), "parameters": n_params,
            "dtype": "float16" if half else "float32",
            "train_config_json": json.loads(cfg.to_json())}  # the recipe, so --resume-from can continue it
    meta.update(extra_meta or {})
    return save_safetensors(net, out, meta=meta, half=half), meta


# -- the loop ---------------------------------------------------------------------------------
def _log_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def evaluate(trainer: Trainer, holdout: torch.Tensor | None, n: int) -> dict[str, float]:
    """FD / precision / recall of G_ema against held-out reals, when metrics.py is available."""
    if holdout is None or n <= 0:
        return {}
    try:
        from clothinggan.train.metrics import evaluate_generator
    except ImportError:
        return {}
    from clothinggan.generator import Generator

    G = Generator(copy.deepcopy(trainer.G_ema), name="training-ema", device=trainer.device)
    try:
        result = evaluate_generator(G, holdout, n=n)
    except Exception as exc:  # a missing classifier or a metrics bug must not end a long run
        return {"metrics_error": f"{type(exc).__name__}: {exc}"[:300]}
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float, np.floating))}


def train(trainer: Trainer, reals: torch.Tensor, run_dir: str | Path, kimg: float,
          holdout: torch.Tensor | None = None, sample_every_kimg: float = 2.0, checkpoint_minutes: float = 5.0,
          metrics_every_kimg: float = 0.0, metrics_n: int = 1000, progress: bool = True,
          stop_at: float | None = None, should_stop: Callable[[], bool] | None = None,
          on_step: Callable[[], None] | None = None) -> Trainer:
    """Train until ``kimg`` thousand images, wall-clock ``stop_at`` (a time.time() value) or ``should_stop()``.

    reals: uint8 (N, C, R, R) training images (on any device; batches are moved as needed).
    Writes run_dir/checkpoint.pt, samples/kimg*.png, log.jsonl (rank 0 only). However it stops,
    the last stretch gets its log record, sample grid (and metrics, if enabled) and a checkpoint.
    """
    from tqdm import tqdm

    run = Path(run_dir)
    is_main = trainer.rank == 0
    if is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(trainer.cfg.to_json())
    log_path = run / "log.jsonl"
    target = int(kimg * 1000)
    bar = tqdm(total=target, initial=min(trainer.nimg, target), unit="img", unit_scale=True,
               disable=not (progress and is_main), dynamic_ncols=True, mininterval=2.0)
    last_ckpt = time.time()
    next_sample = (math.floor(trainer.kimg / sample_every_kimg) + 1) * sample_every_kimg
    next_metric = (math.floor(trainer.kimg / metrics_every_kimg) + 1) * metrics_every_kimg if metrics_every_kimg > 0 else math.inf
    tick_start, tick_nimg, sums, count = time.time(), trainer.nimg, {}, 0
    if is_main and trainer.nimg == 0:
        trainer.sample_grid(run / "samples" / "kimg0000.000.png")

    def stopping() -> bool:
        local = (stop_at is not None and time.time() >= stop_at) or (should_stop is not None and should_stop())
        return dist_util.agree(local)  # every rank must leave the loop at the same step

    done = trainer.nimg >= target or stopping()
    while not done:
        t0 = time.time()
        stats = trainer.train_step(reals)
        trainer.train_seconds += time.time() - t0
        if on_step is not None:
            on_step()
        if not all(math.isfinite(v) for k, v in stats.items() if k != "p"):
            raise FloatingPointError(f"non-finite loss at step {trainer.step}: {stats}")
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        bar.update(trainer.cfg.batch)
        sec_per_kimg = (time.time() - tick_start) / max(trainer.nimg - tick_nimg, 1) * 1000
        bar.set_postfix_str(f"kimg {trainer.kimg:.1f} G {stats['loss_G']:.2f} D {stats['loss_D']:.2f} "
                            f"p {trainer.ada.p:.2f} {sec_per_kimg:.0f}s/kimg", refresh=False)
        done = trainer.nimg >= target or stopping()
        if trainer.kimg >= next_sample or done:
            record = {"kimg": round(trainer.kimg, 3), "step": trainer.step,
                      "wall_minutes": round(trainer.train_seconds / 60, 2), "sec_per_kimg": round(sec_per_kimg, 1),
                      **{k: round(v / count, 4) for k, v in sums.items()}}
            if is_main and (trainer.kimg >= next_metric or (done and metrics_every_kimg > 0)):
                t_eval = time.time()
                record.update(evaluate(trainer, holdout, metrics_n))
                record["eval_seconds"] = round(time.time() - t_eval, 1)
                next_metric = (math.floor(trainer.kimg / metrics_every_kimg) + 1) * metrics_every_kimg
            if is_main:
                trainer.sample_grid(run / "samples" / f"kimg{trainer.kimg:08.3f}.png")
                _log_jsonl(log_path, record)
            next_sample = (math.floor(trainer.kimg / sample_every_kimg) + 1) * sample_every_kimg
            tick_start, tick_nimg, sums, count = time.time(), trainer.nimg, {}, 0
        if is_main and (time.time() - last_ckpt > checkpoint_minutes * 60 or done):
            trainer.save_checkpoint(run / "checkpoint.pt")
            last_ckpt = time.time()
    bar.close()
    return trainer

"""``clothinggan train …``: train StyleGAN2 on a garment data set, resume it, export the generator.

    clothinggan train --data DIR --out runs/NAME --kimg K --batch B --config cpu64 [--resume]
    clothinggan train export --run runs/NAME --out assets/models/fashion64.safetensors
Multi-GPU: ``torchrun --nproc_per_node N -m clothinggan.train.cli --config gpu64 …``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from clothinggan.train import distributed as dist_util
from clothinggan.train.configs import CONFIGS, TrainConfig, get_config


def load_reals(source: str, resolution: int, holdout_fraction: float) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """uint8 training and held-out images from the shared data preparation, plus a description."""
    from clothinggan.train.data import prepare_dataset

    prepared = prepare_dataset(source, resolution=resolution, holdout_fraction=holdout_fraction)
    train = torch.as_tensor(prepared.train.images)
    holdout = torch.as_tensor(prepared.holdout.images) if len(prepared.holdout.images) else None
    desc = (f"{Path(source).name}: {len(train)} training images at {resolution}x{resolution} "
            f"(Innerwear and Socks excluded, {holdout_fraction:.0%} held out)")
    return train, holdout, desc


def until_timestamp(hhmm: str) -> float:
    """time.time() of the next occurrence of HH:MM UTC."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    now = dt.datetime.now(dt.timezone.utc)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= now:
        at += dt.timedelta(days=1)
    return at.timestamp()


class ThreadsFile:
    """Applies the thread count written in a file, checked at most every ``every`` seconds.

    On a 2-core machine a 2-thread run beside a test suite slows down many times over, while a
    1-thread run stays steady: this lets the person at the machine move a long run between the
    two without stopping it (``echo 1 > runs/NAME/threads``).
    """

    def __init__(self, path: str | Path, every: float = 30.0) -> None:
        self.path, self.every, self.checked = Path(path), every, 0.0

    def poll(self) -> None:
        now = time.time()
        if now - self.checked < self.every:
            return
        self.checked = now
        try:
            wanted = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return
        if wanted >= 1 and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
            print(f"threads: {wanted}", flush=True)


def _with_overrides(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """The recipe with --batch, --gamma and --ema-kimg applied: a new run's, or the next stretch of
    a resumed one (``--resume``, ``--resume-from``). The run continues from its exact state; only
    what these change from then on differs."""
    if args.batch:
        cfg.batch = args.batch
    if args.gamma is not None:
        cfg.r1_gamma = args.gamma
    if args.ema_kimg is not None:
        cfg.ema_kimg = args.ema_kimg
    return cfg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clothinggan train", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data set folder (images.zip + styles.csv)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt, samples/, log.jsonl")
    p.add_argument("--config", default="cpu64", choices=sorted(CONFIGS))
    p.add_argument("--kimg", type=float, default=50.0, help="train until this many thousand images")
    p.add_argument("--batch", type=int,
                   help="images per step over all GPUs (default: the config's, or the resumed run's)")
    p.add_argument("--gamma", type=float, help="R1 weight (default: the config's, or the resumed run's)")
    p.add_argument("--ema-kimg", type=float,
                   help="half-life of the EMA generator in kimg (default: the config's, or the resumed run's)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--resume-from", metavar="MODEL",
                   help="start from a trained model ('default' or a file): continue its training, or "
                        "fine-tune it on your own --data; uses its recipe, and its full training state "
                        "where one is shipped beside it")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA if available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward passes")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="bf16 autocast for synthesis and D; auto: on CUDA and on CPUs with native bf16 "
                        "(AVX-512 BF16 or AMX), fp32 elsewhere (default auto)")
    p.add_argument("--no-amp", action="store_true", help="same as --precision fp32")
    p.add_argument("--threads-file", help="a file holding a thread count, re-read every 30 s: lets a long run "
                                          "give a core back while other work runs, and take it again later")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of images held out for metrics")
    p.add_argument("--sample-every", type=float, default=2.0, help="kimg between sample grids")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--metrics-every", type=float, default=0.0, help="kimg between FD evaluations (0: off)")
    p.add_argument("--metrics-n", type=int, default=1000, help="generated images per evaluation")
    p.add_argument("--minutes", type=float, help="also stop after this many wall-clock minutes")
    p.add_argument("--until", help="also stop at this UTC time of day, HH:MM (e.g. a deadline)")
    return p


def build_export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clothinggan train export", description="write a run's EMA generator as safetensors")
    p.add_argument("--run", required=True, help="run folder holding checkpoint.pt")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--max-mb", type=float, default=20.0, help="store fp16 if fp32 would be larger")
    p.add_argument("--no-facts", action="store_true", help="skip <out>.json (meta, metrics, CPU speed)")
    p.add_argument("--state", action="store_true",
                   help="also write the run's complete training state beside the model (<out stem>.state.json "
                        "+ .state-K.safetensors shards of at most 20 MB), so --resume-from continues it exactly")
    return p


def export_main(argv: Sequence[str]) -> int:
    from clothinggan.train.loop import export_generator

    args = build_export_parser().parse_args(list(argv))
    run = Path(args.run)
    info_path = run / "run.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    path, meta = export_generator(run / "checkpoint.pt", args.out, data=info.get("data", ""), max_mb=args.max_mb)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {json.dumps(meta)}")
    if args.state:
        from clothinggan.train.loop import trainer_from_checkpoint
        from clothinggan.train.state_files import save_training_state

        manifest = save_training_state(trainer_from_checkpoint(run / "checkpoint.pt"), path)
        print(f"wrote {manifest} and its shards")
    if not args.no_facts:
        facts = write_facts(path, run, meta)
        print(f"wrote {path.with_suffix('.json')}: {facts['cpu_ms_per_image']}")
    return 0


def cpu_ms_per_image(path: Path, batch: int = 16, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` CPU synthesis time of the exported file (best: least disturbed by other load)."""
    import clothinggan as cg

    G = cg.load_generator(path, device="cpu", max_batch=batch)
    ws = G.seeds_to_ws(list(range(batch)))
    G.synthesis(ws[:1])  # warm-up: oneDNN picks its kernels on the first call
    best_batch = best_one = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        G.synthesis(ws)
        best_batch = min(best_batch, (time.perf_counter() - t0) / batch)
        t0 = time.perf_counter()
        G.synthesis(ws[:1])
        best_one = min(best_one, time.perf_counter() - t0)
    return {f"batch{batch}": round(best_batch * 1000, 2), "batch1": round(best_one * 1000, 2),
            "threads": float(torch.get_num_threads())}


def write_facts(model: Path, run: Path, meta: dict) -> dict:
    """``<model>.json``: the export meta, training config, last log and metrics records, CPU speed."""
    from clothinggan.train.loop import read_checkpoint

    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()] \
        if (run / "log.jsonl").is_file() else []
    with_fd = [r for r in records if "fd" in r]
    facts = {"file": model.name, "bytes": model.stat().st_size, **meta,
             "train_config_json": json.loads(read_checkpoint(run / "checkpoint.pt")["config"]),
             "last_log": records[-1] if records else None, "last_metrics": with_fd[-1] if with_fd else None,
             "metrics_history": [{k: r[k] for k in ("kimg", "wall_minutes", "fd", "fd_baseline", "precision", "recall")
                                  if k in r} for r in with_fd],
             "cpu_ms_per_image": cpu_ms_per_image(model)}
    model.with_suffix(".json").write_text(json.dumps(facts, indent=1) + "\n")
    return facts


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = dist_util.init_from_env(args.device)
    from clothinggan.train.loop import Trainer, read_checkpoint, train

    run = Path(args.out)
    ckpt = run / "checkpoint.pt"
    precision = "fp32" if args.no_amp else args.precision
    amp = None if precision == "auto" else precision == "bf16"
    kwargs = dict(device=device, seed=args.seed, mixed_precision=amp, compile=args.compile)
    if args.resume and ckpt.is_file():
        state = read_checkpoint(ckpt)
        trainer = Trainer(_with_overrides(TrainConfig.from_json(state["config"]), args), **kwargs)
        trainer.load_state_dict(state)
        print(f"resumed {ckpt} at kimg {trainer.kimg:.1f}, step {trainer.step}", flush=True)
    else:
        if args.resume:
            print(f"no checkpoint at {ckpt}; starting a new run", flush=True)
        init_path = state_manifest = None
        if args.resume_from:
            from clothinggan.train.resume import config_to_resume, model_path

            init_path = model_path(args.resume_from)
            cfg, state_manifest = config_to_resume(init_path, args.config)
        else:
            cfg = get_config(args.config)
        trainer = Trainer(_with_overrides(cfg, args), **kwargs)
        if init_path is not None:
            from clothinggan.train.resume import start_from_model

            how = start_from_model(trainer, init_path, state_manifest)
            print(f"started from {init_path} at kimg {trainer.kimg:.1f} ({how})", flush=True)
    if not args.data:
        raise SystemExit("clothinggan train: --data is required")
    t0 = time.time()
    reals, holdout, desc = load_reals(args.data, trainer.cfg.resolution, args.holdout)
    if device.type == "cuda":
        reals = reals.to(device)  # the whole 64-px set is a few hundred MB: no loader needed
    if trainer.rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        (run / "run.json").write_text(json.dumps({"data": desc, "config": trainer.cfg.name,
                                                  "world_size": trainer.world, "device": str(device),
                                                  "threads": torch.get_num_threads(),
                                                  "precision": trainer.precision}, indent=1))
        print(f"{desc}; loaded in {time.time() - t0:.0f} s; device {device}, {trainer.precision}, "
              f"world size {trainer.world}", flush=True)
    stop_at = time.time() + args.minutes * 60 if args.minutes else None
    if args.until:
        stop_at = min(stop_at or math.inf, until_timestamp(args.until))
    # SIGTERM / SIGINT end the run after the current step with a final grid, log and checkpoint.
    stop_requested = {"flag": False}

    def request_stop(signum: int, frame: object) -> None:
        stop_requested["flag"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    train(trainer, reals, run, args.kimg, holdout=holdout, sample_every_kimg=args.sample_every,
          checkpoint_minutes=args.checkpoint_minutes, metrics_every_kimg=args.metrics_every,
          metrics_n=args.metrics_n, stop_at=stop_at, should_stop=lambda: stop_requested["flag"],
          on_step=ThreadsFile(args.threads_file).poll if args.threads_file else None)
    if dist_util.is_distributed():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

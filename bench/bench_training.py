"""Training and inversion step time: this checkout against another commit, fresh processes, alternating.

  train step   one cpu64 training iteration (D step with R1 on its interval, then G step) on random
               images, at ``--batch``; printed as seconds per step and per kimg (the figure a run's
               progress bar shows)
  invert step  one refinement step of photo inversion: the embedded model's synthesis forward and
               backward to the latent at batch 1, as ``clothinggan.invert.refine`` runs it
Each side runs in its own process (``PYTHONPATH`` = that checkout), alternating, best of
``--repeats`` timed rounds per process, median over ``--runs`` processes, so a ratio is fair on a
busy machine: background load hits both sides alike. The other side is a git worktree.
Run: ``python bench/bench_training.py [--before REV] [--runs 3] [--threads 2] [--batch 32]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cold_start import REPO, run_json, worktree  # noqa: E402

MEASURE = r'''
import json, time, torch
from clothinggan.train.configs import get_config
from clothinggan.train.loop import Trainer
import clothinggan as cg
batch, repeats = BATCH, REPEATS
torch.manual_seed(0)
reals = torch.randint(0, 255, (256, 3, 64, 64), dtype=torch.uint8)
cfg = get_config("cpu64")
cfg.batch = batch
trainer = Trainer(cfg, device="cpu")
def rounds(fn, per_round):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best
step = rounds(lambda: trainer.train_step(reals[torch.randint(0, len(reals), (batch,))]), 3)
G = cg.load_generator("default", device="cpu")
ws0 = G.seeds_to_ws([3], psi=0.8)
target = torch.rand(1, 3, G.resolution, G.resolution) * 2 - 1
def invert_step():
    with torch.enable_grad():
        ws = ws0.clone().requires_grad_(True)
        (G.synthesis(ws, differentiable=True) - target).square().mean().backward()
invert = rounds(invert_step, 10)
print("JSON" + json.dumps({"train step": step, "train s/kimg": step / batch * 1000, "invert step": invert}))
'''


def measure(cwd: Path, threads: int, batch: int, repeats: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return run_json(f"BATCH, REPEATS = {batch}, {repeats}\n" + MEASURE, cwd, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="c615212", help="git revision to compare with ('' for none)")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per process (best is kept)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    sides = {"before": worktree(args.before), "now": REPO} if args.before else {"now": REPO}
    results: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
    for _ in range(args.runs):
        for side, cwd in sides.items():
            for key, value in measure(cwd, args.threads, args.batch, args.repeats).items():
                results[side].setdefault(key, []).append(value)
    print(f"training and inversion steps, batch {args.batch}, {args.threads} thread(s), median of {args.runs} "
          "processes per side; " + ", ".join(f"{s} = {p}" for s, p in sides.items()))
    for key in results["now"]:
        med = {side: statistics.median(results[side][key]) for side in sides}
        unit = (lambda v: f"{v:7.1f} s/kimg") if "kimg" in key else (lambda v: f"{v * 1000:8.1f} ms")
        cells = [f"{side} {unit(v)}" for side, v in med.items()]
        if len(sides) == 2:
            cells.append(f"now/before {med['now'] / med['before']:5.2f}")
        print(f"  {key:14s} " + "   ".join(cells))


if __name__ == "__main__":
    main()

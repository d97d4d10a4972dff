"""The GPU benchmark's own check on a CPU: a GPU lease is short, so the script must not first
break there (the figures it prints on a CPU mean nothing; only that every variant runs)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_runs_every_eager_variant_on_a_cpu() -> None:
    proc = subprocess.run([sys.executable, "bench/bench_gpu.py", "--device", "cpu", "--no-compile"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("  ")[1].strip(): line for line in proc.stdout.splitlines() if "img/s" in line}
    assert set(rows) == {"rosinality fp32", "rosinality bf16", "ours fp32", "ours bf16", "ours bf16 channels_last"}
    assert "failed" not in proc.stdout
    errors = {name: float(line.split()[-3]) for name, line in rows.items()}
    assert errors["ours fp32"] == 0 and errors["rosinality fp32"] < 0.01  # the same images in fp32
    assert 0 < errors["ours bf16"] < 2  # bf16 rounds, within two grey levels on random weights

"""GPU synthesis at the limit: the 512-px configuration (16 ws, channel multiplier 2) at batch 32
(images/s) and batch 1 (ms), ours against rosinality's fused formulation in the same process.

Every variant renders the same random-weight network and the same codes:
  NVlabs fp32               their own generator (``--nvlabs DIR``: a checkout of stylegan2-ada-pytorch)
  rosinality fp32 / bf16    per-sample weights and one grouped convolution per layer
  ours fp32 / bf16          the app's inference path under autocast (upsampling folded into one
                            6x6 transposed convolution, as ``Generator`` sets it on CUDA)
  ours bf16 channels_last   the same in NHWC
  ours bf16 compiled        ``torch.compile`` of the inference path and of the plain
                            layer-by-layer path: "reduce-overhead" (CUDA graphs) at batch 1,
                            the default mode at batch 32 (``--autotune``: max-autotune)
Times are CUDA-event medians after a warm-up; each variant's images are compared with ours fp32
(mean |difference| in grey levels of 255) and its peak memory is reported. The issue's targets:
batch 32 >= 1,600 images/s in bf16 and batch 1 <= 2 ms.
Run on a CUDA machine: ``python bench/bench_gpu.py [--quick] [--no-compile]``; ``--device cpu``
runs the same code on a tiny configuration, as a check that the script works.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synthesis import ROSINALITY_512, baseline_synthesis, nvlabs_generator  # noqa: E402

from clothinggan.networks import (GeneratorConfig, StyleGAN2, set_channels_last,  # noqa: E402
                                  set_fold_upsampling)

Render = Callable[[torch.Tensor], torch.Tensor]


def timed(render: Render, ws: torch.Tensor, repeats: int, device: torch.device) -> float:
    """Median seconds of one call, after three warm-up calls (compilation, cuDNN autotuning)."""
    for _ in range(3):
        render(ws)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            render(ws)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t = time.perf_counter()
            render(ws)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_bf16(fn: Render, device: torch.device) -> Render:
    def render(ws: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fn(ws).float()
    return render


def variants(net: StyleGAN2, device: torch.device, compile_: bool, batches: list[int],
             nvlabs: Path | None = None, autotune: bool = False) -> dict[str, dict[int, Render] | Render]:
    """name -> a render function (same for every batch) or {batch: render} where compiled per batch."""
    nhwc = copy.deepcopy(net)
    set_channels_last(nhwc, True)
    out: dict[str, dict[int, Render] | Render] = {}
    if nvlabs is not None:  # their code as released: fp32 here (their fp16 layers need their CUDA plugins)
        theirs = nvlabs_generator(net, nvlabs)
        out["NVlabs fp32"] = lambda ws: theirs.synthesis(ws, noise_mode="const", force_fp32=True)
    out |= {
        "rosinality fp32": lambda ws: baseline_synthesis(net, ws),
        "rosinality bf16": in_bf16(lambda ws: baseline_synthesis(net, ws), device),
        "ours fp32": lambda ws: net.synthesis(ws),
        "ours bf16": in_bf16(lambda ws: net.synthesis(ws), device),
        "ours bf16 channels_last": in_bf16(lambda ws: nhwc.synthesis(ws), device),
    }
    if compile_:
        # CUDA graphs pay where launches dominate (batch 1). A large batch compiles in the default
        # mode, or autotuned with --autotune (minutes of compiling: mind a short lease).
        # Both of our paths: the inference one, and the plain layer-by-layer one training uses.
        large = "max-autotune-no-cudagraphs" if autotune else "default"
        for label, path in (("ours bf16 compiled", lambda s: s), ("ours bf16 compiled, plain path", lambda s: s.reference)):
            out[label] = {b: in_bf16(torch.compile(path(copy.deepcopy(nhwc.synthesis)),
                                                   mode="reduce-overhead" if b == 1 else large),
                                     device)
                          for b in batches}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--nvlabs", metavar="DIR", type=Path, help="a checkout of NVlabs' stylegan2-ada-pytorch")
    parser.add_argument("--autotune", action="store_true", help="compile the large batch with max-autotune")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: pass --device cpu for a check of the script")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    torch.manual_seed(0)
    if device.type == "cuda":
        config = GeneratorConfig(resolution=512, z_dim=512, w_dim=512, mapping_layers=8, channels=ROSINALITY_512)
        batches = {32: 5 if args.quick else 20, 1: 20 if args.quick else 100}
    else:
        config = GeneratorConfig(resolution=32, z_dim=32, w_dim=32, mapping_layers=2,
                                 channels={4: 32, 8: 32, 16: 32, 32: 16})
        batches = {4: 3, 1: 3}
    net = StyleGAN2(config).to(device).eval().requires_grad_(False)
    set_fold_upsampling(net, device.type == "cuda")
    with torch.no_grad():
        w = net.mapping.truncate(net.mapping(torch.randn(max(batches), config.z_dim, device=device)), 0.7)
        ws = w.unsqueeze(1).repeat(1, config.num_ws, 1)
        reference = {b: net.synthesis(ws[:b]).float() for b in batches}
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"{name}, torch {torch.__version__}, {config.resolution} px, {config.num_ws} ws")
        print(f"  {'variant':32s} " + "   ".join(f"{'batch ' + str(b):>22s}" for b in batches)
              + "   mean |x - ours fp32| (/255)   peak memory")
        for label, fns in variants(net, device, not args.no_compile, list(batches), args.nvlabs, args.autotune).items():
            cells, errors = [], []
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for batch, repeats in batches.items():
                render = fns[batch] if isinstance(fns, dict) else fns
                try:
                    seconds = timed(render, ws[:batch], repeats, device)
                    errors.append(((render(ws[:batch]) - reference[batch]).abs().mean() / 2 * 255).item())
                except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
                    cells.append(f"{'failed: ' + type(exc).__name__:>22s}")
                    continue
                cells.append(f"{seconds * 1e3:8.2f} ms {batch / seconds:7.0f} img/s")
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
            error = f"{max(errors):.3f}" if errors else "-"
            print(f"  {label:32s} " + "   ".join(cells) + f"   {error:>27s}   {peak:8.0f} MiB")


if __name__ == "__main__":
    main()

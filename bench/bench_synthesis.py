"""CPU synthesis time of our StyleGAN2 against a rosinality-style fused-modconv baseline, same process.

The baseline folds each sample's style into its own weights and runs one grouped convolution per
layer (rosinality's ``fused=True``); ours modulates activations and shares one weight per layer.
Run: ``python bench/bench_synthesis.py [--quick]``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn.functional as F

import clothinggan as cg
from clothinggan.networks import (GeneratorConfig, StyleGAN2, SynthesisLayer, ToRGBLayer, bias_act, filter2d,
                                  upsample2d)

# rosinality's channel table with channel_multiplier=2 (512 px, 16 ws).
ROSINALITY_512 = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * 2, 128: 128 * 2, 256: 64 * 2, 512: 32 * 2}


# -- the baseline: per-sample weights, grouped convolutions ---------------------------------------
def fused_layer(layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """rosinality's fused modulated conv: weights (N, out, in, 3, 3), one grouped conv for the batch."""
    n, c_in, h, wd = x.shape
    c_out = layer.weight.shape[0]
    weight = layer.weight[None] * layer.affine(w)[:, None, :, None, None]
    weight = weight * (weight.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    if layer.up:
        grouped = weight.transpose(1, 2).reshape(n * c_in, c_out, 3, 3)
        x = F.conv_transpose2d(x.reshape(1, n * c_in, h, wd), grouped, stride=2, groups=n)
        x = filter2d(x.reshape(n, c_out, *x.shape[2:]), layer.resample_filter, pad=(1, 1), gain=4.0)
    else:
        x = F.conv2d(x.reshape(1, n * c_in, h, wd), weight.reshape(n * c_out, c_in, 3, 3), padding=1, groups=n)
        x = x.reshape(n, c_out, h, wd)
    x = x + layer.noise_const * layer.noise_strength
    return bias_act(x, layer.bias, lrelu=True, clamp=layer.conv_clamp)


def fused_torgb(layer: ToRGBLayer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    n, c_in, h, wd = x.shape
    weight = layer.weight[None] * (layer.affine(w) * layer.weight_gain)[:, None, :, None, None]
    y = F.conv2d(x.reshape(1, n * c_in, h, wd), weight.reshape(-1, c_in, 1, 1), groups=n)
    return bias_act(y.reshape(n, -1, h, wd), layer.bias, lrelu=False, clamp=layer.conv_clamp)


def baseline_synthesis(net: StyleGAN2, ws: torch.Tensor) -> torch.Tensor:
    """Same network, same weights, same w order; only the modulated-conv formulation differs."""
    x = img = None
    w_idx = 0
    for res in net.synthesis.block_resolutions:
        block = getattr(net.synthesis, f"b{res}")
        if block.is_first:
            x = fused_layer(block.conv1, block.const[None].expand(ws.shape[0], -1, -1, -1), ws[:, w_idx])
        else:
            x = fused_layer(block.conv0, x, ws[:, w_idx])
            x = fused_layer(block.conv1, x, ws[:, w_idx + 1])
        y = fused_torgb(block.torgb, x, ws[:, w_idx + block.num_conv])
        img = y if img is None else upsample2d(img, block.resample_filter) + y
        w_idx += block.num_conv
    return img


# -- timing -------------------------------------------------------------------------------------------
def best_times(fns: list[Callable[[], torch.Tensor]], repeats: int) -> list[float]:
    """Fastest wall time of each function over ``repeats`` interleaved rounds.

    Interleaving and taking the minimum keep a ratio fair on a shared, busy machine: background
    load can only add time, and it hits both sides alike.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def compare(label: str, G: cg.Generator, batches: dict[int, int]) -> None:
    """Print ours vs baseline for each batch size (value: repeats), after checking they agree.

    ``net.synthesis`` is timed rather than ``G.synthesis``, so both sides skip the same facade work.
    """
    net = G.net
    with torch.no_grad():
        ws = G.seeds_to_ws(list(range(max(batches))))
        ours, base = net.synthesis(ws[:1]), baseline_synthesis(net, ws[:1])  # also the warm-up
        diff = (ours - base).abs().max().item()
        print(f"{label}: {G.resolution} px, {G.num_ws} ws, {torch.get_num_threads()} threads, "
              f"max |ours - baseline| = {diff:.1e}")
        for batch, repeats in batches.items():
            t_ours, t_base = best_times([lambda: net.synthesis(ws[:batch]),
                                         lambda: baseline_synthesis(net, ws[:batch])], repeats)
            print(f"  batch {batch:2d}: ours {t_ours * 1000 / batch:8.1f} ms/img   baseline "
                  f"{t_base * 1000 / batch:8.1f} ms/img   ours/baseline {t_ours / t_base:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat per measurement")
    args = parser.parse_args()
    r = 1 if args.quick else 2
    torch.manual_seed(0)
    big = StyleGAN2(GeneratorConfig(resolution=512, z_dim=512, w_dim=512, mapping_layers=8,
                                    channels=ROSINALITY_512))
    compare("random-weight 512 px, channel multiplier 2", cg.Generator(big, device="cpu"),
            {1: r, 8: 1})  # one 512-px batch of 8 takes tens of seconds; once is enough
    compare('load_generator("default")', cg.load_generator("default", device="cpu"), {1: 3 * r, 8: r})


if __name__ == "__main__":
    main()

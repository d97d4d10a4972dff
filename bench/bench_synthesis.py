"""CPU synthesis time of our StyleGAN2 against two baselines, same process, interleaved.

- rosinality: folds each sample's style into its own weights and runs one grouped convolution
  per layer (rosinality's ``fused=True``); ours modulates activations and shares one weight.
- previous: this repository's synthesis before 2026-12-03, which is still its autograd path
  (training, inversion; default layout). Ours runs inference on its own path: all styles and
  demodulations in two batched products, derived weights made once, the ReLU gain folded into the
  next styles, in-place elementwise steps, channels_last convolutions, and at batch 1 the
  high-resolution layers' styles scaling the weights instead of the activations; on CPUs the
  shared weights packed once for oneDNN (``packed_conv``), toRGB as one batched matrix product.
bf16: ours under CPU autocast, the app's choice on CPUs with native bf16 (AVX-512 BF16 or AMX).
The app's grid is timed both ways: 16 designs rendered one call each (as the app did) and in one
batched call (as it does now). ``--before REV`` also runs ``clothinggan/networks.py`` as it was at
git revision REV, on the same weights, interleaved with ours in this process (fp32 and bf16).
``--nvlabs DIR`` also runs NVlabs' own generator from a checkout of stylegan2-ada-pytorch (its
``training/networks.py`` with ``torch_utils`` and ``dnnlib``; nothing of it is in this repository)
on the same weights, fp32 as its CPU path runs, interleaved with ours fp32 and bf16.
Run: ``python bench/bench_synthesis.py [--quick] [--threads 1] [--before REV] [--nvlabs DIR]``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import clothinggan as cg
from clothinggan import precision
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


def previous_synthesis(net: StyleGAN2, ws: torch.Tensor) -> torch.Tensor:
    """The synthesis as it ran before the inference path: the layer-by-layer code that training
    differentiates (``reference``), in the default layout."""
    return net.synthesis.reference(ws)


def bf16_synthesis(net: StyleGAN2, ws: torch.Tensor) -> torch.Tensor:
    """Ours under CPU bf16 autocast, as ``Generator(dtype=torch.bfloat16)`` runs it."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return net.synthesis(ws).float()


def report_single_image_settings(net: StyleGAN2, ws: torch.Tensor, repeats: int, idle: float = 0.2) -> None:
    """Ours at batch 1 three ways, in fp32 and in bf16 (the app's choice on this kind of CPU):
    interleaved (the table above: the other implementations' data in the caches), back to back
    (everything warm), and after ``idle`` seconds of sleep (how a click arrives: the worker threads
    asleep and the caches cooled)."""
    for name, render in (("fp32", lambda: net.synthesis(ws)), ("bf16", lambda: bf16_synthesis(net, ws))):
        def timed() -> float:
            start = time.perf_counter()
            render()
            return time.perf_counter() - start
        back_to_back = min(timed() for _ in range(repeats * 2))
        after_idle = []
        for _ in range(repeats):
            time.sleep(idle)
            after_idle.append(timed())
        after_idle.sort()
        print(f"  batch  1, ours {name}: back to back {back_to_back * 1000:6.2f} ms   after {idle:.1f} s idle: best "
              f"{after_idle[0] * 1000:6.2f} ms, median {after_idle[len(after_idle) // 2] * 1000:6.2f} ms")


def compare(label: str, G: cg.Generator, batches: dict[int, int], grid: int = 0) -> None:
    """Print ours vs the baselines for each batch size (value: repeats), after checking they agree.

    ``net.synthesis`` is timed rather than ``G.synthesis``, so every side skips the same facade work.
    """
    net = G.net
    with torch.no_grad():
        ws = G.seeds_to_ws(list(range(max(max(batches), grid))))
        n_check = min(len(ws), 16)
        ours, prev = net.synthesis(ws[:n_check]), previous_synthesis(net, ws[:n_check])
        base = baseline_synthesis(net, ws[:1])  # also the warm-up
        print(f"{label}: {G.resolution} px, {G.num_ws} ws, {torch.get_num_threads()} thread(s); "
              f"max |ours - previous| = {(ours - prev).abs().max().item():.1e} over {n_check} images, "
              f"max |ours - rosinality| = {(ours[:1] - base).abs().max().item():.1e}")
        levels = ((bf16_synthesis(net, ws[:n_check]) - ours).abs().mean() / 2 * 255).item()
        print(f"  bf16 autocast: mean |bf16 - fp32| = {levels:.2f}/255 over {n_check} images "
              f"(native bf16 on this CPU: {precision.bf16_is_native(torch.device('cpu'))})")
        auto = precision.choose_for(G, "auto")
        print(f"  the app's auto choice for this model: {precision.label(auto)}"
              + (f" (its check at load: {G.meta['bf16_error']:.2f}/255 at psi 0.7)" if "bf16_error" in G.meta else ""))
        for batch, repeats in batches.items():
            t_ours, t_prev, t_base, t_bf16 = best_times([lambda: net.synthesis(ws[:batch]),
                                                         lambda: previous_synthesis(net, ws[:batch]),
                                                         lambda: baseline_synthesis(net, ws[:batch]),
                                                         lambda: bf16_synthesis(net, ws[:batch])], repeats)
            print(f"  batch {batch:2d}: ours {t_ours * 1000:8.1f} ms ({t_ours * 1000 / batch:6.1f}/img)   "
                  f"previous {t_prev * 1000:8.1f} ms   rosinality {t_base * 1000:8.1f} ms   "
                  f"ours bf16 {t_bf16 * 1000:8.1f} ms   ours/previous {t_ours / t_prev:5.2f}   "
                  f"ours/rosinality {t_ours / t_base:5.2f}   bf16/fp32 {t_bf16 / t_ours:5.2f}   "
                  f"bf16/rosinality {t_bf16 / t_base:5.2f}")
        if 1 in batches:
            report_single_image_settings(net, ws[:1], batches[1])
        if grid:
            one_by_one = lambda fn: [fn(net, ws[i:i + 1]) for i in range(grid)]  # noqa: E731
            t_batched, t_prev_single, t_ours_single, t_bf16 = best_times([
                lambda: net.synthesis(ws[:grid]),
                lambda: one_by_one(previous_synthesis),
                lambda: one_by_one(lambda n, w: n.synthesis(w)),
                lambda: bf16_synthesis(net, ws[:grid])], max(batches.values()))
            print(f"  {grid}-design grid: one batched call, bf16 (app on native-bf16 CPUs) {t_bf16 * 1000:7.1f} ms   "
                  f"fp32 (app elsewhere) {t_batched * 1000:7.1f} ms   "
                  f"{grid} calls, previous code (app before) {t_prev_single * 1000:7.1f} ms   "
                  f"{grid} calls, ours {t_ours_single * 1000:7.1f} ms   "
                  f"now/before {t_batched / t_prev_single:5.2f}")


def networks_at(revision: str) -> types.ModuleType:
    """``clothinggan/networks.py`` as it was at a git revision, as a module of its own (it imports
    only torch and numpy), so an older synthesis runs beside ours in one process."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{revision}:clothinggan/networks.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"networks_{revision}")
    sys.modules[module.__name__] = module   # dataclasses look their module up there
    exec(compile(source, f"{revision}:clothinggan/networks.py", "exec"), module.__dict__)  # noqa: S102 (our own file)
    return module


def compare_before(G: cg.Generator, revision: str, batches: dict[int, int]) -> None:
    """Ours against ``networks.py`` at ``revision``: same weights and layout (channels_last), fp32
    and bf16, interleaved; best and median of each, and the ratio of the medians."""
    old_networks = networks_at(revision)
    config = old_networks.GeneratorConfig.from_json(G.net.config.to_json())
    before = old_networks.StyleGAN2(config)
    before.load_state_dict(G.net.state_dict())
    before.eval().requires_grad_(False)
    old_networks.set_channels_last(before, True)
    with torch.no_grad():
        ws = G.seeds_to_ws(list(range(max(batches))))
        for batch, repeats in batches.items():
            for bf16 in (False, True):
                times: dict[str, list[float]] = {"before": [], "ours": []}
                for _ in range(repeats * 5):
                    for name, net in (("before", before), ("ours", G.net)):
                        render = (lambda: bf16_synthesis(net, ws[:batch])) if bf16 else (lambda: net.synthesis(ws[:batch]))
                        start = time.perf_counter()
                        render()
                        times[name].append(time.perf_counter() - start)
                best = {k: min(v) * 1000 for k, v in times.items()}
                median = {k: sorted(v)[len(v) // 2] * 1000 for k, v in times.items()}
                print(f"  batch {batch:2d} {'bf16' if bf16 else 'fp32'}: {revision} best {best['before']:7.2f} ms, "
                      f"median {median['before']:7.2f}   ours best {best['ours']:7.2f} ms, median {median['ours']:7.2f}   "
                      f"ours/{revision} (medians) {median['ours'] / median['before']:5.2f}")


def nvlabs_generator(ours: StyleGAN2, checkout: Path) -> torch.nn.Module:
    """NVlabs' Generator, imported from ``checkout``, built to our network's configuration and
    given its weights (our parameter names are theirs), on its device; fp32 everywhere, as their
    code runs on a CPU."""
    sys.path.insert(0, str(checkout))
    from training import networks as nvlabs  # noqa: PLC0415 - the user's checkout, found at run time

    cfg = ours.config
    top = max(cfg.channels)
    channel_base, channel_max = cfg.channels[top] * top, max(cfg.channels.values())
    if any(min(channel_base // res, channel_max) != ch for res, ch in cfg.channels.items()):
        raise SystemExit(f"NVlabs' channel rule cannot express {cfg.channels}")
    net = nvlabs.Generator(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                           img_channels=cfg.img_channels,
                           mapping_kwargs=dict(num_layers=cfg.mapping_layers, lr_multiplier=cfg.mapping_lr_multiplier),
                           synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max,
                                                 num_fp16_res=0, conv_clamp=cfg.conv_clamp))
    result = net.load_state_dict(ours.state_dict(), strict=False)  # their fixed blur filters are theirs
    if result.unexpected_keys or any(not k.endswith("resample_filter") for k in result.missing_keys):
        raise SystemExit(f"NVlabs' generator does not take these weights: {result}")
    return net.to(next(ours.parameters()).device).eval().requires_grad_(False)


def compare_nvlabs(G: cg.Generator, checkout: Path, batches: dict[int, int]) -> None:
    """NVlabs' fp32 synthesis against ours fp32 and bf16, same weights, interleaved; best and
    median of each and the ratios of the medians."""
    theirs = nvlabs_generator(G.net, checkout)
    with torch.no_grad():
        ws = G.seeds_to_ws(list(range(max(batches))))
        n_check = min(len(ws), 4)
        reference = theirs.synthesis(ws[:n_check], noise_mode="const", force_fp32=True)
        diff = (G.net.synthesis(ws[:n_check]) - reference).abs().max().item()
        print(f"  NVlabs ({checkout}): max |ours - NVlabs| = {diff:.1e} over {n_check} images")
        renders = {"NVlabs fp32": lambda b: theirs.synthesis(ws[:b], noise_mode="const", force_fp32=True),
                   "ours fp32": lambda b: G.net.synthesis(ws[:b]),
                   "ours bf16": lambda b: bf16_synthesis(G.net, ws[:b])}
        for batch, repeats in batches.items():
            times: dict[str, list[float]] = {name: [] for name in renders}
            for _ in range(max(3, repeats)):
                for name, render in renders.items():
                    start = time.perf_counter()
                    render(batch)
                    times[name].append(time.perf_counter() - start)
            median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
            print(f"  batch {batch:2d}: " + "   ".join(f"{k} best {min(v) * 1000:8.1f} ms, median {median[k] * 1000:8.1f}"
                                                   for k, v in times.items())
                  + f"   NVlabs/ours fp32 {median['NVlabs fp32'] / median['ours fp32']:5.2f}"
                  + f"   NVlabs/ours bf16 {median['NVlabs fp32'] / median['ours bf16']:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--skip-512", action="store_true", help="only the embedded model")
    parser.add_argument("--before", metavar="REV", help="also time networks.py at this git revision, interleaved")
    parser.add_argument("--nvlabs", metavar="DIR", type=Path,
                        help="a checkout of NVlabs' stylegan2-ada-pytorch: also time its generator, interleaved")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = 1 if args.quick else 2
    torch.manual_seed(0)
    default = cg.load_generator("default", device="cpu")
    compare('load_generator("default")', default, {1: 10 * r, 16: 2 * r}, grid=16)
    if args.before:
        compare_before(default, args.before, {1: 10 * r, 16: 2 * r})
    if args.nvlabs:
        compare_nvlabs(default, args.nvlabs, {1: 10 * r, 16: 2 * r})
    if not args.skip_512:
        big = StyleGAN2(GeneratorConfig(resolution=512, z_dim=512, w_dim=512, mapping_layers=8,
                                        channels=ROSINALITY_512))
        big_generator = cg.Generator(big, device="cpu")
        compare("random-weight 512 px, channel multiplier 2", big_generator, {1: r})
        if args.before:
            compare_before(big_generator, args.before, {1: 1})
        if args.nvlabs:
            compare_nvlabs(big_generator, args.nvlabs, {1: 2 * r})


if __name__ == "__main__":
    main()

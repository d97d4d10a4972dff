"""rosinality/stylegan2-pytorch checkpoints (train.py and convert_weight.py / GANSpace layouts).

They are torch zip files, loaded with ``weights_only=True``; ``g_ema`` is renamed onto NVlabs
names by one fixed table (no kernel flips), and the whole config is read from tensor shapes.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from clothinggan.errors import CheckpointError
from clothinggan.networks import GeneratorConfig, MappingNetwork

MEAN_LATENT_SEED = 1013   # w_avg fallback: mean mapping output over RandomState(1013).randn(4096, z_dim)
MEAN_LATENT_SAMPLES = 4096
BLUR_16 = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 16  # ×4 gain included

# Transforms from a rosinality tensor to its NVlabs twin, and back (given the NVlabs tensor).
TO_NVLABS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "same": lambda t: t, "drop0": lambda t: t[0], "noise": lambda t: t[0, 0],
    "scalar": lambda t: t.reshape(()), "flat": lambda t: t.reshape(-1)}
TO_ROSINALITY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "same": lambda t: t, "drop0": lambda t: t[None], "noise": lambda t: t[None, None],
    "scalar": lambda t: t.reshape(1), "flat": lambda t: t.reshape(1, -1, 1, 1)}

KeyTable = list[tuple[str, str, str]]  # (rosinality key, NVlabs key, transform)


def load_torch_file(path: Path) -> Any:
    """torch.load with ``weights_only=True``; train.py's ``args`` Namespace is the one extra type.

    A zip-form file is first checked from its directory (no bomb) and its CRCs verified, which
    torch.load does not do: a bit-flipped file would otherwise load with silently changed weights.
    """
    from clothinggan.formats.checks import MAX_CHECKPOINT_BYTES
    from clothinggan.formats.archives import ArchiveError, check_zip

    with open(path, "rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if is_zip:
        try:
            check_zip(path, max_total=MAX_CHECKPOINT_BYTES)
        except ArchiveError as exc:
            raise CheckpointError(path, f"was refused as a PyTorch file: {exc}") from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip errors, unpickling refusals, EOF: all mean "not loadable safely"
        raise CheckpointError(path, f"could not be loaded safely as a PyTorch file ({_summarise(exc)})") from None
    except (MemoryError, RecursionError) as exc:  # not Exception subclasses to catch by accident
        raise CheckpointError(path, f"could not be loaded: it needs more memory or nesting than allowed "
                                    f"({type(exc).__name__})") from None


def _summarise(exc: Exception) -> str:
    """One short clause from torch.load's long messages (it names a refused global when there is one)."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"it references the disallowed global {found.group(1)}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


def _conv_entries(ros: str, nv: str, noise_index: int) -> KeyTable:
    return [(f"{ros}.conv.weight", f"{nv}.weight", "drop0"),
            (f"{ros}.conv.modulation.weight", f"{nv}.affine.weight", "same"),
            (f"{ros}.conv.modulation.bias", f"{nv}.affine.bias", "same"),
            (f"{ros}.noise.weight", f"{nv}.noise_strength", "scalar"),
            (f"{ros}.activate.bias", f"{nv}.bias", "same"),
            (f"noises.noise_{noise_index}", f"{nv}.noise_const", "noise")]


def _torgb_entries(ros: str, nv: str) -> KeyTable:
    return [(f"{ros}.conv.weight", f"{nv}.weight", "drop0"),
            (f"{ros}.conv.modulation.weight", f"{nv}.affine.weight", "same"),
            (f"{ros}.conv.modulation.bias", f"{nv}.affine.bias", "same"),
            (f"{ros}.bias", f"{nv}.bias", "flat")]


def key_table(mapping_layers: int, resolution: int) -> KeyTable:
    """The fixtures README's correspondence table, spelled out for one model size."""
    table: KeyTable = [(f"style.{i + 1}.{p}", f"mapping.fc{i}.{p}", "same")
                       for i in range(mapping_layers) for p in ("weight", "bias")]
    table.append(("input.input", "synthesis.b4.const", "drop0"))
    table += _conv_entries("conv1", "synthesis.b4.conv1", 0)
    table += _torgb_entries("to_rgb1", "synthesis.b4.torgb")
    for k in range(int(math.log2(resolution)) - 2):
        block = f"synthesis.b{2 ** (k + 3)}"
        table += _conv_entries(f"convs.{2 * k}", f"{block}.conv0", 2 * k + 1)
        table += _conv_entries(f"convs.{2 * k + 1}", f"{block}.conv1", 2 * k + 2)
        table += _torgb_entries(f"to_rgbs.{k}", f"{block}.torgb")
    return table


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.fullmatch(k))})


def config_from_g_ema(g_ema: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Resolution from the toRGB count, channels from conv shapes, mapping from ``style.*``."""
    n_mlp = _count(g_ema, r"style\.(\d+)\.weight")
    n_rgbs = _count(g_ema, r"to_rgbs\.(\d+)\.conv\.weight")
    if n_rgbs > 8:
        raise ValueError(f"it has {n_rgbs + 1} resolutions, more than a 1024-px StyleGAN2")
    resolution = 4 * 2 ** n_rgbs
    if n_mlp == 0 or "input.input" not in g_ema:
        raise ValueError("no mapping layers (style.*) or constant input found")
    channels = {4: int(g_ema["input.input"].shape[1])}
    for k in range(int(math.log2(resolution)) - 2):
        channels[2 ** (k + 3)] = int(g_ema[f"convs.{2 * k}.conv.weight"].shape[1])
    first, last = g_ema["style.1.weight"], g_ema[f"style.{n_mlp}.weight"]
    w_dim = int(last.shape[0])
    hidden = int(first.shape[0]) if n_mlp > 1 else w_dim
    return GeneratorConfig(resolution=resolution, z_dim=int(first.shape[1]), w_dim=w_dim, mapping_layers=n_mlp,
                           mapping_features=None if hidden == w_dim else hidden, channels=channels,
                           img_channels=int(g_ema["to_rgb1.conv.weight"].shape[1]))


def _check_blur_kernels(path: Path, g_ema: dict[str, torch.Tensor]) -> None:
    # Our network hard-codes [1,3,3,1]; a model trained with another kernel would draw wrongly.
    for key, value in g_ema.items():
        if key.endswith(("blur.kernel", "upsample.kernel")):
            if value.shape != BLUR_16.shape or not torch.allclose(value.float(), BLUR_16, atol=1e-6):
                raise CheckpointError(path, f"uses a blur kernel other than [1,3,3,1] ({key})")


def mean_mapping_output(config: GeneratorConfig, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """rosinality's ``mean_latent`` on a fixed z set, so the result does not depend on torch's RNG."""
    mapping = MappingNetwork(config)
    mapping.load_state_dict({k[len("mapping."):]: v for k, v in state.items() if k.startswith("mapping.")},
                            strict=False)  # w_avg is what we are computing
    z = np.random.RandomState(MEAN_LATENT_SEED).randn(MEAN_LATENT_SAMPLES, config.z_dim).astype(np.float32)
    with torch.no_grad():
        return mapping(torch.from_numpy(z)).mean(dim=0)


def rosinality_from_object(path: Path, obj: dict[str, Any]) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """(config, NVlabs-named float32 state, meta) from a loaded rosinality checkpoint dict."""
    g_ema = obj.get("g_ema")
    if not isinstance(g_ema, dict) or not all(isinstance(v, torch.Tensor) for v in g_ema.values()):
        raise CheckpointError(path, "has a g_ema entry that is not a state dict of tensors")
    from clothinggan.formats.checks import check_tensor_views

    check_tensor_views(path, g_ema)
    try:
        config = config_from_g_ema(g_ema)
    except (KeyError, ValueError, IndexError) as exc:
        raise CheckpointError(path, f"does not hold a rosinality StyleGAN2 generator ({exc})") from None
    _check_blur_kernels(path, g_ema)
    table = key_table(config.mapping_layers, config.resolution)
    known = {ros for ros, _, _ in table}
    unexpected = sorted(k for k in g_ema if k not in known and not k.endswith("kernel"))
    missing = sorted(known - set(g_ema))
    if missing or unexpected:
        raise CheckpointError(path, f"g_ema does not match the rosinality layout (missing: {missing[:4]}, "
                                    f"unexpected: {unexpected[:4]})")
    try:
        state = {nv: TO_NVLABS[how](g_ema[ros]).to(torch.float32).contiguous().clone() for ros, nv, how in table}
    except (IndexError, RuntimeError) as exc:  # e.g. a 0-d noise buffer, a 2-element noise.weight
        key = next((ros for ros, _, how in table if not _fits(g_ema[ros], how)), "a tensor")
        raise CheckpointError(path, f"g_ema tensor {key} has the wrong shape for a rosinality generator "
                                    f"({type(exc).__name__})") from None
    meta: dict[str, Any] = {"format": "rosinality", "layout": "train" if "g" in obj else "converted"}
    latent_avg = obj.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor) and latent_avg.numel() == config.w_dim:
        state["mapping.w_avg"] = latent_avg.reshape(-1).to(torch.float32).clone()
        meta["w_avg_source"] = "latent_avg"
    else:
        from clothinggan.formats.checks import check_shapes

        shapes = {k: tuple(v.shape) for k, v in state.items()}
        check_shapes(path, config, {**shapes, "mapping.w_avg": (config.w_dim,)})  # before running the mapping
        state["mapping.w_avg"] = mean_mapping_output(config, state)
        meta["w_avg_source"] = f"mean of {MEAN_LATENT_SAMPLES} mapping outputs, z = RandomState({MEAN_LATENT_SEED})"
    return config, state, meta


def _fits(tensor: torch.Tensor, how: str) -> bool:
    try:
        TO_NVLABS[how](tensor)
        return True
    except (IndexError, RuntimeError):
        return False


def read_rosinality(path: str | Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read a rosinality ``.pt`` (train.py or converted layout) into NVlabs names."""
    path = Path(path)
    obj = load_torch_file(path)
    if not isinstance(obj, dict) or "g_ema" not in obj:
        raise CheckpointError(path, "is not a rosinality checkpoint (no g_ema entry)")
    return rosinality_from_object(path, obj)


def to_rosinality_state(state: dict[str, torch.Tensor], config: GeneratorConfig) -> dict[str, Any]:
    """The inverse mapping: our (NVlabs-named) state → a converted-layout rosinality checkpoint."""
    if config.c_dim or config.conv_clamp is not None:
        raise ValueError("rosinality checkpoints cannot hold conditional or clamped models")
    g_ema = {ros: TO_ROSINALITY[how](state[nv]).clone()
             for ros, nv, how in key_table(config.mapping_layers, config.resolution)}
    for k in range(int(math.log2(config.resolution)) - 2):
        g_ema[f"convs.{2 * k}.conv.blur.kernel"] = BLUR_16.clone()
        g_ema[f"to_rgbs.{k}.upsample.kernel"] = BLUR_16.clone()
    return {"g_ema": g_ema, "latent_avg": state["mapping.w_avg"].clone()}


def write_rosinality(state: dict[str, torch.Tensor], config: GeneratorConfig, path: str | Path) -> Path:
    """Save as rosinality's converted layout (``g_ema`` + ``latent_avg``), for their tools."""
    path = Path(path)
    torch.save(to_rosinality_state(state, config), path)
    return path

"""A run's complete training state as safetensors shards of at most 20 MB, shipped beside a model.

Training the embedded model takes many stretches, often on different machines, and each one
must continue exactly where the last stopped. The state (G, D, G_ema, Adam's second moments,
the augmentation controller, counters and random streams) is written as a JSON manifest
``<name>.state.json`` plus ``<name>.state-K.safetensors`` shards, so it lives in git beside the
model and loads without unpickling anything. Adam's first moments are not stored when beta1 is
0 (StyleGAN2's setting): the next step overwrites them with the gradient exactly.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from clothinggan.errors import CheckpointError
from clothinggan.paths import atomic_path, file_sha256
from clothinggan.train.configs import TrainConfig

STATE_FORMAT = "clothinggan-train-state"
STATE_VERSION = 1
MAX_SHARD_BYTES = 19_500_000
_RNG_KEYS = ("torch", "gen", "data")


def manifest_path(model_file: str | Path) -> Path:
    """``fashion64.safetensors`` → ``fashion64.state.json`` (beside it)."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.stem + ".state.json")


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer, keep_first_moment: bool) -> dict[str, torch.Tensor]:
    out = {}
    for index, state in opt.state_dict()["state"].items():
        out[f"{prefix}.{index}.step"] = torch.as_tensor(state["step"], dtype=torch.float32).reshape(())
        out[f"{prefix}.{index}.exp_avg_sq"] = state["exp_avg_sq"]
        if keep_first_moment:
            out[f"{prefix}.{index}.exp_avg"] = state["exp_avg"]
    return out


def _beta1_is_zero(opt: torch.optim.Optimizer) -> bool:
    return all(group["betas"][0] == 0.0 for group in opt.param_groups)


def training_tensors(trainer: Any, skip_g_ema: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of the state, flat and prefixed (``G.``, ``D.``, ``opt_G.3.exp_avg_sq`` …)."""
    tensors: dict[str, torch.Tensor] = {}
    nets = {"G": trainer.G, "D": trainer.D} if skip_g_ema else {"G": trainer.G, "D": trainer.D, "G_ema": trainer.G_ema}
    for name, net in nets.items():
        tensors.update({f"{name}.{k}": v for k, v in net.state_dict().items()})
    for name, opt in (("opt_G", trainer.opt_G), ("opt_D", trainer.opt_D)):
        tensors.update(_optimizer_tensors(name, opt, keep_first_moment=not _beta1_is_zero(opt)))
    rng = {"torch": torch.get_rng_state(), "gen": trainer.gen.get_state(), "data": trainer.data_gen.get_state()}
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    tensors["pl_mean"] = trainer.pl_mean.detach().cpu().reshape(())
    # Dense, contiguous, CPU copies: safetensors refuses views and channels_last strides.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def _pack(tensors: dict[str, torch.Tensor], limit: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > limit:
            raise ValueError(f"tensor {key} alone is {nbytes / 1e6:.1f} MB, over the {limit / 1e6:.1f} MB shard limit")
        if size + nbytes > limit and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    return shards


def save_training_state(trainer: Any, model_file: str | Path, shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Write the trainer's state beside ``model_file``; returns the manifest's path.

    When ``model_file`` holds exactly the trainer's G_ema, G_ema is not written again. Old shards
    of the same name that the new state does not use are removed.
    """
    from safetensors.torch import save_file

    from clothinggan.checkpoints import read_safetensors
    from clothinggan.paths import write_atomic

    model_file = Path(model_file)
    manifest = manifest_path(model_file)
    ema_in_model = False
    if model_file.is_file():
        try:
            _, shipped, _ = read_safetensors(model_file)
            ema = {k: v.detach().cpu() for k, v in trainer.G_ema.state_dict().items()}
            ema_in_model = _same_tensors(shipped, ema)
        except CheckpointError:
            ema_in_model = False
    shards = _pack(training_tensors(trainer, skip_g_ema=ema_in_model), shard_bytes)
    stem = model_file.stem
    files = []
    for i, shard in enumerate(shards):
        path = model_file.with_name(f"{stem}.state-{i}.safetensors")
        with atomic_path(path) as tmp:
            save_file(shard, str(tmp))
        files.append({"file": path.name, "sha256": file_sha256(path), "tensors": len(shard)})
    for old in model_file.parent.glob(f"{stem}.state-*.safetensors"):
        if old.name not in {f["file"] for f in files}:
            old.unlink()
    record = {"format": STATE_FORMAT, "version": STATE_VERSION, "config": json.loads(trainer.cfg.to_json()),
              "step": trainer.step, "nimg": trainer.nimg, "train_seconds": trainer.train_seconds,
              "augment_p": trainer.ada.p, "ada_sum": trainer.ada._sum, "ada_count": trainer.ada._count,
              "world_size": trainer.world, "precision": trainer.precision,
              "g_ema": {"file": model_file.name, "sha256": file_sha256(model_file)} if ema_in_model else "shards",
              "shards": files}
    write_atomic(manifest, (json.dumps(record, indent=1) + "\n").encode())
    return manifest


def read_manifest(manifest: str | Path) -> dict[str, Any]:
    manifest = Path(manifest)
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(manifest, f"is not a readable training-state manifest ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != STATE_FORMAT:
        raise CheckpointError(manifest, "is not a clothinggan training-state manifest")
    if int(record.get("version", 0)) > STATE_VERSION:
        raise CheckpointError(manifest, f"was written by a newer clothinggan (state version {record['version']})")
    return record


def _load_shards(manifest: Path, record: dict[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for entry in record["shards"]:
        path = manifest.with_name(entry["file"])
        if not path.is_file():
            raise CheckpointError(path, "is missing: the training state is incomplete")
        if file_sha256(path) != entry["sha256"]:
            raise CheckpointError(path, "does not match the sha256 in its manifest (changed or corrupt)")
        tensors.update(load_file(str(path)))
    if record["g_ema"] != "shards":
        from clothinggan.checkpoints import read_safetensors

        model = manifest.with_name(record["g_ema"]["file"])
        if not model.is_file() or file_sha256(model) != record["g_ema"]["sha256"]:
            raise CheckpointError(model, "is not the model this training state was saved with; "
                                         "its G_ema is part of the state")
        _, ema, _ = read_safetensors(model)
        tensors.update({f"G_ema.{k}": v for k, v in ema.items()})
    return tensors


def _optimizer_state(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    current = opt.state_dict()
    params = [i for group in current["param_groups"] for i in group["params"]]
    by_index = {p: param for p, param in zip(params, (q for g in opt.param_groups for q in g["params"]))}
    state = {}
    for index in params:
        key = f"{prefix}.{index}"
        if f"{key}.exp_avg_sq" not in tensors:
            continue
        exp_avg = tensors.get(f"{key}.exp_avg")
        state[index] = {"step": tensors[f"{key}.step"].clone(),
                        "exp_avg": exp_avg if exp_avg is not None else torch.zeros_like(by_index[index].detach().cpu()),
                        "exp_avg_sq": tensors[f"{key}.exp_avg_sq"]}
    return {"state": state, "param_groups": current["param_groups"]}


def load_training_state(trainer: Any, manifest: str | Path) -> None:
    """Restore a state written by ``save_training_state`` into a trainer built from its config."""
    manifest = Path(manifest)
    record = read_manifest(manifest)
    tensors = _load_shards(manifest, record)

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

    try:
        for name, net in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema)):
            net.load_state_dict(part(name))
        for name, opt in (("opt_G", trainer.opt_G), ("opt_D", trainer.opt_D)):
            opt.load_state_dict(_optimizer_state(name, opt, tensors))
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(manifest, f"does not fit the run's networks ({exc})"[:500]) from None
    trainer.step, trainer.nimg = int(record["step"]), int(record["nimg"])
    trainer.train_seconds = float(record["train_seconds"])
    trainer.ada.p = float(record["augment_p"])
    trainer.ada._sum, trainer.ada._count = float(record["ada_sum"]), int(record["ada_count"])
    trainer.pl_mean.copy_(tensors["pl_mean"])
    torch.set_rng_state(tensors["rng.torch"])
    if int(record.get("world_size", 1)) == trainer.world:
        trainer.gen.set_state(tensors["rng.gen"])
        trainer.data_gen.set_state(tensors["rng.data"])


def config_of_state(manifest: str | Path) -> TrainConfig:
    return TrainConfig.from_json(json.dumps(read_manifest(manifest)["config"]))

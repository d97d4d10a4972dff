"""Multi-GPU data parallelism for the trainer, when launched with torchrun.

Gradients are averaged by hand (one all-reduce per network per step) instead of wrapping in
DistributedDataParallel, because R1 needs a double backward that DDP does not support; with a
single process every function here is a no-op, so the same loop runs on a laptop.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(device: str | None) -> torch.device:
    """Join the torchrun process group if WORLD_SIZE > 1 and pick this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return torch.device("cuda", local)
        dist.init_process_group("gloo")
    if device:
        return torch.device(device)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def broadcast_module(module: nn.Module) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if world_size() > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def average_gradients(module: nn.Module) -> None:
    """All-reduce the mean of every gradient in one flat buffer (NaNs zeroed, as NVlabs does)."""
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return
    if world_size() > 1:
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= world_size()
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n
    for p in params:
        torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)


def mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (identity with one process)."""
    if world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
        t /= world_size()
    return t


def sum_tensor(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, moved to the process's device as NCCL requires (identity with one process)."""
    if world_size() > 1:
        dev = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else t.device
        t = t.to(dev)
        dist.all_reduce(t)
        t = t.cpu()
    return t


def agree(flag: bool) -> bool:
    """True on every rank if it is True on any (so all ranks stop at the same step)."""
    if world_size() == 1:
        return flag
    return bool(sum_tensor(torch.tensor([1.0 if flag else 0.0])) > 0)

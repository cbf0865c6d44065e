"""Multi-process training on ``torch.distributed`` (DDP), launched by ``torchrun``.

kinediff grows no cluster code of its own: ``torchrun --nproc_per_node N [--nnodes M ...]
script.py`` sets RANK / WORLD_SIZE / LOCAL_RANK, :func:`setup` joins the process group (NCCL on
GPUs, gloo on CPU) and the :class:`~kinediff.training.Trainer` does the rest when given the
returned :class:`DistInfo`: every global batch of ``batch_size`` samples is split evenly over the
ranks (so N processes with batch_size B take the same steps as one process with B), gradients are
averaged by DDP, logged losses are averaged over ranks, only rank 0 writes checkpoints and logs
and evaluates, and a checkpoint written with N processes resumes with any other number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "LossModule", "cleanup", "setup"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def setup(backend: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables (a single-process
    :class:`DistInfo` when there are none). ``backend`` defaults to NCCL with CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world == 1:
        return DistInfo(device=device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, device)


def cleanup() -> None:
    """Leave the process group (if joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


class LossModule(torch.nn.Module):
    """Wraps a PostureHMR so that DDP sees its stage loss as ``forward`` (DDP hooks gradients
    through ``forward`` only)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch, stage: str, epoch: int | None = None):
        return self.model.loss(batch, stage, epoch)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average a dict of floats over the ranks (identity in a single process)."""
    if not info.active:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()

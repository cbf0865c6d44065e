"""``PostureSchedule``: the interface shared by every forward process, in the manner of diffusers'
schedulers. A schedule maps a target (pose, shape) to meshes M_t for t = 0 (the target) .. T (the
template), gives the reverse-process label M_{t-1} - M_t, and takes a reverse step."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

__all__ = ["SCHEDULES", "PostureSchedule"]

#: Registry of schedule classes by name, for ``PostureSchedule.from_dict``.
SCHEDULES: dict[str, type[PostureSchedule]] = {}


class PostureSchedule:
    """Base class. Subclasses implement ``_meshes`` (or override the public calls).

    Args:
        num_steps: T, the number of reverse steps (the paper's T = 10).

    Attributes:
        num_steps: T.
        timesteps: (T,) long tensor T, T-1, ..., 1: the steps the reverse process visits.
    """

    config_name: ClassVar[str] = "schedule_config.json"
    #: Whether a model trained on this schedule must be run with exactly its ``num_steps`` reverse
    #: steps (posture schedules: step k means "k of T"); DDIM may take other step counts.
    fixed_reverse_steps: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SCHEDULES[cls.__name__] = cls

    def __init__(self, num_steps: int = 10) -> None:
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
        self.num_steps = num_steps

    @property
    def timesteps(self) -> torch.Tensor:
        return torch.arange(self.num_steps, 0, -1)

    # -- configuration ------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The constructor arguments that define this schedule (JSON-serialisable)."""
        return {"num_steps": self.num_steps}

    def to_dict(self) -> dict[str, Any]:
        return {"class": type(self).__name__, **self.config()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], body=None) -> PostureSchedule:
        """Rebuild a schedule from :meth:`to_dict`; body-based schedules need ``body``."""
        data = dict(data)
        name = data.pop("class", cls.__name__)
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule class {name!r}; known: {sorted(SCHEDULES)}")
        target = SCHEDULES[name]
        return target._from_config(data, body)

    @classmethod
    def _from_config(cls, config: dict[str, Any], body) -> PostureSchedule:
        return cls(**config)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``schedule_config.json`` into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / self.config_name).write_text(json.dumps(self.to_dict(), indent=2))
        return path / self.config_name

    @classmethod
    def load(cls, directory: str | os.PathLike, body=None) -> PostureSchedule:
        path = Path(directory) / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.config_name} in {directory}")
        return cls.from_dict(json.loads(path.read_text()), body)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ------------------------------------------------------------------------------

    def _check_t(self, t: Any, batch: int, low: int, device: torch.device) -> torch.Tensor:
        """Per-sample integer steps (B,) in [low, T] as a long tensor (an int is broadcast)."""
        if isinstance(t, int):
            t = torch.full((batch,), t, dtype=torch.long)
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"t must be an int or an integer tensor of shape ({batch},), got {t!r}")
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
        if int(t.min()) < low or int(t.max()) > self.num_steps:
            raise ValueError(f"t must lie in [{low}, {self.num_steps}], got values in "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t.to(device=device, dtype=torch.long)

    def step(self, model_output: torch.Tensor, t: Any, mesh: torch.Tensor) -> torch.Tensor:
        """One reverse step (eq. 5): M_{t-1} = M_t + F(M_t, ., t).

        Shape:
            - model_output: (B, V, 3), the predicted M_{t-1} - M_t.
            - t: (B,) or int in [1, T] (checked).
            - mesh: (B, V, 3), M_t.
            - output: (B, V, 3), M_{t-1}.
        """
        if mesh.dim() != 3 or mesh.shape[-1] != 3 or model_output.shape != mesh.shape:
            raise ValueError(f"model_output and mesh must both have shape (B, V, 3); got "
                             f"{tuple(model_output.shape)} and {tuple(mesh.shape)}")
        self._check_t(t, mesh.shape[0], 1, mesh.device)
        return mesh + model_output

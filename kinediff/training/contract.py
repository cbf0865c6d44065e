"""What the training loop needs of a model: a declared contract instead of knowledge of one
model's internals.

:class:`~kinediff.training.Trainer` and the checkpoints work with any module that implements
:class:`TrainableModel` (:class:`~kinediff.PostureHMR` does); :func:`~kinediff.training.evaluate`
with any that implements :class:`EvaluableModel`. Both are ``typing.Protocol``\\ s: a model
implements one by having its methods, not by inheriting from it (``isinstance`` checks the
methods' presence).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch

from kinediff.training.config import TrainConfig

__all__ = ["EvaluableModel", "TrainableModel"]


@runtime_checkable
class TrainableModel(Protocol):
    """A model the :class:`~kinediff.training.Trainer` trains, stage by stage.

    Attributes:
        config: the model's config; ``config.train`` is its :class:`~kinediff.training.
            TrainConfig` (the Trainer's default) and ``config.replace(train=...)`` the config with
            another one (what a checkpoint records).
    """

    config: Any

    def stages(self) -> tuple[str, ...]:
        """The training stages the model needs, in order (e.g. ``("2d", "3d")``)."""
        ...

    def parameter_groups(self, stage: str, train: TrainConfig | None = None
                         ) -> list[dict[str, Any]]:
        """The optimiser's parameter groups for ``stage`` with ``train``'s learning rates (every
        parameter not in a group is frozen for the stage)."""
        ...

    def loss(self, batch: dict[str, Any], stage: str, epoch: int | None = None
             ) -> dict[str, torch.Tensor]:
        """The stage's loss terms for a batch, with their weighted sum under ``"total"``."""
        ...

    def loss_epoch(self, epoch: int | None) -> int | None:
        """``epoch`` reduced to what :meth:`loss` reads of it (a compiled loss is specialised
        once per distinct value)."""
        ...

    def train_mode(self, stage: str) -> torch.nn.Module:
        """The model in training mode for ``stage`` (what the stage freezes in eval mode)."""
        ...

    def learnt_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: the state dict without what is rebuilt from the
        objects the model is built on."""
        ...

    def load_learnt_state_dict(self, state: Mapping[str, torch.Tensor], source: str = "weights"
                               ) -> None:
        """Load :meth:`learnt_state_dict` output (``ValueError`` naming ``source`` when it does not
        fit)."""
        ...


@runtime_checkable
class EvaluableModel(Protocol):
    """A model :func:`~kinediff.training.evaluate` scores.

    Attributes:
        body: the body model its meshes are of (the default GT body and regressor source).
    """

    body: Any

    def predict(self, images: torch.Tensor, return_trajectory: bool = False,
                mesh2d: torch.Tensor | None = None, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        """``vertices`` (B, V, 3) for crops (B, 3, S, S), optionally conditioned on ``mesh2d``."""
        ...

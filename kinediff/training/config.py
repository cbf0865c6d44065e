"""``TrainConfig``: how a model is trained (optimiser and schedule), apart from what the model is
(:class:`~kinediff.PostureHMRConfig`). A model config carries one as ``config.train``, so that one
versionable file (``kinediff config``) describes a whole run; only the
:class:`~kinediff.training.Trainer` (and ``PostureHMR.parameter_groups``) read it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from kinediff.core.config import ConfigMixin

__all__ = ["MAX_BATCH_SIZE", "MAX_EPOCHS", "TRAIN_FIELDS", "TrainConfig"]


#: Upper bounds on the counts (a typo such as epochs=4000000 is refused, not run).
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536


def _number(value: Any) -> bool:
    """A finite real number (numpy's too), not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def _count(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig(ConfigMixin):
    """Optimisation of a PostureHMR model; defaults are the paper's (§4.2).

    Frozen: change one with ``dataclasses.replace(train, batch_size=8)``.

    Attributes:
        lr_backbone: Adam learning rate of the HRNet backbone (1e-3).
        lr_2d: of the rest of the 2D stage (5e-4).
        lr_3d: of the 3D stage (5e-5).
        epochs: epochs per stage (40; at most ``MAX_EPOCHS`` = 10,000).
        lr_decay_epoch: the epoch from which the learning rates are multiplied by ``lr_decay`` (30).
        lr_decay: that factor (0.5).
        batch_size: the global batch (32; split over the processes under torchrun; at most
            ``MAX_BATCH_SIZE`` = 65,536).
        grad_clip: the largest gradient norm, or None for no clipping (the paper mentions none;
            see docs/posturehmr.md for why 1.0 was wrong).
    """

    lr_backbone: float = 1e-3
    lr_2d: float = 5e-4
    lr_3d: float = 5e-5
    epochs: int = 40
    lr_decay_epoch: int = 30
    lr_decay: float = 0.5
    batch_size: int = 32
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        for name in ("lr_backbone", "lr_2d", "lr_3d", "lr_decay"):
            value = getattr(self, name)
            if not _number(value) or not value > 0:
                raise ValueError(f"{name} must be a positive number (finite), got {value!r}")
            object.__setattr__(self, name, float(value))
        for name, most in (("epochs", MAX_EPOCHS), ("batch_size", MAX_BATCH_SIZE)):
            value = getattr(self, name)
            if not _count(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            if value > most:
                raise ValueError(f"{name} must be at most {most}, got {value}")
            object.__setattr__(self, name, int(value))
        if not _count(self.lr_decay_epoch) or self.lr_decay_epoch < 0:
            raise ValueError(f"lr_decay_epoch must be a non-negative integer, got "
                             f"{self.lr_decay_epoch!r}")
        if self.grad_clip is not None and not (_number(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be a positive number or None, got {self.grad_clip!r}")
        object.__setattr__(self, "lr_decay_epoch", int(self.lr_decay_epoch))

    @classmethod
    def tiny(cls, **overrides: Any) -> TrainConfig:
        """The CPU preset that goes with ``PostureHMRConfig.tiny()``: larger learning rates
        (1e-3 / 1e-3 / 3e-3), 8 epochs decayed from epoch 6, gradients clipped at norm 100 (the
        tiny 3D stage's median norm is about 60: only outliers are clipped)."""
        base: dict[str, Any] = dict(lr_backbone=1e-3, lr_2d=1e-3, lr_3d=3e-3, epochs=8,
                                    lr_decay_epoch=6, batch_size=32, grad_clip=100.0)
        base.update(overrides)
        return cls(**base)


#: The training fields, which PostureHMRConfig held itself before kinediff 0.2.
TRAIN_FIELDS = tuple(TrainConfig.__dataclass_fields__)

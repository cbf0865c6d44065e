"""``TrainConfig``: how a model is trained (optimiser and schedule), apart from what the model is
(:class:`~kinediff.PostureHMRConfig`). A model config carries one as ``config.train``, so that one
versionable file (``kinediff config``) describes a whole run; only the
:class:`~kinediff.training.Trainer` (and ``PostureHMR.parameter_groups``) read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from kinediff.core.checks import Int, Number, Optional
from kinediff.core.config import Config

__all__ = ["MAX_BATCH_SIZE", "MAX_EPOCHS", "TrainConfig"]

#: The most epochs per stage (a typo such as epochs=4000000 is refused, not run).
MAX_EPOCHS = 10_000
#: The largest global batch.
MAX_BATCH_SIZE = 65_536

#: A learning rate or a factor: a finite number > 0.
Rate = Annotated[float, Number(0.0, low_open=True)]


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Config):
    """Optimisation of a PostureHMR model: the paper's learning rates, epochs and decay (§4.2)
    and, where it is silent, VirtualMarker's (whose "other losses" it takes). A frozen
    :class:`~kinediff.core.config.Config`: change one with ``train.replace(batch_size=8)``.

    The optimiser is Adam, kinediff's choice (the paper is silent): it gives learning rates only;
    Adam is VirtualMarker's (``optimizer: 'adam'``, configs/simple3dmesh_train/baseline_h36m.yml
    line 34).

    Attributes:
        lr_backbone: Adam learning rate of the HRNet backbone (1e-3).
        lr_2d: of the rest of the 2D stage (5e-4).
        lr_3d: of the 3D stage (5e-5).
        epochs: epochs per stage (40; at most :data:`MAX_EPOCHS` = 10,000).
        lr_decay_epoch: the epoch from which the learning rates are multiplied by ``lr_decay`` (30).
        lr_decay: that factor (0.5).
        batch_size: the global batch (32, split over the processes under torchrun; at most
            :data:`MAX_BATCH_SIZE` = 65,536). 32 is kinediff's choice (the paper is silent):
            VirtualMarker's 8 a GPU on 4 GPUs (baseline_h36m.yml line 23,
            virtualmarker/core/base.py line 29); the paper also trains on four GPUs.
        grad_clip: the largest gradient norm, or None for no clipping (the paper mentions none;
            docs/posturehmr.md says what clipping does to its loss).

    Learning rates and factors are finite numbers > 0, counts integers (Python or numpy; not a
    bool, a float or a string).
    """

    lr_backbone: Rate = 1e-3
    lr_2d: Rate = 5e-4
    lr_3d: Rate = 5e-5
    epochs: Annotated[int, Int(1, MAX_EPOCHS)] = 40
    lr_decay_epoch: Annotated[int, Int(0)] = 30
    lr_decay: Rate = 0.5
    batch_size: Annotated[int, Int(1, MAX_BATCH_SIZE)] = 32
    grad_clip: Annotated[float | None, Optional(Number(0.0, low_open=True))] = None

    @classmethod
    def tiny(cls, **changes: Any) -> TrainConfig:
        """The CPU preset that goes with ``PostureHMRConfig.tiny()``: larger learning rates
        (1e-3 / 1e-3 / 3e-3), 8 epochs decayed from epoch 6, gradients clipped at norm 100 (the
        tiny 3D stage's median norm is about 60: only outliers are clipped)."""
        base: dict[str, Any] = dict(lr_backbone=1e-3, lr_2d=1e-3, lr_3d=3e-3, epochs=8,
                                    lr_decay_epoch=6, batch_size=32, grad_clip=100.0)
        base.update(changes)
        return cls(**base)

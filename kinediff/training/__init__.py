"""Training: a plain loop (:class:`Trainer`), evaluation (:func:`evaluate`), checkpoints, and
multi-process training on torch.distributed (:func:`setup` under torchrun)."""

from kinediff.training.checkpoint import (
    load_checkpoint,
    load_model_weights,
    model_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from kinediff.training.config import TrainConfig
from kinediff.training.contract import EvaluableModel, TrainableModel
from kinediff.training.distributed import DistInfo, cleanup, setup
from kinediff.training.engine import (
    EpochBatchSampler,
    Trainer,
    evaluate,
    ground_truth_vertices,
    move_batch,
)

__all__ = [
    "DistInfo",
    "EpochBatchSampler",
    "EvaluableModel",
    "TrainConfig",
    "TrainableModel",
    "Trainer",
    "cleanup",
    "evaluate",
    "ground_truth_vertices",
    "load_checkpoint",
    "load_model_weights",
    "model_weights",
    "move_batch",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "setup",
]

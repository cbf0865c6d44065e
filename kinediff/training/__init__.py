"""Training: a plain loop (:class:`Trainer`), evaluation (:func:`evaluate`) and checkpoints."""

from kinediff.training.checkpoint import (
    load_checkpoint,
    load_model_weights,
    model_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from kinediff.training.engine import EpochBatchSampler, Trainer, evaluate, move_batch

__all__ = [
    "EpochBatchSampler",
    "Trainer",
    "evaluate",
    "load_checkpoint",
    "load_model_weights",
    "model_weights",
    "move_batch",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

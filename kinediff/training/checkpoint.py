"""Checkpoints: written atomically (temporary file, then rename), read with ``weights_only=True``.

A checkpoint holds the model's learnt weights (not the body model or the mesh hierarchy, which
are rebuilt from the body), the optimiser, the learning-rate scheduler, the position in training
(stage, epoch, batch within the epoch, global step), every random number generator state the loop
uses, and the config as JSON, so that resuming continues exactly where the run stopped.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kinediff._cache import write_atomic

__all__ = [
    "load_checkpoint",
    "load_model_weights",
    "model_weights",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

#: Tensors rebuilt from the body model, never stored: the body, the mesh hierarchy, and the
#: one-step regressor's start (the coarse template, SMPL data).
_DERIVED = ("body.", "hierarchy.", "decoder.template")


def model_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict without the tensors derived from the body (body, hierarchy, the
    regressor's template)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(_DERIVED)}


def load_model_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "weights"
                       ) -> None:
    """Load :func:`model_weights` output; a missing or unexpected tensor, or a shape mismatch,
    raises ``ValueError`` naming it (and ``source``). Derived tensors in ``state`` (a regressor's
    template, written by checkpoints before it was left out) are ignored: they are rebuilt."""
    state = {k: v for k, v in state.items() if not k.startswith(_DERIVED)}
    own = model_weights(model)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}" if missing else "",
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}" if unexpected else "",
            "shape mismatch " + ", ".join(f"{k}: expected {tuple(own[k].shape)}, got "
                                          f"{tuple(state[k].shape)}" for k in wrong[:5])
            if wrong else "") if part)
        raise ValueError(f"{source} does not match this model ({detail}); was it saved from a "
                         f"model with the same config?")
    model.load_state_dict(state, strict=False)


def rng_state() -> dict[str, Any]:
    """Python's and torch's (CPU and every CUDA device's) generator states."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None, scheduler=None,
                    **extra: Any) -> Path:
    """Write model weights, optimiser and scheduler states, RNG states and ``extra`` (plain
    Python values and tensors only) to ``path``, atomically."""
    payload: dict[str, Any] = {"model": model_weights(model), "rng": rng_state(), **extra}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    return write_atomic(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable kinediff checkpoint: {err}") from err
    if not isinstance(data, dict) or "model" not in data:
        raise ValueError(f"{path} is not a kinediff checkpoint (no 'model' entry)")
    return data

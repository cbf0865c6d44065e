"""Checkpoints: written atomically (temporary file, then rename), read with ``weights_only=True``.

A checkpoint holds the model's learnt weights (not the body model or the mesh hierarchy, which
are rebuilt from the body), the optimiser, the learning-rate scheduler, the position in training
(stage, epoch, batch within the epoch, global step), every random number generator state the loop
uses, and the config as JSON, so that resuming continues exactly where the run stopped.

Faults are reported in one line naming the file: a full disk ("no space left writing PATH", the
temporary file removed), a damaged, truncated or foreign file, a file that a weights-only load
refuses (what it refers to is named; nothing in it is run, and no advice to load it unsafely is
passed on), and a checkpoint that cannot resume training (missing or foreign optimiser,
scheduler, random-generator or position entries: :func:`check_resumable`, before anything is
loaded). A temporary file left by a killed run is removed at the next save.
"""

from __future__ import annotations

import errno
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kinediff.core.checks import check_int
from kinediff.core.io import describe_load_error, first_line, write_atomic
from kinediff.core.pretrained import load_learnt_weights
from kinediff.training.contract import TrainableModel

__all__ = [
    "check_output_dir",
    "check_resumable",
    "load_checkpoint",
    "load_model_weights",
    "model_weights",
    "remove_stale_temporaries",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

def model_weights(model: TrainableModel | nn.Module) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stores: ``model.learnt_state_dict()`` (a
    :class:`~kinediff.training.TrainableModel`'s state dict without what it rebuilds from the
    objects it is built on), or the whole state dict of a module without one."""
    if isinstance(model, TrainableModel):
        return model.learnt_state_dict()
    return dict(model.state_dict())


def load_model_weights(model: TrainableModel | nn.Module, state: dict[str, torch.Tensor],
                       source: str = "weights") -> None:
    """Load :func:`model_weights` output; a missing or unexpected tensor, a shape mismatch or
    non-finite weights raise ``ValueError`` naming them (and ``source``) before any is copied."""
    if isinstance(model, TrainableModel):
        model.load_learnt_state_dict(state, source)
    else:
        load_learnt_weights(model, model_weights(model), state, source)


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


def save_checkpoint(path: str | os.PathLike, model: TrainableModel | nn.Module, optimizer=None, scheduler=None,
                    **extra: Any) -> Path:
    """Write model weights, optimiser and scheduler states, RNG states and ``extra`` (plain
    Python values and tensors only) to ``path``, atomically.

    A temporary file of an earlier, killed run beside ``path`` is removed first
    (:func:`remove_stale_temporaries`). A full disk raises ``OSError`` (errno ``ENOSPC``) "no
    space left writing PATH", leaving ``path`` as it was and no temporary file behind."""
    path = Path(path)
    payload: dict[str, Any] = {"model": model_weights(model), "rng": rng_state(), **extra}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    remove_stale_temporaries(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            writer = _RecordingWriter(handle)
            try:
                torch.save(payload, writer)
            except RuntimeError as err:
                if writer.error is not None:  # the file's own error, with its errno
                    raise writer.error from err
                raise

    try:
        return write_atomic(path, write)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(path) from err
        raise
    except RuntimeError as err:
        if "enforce fail" in str(err) or "unexpected pos" in str(err):
            raise OSError(f"could not write {path} (a full disk or a failing file system?): "
                          f"{first_line(str(err))}") from err
        raise


class _RecordingWriter:
    """A binary file's ``write`` and ``flush`` that keep the first ``OSError``: torch's zip
    writer turns a failed write into "[enforce fail ...] unexpected pos", losing its errno."""

    def __init__(self, handle) -> None:
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as err:
            self.error = self.error or err
            raise


def _no_space(path: Path) -> OSError:
    err = OSError(f"no space left writing {path}")
    err.errno = errno.ENOSPC
    return err


def _temporary_pattern(path: Path) -> re.Pattern[str]:
    """The temporary names of :func:`kinediff.core.io.write_atomic`: ``.{stem}.{pid}.tmp{suffix}``."""
    return re.compile(rf"^\.{re.escape(path.stem)}\.(\d+)\.tmp{re.escape(path.suffix)}$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or no way to tell: keep its file
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that an atomic write of ``path`` left when its process was
    killed (``.{stem}.{pid}.tmp{suffix}`` beside ``path``, of a process that no longer runs).
    Returns the files removed. Those of running processes (a concurrent writer) are kept."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _temporary_pattern(path)
    removed = []
    for candidate in path.parent.iterdir():
        match = pattern.match(candidate.name)
        if match is None or int(match.group(1)) == os.getpid() or _process_alive(int(match.group(1))):
            continue
        try:
            candidate.unlink()
        except FileNotFoundError:  # removed meanwhile
            continue
        removed.append(candidate)
    return removed


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Check that ``path`` is, or can be made, a folder this process can write to, without
    creating it: the folder itself when it exists, else its nearest existing parent, gets a
    probe file (written and removed). Returns ``path``.

    Raises ``NotADirectoryError`` when ``path`` or a parent is a file, ``PermissionError`` (or
    the ``OSError`` of the file system: read-only, full) when it cannot be written; each message
    starts with ``what`` and the path."""

    path = Path(path)
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        detail = "is a file" if where == path else f"cannot be made: {where} is a file"
        raise NotADirectoryError(f"{what} {path} {detail}, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".kinediff-write-test-", dir=where)
    except OSError as err:
        reason = err.strerror or str(err)
        inside = "" if where == path else f" (its parent {where} is not writable)"
        raised = type(err)(f"{what} {path} is not writable{inside}: {reason}")
        raised.errno = err.errno
        raise raised from err
    os.close(handle)
    os.unlink(probe)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no code is unpickled).

    Raises ``FileNotFoundError`` (no file) or ``ValueError`` naming ``path`` and why it cannot be
    read (:func:`describe_load_error`), or that it holds no ``model`` entry."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable kinediff checkpoint: "
                         f"{describe_load_error(err)}") from err
    if not isinstance(data, dict) or "model" not in data:
        raise ValueError(f"{path} is not a kinediff checkpoint (no 'model' entry)")
    return data


#: What a checkpoint needs to resume training, beyond the model's weights.
RESUME_ENTRIES = ("optimizer", "scheduler", "rng", "stage", "epoch", "batch_in_epoch", "step", "seed")


def check_resumable(data: dict[str, Any], path: str | os.PathLike, optimizer, scheduler) -> None:
    """Refuse, before anything is loaded, a checkpoint (:func:`load_checkpoint` output) that
    cannot resume training with ``optimizer`` and ``scheduler``: a missing entry of
    :data:`RESUME_ENTRIES` (e.g. weights saved without the optimiser), a position that is not
    a non-negative integer, random-generator states of the wrong kind, or an optimiser state of
    another optimiser or other parameters (other groups, hyper-parameters or tensor shapes).
    Raises ``ValueError`` naming ``path`` and the entry."""
    missing = [key for key in RESUME_ENTRIES if key not in data]
    if missing:
        raise ValueError(f"{path} cannot resume training: it has no {', '.join(map(repr, missing))} "
                         f"entr{'y' if len(missing) == 1 else 'ies'} (a Trainer checkpoint has "
                         f"the model, optimiser, scheduler, random states and position; load "
                         f"weights alone with load_model_weights)")
    for key in ("epoch", "batch_in_epoch", "step", "seed"):
        check_int(data[key], f"{path}: {key!r}", 0)
    _check_rng(data["rng"], path)
    _check_optimizer_state(data["optimizer"], optimizer, path)
    state = data["scheduler"]
    groups = len(optimizer.param_groups)
    if not isinstance(state, dict) or "last_epoch" not in state \
            or len(state.get("base_lrs", ())) != groups:
        raise ValueError(f"{path}: 'scheduler' is not the state of this Trainer's learning-rate "
                         f"scheduler (expected last_epoch and {groups} base_lrs)")
    if type(scheduler).__name__ == "LambdaLR" and len(state.get("lr_lambdas", ())) != groups:
        raise ValueError(f"{path}: 'scheduler' has {len(state.get('lr_lambdas', ()))} lr_lambdas, "
                         f"this Trainer's scheduler {groups}")


def _check_rng(state: Any, path: str | os.PathLike) -> None:
    python = state.get("python") if isinstance(state, dict) else None
    ok = (isinstance(python, (tuple, list)) and len(python) == 3 and isinstance(python[0], int)
          and isinstance(python[1], (tuple, list))
          and isinstance(state.get("torch"), torch.Tensor) and state["torch"].dtype == torch.uint8
          and state["torch"].shape == torch.get_rng_state().shape)  # this torch's generator size
    cuda = state.get("cuda") if isinstance(state, dict) else None
    if ok and cuda is not None:
        ok = isinstance(cuda, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in cuda)
    if not ok:
        raise ValueError(f"{path}: 'rng' is not kinediff's random-generator state (Python's "
                         f"random.getstate() as 'python', torch's uint8 state as 'torch')")


def _check_optimizer_state(state: Any, optimizer, path: str | os.PathLike) -> None:
    """The saved state must be of ``optimizer``'s kind and parameters: the same groups with the
    same numbers of parameters, every numeric hyper-parameter the optimiser has (flags that
    newer torch versions add are filled in by torch), and per-parameter tensors shaped like the
    parameters."""
    where = f"{path}: 'optimizer'"
    own = optimizer.param_groups
    if not isinstance(state, dict) or not isinstance(state.get("param_groups"), list) \
            or not isinstance(state.get("state"), dict):
        raise ValueError(f"{where} is not an optimiser state (param_groups and state)")
    saved = state["param_groups"]
    if [len(g.get("params", ())) for g in saved] != [len(g["params"]) for g in own]:
        raise ValueError(f"{where} has groups of {[len(g.get('params', ())) for g in saved]} "
                         f"parameters; this Trainer's {type(optimizer).__name__} has "
                         f"{[len(g['params']) for g in own]}")
    for k, (mine, theirs) in enumerate(zip(own, saved)):
        needed = {key for key, value in mine.items()
                  if key != "params" and value is not None and not isinstance(value, bool)}
        lacking = sorted(needed - set(theirs))
        if lacking:
            raise ValueError(f"{where} group {k} has no {lacking}: the state of another optimiser "
                             f"than this Trainer's {type(optimizer).__name__}?")
    params = [p for g in own for p in g["params"]]
    ids = [i for g in saved for i in g["params"]]
    index = dict(zip(ids, params))
    for key, entry in state["state"].items():
        if key not in index or not isinstance(entry, dict):
            raise ValueError(f"{where} has state for parameter {key!r}, which none of its groups "
                             f"lists")
        shape = tuple(index[key].shape)
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and tuple(value.shape) != shape:
                raise ValueError(f"{where}: parameter {key}'s {name!r} has shape "
                                 f"{tuple(value.shape)}, the parameter {shape}")

"""Temporal smoothing of SMPL parameters fitted frame by frame to a video: joint rotations on SO(3),
shape and translation in Euclidean space, each with a One Euro filter (:mod:`kinediff.video.filters`).

Two forms with the same numbers: :func:`smooth_smpl` for a recorded sequence and :class:`SMPLSmoother`
for live use, one frame at a time. Both are causal (a frame's output uses only it and earlier frames)
and batched over people: pose (T, J, 3) for one person or (T, P, J, 3) for P tracked people, J joints
(24 for SMPL). Rotations' ``beta`` is in Hz per rad/s, translations' in Hz per m/s, so each part can
have its own numbers (``betas_params``, ``transl_params``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from kinediff.core.checks import check_choice
from kinediff.video.filters import (
    DERIVATIVES,
    OneEuroFilter,
    OneEuroParams,
    RotationOneEuroFilter,
    frame_times,
    smooth_rotations,
    smooth_sequence,
)

__all__ = ["SMPLSmoother", "SmoothedSMPL", "smooth_smpl"]


class SmoothedSMPL(NamedTuple):
    """Smoothed SMPL parameters; ``None`` where the input was ``None``.

    Fields: pose (..., J, 3) axis-angle, angles in [0, pi]; betas (..., N); transl (..., 3) (units of
    the input, metres for SMPL). Tensors, or numpy arrays when the pose came as one.
    """

    pose: Any
    betas: Any = None
    transl: Any = None


def _tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` as a floating tensor (numpy arrays and nested lists too)."""
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from err
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def _split_pose(pose: torch.Tensor, frames: bool) -> tuple[int, ...]:
    """Check ``pose`` ([T,] [P,] J, 3) and return its batch shape ([T,] [P,])."""
    lead = 1 if frames else 0
    if pose.dim() not in (lead + 2, lead + 3) or pose.shape[-1] != 3 or (frames and pose.shape[0] < 1):
        want = "(T, J, 3) or (T, P, J, 3)" if frames else "(J, 3) or (P, J, 3)"
        raise ValueError(f"pose must have shape {want} (axis-angle, J joints, 24 for SMPL), got "
                         f"{tuple(pose.shape)}")
    return tuple(pose.shape[:-2])


def _check_part(x: torch.Tensor, name: str, batch: tuple[int, ...], last: int | None, frames: bool) -> None:
    """Check betas (batch, N) or transl (batch, 3) against the pose's batch shape."""
    ok = x.dim() == len(batch) + 1 and tuple(x.shape[:-1]) == batch and (last is None or x.shape[-1] == last)
    if not ok:
        lead = ("T, " if frames else "") + ("P, " if len(batch) > int(frames) else "")
        tail = "N" if last is None else str(last)
        raise ValueError(f"{name} must have shape ({lead}{tail}) to match pose's leading shape "
                         f"{batch}, got {tuple(x.shape)}")


def _params(given: OneEuroParams | None, default: OneEuroParams, name: str) -> OneEuroParams:
    if given is not None and not isinstance(given, OneEuroParams):
        raise TypeError(f"{name} must be a OneEuroParams or None, got {type(given).__name__}")
    return default if given is None else given


def smooth_smpl(pose: Any, betas: Any = None, transl: Any = None, *, fps: float | None = None,
                timestamps: Sequence[float] | torch.Tensor | None = None, min_cutoff: float = 1.0,
                beta: float = 0.0, d_cutoff: float = 1.0, betas_params: OneEuroParams | None = None,
                transl_params: OneEuroParams | None = None, derivative: str = "raw") -> SmoothedSMPL:
    """Smooth a recorded sequence of SMPL parameters with One Euro filters (causal).

    Args:
        pose: (T, J, 3) or (T, P, J, 3) axis-angle, radians: T frames, P people, J joints.
        betas: (T, N) or (T, P, N) shape coefficients, or None; filtered per coefficient.
        transl: (T, 3) or (T, P, 3) translations, or None; one cutoff per person from its speed.
        fps / timestamps: exactly one: frames per second, or (T,) strictly increasing seconds.
        min_cutoff, beta, d_cutoff: the rotations' filter (Hz, Hz per rad/s, Hz).
        betas_params, transl_params: their own :class:`OneEuroParams`; None takes the rotations'.
        derivative: ``"raw"`` or ``"filtered"`` (see :mod:`kinediff.video.filters`).

    Returns:
        :class:`SmoothedSMPL` of the same shapes (numpy arrays when ``pose`` is one).

    Example:
        >>> pose = torch.zeros(5, 24, 3)
        >>> out = smooth_smpl(pose, transl=torch.zeros(5, 3), fps=30, min_cutoff=1.0, beta=0.5)
        >>> out.pose.shape, out.betas
        (torch.Size([5, 24, 3]), None)
    """
    as_numpy = isinstance(pose, np.ndarray)
    pose_t = _tensor(pose, "pose")
    batch = _split_pose(pose_t, frames=True)
    times = frame_times(batch[0], fps, timestamps)
    check_choice(derivative, "derivative", DERIVATIVES)
    rot = OneEuroParams(min_cutoff, beta, d_cutoff)
    out = [smooth_rotations(pose_t, timestamps=times, derivative=derivative, **vars(rot))]
    for x, name, last, params, vector in ((betas, "betas", None, betas_params, False),
                                          (transl, "transl", 3, transl_params, True)):
        if x is None:
            out.append(None)
            continue
        x_t = _tensor(x, name)
        _check_part(x_t, name, batch, last, frames=True)
        p = _params(params, rot, f"{name}_params")
        out.append(smooth_sequence(x_t, timestamps=times, vector=vector, derivative=derivative, **vars(p)))
    if as_numpy:
        out = [None if o is None else o.detach().cpu().numpy() for o in out]
    return SmoothedSMPL(*out)


class SMPLSmoother:
    """Streaming form of :func:`smooth_smpl`: one frame per :meth:`step`, the same numbers.

    Args: as :func:`smooth_smpl` (no times: each step gives its own).

    Example:
        >>> smoother = SMPLSmoother(min_cutoff=1.0, beta=0.5)
        >>> for i in range(3):
        ...     out = smoother.step(i / 30, torch.zeros(2, 24, 3), transl=torch.zeros(2, 3))
        >>> out.pose.shape
        torch.Size([2, 24, 3])
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, *,
                 betas_params: OneEuroParams | None = None, transl_params: OneEuroParams | None = None,
                 derivative: str = "raw") -> None:
        rot = OneEuroParams(min_cutoff, beta, d_cutoff)
        check_choice(derivative, "derivative", DERIVATIVES)
        self._pose = RotationOneEuroFilter(**vars(rot), derivative=derivative)
        self._betas = OneEuroFilter(**vars(_params(betas_params, rot, "betas_params")), derivative=derivative)
        self._transl = OneEuroFilter(**vars(_params(transl_params, rot, "transl_params")), vector=True,
                                     derivative=derivative)
        self.reset()

    def reset(self) -> None:
        """Start a new sequence (new people, a cut in the video): the next step is passed through."""
        for f in (self._pose, self._betas, self._transl):
            f.reset()
        self._t: float | None = None
        self._shapes: tuple | None = None   # the first step's shapes, None for a part not given

    def step(self, t: float, pose: Any, betas: Any = None, transl: Any = None) -> SmoothedSMPL:
        """Filter one frame at time ``t`` (seconds, strictly increasing).

        Shapes: pose (J, 3) or (P, J, 3); betas (N,) or (P, N); transl (3,) or (P, 3), the same every
        step (a part not given on the first step is never given) until :meth:`reset`.
        Returns: :class:`SmoothedSMPL` of the same shapes (numpy arrays when ``pose`` is one).
        """
        as_numpy = isinstance(pose, np.ndarray)
        pose_t = _tensor(pose, "pose")
        batch = _split_pose(pose_t, frames=False)
        parts: list[torch.Tensor | None] = []
        for x, name, last in ((betas, "betas", None), (transl, "transl", 3)):
            x_t = None if x is None else _tensor(x, name)
            if x_t is not None:
                _check_part(x_t, name, batch, last, frames=False)
            parts.append(x_t)
        shapes = tuple(None if x is None else tuple(x.shape) for x in (pose_t, *parts))
        # every check before any filter moves, so a refused frame leaves the smoother as it was
        if self._shapes is not None and shapes != self._shapes:
            raise ValueError(f"this frame's shapes (pose, betas, transl) {shapes} differ from the first "
                             f"frame's {self._shapes}; call reset() when the people change, or keep one "
                             "smoother per tracked person")
        if self._t is not None and not float(t) > self._t:
            raise ValueError(f"timestamps must be strictly increasing: got t={float(t)} after t={self._t}; "
                             "drop repeated frames or call reset() to start a new sequence")
        out = [self._pose(pose_t, t)]
        out += [None if x is None else f(x, t) for x, f in zip(parts, (self._betas, self._transl))]
        self._t, self._shapes = float(t), shapes
        if as_numpy:
            out = [None if o is None else o.detach().cpu().numpy() for o in out]
        return SmoothedSMPL(*out)

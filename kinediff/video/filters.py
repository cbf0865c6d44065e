"""One Euro filters (Casiez, Roussel and Vogel, CHI 2012) for vectors and for rotations, frame-rate aware.

The 1€ filter is a first-order low-pass filter whose cutoff frequency rises with the signal's speed:
slow motion is smoothed hard (jitter goes), fast motion lightly (lag stays small). Written here, not
taken from a package: the one on PyPI (``OneEuroFilter``) filters one Python float at a time and has no
rotation form, while a body needs batched tensors (people x joints) and rotations filtered on SO(3).

Definitions, the paper's, for a sample ``X_i`` at time ``t_i`` (seconds), ``T_e = t_i - t_{i-1}``::

    tau(f)     = 1 / (2 pi f)                       time constant of a cutoff f (Hz), seconds
    alpha(f)   = 1 / (1 + tau(f) / T_e)             smoothing factor of this step
    dX_i       = (X_i - X_{i-1}) / T_e              speed of the measurement (see ``derivative``)
    edX_i      = edX_{i-1} + alpha(d_cutoff) (dX_i - edX_{i-1})
    f_c        = min_cutoff + beta |edX_i|          the adaptive cutoff
    x_i        = x_{i-1} + alpha(f_c) (X_i - x_{i-1})

started with ``x_1 = X_1`` and ``edX_1 = 0``. ``T_e`` is each step's own interval, so any frame rate and
irregular timestamps give (to first order in ``T_e``) the same continuous-time filter.

``derivative``: the paper's pseudocode differentiates against the previous *filtered* value
(``(X_i - x_{i-1}) / T_e``); the authors' later reference code against the previous *raw* one. The
default here is ``"raw"``: on a ramp of speed v it measures v at every frame rate, where the filtered
form measures ``v (1 + tau / T_e)``, a cutoff that changes with the frame rate. ``"filtered"`` gives
the paper's pseudocode.

Lag bound (what ``tests/video/test_filters.py`` checks). On a ramp ``X(t) = X_0 + v t`` the raw speed
is v at every step, so ``edX -> v`` and ``f_c -> f_v = min_cutoff + beta |v|``. With ``e_i = X_i - x_i``
the update gives ``e_i = (1 - alpha) (e_{i-1} + v T_e)``, and ``1 - alpha = tau / (tau + T_e)``, so its
fixed point is ``e = v tau`` exactly, at any ``T_e``::

    steady-state lag = |v| / (2 pi (min_cutoff + beta |v|))   (units of X; the filter trails by tau s)

which is at most ``|v| / (2 pi min_cutoff)`` and, for every speed, below ``1 / (2 pi beta)``. Since
``tau <= 1 / (2 pi min_cutoff)`` and ``e -> tau / (tau + T_e) (e + v T_e)`` is increasing in ``tau``, a
ramp started from rest never lags by more than ``|v| / (2 pi min_cutoff)``, transient included. With
``derivative="filtered"`` the speed estimate is larger, the cutoff higher and the lag no larger.

Rotations (:class:`RotationOneEuroFilter`) are filtered on the manifold, not per axis-angle component
(whose vector jumps from about ``pi n`` to ``-pi n`` when a rotation's angle passes pi): the step from
the previous filtered rotation to the new measurement is the relative rotation
``delta_i = log(x_{i-1}^T X_i)``, and ``x_i = x_{i-1} exp(alpha delta_i)``, the point a fraction alpha
along the geodesic (a slerp), the manifold form of ``x + alpha (X - x)``. The speed is the angular
velocity ``log(X_{i-1}^T X_i) / T_e`` (rad/s, in the previous measurement's frame), its vector filtered
with ``alpha(d_cutoff)``. A constant angular velocity about a fixed axis keeps every rotation on one
geodesic, where the filter is the scalar one on the angle: the lag bound above holds with v in rad/s
(as long as lag plus one frame's turn stays below pi, beyond which the log map takes the shorter way
round; a measurement more than pi from the filtered rotation, a flip, is likewise reached the short way).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kinediff.body.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from kinediff.core.checks import (
    check_choice,
    check_last_dims,
    check_number,
    check_tensor,
)

__all__ = [
    "DERIVATIVES",
    "OneEuroFilter",
    "OneEuroParams",
    "RotationOneEuroFilter",
    "frame_times",
    "one_euro_alpha",
    "ramp_lag",
    "smooth_rotations",
    "smooth_sequence",
    "unwrap_axis_angle",
]

#: What the One Euro filter differentiates (``derivative=``): the raw measurements (the paper's
#: equations) or the previous filtered values (its pseudocode); module docstring.
DERIVATIVES = ("raw", "filtered")


def one_euro_alpha(cutoff: torch.Tensor | float, dt: float) -> torch.Tensor | float:
    """The paper's smoothing factor ``alpha = 1 / (1 + tau / T_e)``, ``tau = 1 / (2 pi cutoff)``.

    Written as ``r / (1 + r)`` with ``r = 2 pi cutoff T_e``, the same number without dividing by a
    cutoff. ``cutoff`` in Hz (a float or a tensor of any shape), ``dt`` = T_e in seconds; output in (0, 1).
    """
    r = 2.0 * math.pi * cutoff * dt
    return r / (1.0 + r)


def ramp_lag(speed: float, min_cutoff: float, beta: float) -> float:
    """Steady-state lag of a 1€ filter on a ramp of constant ``speed``: ``|v| / (2 pi (min_cutoff + beta |v|))``.

    Units: those of the signal (rad for rotations, m for translations); ``speed`` per second. Holds at
    any frame rate with the raw derivative (see the module docstring for the derivation).
    """
    v = abs(speed)
    return v / (2.0 * math.pi * (min_cutoff + beta * v))


@dataclass(frozen=True)
class OneEuroParams:
    """The three numbers of a 1€ filter, checked.

    Args:
        min_cutoff: cutoff at rest, Hz (> 0). Lower: less jitter when still, more lag.
        beta: cutoff added per unit of speed, Hz per (unit/s) (>= 0). Higher: less lag when fast.
        d_cutoff: cutoff of the speed's own low-pass, Hz (> 0); the paper keeps 1 Hz.

    Tuning (the paper's recipe): beta = 0, lower min_cutoff until the still body stops jittering, then
    raise beta until fast motion stops lagging. Units of beta differ between rotations (per rad/s) and
    translations (per m/s).
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.min_cutoff, "min_cutoff", 0.0, low_open=True, what="a frequency in Hz")
        check_number(self.beta, "beta", 0.0)
        check_number(self.d_cutoff, "d_cutoff", 0.0, low_open=True, what="a frequency in Hz")


class _Clock:
    """The time of the previous sample, and each step's interval; shared by both filters."""

    def __init__(self) -> None:
        self.t: float | None = None

    def advance(self, t: float) -> float | None:
        """Interval since the previous sample in seconds (``None`` on the first), after checking ``t``."""
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"t must be a finite time in seconds, got {t}")
        if self.t is None:
            self.t = t
            return None
        if not t > self.t:
            raise ValueError(f"timestamps must be strictly increasing: got t={t} after t={self.t}; "
                             "drop repeated frames or call reset() to start a new sequence")
        dt, self.t = t - self.t, t
        return dt


def _check_same_batch(x: torch.Tensor, state: torch.Tensor | None, name: str) -> None:
    if state is not None and x.shape != state.shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)} but this filter was started on "
                         f"{tuple(state.shape)}; call reset() when the people change, or keep one "
                         "filter per tracked person")


class OneEuroFilter:
    """Streaming 1€ filter for tensors of any shape (people, joints, coordinates batched), in time.

    Each element is a scalar signal with its own adaptive cutoff (the paper's filter), or, with
    ``vector=True``, each vector along the last dimension shares one cutoff from its Euclidean speed
    (the same in any rotated coordinate frame: translations, vertices).

    Args:
        min_cutoff, beta, d_cutoff: see :class:`OneEuroParams`.
        vector: one cutoff per last-dimension vector instead of per element.
        derivative: ``"raw"`` (default) or ``"filtered"``, see the module docstring.

    Call ``f(x, t)`` once per frame: ``x`` any shape (the same every call), ``t`` the frame's time in
    seconds, strictly increasing; returns the filtered ``x`` (same shape, dtype and device).

    Example:
        >>> f = OneEuroFilter(min_cutoff=1.0, beta=0.1)
        >>> y = [f(torch.tensor([float(i)]), i / 30) for i in range(3)]
        >>> y[0]
        tensor([0.])
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, *,
                 vector: bool = False, derivative: str = "raw") -> None:
        self.params = OneEuroParams(min_cutoff, beta, d_cutoff)
        check_choice(derivative, "derivative", DERIVATIVES)
        self.vector = vector
        self.derivative = derivative
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next call starts a new sequence (any shape)."""
        self._clock = _Clock()
        self._x: torch.Tensor | None = None       # previous filtered value
        self._raw: torch.Tensor | None = None     # previous measurement
        self._dx: torch.Tensor | None = None      # filtered speed

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        check_tensor(x, "x")
        if self.vector:
            check_last_dims(x, "x", (None,))
        _check_same_batch(x, self._raw, "x")
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        dt = self._clock.advance(t)
        if dt is None:
            self._x, self._raw, self._dx = x, x, torch.zeros_like(x)
            return x
        p = self.params
        previous = self._raw if self.derivative == "raw" else self._x
        dx = (x - previous) / dt
        self._dx = self._dx + one_euro_alpha(p.d_cutoff, dt) * (dx - self._dx)
        speed = self._dx.norm(dim=-1, keepdim=True) if self.vector else self._dx.abs()
        alpha = one_euro_alpha(p.min_cutoff + p.beta * speed, dt)
        self._x = self._x + alpha * (x - self._x)
        self._raw = x
        return self._x


def _project(matrix: torch.Tensor) -> torch.Tensor:
    """Back onto SO(3) by Gram-Schmidt of the first two columns: keeps rounding from building up."""
    return rotation_6d_to_matrix(matrix_to_rotation_6d(matrix))


class RotationOneEuroFilter:
    """Streaming 1€ filter for rotations, on SO(3): geodesic steps, angular-velocity cutoff.

    Every rotation (any leading shape: people x joints) is one signal with its own adaptive cutoff from
    its angular speed in rad/s; ``beta`` is in Hz per rad/s. See the module docstring for the update.

    Args:
        min_cutoff, beta, d_cutoff: see :class:`OneEuroParams`.
        derivative: ``"raw"`` (default) or ``"filtered"``.

    Call ``f(axis_angle, t)``: axis_angle (..., 3) radians, the same shape every call, ``t`` seconds,
    strictly increasing; returns (..., 3) axis-angle with angles in [0, pi] (use
    :func:`unwrap_axis_angle` on a sequence for vectors continuous in time). :meth:`step_matrix` does the
    same on (..., 3, 3) rotation matrices.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0, *,
                 derivative: str = "raw") -> None:
        self.params = OneEuroParams(min_cutoff, beta, d_cutoff)
        check_choice(derivative, "derivative", DERIVATIVES)
        self.derivative = derivative
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next call starts a new sequence (any shape)."""
        self._clock = _Clock()
        self._rot: torch.Tensor | None = None     # previous filtered rotation (..., 3, 3)
        self._raw: torch.Tensor | None = None     # previous measurement (..., 3, 3)
        self._omega: torch.Tensor | None = None   # filtered angular velocity (..., 3), rad/s

    def __call__(self, axis_angle: torch.Tensor, t: float) -> torch.Tensor:
        check_last_dims(axis_angle, "axis_angle", (3,))
        if not axis_angle.is_floating_point():
            axis_angle = axis_angle.to(torch.get_default_dtype())
        return matrix_to_axis_angle(self.step_matrix(axis_angle_to_matrix(axis_angle), t))

    def step_matrix(self, rotation: torch.Tensor, t: float) -> torch.Tensor:
        """One frame on rotation matrices: (..., 3, 3) in, filtered (..., 3, 3) out."""
        check_last_dims(rotation, "rotation", (3, 3))
        _check_same_batch(rotation, self._raw, "rotation")
        dt = self._clock.advance(t)
        if dt is None:
            self._rot, self._raw = rotation, rotation
            self._omega = rotation.new_zeros(rotation.shape[:-1])
            return rotation
        p = self.params
        # one log for both relative rotations: filtered -> measurement (the step) and the speed's
        speed_from = self._raw if self.derivative == "raw" else self._rot
        logs = matrix_to_axis_angle(torch.stack([self._rot.transpose(-1, -2) @ rotation,
                                                 speed_from.transpose(-1, -2) @ rotation]))
        delta, omega = logs[0], logs[1] / dt
        self._omega = self._omega + one_euro_alpha(p.d_cutoff, dt) * (omega - self._omega)
        alpha = one_euro_alpha(p.min_cutoff + p.beta * self._omega.norm(dim=-1, keepdim=True), dt)
        self._rot = _project(self._rot @ axis_angle_to_matrix(alpha * delta))
        self._raw = rotation
        return self._rot


def frame_times(n: int, fps: float | None = None, timestamps: Sequence[float] | torch.Tensor | None = None
                ) -> list[float]:
    """The ``n`` frame times in seconds from exactly one of ``fps`` or ``timestamps``.

    ``fps``: frames per second (> 0), times ``i / fps``. ``timestamps``: (n,) seconds, finite and
    strictly increasing, any spacing. Raises ``ValueError`` naming the argument otherwise.
    """
    if (fps is None) == (timestamps is None):
        raise ValueError("give exactly one of fps (frames per second) or timestamps (seconds per frame), "
                         f"got fps={fps} and timestamps={'None' if timestamps is None else 'given'}")
    if fps is not None:
        check_number(fps, "fps", 0.0, low_open=True, what="a frame rate")
        return [i / fps for i in range(n)]
    times = (timestamps.detach().to("cpu", torch.float64) if isinstance(timestamps, torch.Tensor)
             else torch.as_tensor(timestamps, dtype=torch.float64))
    if times.dim() != 1 or times.numel() != n:
        raise ValueError(f"timestamps must have shape ({n},), one time per frame, got {tuple(times.shape)}")
    if not bool(torch.isfinite(times).all()):
        raise ValueError("timestamps must be finite seconds; found NaN or inf")
    steps = times[1:] - times[:-1]
    if bool((steps <= 0).any()):
        i = int(torch.nonzero(steps <= 0)[0]) + 1
        raise ValueError(f"timestamps must be strictly increasing: timestamps[{i}]={float(times[i])} "
                         f"follows timestamps[{i - 1}]={float(times[i - 1])}; sort them or drop repeats")
    return times.tolist()


def _check_sequence(x: torch.Tensor, name: str, trailing: Sequence[int | None]) -> None:
    check_last_dims(x, name, trailing)
    if x.dim() < len(trailing) + 1 or x.shape[0] < 1:
        want = "(T, *, " + ", ".join("N" if d is None else str(d) for d in trailing) + ")"
        raise ValueError(f"{name} must have shape {want} with T >= 1 frames first, got {tuple(x.shape)}")


def smooth_sequence(x: torch.Tensor, *, fps: float | None = None,
                    timestamps: Sequence[float] | torch.Tensor | None = None, min_cutoff: float = 1.0,
                    beta: float = 0.0, d_cutoff: float = 1.0, vector: bool = False,
                    derivative: str = "raw") -> torch.Tensor:
    """A whole sequence through :class:`OneEuroFilter` (causal, as it would run live).

    Shape: ``x (T, *)`` with frames first; output the same shape, dtype and device. Times from ``fps`` or
    ``timestamps`` (:func:`frame_times`).
    """
    _check_sequence(x, "x", (None,) if vector else ())
    times = frame_times(x.shape[0], fps, timestamps)
    f = OneEuroFilter(min_cutoff, beta, d_cutoff, vector=vector, derivative=derivative)
    return torch.stack([f(x[i], t) for i, t in enumerate(times)])


def smooth_rotations(axis_angle: torch.Tensor, *, fps: float | None = None,
                     timestamps: Sequence[float] | torch.Tensor | None = None, min_cutoff: float = 1.0,
                     beta: float = 0.0, d_cutoff: float = 1.0, derivative: str = "raw") -> torch.Tensor:
    """A whole sequence of rotations through :class:`RotationOneEuroFilter` (causal).

    Shape: ``axis_angle (T, *, 3)`` radians, frames first; output ``(T, *, 3)`` axis-angle, angles in [0, pi].
    """
    _check_sequence(axis_angle, "axis_angle", (3,))
    times = frame_times(axis_angle.shape[0], fps, timestamps)
    if not axis_angle.is_floating_point():
        axis_angle = axis_angle.to(torch.get_default_dtype())
    f = RotationOneEuroFilter(min_cutoff, beta, d_cutoff, derivative=derivative)
    rotations = axis_angle_to_matrix(axis_angle)   # converted once for the whole sequence, not per frame
    return matrix_to_axis_angle(torch.stack([f.step_matrix(rotations[i], t) for i, t in enumerate(times)]))


def unwrap_axis_angle(axis_angle: torch.Tensor) -> torch.Tensor:
    """Make a sequence of axis-angle vectors continuous in time, the rotations unchanged.

    ``theta n`` and ``(theta + 2 pi k) n`` are the same rotation; frame by frame this picks the k that
    lands nearest the previous frame's vector, so a rotation passing angle pi continues past pi
    instead of jumping from ``pi n`` to ``-pi n`` (as numpy's ``unwrap`` does for angles).

    Shape: ``axis_angle (T, *, 3)``, frames first; output the same shape.
    """
    _check_sequence(axis_angle, "axis_angle", (3,))
    out = [axis_angle[0]]
    for a in axis_angle[1:]:
        theta = a.norm(dim=-1, keepdim=True)
        axis = a / theta.clamp_min(torch.finfo(a.dtype).tiny)
        along = (out[-1] * axis).sum(-1, keepdim=True)
        k = torch.round((along - theta) / (2.0 * math.pi))
        out.append(a + 2.0 * math.pi * k * axis)
    return torch.stack(out)

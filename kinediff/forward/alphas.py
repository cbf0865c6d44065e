"""Progress schedules s(r): the fraction of the way from the target (s = 0) to the template (s = 1)
at relative step r = t / T. The paper uses the linear one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch

from kinediff.core.checks import Rule

__all__ = ["ALPHAS", "Alpha", "AlphaLike", "Progress", "resolve_alpha"]

#: A progress schedule: a name in :data:`ALPHAS` or a callable on [0, 1].
AlphaLike = str | Callable[[torch.Tensor], torch.Tensor]


def _linear(r: torch.Tensor) -> torch.Tensor:
    return r


def _cosine(r: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 - torch.cos(math.pi * r))


def _sigmoid(r: torch.Tensor, k: float = 10.0) -> torch.Tensor:
    lo, hi = 1.0 / (1.0 + math.exp(k / 2)), 1.0 / (1.0 + math.exp(-k / 2))
    return (torch.sigmoid(k * (r - 0.5)) - lo) / (hi - lo)


#: The named schedules: "linear" (paper, s = t/T), "cosine", "sigmoid" (steepness 10).
ALPHAS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": _linear, "cosine": _cosine, "sigmoid": _sigmoid,
}


def resolve_alpha(alpha: AlphaLike) -> Callable[[torch.Tensor], torch.Tensor]:
    """A named schedule, or a callable validated to be monotone with s(0) = 0 and s(1) = 1.

    Raises:
        TypeError: neither a name nor a callable.
        ValueError: an unknown name, or a callable that is not monotone non-decreasing on [0, 1] or
            misses an endpoint (checked on 1001 points, tolerance 1e-6).
    """
    if isinstance(alpha, str):
        if alpha not in ALPHAS:
            raise ValueError(f"alpha must be one of {sorted(ALPHAS)} or a callable, got {alpha!r}")
        return ALPHAS[alpha]
    if not callable(alpha):
        raise TypeError(f"alpha must be a name or a callable t/T -> s, got {type(alpha).__name__}")
    r = torch.linspace(0.0, 1.0, 1001, dtype=torch.float64)
    s = torch.as_tensor(alpha(r), dtype=torch.float64)
    if s.shape != r.shape or not torch.isfinite(s).all():
        raise ValueError("alpha(r) must return a finite tensor shaped like r")
    if abs(float(s[0])) > 1e-6 or abs(float(s[-1]) - 1.0) > 1e-6:
        raise ValueError(f"alpha must satisfy s(0) = 0 and s(1) = 1, got s(0) = {float(s[0]):.6g}, "
                         f"s(1) = {float(s[-1]):.6g}")
    if (s[1:] - s[:-1]).min() < -1e-9:
        raise ValueError("alpha must be monotone non-decreasing on [0, 1]")
    return alpha


@dataclass(frozen=True)
class Alpha(Rule):
    """The config rule of a progress schedule: a name of :data:`ALPHAS` or a callable that
    :func:`resolve_alpha` accepts, kept as given (a config holding a callable works in memory but
    cannot be saved as JSON)."""

    def __call__(self, value: AlphaLike, name: str) -> AlphaLike:
        try:
            resolve_alpha(value)
        except (TypeError, ValueError) as err:
            raise type(err)(str(err).replace("alpha", name, 1)) from None
        return value


#: The annotation of a posture path's ``alpha``: a schedule name or a checked callable.
Progress = Annotated[AlphaLike, Alpha()]


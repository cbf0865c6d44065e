"""``ScheduleConfig``: the options of a PostureHMR model's forward process, as a
:class:`~kinediff.PostureHMRConfig` nests them (``config.schedule_config``; which process is
``config.schedule``, and the FK / VL root path ``config.root_path``, since it depends on the
condition)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from kinediff.core.config import ConfigMixin
from kinediff.forward.alphas import ALPHAS

__all__ = ["BLENDS", "NOISE_BETAS", "NOISE_PREDICTIONS", "ScheduleConfig"]

#: The beta schedules ``alpha`` names for the noise process.
NOISE_BETAS = ("linear", "scaled_linear", "cosine")
#: FK's rest-vertex blends: "paper" (eq. 3) and "exact" (every M_t a true SMPL mesh).
BLENDS = ("paper", "exact")
#: What the noise process's decoder predicts.
NOISE_PREDICTIONS = ("sample", "epsilon")
#: The most reverse steps: the DDPM's 1000 training steps (DDIM cannot take more steps than the
#: process has; the posture schedules are trained with T = 10, and each step is a decoder pass).
MAX_STEPS = 1000
#: The most DDPM training steps: 10 times the usual 1000.
MAX_NOISE_TRAIN_STEPS = 10000


@dataclass(frozen=True)
class ScheduleConfig(ConfigMixin):
    """The forward process's options; defaults are the paper's. Some apply to one process only
    (``PostureHMRConfig`` refuses one set away from its default where it cannot apply).

    Frozen: change one with ``dataclasses.replace(schedule_config, num_steps=5)``.

    Attributes:
        num_steps: T, the reverse steps (10); for the noise process, its DDIM steps. The decoder
            is built for this T (:class:`~kinediff.decoders.M2PConfig` ``num_steps``).
        alpha: for "fk" / "vl", the progress schedule s(r) (:data:`~kinediff.forward.ALPHAS`:
            "linear", the paper's, "cosine", "sigmoid"); for "noise", the DDPM beta schedule
            (:data:`NOISE_BETAS`: "linear", "scaled_linear", "cosine").
        blend: "fk" only: "paper" (eq. 3) or "exact".
        noise_train_steps: "noise" only: the DDPM steps (1000).
        noise_prediction: "noise" only: what the decoder predicts, "sample" (x0) or "epsilon".

    Limits: ``num_steps`` in [1, 1000] (:data:`MAX_STEPS`), ``noise_train_steps`` in [1, 10000]
    (:data:`MAX_NOISE_TRAIN_STEPS`), integers (a bool, a float or a string is refused; numpy
    integers are read as ints); with the noise process ``num_steps`` must not exceed
    ``noise_train_steps`` (checked by ``PostureHMRConfig``, which knows the process).

    Example:
        >>> from kinediff.forward import ScheduleConfig
        >>> ScheduleConfig.from_dict({"num_steps": 5}).num_steps
        5
    """

    num_steps: int = 10
    alpha: str = "linear"
    blend: str = "paper"
    noise_train_steps: int = 1000
    noise_prediction: str = "sample"

    def __post_init__(self) -> None:
        for name in ("num_steps", "noise_train_steps"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy too
                value = int(value)
                object.__setattr__(self, name, value)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            limit = MAX_STEPS if name == "num_steps" else MAX_NOISE_TRAIN_STEPS
            if value > limit:
                raise ValueError(f"{name} must be at most {limit}, got {value}")
        known = tuple(dict.fromkeys((*ALPHAS, *NOISE_BETAS)))
        for name, allowed in (("alpha", known), ("blend", BLENDS),
                              ("noise_prediction", NOISE_PREDICTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

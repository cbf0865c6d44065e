"""``GaussianNoiseSchedule``: the noise-diffusion baseline of Table 3 (DDPM training, DDIM sampling).

Training: ``add_noise(x0, noise, t)`` = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, t in [0, N), with
N = ``num_train_steps`` (1000). Sampling: ``set_timesteps(n)`` picks n evenly spaced steps
(``num_steps``, 10), and ``step`` is the deterministic DDIM update (eta = 0). Unlike the
posture schedules it needs no body: it works on any (B, V, 3) mesh tensor.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch

from kinediff.core.checks import Int, OneOf, check_finite, check_int, value_checks_enabled
from kinediff.forward.base import ForwardProcess, NumSteps, Project, TrainingBodies, TrainingExample

__all__ = ["BETA_SCHEDULES", "MAX_TRAIN_STEPS", "PREDICTIONS", "GaussianNoiseSchedule",
           "NotAPosturePath"]

#: The DDPM beta schedules.
BETA_SCHEDULES = ("linear", "scaled_linear", "cosine")
#: What the decoder may predict: the noise ("epsilon") or x0 ("sample").
PREDICTIONS = ("epsilon", "sample")
#: The most DDPM training steps: 10 times the usual 1000.
MAX_TRAIN_STEPS = 10_000

#: The posture paths' calls, which the noise process does not have (it has no body).
_POSTURE_CALLS = ("sample", "trajectory", "target", "meshes", "meshes_at", "joints")


class NotAPosturePath(AttributeError):
    """A posture-path call (``trajectory``, ``target``, ...) asked of the noise process: an
    ``AttributeError``, so ``hasattr`` says False."""


def _betas(kind: str, n: int) -> torch.Tensor:
    if kind == "linear":
        return torch.linspace(1e-4, 0.02, n, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(1e-4**0.5, 0.02**0.5, n, dtype=torch.float64) ** 2
    if kind == "cosine":  # Nichol & Dhariwal 2021, capped at 0.999
        f = lambda x: math.cos((x + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)],
                            dtype=torch.float64)
    raise ValueError(f"beta_schedule must be 'linear', 'scaled_linear' or 'cosine', got {kind!r}")


class GaussianNoiseSchedule(ForwardProcess):
    """DDPM / DDIM noise schedule: the forward process of Table 3's "noise" rows.

    Args:
        num_steps: DDIM steps (10), at most ``num_train_steps``; ``set_timesteps`` changes them
            after construction (the config keeps the constructor's value).
        num_train_steps: DDPM steps N (1000), at most :data:`MAX_TRAIN_STEPS`.
        beta_schedule: "linear" (1e-4 .. 0.02), "scaled_linear" or "cosine"
            (:data:`BETA_SCHEDULES`).
        prediction: "epsilon" (the model predicts the noise) or "sample" (it predicts x0).

    Configurable (:mod:`kinediff.core.config`): ``schedule.config`` holds the four arguments.
    """

    fixed_reverse_steps = False  # DDIM samples with any number of steps (``set_timesteps``)

    def __init__(self, num_steps: NumSteps = 10,
                 num_train_steps: Annotated[int, Int(1, MAX_TRAIN_STEPS)] = 1000,
                 beta_schedule: Annotated[str, OneOf(*BETA_SCHEDULES)] = "linear",
                 prediction: Annotated[str, OneOf(*PREDICTIONS)] = "epsilon") -> None:
        c = self.config
        super().__init__(c.num_steps)
        self.num_train_steps = c.num_train_steps
        self.beta_schedule = c.beta_schedule
        self.prediction = c.prediction
        self.betas = _betas(c.beta_schedule, c.num_train_steps)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self.set_timesteps(c.num_steps)

    @classmethod
    def check_config(cls, config) -> None:
        if config.num_steps > config.num_train_steps:
            raise ValueError(f"num_steps ({config.num_steps}) must not exceed num_train_steps "
                             f"({config.num_train_steps}): DDIM takes a subset of the DDPM's steps")

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the DDIM steps: n evenly spaced training steps, largest first (ends at 0)."""
        num_inference_steps = check_int(num_inference_steps, "num_inference_steps", 1,
                                        self.num_train_steps)
        self.num_steps = num_inference_steps
        ratio = self.num_train_steps // num_inference_steps
        self._timesteps = torch.arange(num_inference_steps - 1, -1, -1) * ratio

    @property
    def timesteps(self) -> torch.Tensor:
        """(n,) training-step indices visited by DDIM, e.g. 900, 800, ..., 0."""
        return self._timesteps

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alphas_cumprod.to(like.device)[t].to(like.dtype)[:, None, None]

    @property
    def timestep_values(self) -> tuple[int, ...]:
        """``timesteps`` as Python ints, e.g. (900, 800, ..., 0)."""
        ratio = self.num_train_steps // self.num_steps
        return tuple(i * ratio for i in range(self.num_steps - 1, -1, -1))

    def _train_t(self, t: Any, batch: int, device: torch.device) -> torch.Tensor:
        """Training steps (B,) in [0, N) as a long tensor (an int is broadcast); the range of a
        tensor's values is a value check (:func:`kinediff.value_checks`), an int's always."""
        if isinstance(t, int) and not isinstance(t, bool):
            if not 0 <= t < self.num_train_steps:
                raise ValueError(f"t must lie in [0, {self.num_train_steps - 1}], got {t}")
            return torch.full((batch,), t, dtype=torch.long, device=device)
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.dtype == torch.bool \
                or t.is_complex() or t.shape != (batch,):
            raise ValueError(f"t must be an int or an integer tensor of shape ({batch},), got "
                             f"{t!r}")
        if value_checks_enabled() and (int(t.min()) < 0 or int(t.max()) >= self.num_train_steps):
            raise ValueError(f"t must lie in [0, {self.num_train_steps - 1}], got "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t.to(device)

    def _inference_t(self, t: Any, batch: int, device: torch.device) -> torch.Tensor:
        """``step``'s t: a member of ``timesteps`` (an int always checked, a tensor's values a
        value check), as (B,) long."""
        allowed = self.timestep_values
        if isinstance(t, int) and not isinstance(t, bool) and t not in allowed:
            raise ValueError(f"t must be one of the timesteps {list(allowed)} (set_timesteps("
                             f"{self.num_steps})), got {t}")
        out = self._train_t(t, batch, device)
        if isinstance(t, torch.Tensor) and value_checks_enabled():
            known = torch.tensor(allowed, device=out.device)
            if not bool(torch.isin(out, known).all()):
                bad = sorted(set(out.tolist()) - set(allowed))
                raise ValueError(f"t must hold members of the timesteps {list(allowed)} "
                                 f"(set_timesteps({self.num_steps})), got {bad}")
        return out

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: Any) -> torch.Tensor:
        """q(x_t | x0) = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise. Shapes: (B, V, C), t (B,).

        Raises:
            ValueError: shapes that differ or are not (B, V, C); NaN or inf in ``x0`` or
                ``noise`` (a value check, :func:`kinediff.value_checks`: a NaN would otherwise
                become the training input and target unseen).
        """
        if x0.shape != noise.shape or x0.dim() != 3:
            raise ValueError(f"x0 and noise must both have shape (B, V, C), got {tuple(x0.shape)} "
                             f"and {tuple(noise.shape)}")
        check_finite(x0, "x0")
        check_finite(noise, "noise")
        a = self._abar(self._train_t(t, x0.shape[0], x0.device), x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the model learns to output: the noise ("epsilon") or x0 ("sample")."""
        return noise if self.prediction == "epsilon" else x0

    def initial(self, batch_size: int, num_vertices: int = 431, channels: int = 3,
                generator: torch.Generator | None = None, dtype=torch.float32, device=None):
        """x_T ~ N(0, I). Shape: -> (batch_size, num_vertices, channels)."""
        return torch.randn(batch_size, num_vertices, channels, generator=generator, dtype=dtype,
                           device=device)

    def step(self, model_output: torch.Tensor, t: Any, mesh: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM step from training step t to the next of ``timesteps`` (or to x0).

        Shape: model_output and mesh (B, V, C); t (B,) or int, a member of ``timesteps`` (another
        value is refused: DDIM's step to the next timestep is only defined from one of them; for a
        tensor t that check is a value check, :func:`kinediff.value_checks`).
        """
        if model_output.shape != mesh.shape or mesh.dim() != 3:
            raise ValueError(f"model_output and mesh must both have shape (B, V, C); got "
                             f"{tuple(model_output.shape)} and {tuple(mesh.shape)}")
        t = self._inference_t(t, mesh.shape[0], mesh.device)
        ratio = self.num_train_steps // self.num_steps
        a_t = self._abar(t, mesh)
        prev = t - ratio
        a_prev = torch.where(prev[:, None, None] >= 0, self._abar(prev.clamp_min(0), mesh),
                             torch.ones_like(a_t))
        x0 = self._original(model_output, mesh, a_t)
        eps = model_output if self.prediction == "epsilon" else \
            (mesh - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps

    def _original(self, model_output: torch.Tensor, mesh: torch.Tensor, a_t: torch.Tensor
                  ) -> torch.Tensor:
        """x0 from the model's output at x_t = ``mesh`` with abar_t = ``a_t`` (B, 1, 1)."""
        if self.prediction == "sample":
            return model_output
        return (mesh - (1 - a_t).sqrt() * model_output) / a_t.sqrt()

    def predict_original(self, model_output: torch.Tensor, mesh: torch.Tensor, t: Any
                         ) -> torch.Tensor:
        """x0 implied by the model's output at x_t = ``mesh`` and training step t (B,) in
        [0, N): the output itself ("sample"), or (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
        ("epsilon"). No value checks (the training hot path); shapes (B, V, C)."""
        if self.prediction == "sample":
            return model_output
        return self._original(model_output, mesh, self._abar(t, mesh))

    def training_example(self, bodies: TrainingBodies, generator: torch.Generator | None = None,
                         steps_per_sample: int | None = None, project: Project | None = None
                         ) -> TrainingExample:
        """DDPM training: x0 = ``project(bodies.vertices)``, t ~ U{0..N-1} and noise ~ N(0, I)
        drawn from ``generator`` (on the CPU, in that order), inputs x_t = ``add_noise(x0, noise,
        t)``, target ``training_target(x0, noise)``, labels x0. One step per sample
        (``steps_per_sample`` is not read)."""
        full = bodies.vertices
        x0 = self._project(project)(full)
        b = x0.shape[0]
        # drawn on the CPU; copied without waiting for the device's queue
        t = torch.randint(0, self.num_train_steps, (b,), generator=generator).to(
            x0.device, non_blocking=True)
        noise = torch.randn(x0.shape, generator=generator).to(x0, non_blocking=True)
        return TrainingExample(inputs=self.add_noise(x0, noise, t), steps=t, labels=x0,
                               labels_full=full, fixed_target=self.training_target(x0, noise))

    def __getattr__(self, name: str) -> Any:
        if name in _POSTURE_CALLS:
            raise NotAPosturePath(
                f"GaussianNoiseSchedule.{name} is not defined: the noise process has no posture "
                f"path. Use add_noise(x0, noise, t) to train and step(...) over timesteps to sample")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

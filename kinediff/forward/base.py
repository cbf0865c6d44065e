"""``ForwardProcess``: what every forward process offers its reverse process and its training, in
the manner of diffusers' schedulers.

Every process has ``num_steps`` reverse steps visited over ``timesteps``, a starting mesh
(``initial``), a reverse ``step``, and the two calls training needs: :meth:`ForwardProcess.
training_example` (the decoder's inputs, steps and targets for a batch of bodies) and
:meth:`ForwardProcess.predict_original` (the mesh a decoder output stands for, which the loss's
mesh terms compare). A model's 3D loss is then one path for every row of the paper's Table 3.
What only the posture paths have (``trajectory``, ``target``, ``meshes_at``) lives in
:class:`~kinediff.forward.posture.PostureSchedule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

import torch

from kinediff.core.checks import Int, value_checks_enabled
from kinediff.core.config import Configurable

__all__ = ["MAX_STEPS", "ForwardProcess", "NumSteps", "Project", "TrainingBodies", "TrainingExample"]

#: The most reverse steps a process may have: the DDPM's 1000 training steps (DDIM cannot take
#: more steps than the process has; the posture schedules are trained with T = 10, and each step
#: is a decoder pass).
MAX_STEPS = 1000
#: The annotation of a process's ``num_steps``: an integer in [1, :data:`MAX_STEPS`].
NumSteps = Annotated[int, Int(1, MAX_STEPS)]

#: Maps full-resolution meshes (M, V, 3) to the decoder's mesh (M, N, 3), e.g.
#: ``MeshHierarchy.downsample``; the identity when the decoder works on the full mesh.
Project = Callable[[torch.Tensor], torch.Tensor]


def _identity(mesh: torch.Tensor) -> torch.Tensor:
    return mesh


@dataclass(frozen=True, eq=False)
class TrainingBodies:
    """The bodies one training batch should produce.

    Attributes:
        pose: (B, 24, 3) axis-angle or (B, 24, 3, 3) SMPL pose.
        betas: (B, K) shape, or None for the mean shape.
        vertices: (B, V, 3) the body's mesh of (pose, betas), metres (what processes that work on
            meshes alone, such as noise diffusion, learn to produce).
        heading: (B,) radians, the heading the posture paths' template is turned to (only with
            ``root_path="heading"``), else None.
    """

    pose: torch.Tensor
    betas: torch.Tensor | None
    vertices: torch.Tensor
    heading: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class TrainingExample:
    """What a decoder is trained on for one batch (R = B x ``repeats`` entries).

    Attributes:
        inputs: (R, N, 3) the meshes the decoder reads (M_t, or the noisy x_t).
        steps: (R,) long, the step each entry is told.
        labels: (R, N, 3) the mesh the loss's vertex terms compare the prediction with: M_{t-1}
            for the posture paths, x0 for noise.
        labels_full: (R, V, 3) the same at full resolution.
        repeats: how many entries each sample of the batch has (consecutive).
        loss_steps: the factor of eq. 7's posture term (T for the posture paths: the sum over k
            is T times the mean over the drawn steps; 1 for noise).
        fixed_target: the decoder's target where it does not depend on ``inputs`` (noise: the
            noise or x0), or None for the posture paths, whose target is ``labels - inputs``.
    """

    inputs: torch.Tensor
    steps: torch.Tensor
    labels: torch.Tensor
    labels_full: torch.Tensor
    repeats: int = 1
    loss_steps: int = 1
    fixed_target: torch.Tensor | None = None

    @property
    def target(self) -> torch.Tensor:
        """(R, N, 3) what the decoder should output: the step back to the label, M_{t-1} - M_t
        (posture paths, eq. 7's label), or ``fixed_target``."""
        return self.labels - self.inputs if self.fixed_target is None else self.fixed_target

    def with_inputs(self, index: torch.Tensor, meshes: torch.Tensor) -> TrainingExample:
        """The example with the inputs at ``index`` (I,) replaced by ``meshes`` (I, N, 3) (e.g. the
        decoder's own rollouts, against exposure bias); a posture-path target follows them."""
        inputs = self.inputs.clone()
        inputs[index] = meshes
        return replace(self, inputs=inputs)


class ForwardProcess(Configurable):
    """Base class of every forward process; configurable (:mod:`kinediff.core.config`): its
    constructor's arguments are its ``config``, and ``ForwardProcess.from_config(config, body=...)``
    builds whichever process a config names.

    Args:
        num_steps: T, the number of reverse steps (the paper's T = 10), in [1, :data:`MAX_STEPS`].

    Attributes:
        num_steps: T.
        timesteps: (T,) long tensor: the steps the reverse process visits, first to last.
        timestep_values: the same as a tuple of ints.
    """

    #: Whether a model trained on this schedule must be run with exactly its ``num_steps`` reverse
    #: steps (posture schedules: step k means "k of T"); DDIM may take other step counts.
    fixed_reverse_steps: ClassVar[bool] = True

    def __init__(self, num_steps: NumSteps = 10) -> None:
        self.num_steps = self.config.num_steps

    @property
    def timesteps(self) -> torch.Tensor:
        return torch.arange(self.num_steps, 0, -1)

    @property
    def timestep_values(self) -> tuple[int, ...]:
        """``timesteps`` as Python ints, first to last: what a reverse loop iterates over (a loop
        over a tensor's values reads it back from the device and stops ``torch.compile``)."""
        if type(self).timesteps is ForwardProcess.timesteps:
            return tuple(range(self.num_steps, 0, -1))
        return tuple(int(t) for t in self.timesteps.tolist())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.arguments().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ------------------------------------------------------------------------------

    def _check_t(self, t: Any, batch: int, low: int, device: torch.device) -> torch.Tensor:
        """Per-sample integer steps (B,) in [low, T] as a long tensor (an int is broadcast).

        The type and shape are always checked; the range of a tensor's values is a value check
        (:func:`kinediff.value_checks`: it reads the tensor, a host synchronisation on a GPU), an
        int's range always."""
        if isinstance(t, int) and not isinstance(t, bool):
            if not low <= t <= self.num_steps:
                raise ValueError(f"t must lie in [{low}, {self.num_steps}], got {t}")
            return torch.full((batch,), t, dtype=torch.long, device=device)
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.dtype == torch.bool \
                or t.is_complex():
            raise ValueError(f"t must be an int or an integer tensor of shape ({batch},), got {t!r}")
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
        if value_checks_enabled() and t.numel() and (int(t.min()) < low or int(t.max()) > self.num_steps):
            raise ValueError(f"t must lie in [{low}, {self.num_steps}], got values in "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t.to(device=device, dtype=torch.long)

    # -- the reverse process and its training -------------------------------------------------

    def initial(self, batch_size: int, **kwargs: Any) -> torch.Tensor:
        """The reverse process's start M_T / x_T (subclasses say their arguments)."""
        raise NotImplementedError

    def step(self, model_output: torch.Tensor, t: Any, mesh: torch.Tensor) -> torch.Tensor:
        """One reverse step from ``mesh`` at step t given the decoder's ``model_output``."""
        raise NotImplementedError

    def predict_original(self, model_output: torch.Tensor, mesh: torch.Tensor, t: Any
                         ) -> torch.Tensor:
        """The mesh the decoder's output stands for, which the loss's mesh terms compare with
        :attr:`TrainingExample.labels` (posture paths: M_{t-1}; noise: x0). Shapes (B, N, 3), t (B,)
        in the steps :meth:`training_example` draws."""
        raise NotImplementedError

    def training_example(self, bodies: TrainingBodies, generator: torch.Generator | None = None,
                         steps_per_sample: int | None = None, project: Project | None = None
                         ) -> TrainingExample:
        """Random steps for a batch of bodies and the decoder's inputs and targets there.

        Args:
            bodies: the batch's bodies (:class:`TrainingBodies`).
            generator: the random steps (and noise) are drawn from it (on the CPU).
            steps_per_sample: how many distinct steps each sample trains on (posture paths; None
                = all T; noise always draws one).
            project: full-resolution meshes -> the decoder's meshes (default: the identity).
        """
        raise NotImplementedError

    @staticmethod
    def _project(project: Project | None) -> Project:
        return _identity if project is None else project


"""``PostureSchedule``: the posture paths (FK and VL), which move a target body (pose, shape) to
the template M_T through meshes M_t, t = 0 (the target) .. T. A subclass says how: its
:meth:`PostureSchedule.meshes_at` gives the meshes at progress values s = alpha(t / T); every
other call (``sample``, ``trajectory``, ``target``, ``meshes``, ``initial``, the training example)
is written once here in terms of it."""

from __future__ import annotations

from typing import Any

import torch

from kinediff.core.checks import check_int
from kinediff.forward.alphas import Progress, resolve_alpha
from kinediff.forward.base import ForwardProcess, NumSteps, Project, TrainingBodies, TrainingExample
from kinediff.forward.template import RootPath, TemplateEnd, TemplateOrientation

__all__ = ["PostureSchedule"]


class PostureSchedule(ForwardProcess):
    """Base of the posture paths over a :class:`~kinediff.body.BodyModel`.

    Args:
        body: the body model (its dtype and device are followed).
        num_steps: T (paper: 10).
        alpha: "linear" (paper), "cosine", "sigmoid", or a monotone callable r -> s with s(0) = 0,
            s(1) = 1, applied to r = t / T.
        template_orientation, root_path: the template end M_T (:class:`~kinediff.forward.template.
            TemplateEnd`): with ``root_path="heading"`` every call takes ``heading`` (B,) radians.

    Shapes: pose (B, 24, 3) axis-angle or (B, 24, 3, 3); betas (B, K); t (B,) integers or an int;
    heading (B,) radians; meshes (B, V, 3); trajectory (B, T + 1, V, 3) with index t holding M_t.
    """

    config_objects = ("body",)

    def __init__(self, body, num_steps: NumSteps = 10, alpha: Progress = "linear",
                 template_orientation: TemplateOrientation = None,
                 root_path: RootPath = "geodesic") -> None:
        if not hasattr(body, "v_template"):
            raise TypeError(f"{type(self).__name__} needs a body model (e.g. BodyModel.synthetic())"
                            f" as its first argument, got {type(body).__name__}")
        c = self.config
        super().__init__(c.num_steps)
        self.body = body
        self.alpha = resolve_alpha(c.alpha)
        self.template = TemplateEnd(body, c.template_orientation, c.root_path)

    @property
    def root_path(self) -> str:
        """"geodesic" or "heading" (see :class:`~kinediff.forward.template.TemplateEnd`)."""
        return self.template.root_path

    @property
    def template_orientation(self) -> torch.Tensor:
        """(3, 3) root orientation of M_T at heading 0, in the body's dtype and device."""
        return self.template.orientation

    def progress(self, t: torch.Tensor) -> torch.Tensor:
        """s = alpha(t / T) for integer steps t (any shape), in the body's dtype."""
        return self.alpha(t.to(self.body.v_template.dtype) / self.num_steps)

    # -- the path: what a subclass defines ----------------------------------------------------

    def meshes_at(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                  heading: torch.Tensor | None = None) -> torch.Tensor:
        """Meshes at progress values s (B, M) in [0, 1] for each sample, in one batched pass:
        (B, M, V, 3); s = 0 is the target body, s = 1 the template M_T. The one call a posture
        path defines."""
        raise NotImplementedError(f"{type(self).__name__} must define meshes_at(pose, betas, s, "
                                  f"heading)")

    # -- the calls, in terms of meshes_at ------------------------------------------------------

    def meshes(self, pose: torch.Tensor, betas: torch.Tensor | None, t: torch.Tensor,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_t for several steps per sample in one batched pass: t (B, M) integers in [0, T]
        -> (B, M, V, 3)."""
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[0] != pose.shape[0]:
            raise ValueError(f"t must be an integer tensor of shape ({pose.shape[0]}, M), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
        flat = self._check_t(t.flatten(), t.numel(), 0, self.body.v_template.device)
        return self.meshes_at(pose, betas, self.progress(flat.view_as(t)), heading)

    def sample(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_t for a per-sample step t (the q of eq. 2). Shape: -> (B, V, 3)."""
        t = self._check_t(t, pose.shape[0], 0, self.body.v_template.device)
        return self.meshes_at(pose, betas, self.progress(t)[:, None], heading)[:, 0]

    def trajectory(self, pose: torch.Tensor, betas: torch.Tensor | None = None,
                   heading: torch.Tensor | None = None) -> torch.Tensor:
        """All T + 1 meshes in one batched pass. Shape: -> (B, T + 1, V, 3), index t = M_t."""
        steps = torch.arange(self.num_steps + 1, device=self.body.v_template.device)
        s = self.progress(steps).expand(pose.shape[0], -1)
        return self.meshes_at(pose, betas, s, heading)

    def target(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """The label of eq. 7: M_{t-1} - M_t for t in [1, T]. Shape: -> (B, V, 3)."""
        t = self._check_t(t, pose.shape[0], 1, self.body.v_template.device)
        meshes = self.meshes_at(pose, betas, self.progress(torch.stack([t - 1, t], dim=1)), heading)
        return meshes[:, 0] - meshes[:, 1]

    def initial(self, batch_size: int, heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_T, the template in the template orientation (turned by ``heading`` with the
        "heading" root path). Shape: -> (batch_size, V, 3)."""
        check_int(batch_size, "batch_size")
        return self.template.meshes(heading, batch_size).clone()

    def step(self, model_output: torch.Tensor, t: Any, mesh: torch.Tensor) -> torch.Tensor:
        """One reverse step (eq. 5): M_{t-1} = M_t + F(M_t, ., t).

        Shape:
            - model_output: (B, V, 3), the predicted M_{t-1} - M_t.
            - t: (B,) or int in [1, T] (checked).
            - mesh: (B, V, 3), M_t.
            - output: (B, V, 3), M_{t-1}.
        """
        if mesh.dim() != 3 or mesh.shape[-1] != 3 or model_output.shape != mesh.shape:
            raise ValueError(f"model_output and mesh must both have shape (B, V, 3); got "
                             f"{tuple(model_output.shape)} and {tuple(mesh.shape)}")
        self._check_t(t, mesh.shape[0], 1, mesh.device)
        return mesh + model_output

    def predict_original(self, model_output: torch.Tensor, mesh: torch.Tensor, t: Any
                         ) -> torch.Tensor:
        """M_{t-1} = M_t + output: the mesh the loss's vertex terms compare (no value checks: the
        training hot path)."""
        return mesh + model_output

    def training_example(self, bodies: TrainingBodies, generator: torch.Generator | None = None,
                         steps_per_sample: int | None = None, project: Project | None = None
                         ) -> TrainingExample:
        """``steps_per_sample`` (None: all T) distinct steps t in [1, T] of each sample's path,
        drawn from ``generator``; inputs M_t, labels M_{t-1} (no gradient through the path), the
        target M_{t-1} - M_t (eq. 7), entries ordered sample by sample."""
        project = self._project(project)
        b = bodies.pose.shape[0]
        dev = self.body.v_template.device
        k = self.num_steps if steps_per_sample is None else min(steps_per_sample, self.num_steps)
        # drawn on the CPU (a generator there); copied without waiting for the device's queue
        t = torch.rand(b, self.num_steps, generator=generator).argsort(1)[:, :k]
        t = t.to(dev, non_blocking=True) + 1
        with torch.no_grad():
            full = self.meshes(bodies.pose, bodies.betas, torch.cat([t, t - 1], 1), bodies.heading)
        both = project(full.flatten(0, 1)).view(b, 2 * k, -1, 3)
        return TrainingExample(inputs=both[:, :k].flatten(0, 1), steps=t.flatten(),
                               labels=both[:, k:].flatten(0, 1), labels_full=full[:, k:].flatten(0, 1),
                               repeats=k, loss_steps=self.num_steps)

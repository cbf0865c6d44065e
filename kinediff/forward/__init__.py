"""Forward processes (posture schedules): FK (the paper's), vertex-linear and Gaussian noise.

All share :class:`PostureSchedule`'s calls, so an ablation is a one-word swap::

    from kinediff.forward import FKSchedule
    schedule = FKSchedule(body, num_steps=10)
    meshes = schedule.trajectory(pose, betas)        # (B, T + 1, V, 3), index t = M_t
"""

from kinediff.forward.alphas import ALPHAS, resolve_alpha
from kinediff.forward.base import SCHEDULES, PostureSchedule
from kinediff.forward.fk import ROOT_PATHS, FKSchedule, template_mesh, wrap_axis_angle
from kinediff.forward.heading import estimate_heading, heading_matrix, heading_of, torso_weights
from kinediff.forward.linear import VertexLinearSchedule
from kinediff.forward.noise import GaussianNoiseSchedule

__all__ = [
           "ALPHAS",
           "ROOT_PATHS",
           "SCHEDULES",
           "FKSchedule",
           "GaussianNoiseSchedule",
           "PostureSchedule",
           "VertexLinearSchedule",
           "estimate_heading",
           "heading_matrix",
           "heading_of",
           "resolve_alpha",
           "template_mesh",
           "torso_weights",
           "wrap_axis_angle",
]

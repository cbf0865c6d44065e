"""Forward processes: FK (the paper's), vertex-linear and Gaussian noise.

All are :class:`ForwardProcess`es (``timesteps``, ``initial``, ``step``, ``training_example``,
``predict_original``); FK and VL are also :class:`PostureSchedule`s (``trajectory``, ``target``,
``meshes_at``), so an ablation is a one-word swap::

    from kinediff.forward import FKSchedule
    schedule = FKSchedule(body, num_steps=10)
    meshes = schedule.trajectory(pose, betas)        # (B, T + 1, V, 3), index t = M_t
"""

from kinediff.forward.alphas import ALPHAS, resolve_alpha
from kinediff.forward.config import BLENDS, NOISE_BETAS, NOISE_PREDICTIONS, ScheduleConfig
from kinediff.forward.base import SCHEDULES, ForwardProcess, Project, TrainingBodies, TrainingExample
from kinediff.forward.fk import FKSchedule, wrap_axis_angle
from kinediff.forward.heading import estimate_heading, heading_matrix, heading_of, torso_weights
from kinediff.forward.linear import VertexLinearSchedule
from kinediff.forward.noise import GaussianNoiseSchedule, NotAPosturePath
from kinediff.forward.posture import PostureSchedule
from kinediff.forward.template import ROOT_PATHS, TemplateEnd, default_template_orientation, template_mesh

__all__ = [
           "ALPHAS",
           "BLENDS",
           "NOISE_BETAS",
           "NOISE_PREDICTIONS",
           "ROOT_PATHS",
           "SCHEDULES",
           "FKSchedule",
           "ForwardProcess",
           "GaussianNoiseSchedule",
           "NotAPosturePath",
           "PostureSchedule",
           "Project",
           "ScheduleConfig",
           "TemplateEnd",
           "TrainingBodies",
           "TrainingExample",
           "VertexLinearSchedule",
           "default_template_orientation",
           "estimate_heading",
           "heading_matrix",
           "heading_of",
           "resolve_alpha",
           "template_mesh",
           "torso_weights",
           "wrap_axis_angle",
]

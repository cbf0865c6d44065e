"""Forward processes: FK (the paper's), vertex-linear and Gaussian noise.

All are :class:`ForwardProcess`es (``timesteps``, ``initial``, ``step``, ``training_example``,
``predict_original``); FK and VL are also :class:`PostureSchedule`s (``trajectory``, ``target``,
``meshes_at``), so an ablation is a one-word swap::

    from kinediff.forward import FKSchedule
    schedule = FKSchedule(body, num_steps=10)
    meshes = schedule.trajectory(pose, betas)        # (B, T + 1, V, 3), index t = M_t
"""

from kinediff.forward.alphas import ALPHAS, resolve_alpha
from kinediff.forward.base import MAX_STEPS, ForwardProcess, Project, TrainingBodies, TrainingExample
from kinediff.forward.fk import BLENDS, FKSchedule, wrap_axis_angle
from kinediff.forward.heading import estimate_heading, heading_matrix, heading_of, torso_weights
from kinediff.forward.linear import VertexLinearSchedule
from kinediff.forward.noise import (
    BETA_SCHEDULES,
    MAX_TRAIN_STEPS,
    PREDICTIONS,
    GaussianNoiseSchedule,
    NotAPosturePath,
)
from kinediff.forward.posture import PostureSchedule
from kinediff.forward.sampling import Denoise, reverse_process
from kinediff.forward.template import ROOT_PATHS, TemplateEnd, default_template_orientation, template_mesh

__all__ = [
           "ALPHAS",
           "BETA_SCHEDULES",
           "BLENDS",
           "MAX_STEPS",
           "MAX_TRAIN_STEPS",
           "PREDICTIONS",
           "ROOT_PATHS",
           "Denoise",
           "FKSchedule",
           "ForwardProcess",
           "GaussianNoiseSchedule",
           "NotAPosturePath",
           "PostureSchedule",
           "Project",
           "TemplateEnd",
           "TrainingBodies",
           "TrainingExample",
           "VertexLinearSchedule",
           "default_template_orientation",
           "estimate_heading",
           "heading_matrix",
           "heading_of",
           "resolve_alpha",
           "reverse_process",
           "template_mesh",
           "torso_weights",
           "wrap_axis_angle",
]

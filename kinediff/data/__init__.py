"""Data sets in one sample format (:mod:`kinediff.data.sample`): the built-in ``SynthBody``."""

from kinediff.data.limits import (
    JOINT_LIMITS_DEG,
    euler_to_matrix,
    pose_from_uniform,
    root_orientation,
    sample_body_pose,
)
from kinediff.data.sample import SAMPLE_KEYS, check_sample, collate
from kinediff.data.synthetic import SynthBody, part_colors

__all__ = [
    "JOINT_LIMITS_DEG",
    "SAMPLE_KEYS",
    "SynthBody",
    "check_sample",
    "collate",
    "euler_to_matrix",
    "part_colors",
    "pose_from_uniform",
    "root_orientation",
    "sample_body_pose",
]

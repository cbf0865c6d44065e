"""Data sets in one sample format (:mod:`kinediff.data.sample`): the built-in ``SynthBody``, the
real benchmarks (``PW3D``, ``Human36M``, ``Surreal``), the paper's hybrid training sets (``UP3D``,
``COCO``, MPI-INF-3DHP) and ``MixedDataset``, with converters between their file formats."""

from kinediff.data.augment import Augment, Augmented, augment_sample, flip_pose
from kinediff.data.coco import COCO, convert_coco
from kinediff.data.h36m import Human36M, convert_h36m
from kinediff.data.limits import (
    JOINT_LIMITS_DEG,
    euler_to_matrix,
    pose_from_uniform,
    root_orientation,
    sample_body_pose,
)
from kinediff.data.mixed import PAPER_RATIOS, MixedDataset
from kinediff.data.mpii3d.dataset import MPIINF3DHP, convert_mpii3d
from kinediff.data.pw3d import PW3D, convert_3dpw
from kinediff.data.sample import SAMPLE_KEYS, check_sample, collate
from kinediff.data.spin import SpinNpz
from kinediff.data.surreal import Surreal, convert_surreal
from kinediff.data.synthetic import SynthBody, part_colors
from kinediff.data.up3d import UP3D, convert_up3d

__all__ = [
    "COCO",
    "JOINT_LIMITS_DEG",
    "MPIINF3DHP",
    "PAPER_RATIOS",
    "PW3D",
    "SAMPLE_KEYS",
    "UP3D",
    "Augment",
    "Augmented",
    "Human36M",
    "MixedDataset",
    "SpinNpz",
    "Surreal",
    "SynthBody",
    "augment_sample",
    "check_sample",
    "collate",
    "convert_3dpw",
    "convert_coco",
    "convert_h36m",
    "convert_mpii3d",
    "convert_surreal",
    "convert_up3d",
    "euler_to_matrix",
    "flip_pose",
    "part_colors",
    "pose_from_uniform",
    "root_orientation",
    "sample_body_pose",
]

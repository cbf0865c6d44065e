"""The 2D stage: HRNet heatmaps -> points -> 2D mesh, soft-argmax, keypoint choice and C fitting."""

from kinediff.heads.hrnet import HRNetMeshHead, load_backbone_weights
from kinediff.heads.keypoints import (
    H36M_LIKE_SMPL_JOINTS,
    farthest_point_sampling,
    fit_coefficients,
    keypoint_regressor,
)
from kinediff.heads.softargmax import soft_argmax_2d

__all__ = [
    "H36M_LIKE_SMPL_JOINTS",
    "HRNetMeshHead",
    "farthest_point_sampling",
    "fit_coefficients",
    "keypoint_regressor",
    "load_backbone_weights",
    "soft_argmax_2d",
]

"""The 2D stage: HRNet heatmaps -> points -> 2D mesh, soft-argmax, keypoint choice (VirtualMarker's markers from its files) and C fitting,
and HRNet weights (official COCO-pose checkpoints or timm state dicts)."""

from kinediff.heads.coefficients import fit_coefficients
from kinediff.heads.hrnet import MAX_HEATMAP_SIZE, MAX_POINTS, HRNetMeshHead
from kinediff.heads.hrnet_weights import WeightsReport, load_backbone_weights, read_state_dict
from kinediff.heads.markers import VIRTUALMARKER_IGNORED_PARTS, read_virtual_markers
from kinediff.heads.softargmax import soft_argmax_2d

__all__ = [
    "MAX_HEATMAP_SIZE",
    "MAX_POINTS",
    "VIRTUALMARKER_IGNORED_PARTS",
    "HRNetMeshHead",
    "WeightsReport",
    "fit_coefficients",
    "load_backbone_weights",
    "read_state_dict",
    "read_virtual_markers",
    "soft_argmax_2d",
]

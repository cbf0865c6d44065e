"""Losses: the trimap IoU rendering loss (eq. 6), the 2D-stage loss, and the 3D losses (eq. 7 and
the surface terms)."""

from kinediff.losses.mesh import (
    Loss3DWeights,
    edge_loss,
    joint_l1,
    joint_mse,
    keypoint_2d_l1,
    loss_3d,
    masked_mean,
    normal_loss,
    posture_loss,
    vertex_l1,
)
from kinediff.losses.trimap import (
    TrimapIoULoss,
    TrimapRenderLoss,
    loss_2d,
    soft_iou,
    trimap,
    trimap_iou_loss,
    trimap_render_loss,
)

__all__ = [
    "Loss3DWeights",
    "TrimapIoULoss",
    "TrimapRenderLoss",
    "edge_loss",
    "joint_l1",
    "joint_mse",
    "keypoint_2d_l1",
    "loss_2d",
    "loss_3d",
    "masked_mean",
    "normal_loss",
    "posture_loss",
    "soft_iou",
    "trimap",
    "trimap_iou_loss",
    "trimap_render_loss",
    "vertex_l1",
]

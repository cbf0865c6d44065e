"""Losses: the trimap IoU rendering loss (eq. 6) and the 2D-stage loss."""

from kinediff.losses.trimap import TrimapIoULoss, loss_2d, soft_iou, trimap, trimap_iou_loss

__all__ = ["TrimapIoULoss", "loss_2d", "soft_iou", "trimap", "trimap_iou_loss"]

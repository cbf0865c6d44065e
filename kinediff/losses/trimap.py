"""The trimap IoU rendering loss of the paper (eq. 6) and its band.

L_tri = 2 - IoU(P, G) - IoU(P * C, G * C), with P the predicted soft mask, G the ground-truth mask and
C the trimap band of ``width`` pixels around G's edge (kornia morphology: dilation - erosion). The
soft IoU is sum(min(P, G)) / sum(max(P, G)) (Ruzicka): 1 for identical masks, soft or hard,
symmetric, in [0, 1]; two empty masks count as IoU 1, so an empty GT mask never gives NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.morphology import dilation, erosion
from torch import nn

from kinediff.render.soft import soft_silhouette

__all__ = ["TrimapIoULoss", "loss_2d", "soft_iou", "trimap", "trimap_iou_loss"]


def _check_masks(*masks: torch.Tensor) -> None:
    ref = masks[0]
    for m in masks:
        if m.dim() != 3:
            raise ValueError(f"masks must have shape (B, H, W), got {tuple(m.shape)}")
        if m.shape != ref.shape:
            raise ValueError(f"mask shapes differ: {tuple(ref.shape)} and {tuple(m.shape)}")


def trimap(mask: torch.Tensor, width: int) -> torch.Tensor:
    """The band of ``width`` pixels across the edge of a mask: width // 2 outside, the rest inside.

    Distances are Chebyshev (square structuring element), so the band across an axis-aligned edge
    is exactly ``width`` pixels. Shape: (B, H, W) -> (B, H, W) of 0 / 1 in the mask's dtype.
    """
    _check_masks(mask)
    if width < 1:
        raise ValueError(f"width must be a positive number of pixels, got {width}")
    binary = (mask > 0.5).to(torch.float32)[:, None]
    r_out, r_in = width // 2, width - width // 2
    grown = dilation(binary, torch.ones(2 * r_out + 1, 2 * r_out + 1, device=mask.device)) \
        if r_out else binary
    shrunk = erosion(binary, torch.ones(2 * r_in + 1, 2 * r_in + 1, device=mask.device),
                     border_type="constant", border_value=0.0)
    # erosion by r_in removes the r_in outermost pixels of the mask; keep the r_in-pixel inner rim
    return (grown - shrunk)[:, 0].clamp_(0, 1).to(mask.dtype)


def soft_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """sum(min) / sum(max) per sample; 1 where both are empty. Shape: (B, H, W) x2 -> (B,)."""
    _check_masks(pred, gt)
    inter = torch.minimum(pred, gt).flatten(1).sum(1)
    union = torch.maximum(pred, gt).flatten(1).sum(1)
    empty = union <= 1e-12
    return torch.where(empty, torch.ones_like(union), inter / union.clamp_min(1e-12))


def trimap_iou_loss(pred: torch.Tensor, gt: torch.Tensor, width: int,
                    band: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6 per sample: 2 - IoU(P, G) - IoU(P C, G C). Shape: (B, H, W) x2 -> (B,) in [0, 2]."""
    _check_masks(pred, gt)
    c = trimap(gt, width) if band is None else band
    return 2.0 - soft_iou(pred, gt) - soft_iou(pred * c, gt * c)


class TrimapIoULoss(nn.Module):
    """Mean over the batch of :func:`trimap_iou_loss`.

    Args:
        width: trimap band width l in pixels.

    Shape: pred_mask, gt_mask (B, H, W) in [0, 1] -> scalar.
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be a positive number of pixels, got {width}")
        self.width = width

    def forward(self, pred_mask: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
        return trimap_iou_loss(pred_mask, gt_mask, self.width).mean()


def loss_2d(pred_mesh2d: torch.Tensor, gt_mesh2d: torch.Tensor, faces: torch.Tensor, image_size,
            width: int = 8, l1_weight: float = 1.0, sigma: float = 1.0,
            gt_mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_2d = L_tri(render(pred), G) + l1_weight * L1(pred, gt), G = render(gt) unless given.

    Shape: meshes (B, N, 2) in crop pixels, faces (F, 3) -> scalar.
    """
    if pred_mesh2d.shape != gt_mesh2d.shape:
        raise ValueError(f"pred_mesh2d and gt_mesh2d differ in shape: {tuple(pred_mesh2d.shape)} "
                         f"and {tuple(gt_mesh2d.shape)}")
    pred_mask = soft_silhouette(pred_mesh2d, faces, image_size, sigma)
    if gt_mask is None:
        with torch.no_grad():
            gt_mask = soft_silhouette(gt_mesh2d, faces, image_size, 0.0)
    tri = trimap_iou_loss(pred_mask, gt_mask.to(pred_mask.dtype), width).mean()
    return tri + l1_weight * F.l1_loss(pred_mesh2d, gt_mesh2d)

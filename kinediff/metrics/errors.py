"""Per-sample 3D errors: MPJPE, PA-MPJPE (similarity Procrustes), MPVE, in the input's units.

Root (pelvis) alignment belongs to the evaluation protocol; ``mpjpe`` and ``mpve`` take an optional
``root`` index (or (B, 1, 3) root positions) to subtract first.
"""

from __future__ import annotations

import torch

from kinediff._checks import check_pair_shape

__all__ = ["mpjpe", "mpve", "pa_mpjpe", "root_align", "similarity_procrustes"]


def root_align(x: torch.Tensor, root: int | torch.Tensor) -> torch.Tensor:
    """Subtract the root: an index into N, or (B, 1, 3) positions. Shape: (B, N, 3) -> (B, N, 3)."""
    if isinstance(root, int):
        return x - x[:, root:root + 1]
    return x - root


def similarity_procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """pred aligned to gt by the least-squares similarity (scale, rotation, translation) per sample.

    Umeyama's solution with the reflection fix (det R = +1). Degenerate inputs (all points of pred
    equal) give scale 0, i.e. every point at gt's centroid, without NaN.

    Shape: (B, N, 3) x2 -> (B, N, 3).
    """
    check_pair_shape(pred, gt, ("B", "N", 3))
    mu_p, mu_g = pred.mean(1, keepdim=True), gt.mean(1, keepdim=True)
    p, g = pred - mu_p, gt - mu_g
    cov = p.transpose(1, 2) @ g  # (B, 3, 3)
    u, s, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.ones_like(s)
    fix[:, -1] = d
    rot = u @ torch.diag_embed(fix) @ vh  # p @ rot ~ g
    var = p.square().sum((1, 2))
    scale = (s * fix).sum(-1) / var.clamp_min(torch.finfo(pred.dtype).tiny)
    scale = torch.where(var > 0, scale, torch.zeros_like(scale))
    return scale[:, None, None] * (p @ rot) + mu_g


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int | None = None) -> torch.Tensor:
    """Mean per-joint position error (B,), optionally after subtracting joint ``root`` from both."""
    check_pair_shape(pred, gt, ("B", "N", 3))
    if root is not None:
        pred, gt = root_align(pred, root), root_align(gt, root)
    return (pred - gt).norm(dim=-1).mean(-1)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after similarity Procrustes alignment of pred to gt, per sample. Shape: -> (B,)."""
    return (similarity_procrustes(pred, gt) - gt).norm(dim=-1).mean(-1)


def mpve(pred: torch.Tensor, gt: torch.Tensor,
         root: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean per-vertex error (B,), optionally after subtracting (B, 1, 3) root positions (the
    pelvis regressed from each mesh) from pred and gt respectively: pass ``(root_pred, root_gt)``."""
    check_pair_shape(pred, gt, ("B", "N", 3))
    if root is not None:
        root_pred, root_gt = root
        pred, gt = pred - root_pred, gt - root_gt
    return (pred - gt).norm(dim=-1).mean(-1)

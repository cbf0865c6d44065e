"""The 3D losses: posture (eq. 7), vertex (multi-level), joint, 2D keypoint, normal and edge terms,
and ``loss_3d`` combining them with VirtualMarker's weights, units and reductions.

Every loss takes an optional (B,) ``mask`` of samples that have the needed ground truth; it averages
over those samples only and returns 0 (never NaN) when none has it.

The paper takes its auxiliary 3D losses and their weights from VirtualMarker ("other losses are the
same as [29]"). VirtualMarker's released code (``virtualmarker/core/loss.py`` and the training loop
in ``virtualmarker/core/function.py``; weights in ``configs/simple3dmesh_train/baseline_*.yml``)
computes them on root-relative coordinates in millimetres: vertex and joint L1 are means over every
point and coordinate (weight 0.1 each; its joints are the 17 H36M joints regressed from the mesh
plus its 64 markers), the normal term is the mean absolute cosine between predicted edges and GT
face normals (0.1), the edge term the mean absolute edge length difference in mm (0.01, added after
epoch 10).
``loss_3d`` reproduces those units and reductions from metre inputs (``length_scale=1000``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from kinediff.core.checks import (
    Number,
    check_choice,
    check_int,
    check_number,
    check_pair_shape,
    check_shape,
)
from kinediff.core.config import Config

__all__ = [
    "Loss3DWeights",
    "edge_loss",
    "joint_l1",
    "joint_mse",
    "keypoint_2d_l1",
    "loss_3d",
    "masked_mean",
    "normal_loss",
    "posture_loss",
    "vertex_l1",
]


def masked_mean(per_sample: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of a (B,) tensor over the samples where ``mask`` (B,) is true; 0 if there are none."""
    if mask is None:
        return per_sample.mean()
    check_shape(mask, "mask", tuple(per_sample.shape))
    m = mask.bool()
    # where, not a product: a sample without the label may hold any value, NaN included
    total = torch.where(m, per_sample, torch.zeros_like(per_sample)).sum()
    return total / m.sum().to(per_sample.dtype).clamp_min(1.0)


def _check(pred: torch.Tensor, gt: torch.Tensor, last: int, name: str) -> None:
    """Raise unless pred and gt are both (B, N, ``last``), naming the loss ``name``."""
    check_pair_shape(pred, gt, ("B", "N", last), context=name)


def posture_loss(pred_delta: torch.Tensor, target_delta: torch.Tensor,
                 step: torch.Tensor | None = None, step_weights: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Eq. 7: || (M_{k-1} - M_k) - F(M_k, M_0^2d, k) ||^2, averaged over samples.

    ``reduction``: "mean" — the squared error summed over xyz and averaged over vertices; "sum" —
    summed over vertices and xyz, eq. 7's squared norm of the whole mesh as written.

    Shape: pred_delta, target_delta (B, N, 3); step (B,) in [1, T] with step_weights (T,) to weight
    steps; mask (B,). Returns a scalar in the inputs' units squared.
    """
    _check(pred_delta, target_delta, 3, "posture_loss")
    check_choice(reduction, "reduction", ("mean", "sum"))
    per_vertex = (pred_delta - target_delta).square().sum(-1)
    per_sample = per_vertex.mean(-1) if reduction == "mean" else per_vertex.sum(-1)
    if step_weights is not None:
        if step is None:
            raise ValueError("step_weights need the step of every sample")
        per_sample = per_sample * step_weights.to(per_sample)[step.long() - 1]
    return masked_mean(per_sample, mask)


def _l1_per_sample(pred: torch.Tensor, gt: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice(reduction, "reduction", ("sum", "mean"), shown="'sum' (over xyz) or 'mean'")
    err = (pred - gt).abs()
    return err.sum(-1).mean(-1) if reduction == "sum" else err.flatten(1).mean(-1)


def vertex_l1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
              hierarchy=None, level_weights: tuple[float, ...] = (1.0,),
              reduction: str = "sum") -> torch.Tensor:
    """L1 over vertices: ``reduction`` "sum" (over xyz, then the mean over vertices) or "mean"
    (over vertices and xyz, VirtualMarker's). With a ``hierarchy`` and full meshes, the weighted
    sum over levels 0, 1, ... (e.g. 6890 / 1723 / 431) of ``level_weights``.

    Shape: pred, gt (B, V, 3); mask (B,). Returns a scalar.
    """
    _check(pred, gt, 3, "vertex_l1")
    if hierarchy is None:
        return masked_mean(_l1_per_sample(pred, gt, reduction), mask)
    total = pred.new_zeros(())
    for level, weight in enumerate(level_weights):
        p, g = hierarchy.downsample(pred, level), hierarchy.downsample(gt, level)
        total = total + weight * masked_mean(_l1_per_sample(p, g, reduction), mask)
    return total


def joint_l1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
             reduction: str = "sum") -> torch.Tensor:
    """L1 over 3D joints: ``reduction`` as :func:`vertex_l1`. Shape: (B, J, 3) x2, mask (B,) ->
    scalar."""
    _check(pred, gt, 3, "joint_l1")
    return masked_mean(_l1_per_sample(pred, gt, reduction), mask)


def joint_mse(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error over 3D joints. Shape: (B, J, 3) x2, mask (B,) -> scalar."""
    _check(pred, gt, 3, "joint_mse")
    return masked_mean((pred - gt).square().sum(-1).mean(-1), mask)


def keypoint_2d_l1(pred: torch.Tensor, gt: torch.Tensor, visibility: torch.Tensor | None = None,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 over visible 2D keypoints (pixels). gt may be (B, J, 3) with visibility as its last column.

    Shape: pred (B, J, 2), gt (B, J, 2) or (B, J, 3), visibility (B, J) -> scalar.
    """
    if gt.dim() == 3 and gt.shape[-1] == 3 and visibility is None:
        gt, visibility = gt[..., :2], gt[..., 2]
    _check(pred, gt, 2, "keypoint_2d_l1")
    err = (pred - gt).abs().sum(-1)  # (B, J)
    if visibility is None:
        return masked_mean(err.mean(-1), mask)
    vis = (visibility > 0).to(err.dtype)
    per_sample = (err * vis).sum(-1) / vis.sum(-1).clamp_min(1.0)
    has = vis.sum(-1) > 0
    return masked_mean(per_sample, has if mask is None else has & mask.bool())


def _face_edges(v: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    tri = v[:, faces]  # (B, F, 3, 3)
    return torch.stack([tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 1],
                        tri[:, :, 0] - tri[:, :, 2]], dim=2)  # (B, F, 3 edges, 3)


def normal_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``|cos|`` between predicted edge directions and GT face normals (0 when pred's faces lie in
    GT's face planes). Shape: (B, V, 3) x2, faces (F, 3), mask (B,) -> scalar."""
    _check(pred, gt, 3, "normal_loss")
    gt_edges = _face_edges(gt, faces)
    normal = torch.nn.functional.normalize(torch.cross(gt_edges[:, :, 0], -gt_edges[:, :, 2], dim=-1),
                                           dim=-1)
    edges = torch.nn.functional.normalize(_face_edges(pred, faces), dim=-1)
    cos = (edges * normal[:, :, None]).sum(-1).abs()  # (B, F, 3)
    return masked_mean(cos.flatten(1).mean(-1), mask)


def edge_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``|pred edge length - GT edge length|`` over face edges. Shape as :func:`normal_loss`."""
    _check(pred, gt, 3, "edge_loss")
    diff = (_face_edges(pred, faces).norm(dim=-1) - _face_edges(gt, faces).norm(dim=-1)).abs()
    return masked_mean(diff.flatten(1).mean(-1), mask)


#: A loss weight: a finite number >= 0.
Weight = Annotated[float, Number(0.0)]


@dataclass(frozen=True, kw_only=True)
class Loss3DWeights(Config):
    """Weights of :func:`loss_3d` (a frozen :class:`~kinediff.core.config.Config`): posture 1
    (eq. 7, the paper's main term, "L_3d = L_pos + ..."); vertex 0.1, joint 0.1, normal 0.1, edge
    0.01 as VirtualMarker's released configs (``configs/simple3dmesh_train/baseline_{h36m,pw3d,
    surreal}.yml``: loss_weight_mesh3d, loss_weight_joint3d_reg, loss_weight_normal,
    loss_weight_edge). Each a finite number >= 0."""

    posture: Weight = 1.0
    vertex: Weight = 0.1
    joint: Weight = 0.1
    normal: Weight = 0.1
    edge: Weight = 0.01


def loss_3d(pred_delta: torch.Tensor, target_delta: torch.Tensor, pred_vertices: torch.Tensor,
            gt_vertices: torch.Tensor, pred_joints: torch.Tensor, gt_joints: torch.Tensor,
            faces: torch.Tensor, mask: torch.Tensor | None = None,
            weights: Loss3DWeights | None = None, *, length_scale: float = 1000.0,
            posture_steps: int = 1, edge: bool = True) -> dict[str, torch.Tensor]:
    """L_3d = L_pos + vertex L1 + joint L1 + normal + edge, weighted (paper §3.4). Returns the terms
    and ``total``.

    Units and reductions (see the module doc): inputs in metres;

    - posture: eq. 7 as written, the squared residual summed over the coarse mesh's vertices and
      coordinates (metres squared), times ``posture_steps`` — the T of eq. 7's sum over k when the
      rows are a sample of a path's steps (their mean times T estimates the sum);
    - vertex, joint: L1 in the inputs' units times ``length_scale`` (1000: millimetres),
      averaged over points and coordinates (VirtualMarker's CoordLoss);
    - normal: mean absolute cosine (unitless); edge: mean absolute length difference times
      ``length_scale``.

    ``edge=False`` leaves the edge term out of ``total`` (it is still reported): VirtualMarker adds
    it only after its tenth epoch.

    Shape: pred_delta, target_delta (B, N, 3); vertices (B, V, 3); joints (B, J, 3); faces (F, 3)
    of the V-vertex mesh; mask (B,).
    """
    w = weights or Loss3DWeights()
    check_number(length_scale, "length_scale", 0.0, low_open=True)
    check_int(posture_steps, "posture_steps")
    s = length_scale
    terms = {
        "posture": posture_steps * posture_loss(pred_delta, target_delta, mask=mask,
                                                reduction="sum"),
        "vertex": vertex_l1(pred_vertices * s, gt_vertices * s, mask, reduction="mean"),
        "joint": joint_l1(pred_joints * s, gt_joints * s, mask, reduction="mean"),
        "normal": normal_loss(pred_vertices, gt_vertices, faces, mask),
        "edge": s * edge_loss(pred_vertices, gt_vertices, faces, mask),
    }
    weighted = {k: getattr(w, k) * v for k, v in terms.items() if edge or k != "edge"}
    terms["total"] = sum(weighted.values())
    return terms

"""A body model restricted to a subset of its vertices, posed with sparse skinning.

The fit's iterations only need the mesh on a few hundred vertices that cover every joint (each
joint's rotation moves its own vertices), not all 6890: :class:`BodySubset` holds the model's arrays
for such a subset, and :func:`pose_subset` poses it exactly as :class:`~kinediff.body.BodyModel`
poses the whole mesh (same blend shapes, forward kinematics and skinning), keeping what the
Jacobian of :mod:`kinediff.fit.jacobian` reuses: each vertex as moved by each of its (few) joints.

Written here rather than taken from :mod:`kinediff.body.skinning` because the Jacobian needs those
per-joint positions, which a blended skinning never forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from kinediff.body import BodyModel, FKResult, forward_kinematics, pose_features

__all__ = ["BodySubset", "SubsetPose", "body_subset", "pose_subset"]


@dataclass(frozen=True)
class BodySubset:
    """A body's arrays on N of its vertices (see :func:`body_subset`).

    Attributes:
        index: (N,) long, the vertices' indices in the full mesh.
        template: (N, 3) template vertices, metres.
        shapedirs: (N, 3, K) shape directions.
        posedirs: (P, N * 3) pose-corrective directions (the body's layout, columns of the subset).
        influence_index: (N, I) long, the joints that move each vertex (I = the most nonzero
            skinning weights of any vertex of the subset; unused slots point at joint 0 with
            weight 0).
        influence_weight: (N, I) their skinning weights.
        weights: (N, J) the same skinning weights, dense.
        below: (I, J, N) the weight of each influence of each vertex that lies at or below each
            joint (0 elsewhere): what a turn of that joint moves of the vertex.
        joint_template: (J, 3) rest joints of the template; joint_shapedirs: (J, 3, K) their
            shape directions (from the full mesh: the regressor needs every vertex).
        parents: the kinematic tree (J python ints, -1 for the root).
        descendants: (J, J) float, ``descendants[k, j] = 1`` where joint k is j or below j.
    """

    index: torch.Tensor
    template: torch.Tensor
    shapedirs: torch.Tensor
    posedirs: torch.Tensor
    influence_index: torch.Tensor
    influence_weight: torch.Tensor
    weights: torch.Tensor
    below: torch.Tensor
    joint_template: torch.Tensor
    joint_shapedirs: torch.Tensor
    parents: list[int]
    descendants: torch.Tensor

    @property
    def num_vertices(self) -> int:
        return int(self.index.shape[0])


class SubsetPose(NamedTuple):
    """Output of :func:`pose_subset`, laid out with the vertices last (``(..., N)``: every
    elementwise pass and every sum over vertices then runs over contiguous memory).

    Attributes:
        vertices: (B, 3, N) posed vertices of the subset, translation included, metres.
        parts: (B, 3, I, N) each vertex moved rigidly by each of its influencing joints (no
            translation); ``vertices = sum_i weight_i parts_i + transl``.
        blended: (B, 3, 3, N) the weighted sum of the influencing joints' global rotations.
        fk: :class:`~kinediff.body.FKResult` of the skeleton (no translation).
    """

    vertices: torch.Tensor
    parts: torch.Tensor
    blended: torch.Tensor
    fk: FKResult


def _no_denormals(x: torch.Tensor) -> torch.Tensor:
    """``x`` with entries below 1e-30 in magnitude set to 0: denormal floats (the synthetic body's
    pose correctives hold some) make every GEMM they enter many times slower on CPU."""
    return torch.where(x.abs() < 1e-30, torch.zeros_like(x), x)


def descendant_matrix(parents: list[int], like: torch.Tensor) -> torch.Tensor:
    """(J, J) with entry [k, j] = 1 where joint k is joint j or one of its descendants."""
    n = len(parents)
    out = torch.eye(n, dtype=like.dtype, device=like.device)
    for k in range(1, n):  # parents come before children: fill each row from its parent's
        out[k] = torch.maximum(out[k], out[parents[k]])
    return out


def body_subset(body: BodyModel, per_joint: int | None = 40, seed: int = 0) -> BodySubset:
    """The vertices the fit iterates on: for every joint, up to ``per_joint`` of the vertices it
    moves most (those whose largest skinning weight is that joint's), drawn at random with
    ``seed`` (deterministic); ``None`` takes every vertex.

    Returns:
        :class:`BodySubset` on the body's device and dtype.
    """
    weights = body.weights
    nv, nj = weights.shape
    if per_joint is None or per_joint * nj >= nv:
        index = torch.arange(nv, device=weights.device)
    else:
        owner = weights.argmax(1).cpu()
        gen = torch.Generator().manual_seed(seed)
        picks = []
        for j in range(nj):  # a loop over joints (24), once per fit
            own = (owner == j).nonzero().flatten()
            picks.append(own[torch.randperm(own.numel(), generator=gen)[:per_joint]])
        index = torch.cat(picks).sort().values.to(weights.device)
    w = weights.index_select(0, index)
    influences = max(int((w != 0).sum(1).max()), 1)
    top_w, top_i = w.topk(influences, dim=1)
    top_i = torch.where(top_w != 0, top_i, torch.zeros_like(top_i))
    descendants = descendant_matrix(body.parent_list, body.v_template)
    cols = (3 * index[:, None] + torch.arange(3, device=index.device)).flatten()
    return BodySubset(
        index=index,
        template=body.v_template.index_select(0, index),
        shapedirs=body.shapedirs.index_select(0, index),
        posedirs=_no_denormals(body.posedirs.index_select(1, cols)),
        influence_index=top_i,
        influence_weight=top_w,
        weights=w,
        below=(descendants[top_i] * top_w[..., None]).permute(1, 2, 0).contiguous(),
        joint_template=body.joint_template,
        joint_shapedirs=body.joint_shapedirs,
        parents=list(body.parent_list),
        descendants=descendants,
    )


def pose_subset(sub: BodySubset, rotmats: torch.Tensor, betas: torch.Tensor,
                transl: torch.Tensor) -> SubsetPose:
    """The body's mesh on the subset's vertices, as ``BodyModel.forward`` computes it.

    Shape:
        - rotmats: (B, J, 3, 3) local joint rotations; betas: (B, K); transl: (B, 3).
        - output: :class:`SubsetPose` (vertices last).
    """
    b, k = betas.shape
    n, influences = sub.influence_index.shape
    rest = (sub.template + (betas @ sub.shapedirs.reshape(-1, k).T).unflatten(-1, (-1, 3))
            + (pose_features(rotmats) @ sub.posedirs).unflatten(-1, (-1, 3))).transpose(1, 2)
    rest_joints = sub.joint_template + (betas @ sub.joint_shapedirs.reshape(-1, k).T).unflatten(-1, (-1, 3))
    fk = forward_kinematics(rotmats, rest_joints, sub.parents)
    # each influence's skinning transform, (B, 3, 4, I, N); elementwise products over 3 x 4 entries
    # rather than a batched matmul of 3 x 3 blocks (many tiny GEMMs are slow on CPU)
    frames = fk.skinning_transforms.permute(0, 2, 3, 1).index_select(
        -1, sub.influence_index.T.flatten()).view(b, 3, 4, influences, n)
    parts = torch.addcmul(frames[:, :, 3], frames[:, :, 0], rest[:, None, 0, None])
    parts.addcmul_(frames[:, :, 1], rest[:, None, 1, None]).addcmul_(frames[:, :, 2], rest[:, None, 2, None])
    w = sub.influence_weight.T  # (I, N)
    vertices = (w * parts).sum(2) + transl[:, :, None]
    blended = (w * frames[:, :, :3]).sum(3)
    return SubsetPose(vertices, parts, blended, fk)

"""The fit's closed-form start: rotations from the mesh's parts, then shape and translation by linear
least squares.

Rotations. Each joint's global rotation G_j is the rotation that best maps the rest-pose points it
moves to the same points on the given mesh: a weighted Kabsch (orthogonal Procrustes) fit, solved for
all joints and samples at once by one batched 3 x 3 SVD. The points are the vertices, weighted by
a sharpened skinning weight (a vertex that joint j moves alone moves rigidly with G_j; blended
vertices near the joints count less), and the joint's children (rest joints -> the joints regressed
from the mesh with ``J_regressor``), which pin each bone's direction; the vertices around the bone
fix the twist about it. Local rotations follow down the tree, R_j = G_parent(j)^T G_j. (This is
"swing from the bone's direction, twist from the vertices it skins" in one step for every joint at
once, without a pass down the tree level by level that would carry a parent's error to its
children.) Written here rather than with pytorch3d's ``corresponding_points_alignment``, which takes
one point set per problem: the B x J problems share the V vertices with a (V, J) weight matrix, so
every weighted sum is one GEMM instead of B J copies of the mesh.
Where a part is symmetric about its bone (a hand or a foot end with its vertices around one axis),
the twist is ill-posed; so is the mesh's dependence on it, and the refinement only needs the mesh.

Shape and translation. For fixed rotations the posed mesh is affine in (betas, transl) (blend
shapes, the rest joints and forward kinematics are all linear in betas), so they are the solution
of a small linear least-squares problem per sample, with the exact Jacobian of
:func:`kinediff.fit.jacobian.affine_jacobian` (a light ridge keeps betas finite where the mesh does
not determine them).
"""

from __future__ import annotations

import torch

from kinediff.fit.jacobian import affine_jacobian
from kinediff.fit.subset import BodySubset, pose_subset

__all__ = ["local_rotations", "part_rotations", "solve_shape_translation"]

#: Exponent that sharpens the skinning weights into the Kabsch weights (w^8: a vertex at w = 0.5
#: counts 1/256 of one that a joint moves alone). From 1 to 8 the start's error falls by a third
#: (13 -> 9 mm on the synthetic body); the refinement converges from any of them.
WEIGHT_POWER = 8.0
#: Weight of each child joint in its parent's Kabsch fit, in units of the part's total vertex weight.
CHILD_JOINT_WEIGHT = 0.5


def part_rotations(vertices: torch.Tensor, rest: torch.Tensor, weights: torch.Tensor,
                   joints: torch.Tensor, rest_joints: torch.Tensor,
                   parents: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Global rotation of every joint by weighted Kabsch on its vertices and child joints.

    Shape:
        - vertices: (B, V, 3) the mesh to fit; rest: (V, 3) rest-pose vertices.
        - weights: (V, J) skinning weights.
        - joints: (B, J, 3) joints regressed from ``vertices``; rest_joints: (J, 3).
        - output: (B, J, 3, 3) global rotations G_j (rest -> posed), and (J,) bool: whether the
          joint had points to fit (a joint that moves no vertex and has no child gets the identity
          here; :func:`local_rotations` gives it its parent's rotation).
    """
    b, nv = vertices.shape[:2]
    nj = weights.shape[1]
    # (V, J); weights under 1e-3 dropped: their powers are denormal floats, slow in every GEMM
    c = torch.where(weights > 1e-3, weights, torch.zeros_like(weights)).pow(WEIGHT_POWER)
    total = c.sum(0)  # (J,)
    link = torch.zeros(nj, nj, dtype=c.dtype, device=c.device)  # (parent, child) point weights
    par = torch.tensor(parents[1:], device=c.device)
    link[par, torch.arange(1, nj, device=c.device)] = CHILD_JOINT_WEIGHT * total[par]
    observed = (total + link.sum(1)) > 0
    mass = (total + link.sum(1)).where(observed, torch.ones_like(total))  # (J,), no 0 / 0
    # sums over vertices as GEMMs over a (V, B * ...) layout: one product for all samples
    by_vertex = vertices.transpose(0, 1)  # (V, B, 3)
    ym = (c.T @ by_vertex.reshape(nv, -1)).view(nj, b, 3).transpose(0, 1) + link @ joints
    xm = c.T @ rest + link @ rest_joints  # (J, 3)
    outer = (rest[:, None, :, None] * by_vertex[:, :, None, :]).reshape(nv, -1)  # (V, B * 9)
    cov = (c.T @ outer).view(nj, b, 3, 3).transpose(0, 1)
    cov = cov + torch.einsum("jk,ka,bkc->bjac", link, rest_joints, joints)
    cov = cov - (xm[None, :, :, None] * ym[..., None, :]) / mass[:, None, None]
    # Kabsch: cov = U S V^T, R = V diag(1, 1, det(V U^T)) U^T (no reflection)
    u, _, vh = torch.linalg.svd(cov)
    v, ut = vh.transpose(-1, -2), u.transpose(-1, -2)
    fix = torch.ones_like(cov[..., 0])
    fix[..., 2] = torch.where(torch.det(v @ ut) < 0, -1.0, 1.0)
    rot = v @ (fix[..., :, None] * ut)
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
    return torch.where(observed[:, None, None], rot, eye), observed


def local_rotations(global_rot: torch.Tensor, parents: list[int],
                    observed: torch.Tensor | None = None) -> torch.Tensor:
    """R_j = G_parent(j)^T G_j (R_0 = G_0); the identity for joints not ``observed`` (J,) bool.

    Shape: (B, J, 3, 3) -> (B, J, 3, 3).
    """
    par = torch.tensor([max(p, 0) for p in parents], device=global_rot.device)
    parent_rot = global_rot.index_select(1, par)
    local = torch.cat([global_rot[:, :1], (parent_rot.transpose(-1, -2) @ global_rot)[:, 1:]], dim=1)
    if observed is None:
        return local
    eye = torch.eye(3, dtype=local.dtype, device=local.device)
    return torch.where(observed[:, None, None], local, eye)


def solve_shape_translation(sub: BodySubset, target: torch.Tensor, rotmats: torch.Tensor,
                            ridge: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Betas and translation minimising the subset's vertex error for fixed rotations.

    Solves min ||v(0) + A betas + transl - target||^2 + ridge ||betas||^2 (A exact, see the module
    doc), with ``ridge`` in square metres per unit of beta.

    Shape: target (B, 3, N) the subset's vertices of the mesh to fit (vertices last); rotmats
        (B, J, 3, 3) -> betas (B, K), transl (B, 3).
    """
    b, k = target.shape[0], sub.shapedirs.shape[-1]
    posed = pose_subset(sub, rotmats, target.new_zeros(b, k), target.new_zeros(b, 3))
    a = affine_jacobian(sub, posed, rotmats).flatten(2)  # (B, K + 3, 3N)
    resid = (target - posed.vertices).flatten(1)  # (B, 3N)
    reg = torch.zeros(k + 3, dtype=a.dtype, device=a.device)
    reg[:k] = ridge
    sol = torch.linalg.solve(a @ a.transpose(1, 2) + torch.diag(reg), (a @ resid[..., None]))[..., 0]
    return sol[:, :k], sol[:, k:]

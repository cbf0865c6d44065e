"""The Jacobian of the posed mesh (on a vertex subset) with respect to the fit's parameters, and
the Gauss-Newton normal equations built from it.

Parameters per sample, in this order (P = 3 J + K + 3):

- ``delta`` (J, 3): an increment of each joint's local rotation, R_j <- R_j exp([delta_j]),
  i.e. a turn of joint j and everything below it by omega_j = G_j delta_j (G_j: the joint's
  global rotation) about the posed joint position p_j;
- ``betas`` (K,): the shape coefficients;
- ``transl`` (3,): the translation.

Written out rather than taken from autograd: Gauss-Newton needs the whole (3 N, P) matrix per
sample, which reverse mode gets in 3 N passes and forward mode in P passes, while the closed form
below costs about one posing of the subset (``tests/fit/test_fit.py`` checks it against
``torch.func.jacfwd``):

- rotation: a vertex v = sum_k w_k (G_k x + t_k) moves, for a turn omega of joint j, by
  omega x u_j with the lever arm u_j = Q_j - W_j p_j (W_j: the weight of v's influences at or below
  j, Q_j: the same sum over those influences of the vertex as each of them moves it); so
  d v / d delta_j = -[u_j]_x G_j, whose columns are G_j e_c x u_j. The pose blend shapes' own
  change is left out (millimetres of corrective offsets against the lever arms' decimetres; the
  residual itself is always exact, so the fit still converges to the model's mesh);
- shape: exact, since for fixed rotations the posed mesh is affine in betas: the shape directions
  skinned with the skinning transforms of the joints' shape directions posed by the same rotations;
- translation: the identity.

:func:`normal_equations` forms J^T J and J^T r without the (3 N, 3 J) rotation block: with
(a x u).(b x w) = (a.b)(u.w) - (a.w)(u.b), every product reduces to sums over vertices of lever
arm outer products, one GEMM of (3 J, N) by (N, 3 J) per sample instead of (P, 3 N) by (3 N, P).
"""

from __future__ import annotations

import torch

from kinediff.fit.subset import BodySubset, SubsetPose

__all__ = ["affine_jacobian", "lever_arms", "mesh_jacobian", "normal_equations", "num_parameters",
           "rotation_jacobian", "shape_jacobian"]


def num_parameters(sub: BodySubset) -> int:
    """P = 3 J + K + 3, the number of the fit's parameters per sample."""
    return 3 * len(sub.parents) + sub.shapedirs.shape[-1] + 3


def shape_jacobian(sub: BodySubset, posed: SubsetPose, rotmats: torch.Tensor) -> torch.Tensor:
    """d vertices / d betas, exact for the given rotations.

    The joints' shape directions are posed as bones (the root's as it is, every other joint's
    offset from its parent turned by the parent's global rotation) and summed down the tree with the
    descendant matrix, which is forward kinematics for fixed rotations without a loop over levels.

    Shape: rotmats (B, J, 3, 3) -> (B, K, 3, N) (vertices last).
    """
    b, nj = rotmats.shape[:2]
    k, n = sub.shapedirs.shape[-1], sub.num_vertices
    glob = posed.fk.global_rotations  # (B, J, 3, 3)
    dirs = sub.joint_shapedirs  # (J, 3, K)
    par = torch.tensor([max(p, 0) for p in sub.parents], device=dirs.device)
    bones = glob.index_select(1, par) @ (dirs - dirs.index_select(0, par))  # (B, J, 3, K)
    bones[:, 0] = dirs[0]
    joints = (sub.descendants @ bones.flatten(2)).view(b, nj, 3, k)  # d posed joints / d betas
    moved = joints - glob @ dirs  # d skinning translations / d betas
    # skin them with one GEMM: (B K 3, J) @ (J, N)
    out = (moved.permute(0, 3, 2, 1).reshape(-1, nj) @ sub.weights.T).view(b, k, 3, n)
    shapedirs = sub.shapedirs.permute(2, 1, 0)  # (K, 3, N)
    for c in range(3):  # + blended rotation @ shape directions, elementwise over the 3 columns
        out.addcmul_(posed.blended[:, None, :, c], shapedirs[None, :, None, c])
    return out


def affine_jacobian(sub: BodySubset, posed: SubsetPose, rotmats: torch.Tensor) -> torch.Tensor:
    """d vertices / d (betas, transl), exact. Shape: -> (B, K + 3, 3, N)."""
    shape = shape_jacobian(sub, posed, rotmats)
    eye = torch.eye(3, dtype=shape.dtype, device=shape.device)[None, :, :, None]
    return torch.cat([shape, eye.expand(shape.shape[0], 3, 3, shape.shape[-1])], dim=1)


def lever_arms(sub: BodySubset, posed: SubsetPose) -> torch.Tensor:
    """u_j = Q_j - W_j p_j of every vertex and joint (zero where no influence is at or below j).

    Shape: -> (B, J, 3, N), metres.
    """
    below = sub.below  # (I, J, N)
    lever = -below.sum(0)[None, :, None, :] * posed.fk.joints[..., None]
    for i in range(below.shape[0]):  # the few influences, elementwise
        lever.addcmul_(below[None, i, :, None, :], posed.parts[:, None, :, i, :])
    return lever


def rotation_jacobian(sub: BodySubset, posed: SubsetPose) -> torch.Tensor:
    """d vertices / d delta (see the module doc). Shape: -> (B, N, 3, J * 3)."""
    lever = lever_arms(sub, posed).permute(0, 3, 1, 2)  # (B, N, J, 3)
    b, n, nj = lever.shape[:3]
    out = lever.new_empty(b, n, 3, nj, 3)
    g = posed.fk.global_rotations[:, None]  # (B, 1, J, 3 rows, 3 columns)
    # the columns a of G crossed with u: (a x u)_x = a_y u_z - a_z u_y, ...
    for x, (y, z) in enumerate(((1, 2), (2, 0), (0, 1))):
        torch.mul(g[:, :, :, y], lever[..., z, None], out=out[:, :, x])
        out[:, :, x].addcmul_(g[:, :, :, z], lever[..., y, None], value=-1.0)
    return out.flatten(3)


def mesh_jacobian(sub: BodySubset, posed: SubsetPose, rotmats: torch.Tensor) -> torch.Tensor:
    """The whole Jacobian, d vertices / d (delta, betas, transl), as a matrix.

    Shape: -> (B, N * 3, P) (rows: vertex-major, x y z), P = :func:`num_parameters`. (The fit
    itself uses :func:`normal_equations`, which never forms it.)
    """
    rot = rotation_jacobian(sub, posed)
    affine = affine_jacobian(sub, posed, rotmats).permute(0, 3, 2, 1)  # (B, N, 3, K + 3)
    return torch.cat([rot, affine], dim=-1).flatten(1, 2)


def _cross_sums(m: torch.Tensor) -> torch.Tensor:
    """From sums of outer products m = sum u w^T (..., 3, 3), the sum of cross products u x w."""
    return torch.stack([m[..., 1, 2] - m[..., 2, 1], m[..., 2, 0] - m[..., 0, 2],
                        m[..., 0, 1] - m[..., 1, 0]], dim=-1)


def normal_equations(sub: BodySubset, posed: SubsetPose, rotmats: torch.Tensor,
                     resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """J^T J and J^T r of :func:`mesh_jacobian`, without forming its rotation block.

    Every sum over vertices is a GEMM over the lever arms L (3 J, N) and the affine columns E:
    L L^T, L E^T, L r^T, E E^T, E r^T; the joints' rotations enter through the block-diagonal
    matrix of the G_j.

    Shape: resid (B, 3, N) (vertices last) -> (B, P, P), (B, P).
    """
    b, _, n = resid.shape
    nj = len(sub.parents)
    lever = lever_arms(sub, posed).view(b, 3 * nj, n)  # rows (joint, xyz)
    affine = affine_jacobian(sub, posed, rotmats)  # (B, A, 3, N), A = K + 3
    na = affine.shape[1]
    rot = posed.fk.global_rotations  # (B, J, 3, 3); column c is a_jc
    eye = torch.eye(nj, dtype=rot.dtype, device=rot.device)
    block = (rot[:, :, :, None, :] * eye[None, :, None, :, None]).view(b, 3 * nj, 3 * nj)
    block_t = block.transpose(1, 2)
    # rotation x rotation: tr(M_jj') G_j^T G_j' - G_j^T M_jj'^T G_j', M_jj' = sum u_j u_j'^T
    m = (lever @ lever.transpose(1, 2)).view(b, nj, 3, nj, 3)
    trace = torch.diagonal(m, dim1=2, dim2=4).sum(-1)  # (B, J, J')
    cols = rot.permute(0, 2, 1, 3).reshape(b, 3, 3 * nj)  # [G_0 G_1 ...]
    h_rr = ((cols.transpose(1, 2) @ cols).view(b, nj, 3, nj, 3) * trace[:, :, None, :, None]).view(
        b, 3 * nj, 3 * nj)
    h_rr = h_rr - block_t @ m.transpose(2, 4).reshape(b, 3 * nj, 3 * nj) @ block
    # rotation x affine: a_jc . sum_n u_j x e_n for every affine column e
    flat = affine.view(b, na, 3 * n)
    outer = (lever @ affine.view(b, 3 * na, n).transpose(1, 2)).view(b, nj, 3, na, 3)
    cross = _cross_sums(outer.permute(0, 1, 3, 2, 4))  # (B, J, A, 3)
    h_ra = block_t @ cross.transpose(2, 3).reshape(b, 3 * nj, na)
    h_aa = flat @ flat.transpose(1, 2)
    # gradient: a_jc . sum_n u_j x r_n, and the affine columns' E^T r
    ur = (lever @ resid.transpose(1, 2)).view(b, nj, 3, 3)  # sum u_j[p] r[q]
    g_r = (block_t @ _cross_sums(ur).reshape(b, 3 * nj, 1))[..., 0]
    g_a = (flat @ resid.reshape(b, 3 * n, 1))[..., 0]
    h = torch.cat([torch.cat([h_rr, h_ra], 2), torch.cat([h_ra.transpose(1, 2), h_aa], 2)], 1)
    return h, torch.cat([g_r, g_a], 1)

"""Batched kinematics of an SMPL-family body as pure functions over tensors.

Every function accepts any number of leading batch dimensions ``...`` and follows the dtype and
device of its inputs. Rotations between axis-angle and matrices use kornia's conversions; the 6D
representation (Zhou et al., CVPR 2019) is written here because kornia has none.

Notation (paper eq. 1): rest joints J (rest pose, shaped), local joint rotations R, parents p;
forward kinematics composes G_j = G_{p(j)} [R_j | J_j - J_{p(j)}], and linear blend skinning moves a
rest vertex v by sum_j w_j G_j [I | -J_j] v.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from kornia.geometry.conversions import (
    axis_angle_to_rotation_matrix,
    rotation_matrix_to_axis_angle,
)

from kinediff.body.skeleton import kinematic_levels

__all__ = [
    "FKResult",
    "axis_angle_to_matrix",
    "forward_kinematics",
    "linear_blend_skinning",
    "linear_blend_skinning_affine",
    "matrix_to_axis_angle",
    "matrix_to_rotation_6d",
    "pose_features",
    "pose_offsets",
    "rotation_6d_to_matrix",
    "shape_offsets",
]


def _check_last(x: torch.Tensor, name: str, shape: tuple[int | None, ...]) -> None:
    """Raise ``ValueError`` unless ``x`` ends in ``shape`` (``None`` matches any size)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    tail = tuple(x.shape[x.dim() - len(shape):]) if x.dim() >= len(shape) else None
    if tail is None or any(w is not None and w != t for w, t in zip(shape, tail)):
        want = "(*, " + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula (kornia), batched over leading dims.

    Shape:
        - axis_angle: (..., 3), radians, direction = axis.
        - output: (..., 3, 3) rotation matrices.
    """
    _check_last(axis_angle, "axis_angle", (3,))
    lead = axis_angle.shape[:-1]
    return axis_angle_to_rotation_matrix(axis_angle.reshape(-1, 3)).reshape(*lead, 3, 3)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`axis_angle_to_matrix` (kornia, through quaternions), angles in [0, pi].

    Shape:
        - matrix: (..., 3, 3) rotation matrices.
        - output: (..., 3).
    """
    _check_last(matrix, "matrix", (3, 3))
    lead = matrix.shape[:-2]
    return rotation_matrix_to_axis_angle(matrix.reshape(-1, 3, 3)).reshape(*lead, 3)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Continuous 6D rotation representation to matrices by Gram-Schmidt (Zhou et al. 2019).

    The 6 numbers are the first two *columns* of the rotation matrix (a1, a2), as in the paper.

    Shape:
        - d6: (..., 6).
        - output: (..., 3, 3).
    """
    _check_last(d6, "d6", (6,))
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotation_6d_to_matrix`: the first two columns, flattened.

    Shape:
        - matrix: (..., 3, 3).
        - output: (..., 6).
    """
    _check_last(matrix, "matrix", (3, 3))
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


class FKResult(NamedTuple):
    """Output of :func:`forward_kinematics`.

    Attributes:
        joints: (..., J, 3) posed joint positions.
        global_rotations: (..., J, 3, 3) joint frames' rotations in the body frame.
        skinning_transforms: (..., J, 3, 4) ``[R_g | t]`` mapping rest-pose points to posed points
            rigidly with joint j (``G_j [I | -J_j]``), the input of :func:`linear_blend_skinning`.
    """

    joints: torch.Tensor
    global_rotations: torch.Tensor
    skinning_transforms: torch.Tensor

    @property
    def global_transforms(self) -> torch.Tensor:
        """(..., J, 4, 4) homogeneous joint frames (rotation, posed joint position)."""
        top = torch.cat([self.global_rotations, self.joints.unsqueeze(-1)], dim=-1)
        bottom = top.new_zeros(top.shape[:-2] + (1, 4))
        bottom[..., 0, 3] = 1
        return torch.cat([top, bottom], dim=-2)


def forward_kinematics(rotmats: torch.Tensor, rest_joints: torch.Tensor,
                       parents: Sequence[int] | torch.Tensor) -> FKResult:
    """Forward kinematics (paper eq. 1): local rotations and rest joints to posed joints and frames.

    Joints at the same depth of the tree are processed together, so the Python loop runs over the
    tree's depth (9 for SMPL), not over the 24 joints.

    Args:
        rotmats: (..., J, 3, 3) local joint rotations (joint 0: global orientation).
        rest_joints: (..., J, 3) joint positions in the rest pose; broadcastable against ``rotmats``.
        parents: (J,) parent indices, -1 for the root (joint 0), parents before children.

    Returns:
        :class:`FKResult` with (..., J, 3) joints, (..., J, 3, 3) global rotations and (..., J, 3, 4)
        skinning transforms.
    """
    _check_last(rotmats, "rotmats", (None, 3, 3))
    n = rotmats.shape[-3]
    _check_last(rest_joints, "rest_joints", (n, 3))
    parent_list = [int(p) for p in (parents.tolist() if torch.is_tensor(parents) else parents)]
    if len(parent_list) != n:
        raise ValueError(f"parents has {len(parent_list)} entries but rotmats has {n} joints")
    lead = torch.broadcast_shapes(rotmats.shape[:-3], rest_joints.shape[:-2])
    rotmats = rotmats.expand(*lead, n, 3, 3)
    rest_joints = rest_joints.expand(*lead, n, 3)

    par = torch.tensor([max(p, 0) for p in parent_list], device=rest_joints.device)
    offsets = rest_joints - rest_joints.index_select(-2, par)  # bone vectors in the rest pose
    # every entry is overwritten level by level; the root's values fill the list to start
    rots: list[torch.Tensor] = [rotmats[..., 0, :, :]] * n
    pos: list[torch.Tensor] = [rest_joints[..., 0, :]] * n
    for level in kinematic_levels(parent_list):
        idx = torch.tensor(level, device=rest_joints.device)
        pidx = [parent_list[j] for j in level]
        prot = torch.stack([rots[p] for p in pidx], dim=-3)  # (*, L, 3, 3)
        ppos = torch.stack([pos[p] for p in pidx], dim=-2)  # (*, L, 3)
        grot = prot @ rotmats.index_select(-3, idx)
        gpos = ppos + (prot @ offsets.index_select(-2, idx).unsqueeze(-1)).squeeze(-1)
        for k, j in enumerate(level):
            rots[j] = grot[..., k, :, :]
            pos[j] = gpos[..., k, :]
    global_rot = torch.stack(rots, dim=-3)
    joints = torch.stack(pos, dim=-2)
    trans = joints - (global_rot @ rest_joints.unsqueeze(-1)).squeeze(-1)
    skin = torch.cat([global_rot, trans.unsqueeze(-1)], dim=-1)
    return FKResult(joints, global_rot, skin)


def _skinning_chunk(num_vertices: int, batch: int, device: torch.device) -> int:
    """Vertices per chunk so that a chunk's blended transforms (12 floats per vertex and sample)
    stay around 4 MB, i.e. in the last-level cache, on CPU (measured on the 2-core CI machine:
    1 MB chunks are 1.2x and 0.5 MB 2x slower; 4-8 MB the fastest); GPUs take all vertices at
    once."""
    if device.type != "cpu":
        return num_vertices
    return int(min(num_vertices, max(64, 4_000_000 // (48 * max(batch, 1)))))


def _fast_skinning(device: torch.device, needs_grad: bool) -> bool:
    """Whether :func:`_skin` takes its in-place, buffer-reusing path (CPU, no gradients)."""
    return device.type == "cpu" and not needs_grad


def _skin(weights: torch.Tensor, transforms: torch.Tensor,
          points: Callable[[int, int, torch.Tensor | None], torch.Tensor], num_vertices: int,
          needs_grad: bool = True) -> torch.Tensor:
    """Skinning core, vertex-major and cache-blocked.

    ``transforms`` is (N, J, 12); ``points(start, stop, buffer)`` returns the rest points of
    vertices ``start:stop`` as (Vc, 3, N), written into ``buffer`` (a reusable 1-D scratch tensor
    of at least Vc * 3 * N elements) when one is given. Per chunk one GEMM, (Vc, J) @ (J, 12 N),
    gives the blended transforms as (Vc, 3, 4, N), applied with multiply-adds over contiguous runs
    of N. Returns (N, V, 3).

    Without gradients on CPU (:func:`_fast_skinning`): the GEMM only spans the joints that move
    the chunk's vertices (skinning weights are sparse: SMPL moves a vertex with a few joints, and
    neighbouring vertices share them), scratch buffers are reused (they stay in cache and cost no
    page faults), and results go straight into the preallocated output. Otherwise a plain
    autograd-friendly loop.
    """
    n, nj = transforms.shape[0], transforms.shape[1]
    a = transforms.permute(1, 2, 0).reshape(nj, 12 * n)  # (J, 12 N): columns (row, col, sample)
    step = _skinning_chunk(num_vertices, n, transforms.device)
    if not _fast_skinning(transforms.device, needs_grad):
        chunks = []
        for start in range(0, num_vertices, step):
            stop = min(start + step, num_vertices)
            g = (weights[start:stop] @ a).view(-1, 3, 4, n)  # (Vc, 3, 4, N)
            q = points(start, stop, None)  # (Vc, 3, N)
            out = torch.addcmul(g[:, :, 3], g[:, :, 0], q[:, None, 0])
            out = out.addcmul(g[:, :, 1], q[:, None, 1]).addcmul(g[:, :, 2], q[:, None, 2])
            chunks.append(out.permute(2, 0, 1))  # (N, Vc, 3) view
        return torch.cat(chunks, dim=1)
    out = transforms.new_empty(n, num_vertices, 3)
    g_buf, r_buf, q_buf = (transforms.new_empty(step * k * n) for k in (12, 3, 3))
    moving = weights != 0
    for start in range(0, num_vertices, step):
        stop = min(start + step, num_vertices)
        c = stop - start
        w = weights[start:stop]
        joints = moving[start:stop].any(0).nonzero().flatten()
        if 0 < joints.numel() < nj:  # only the joints that move this chunk
            g = torch.mm(w.index_select(1, joints), a.index_select(0, joints),
                         out=g_buf[:c * 12 * n].view(c, 12 * n))
        else:
            g = torch.mm(w, a, out=g_buf[:c * 12 * n].view(c, 12 * n))
        g = g.view(c, 3, 4, n)
        q = points(start, stop, q_buf)
        r = torch.addcmul(g[:, :, 3], g[:, :, 0], q[:, None, 0], out=r_buf[:c * 3 * n].view(c, 3, n))
        r.addcmul_(g[:, :, 1], q[:, None, 1]).addcmul_(g[:, :, 2], q[:, None, 2])
        out[:, start:stop].copy_(r.permute(2, 0, 1))
    return out


def linear_blend_skinning(vertices: torch.Tensor, weights: torch.Tensor,
                          skinning_transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning: v' = sum_j w_vj [R_j | t_j] v.

    Memory traffic, not arithmetic, bounds skinning: the blended per-vertex transforms are 12
    numbers per vertex and sample. They are formed one cache-sized chunk of vertices at a time by a
    GEMM and applied at once (see ``_skin``); never a (..., V, J, 3, 4) tensor.

    Shape:
        - vertices: (..., V, 3) rest-pose vertices (after blend shapes).
        - weights: (V, J) skinning weights, rows summing to 1.
        - skinning_transforms: (..., J, 3, 4) (from :func:`forward_kinematics`).
        - output: (..., V, 3).
    """
    _check_last(vertices, "vertices", (None, 3))
    v = vertices.shape[-2]
    if weights.dim() != 2 or weights.shape[0] != v:
        raise ValueError(f"weights must have shape ({v}, J), got {tuple(weights.shape)}")
    nj = weights.shape[1]
    _check_last(skinning_transforms, "skinning_transforms", (nj, 3, 4))
    lead = torch.broadcast_shapes(vertices.shape[:-2], skinning_transforms.shape[:-3])
    a = skinning_transforms.expand(*lead, nj, 3, 4).reshape(-1, nj, 12)  # (N, J, 12)
    pts = vertices.expand(*lead, v, 3).reshape(a.shape[0], v, 3)
    grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (vertices, weights, skinning_transforms))
    out = _skin(weights, a, lambda i, j, buf: pts[:, i:j].permute(1, 2, 0), v, grad)
    return out.reshape(*lead, v, 3)


def linear_blend_skinning_affine(base: torch.Tensor, offsets: torch.Tensor, coeffs: torch.Tensor,
                                 weights: torch.Tensor, skinning_transforms: torch.Tensor,
                                 posedirs: torch.Tensor | None = None,
                                 pose_feats: torch.Tensor | None = None) -> torch.Tensor:
    """LBS of rest shapes ``base + c * offsets (+ B_P(features))``, without materialising them.

    For B offset fields and M coefficients each (e.g. the T + 1 steps of a posture schedule, whose
    rest shapes are T + (1 - s)(B_S + B_P) in the paper's blend), the B * M rest shapes are formed
    chunk by chunk inside the skinning loop, in cache. With ``posedirs`` and ``pose_feats``, each
    mesh also gets its own pose-corrective offsets (the "exact" blend), computed per chunk by a
    (3 Vc, P) @ (P, B M) product.

    Shape:
        - base: (V, 3) shared rest shape (the template).
        - offsets: (B, V, 3) per-sample offset fields.
        - coeffs: (B, M) scale of the offsets for each of the M meshes of sample b.
        - weights: (V, J).
        - skinning_transforms: (B, M, J, 3, 4).
        - posedirs: (P, V * 3) as in :func:`pose_offsets`; pose_feats: (B, M, P) from
          :func:`pose_features`. Both or neither.
        - output: (B, M, V, 3).
    """
    _check_last(base, "base", (None, 3))
    v = base.shape[0]
    if offsets.dim() != 3 or offsets.shape[1:] != (v, 3):
        raise ValueError(f"offsets must have shape (B, {v}, 3), got {tuple(offsets.shape)}")
    b = offsets.shape[0]
    if coeffs.dim() != 2 or coeffs.shape[0] != b:
        raise ValueError(f"coeffs must have shape ({b}, M), got {tuple(coeffs.shape)}")
    m = coeffs.shape[1]
    if weights.dim() != 2 or weights.shape[0] != v:
        raise ValueError(f"weights must have shape ({v}, J), got {tuple(weights.shape)}")
    nj = weights.shape[1]
    if skinning_transforms.shape != (b, m, nj, 3, 4):
        raise ValueError(f"skinning_transforms must have shape ({b}, {m}, {nj}, 3, 4), got "
                         f"{tuple(skinning_transforms.shape)}")
    off = offsets.permute(1, 2, 0).contiguous()  # (V, 3, B): one slice read per chunk
    flat_c = coeffs.reshape(1, 1, b, m)

    pose_term: tuple[torch.Tensor, torch.Tensor] | None = None
    if posedirs is not None and pose_feats is not None:
        if pose_feats.shape[:2] != (b, m) or posedirs.shape != (pose_feats.shape[2], 3 * v):
            raise ValueError(f"pose_feats must be ({b}, {m}, P) and posedirs (P, {3 * v}); got "
                             f"{tuple(pose_feats.shape)} and {tuple(posedirs.shape)}")
        pose_term = (posedirs, pose_feats.reshape(b * m, -1).transpose(0, 1))  # (P, 3V), (P, N)
    elif (posedirs is None) != (pose_feats is None):
        raise ValueError("give both posedirs and pose_feats, or neither")

    grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad
        for x in (base, offsets, coeffs, weights, skinning_transforms, posedirs, pose_feats))

    def points(i: int, j: int, buf: torch.Tensor | None) -> torch.Tensor:
        shape = (j - i, 3, b, m)
        if buf is None:  # autograd path
            rest = torch.addcmul(base[i:j, :, None, None], off[i:j, :, :, None], flat_c)
        else:
            rest = torch.addcmul(base[i:j, :, None, None], off[i:j, :, :, None], flat_c,
                                 out=buf[:(j - i) * 3 * b * m].view(shape))
        rest = rest.view(j - i, 3, b * m)
        if pose_term is not None:  # (3 Vc, P) @ (P, N) lands in the (Vc, 3, N) layout
            dirs, feats_t = pose_term
            rest = rest.view(3 * (j - i), b * m).addmm_(dirs[:, 3 * i:3 * j].T, feats_t)
            rest = rest.view(j - i, 3, b * m)
        return rest

    out = _skin(weights, skinning_transforms.reshape(b * m, nj, 12), points, v, grad)
    return out.view(b, m, v, 3)


def shape_offsets(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape blend shapes B_S(beta) = sum_k beta_k S_k.

    Shape:
        - betas: (..., K) shape coefficients (K <= the number of directions; the first K are used).
        - shapedirs: (V, 3, K_total) shape directions, metres per unit of beta.
        - output: (..., V, 3).
    """
    if shapedirs.dim() != 3 or shapedirs.shape[1] != 3:
        raise ValueError(f"shapedirs must have shape (V, 3, K), got {tuple(shapedirs.shape)}")
    k = betas.shape[-1]
    if k > shapedirs.shape[-1]:
        raise ValueError(f"betas has {k} coefficients but shapedirs only {shapedirs.shape[-1]}")
    flat = shapedirs[..., :k].reshape(-1, k)  # (V*3, K)
    return (betas @ flat.transpose(0, 1)).unflatten(-1, (shapedirs.shape[0], 3))


def pose_features(rotmats: torch.Tensor) -> torch.Tensor:
    """SMPL's pose-corrective features: (R_j - I) for joints 1..J-1, flattened row-major.

    Shape:
        - rotmats: (..., J, 3, 3).
        - output: (..., (J - 1) * 9), i.e. (..., 207) for SMPL.
    """
    _check_last(rotmats, "rotmats", (None, 3, 3))
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    return (rotmats[..., 1:, :, :] - eye).flatten(-3)


def pose_offsets(rotmats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose blend shapes B_P(theta) = posedirs . (R - I).

    Shape:
        - rotmats: (..., J, 3, 3).
        - posedirs: (P, V * 3) with P = (J - 1) * 9 (SMPL's (V, 3, P) file layout, reshaped
          to (V * 3, P) and transposed, as kinediff's BodyModel stores it).
        - output: (..., V, 3).
    """
    feats = pose_features(rotmats)
    if posedirs.dim() != 2 or posedirs.shape[0] != feats.shape[-1] or posedirs.shape[1] % 3:
        raise ValueError(
            f"posedirs must have shape ({feats.shape[-1]}, V*3), got {tuple(posedirs.shape)}"
        )
    return (feats @ posedirs).unflatten(-1, (-1, 3))

"""Batched kinematics of an SMPL-family body as pure functions over tensors.

Every function accepts any number of leading batch dimensions ``...`` and follows the dtype and
device of its inputs. Rotations between axis-angle and matrices use kornia's conversions; the 6D
representation (Zhou et al., CVPR 2019) is written here because kornia has none.

Notation (paper eq. 1): rest joints J (rest pose, shaped), local joint rotations R, parents p;
forward kinematics composes G_j = G_{p(j)} [R_j | J_j - J_{p(j)}], and linear blend skinning moves a
rest vertex v by sum_j w_j G_j [I | -J_j] v.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from kornia.geometry.conversions import (
    axis_angle_to_rotation_matrix,
    rotation_matrix_to_axis_angle,
)

from kinediff.body import _lbs, _lbs_numba, _tuning
from kinediff.body.skeleton import kinematic_levels

__all__ = [
    "FKResult",
    "axis_angle_to_matrix",
    "blend_offsets",
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


SKINNING_BACKENDS = ("auto", "torch", "numba")


def _use_numba(backend: str, weights: torch.Tensor, tensors: tuple[torch.Tensor, ...],
               pose_term: bool = False) -> bool:
    """Whether a skinning call takes the fused numba kernels (``kinediff.body._lbs_numba``).

    "auto" takes them where they apply: numba installed, CPU tensors without gradients, float32 or
    float64, no per-mesh pose-corrective term, at most ``_tuning.MAX_AUTO_INFLUENCES`` joints per
    vertex. "numba" demands them and says why not; "torch" never takes them.
    """
    if backend not in SKINNING_BACKENDS:
        raise ValueError(f"backend must be one of {SKINNING_BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    # the cheap checks first: numba is imported only for inputs it could take
    reason: str | None
    if pose_term:
        reason = "per-mesh pose-corrective offsets (the exact blend) run on the torch path"
    else:
        reason = _lbs_numba.supports(*tensors)
    if reason is None and not _lbs_numba.available():
        reason = "numba is not installed or does not import (pip install 'kinediff[fast]')"
    if backend == "numba":
        if reason is not None:
            raise ValueError(f"backend='numba' cannot skin these inputs: {reason}")
        return True
    return reason is None and _lbs_numba.influences(weights) <= _tuning.MAX_AUTO_INFLUENCES


def linear_blend_skinning(vertices: torch.Tensor, weights: torch.Tensor,
                          skinning_transforms: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Linear blend skinning: v' = sum_j w_vj [R_j | t_j] v.

    Memory traffic, not arithmetic, bounds skinning: the blended per-vertex transforms are 12
    numbers per vertex and sample. On the torch path they are formed one cache-sized block of
    meshes and vertices at a time by a GEMM and applied at once (``kinediff.body._lbs``), never
    as a (..., V, J, 3, 4) tensor; the numba path (``backend``, ``kinediff[fast]``) fuses blend
    and apply per vertex over its few nonzero weights (``kinediff.body._lbs_numba``).

    Args:
        backend: "auto" (numba where it applies: installed, CPU, no gradients, float32/float64,
            at most 8 joints per vertex; torch otherwise), "torch", or "numba" (a ``ValueError``
            says why where it cannot run).

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
    if _use_numba(backend, weights, (a, pts, weights)):
        out = _lbs_numba.skin_points(pts, weights, a, _lbs.empty_output((a.shape[0], v, 3), a))
        return out.reshape(*lead, v, 3)
    grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (vertices, weights, skinning_transforms))
    out = _lbs.skin(weights, a, lambda n0, n1, v0, v1, buf: pts[n0:n1, v0:v1].transpose(1, 2),
                    needs_grad=grad)
    return out.reshape(*lead, v, 3)


def linear_blend_skinning_affine(base: torch.Tensor, offsets: torch.Tensor, coeffs: torch.Tensor,
                                 weights: torch.Tensor, skinning_transforms: torch.Tensor,
                                 posedirs: torch.Tensor | None = None,
                                 pose_feats: torch.Tensor | None = None,
                                 backend: str = "auto") -> torch.Tensor:
    """LBS of rest shapes ``base + c * offsets (+ B_P(features))``, without materialising them.

    For B offset fields and M coefficients each (e.g. the T + 1 steps of a posture schedule, whose
    rest shapes are T + (1 - s)(B_S + B_P) in the paper's blend), the B * M rest shapes are formed
    chunk by chunk inside the skinning loop, in cache. With ``posedirs`` and ``pose_feats``, each
    mesh also gets its own pose-corrective offsets (the "exact" blend), computed per chunk by a
    (Nb, P) @ (P, 3 Vc) product. ``backend`` as in :func:`linear_blend_skinning`; the numba
    kernel forms each rest point in registers and does not take the pose-corrective term.

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
    pose_term: tuple[torch.Tensor, torch.Tensor] | None = None
    if posedirs is not None and pose_feats is not None:
        if pose_feats.shape[:2] != (b, m) or posedirs.shape != (pose_feats.shape[2], 3 * v):
            raise ValueError(f"pose_feats must be ({b}, {m}, P) and posedirs (P, {3 * v}); got "
                             f"{tuple(pose_feats.shape)} and {tuple(posedirs.shape)}")
        pose_term = (posedirs, pose_feats.reshape(b * m, -1))  # (P, 3 V), (N, P)
    elif (posedirs is None) != (pose_feats is None):
        raise ValueError("give both posedirs and pose_feats, or neither")

    grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad
        for x in (base, offsets, coeffs, weights, skinning_transforms, posedirs, pose_feats))

    tf = skinning_transforms.reshape(b * m, nj, 12)
    if _use_numba(backend, weights, (tf, base, offsets, coeffs, weights), pose_term is not None):
        out = _lbs_numba.skin_affine(base, offsets, coeffs, weights, tf,
                                     _lbs.empty_output((b * m, v, 3), tf))
        return out.view(b, m, v, 3)

    base_t = base.T.contiguous()  # (3, V)
    off_t = offsets.transpose(1, 2).contiguous()  # (B, 3, V): one slice read per chunk
    scale = coeffs[:, :, None, None]  # (B, M, 1, 1)
    scratch: list[torch.Tensor] = []  # the pose term's GEMM result, reused across chunks

    def points(n0: int, n1: int, v0: int, v1: int, buf: torch.Tensor | None) -> torch.Tensor:
        b0, b1 = n0 // m, n1 // m  # blocks hold whole samples
        nb, c = n1 - n0, v1 - v0
        args = (base_t[:, v0:v1], off_t[b0:b1, None, :, v0:v1], scale[b0:b1])
        if buf is None:  # autograd path
            rest = torch.addcmul(*args).reshape(nb, 3, c)
            if pose_term is not None:
                dirs, feats = pose_term
                rest = rest + (feats[n0:n1] @ dirs[:, 3 * v0:3 * v1]).view(nb, c, 3).transpose(1, 2)
            return rest
        rest = torch.addcmul(*args, out=buf[:nb * 3 * c].view(b1 - b0, m, 3, c)).view(nb, 3, c)
        if pose_term is not None:  # (Nb, P) @ (P, 3 Vc) in the file's (vertex, xyz) order
            dirs, feats = pose_term
            if not scratch or scratch[0].numel() < nb * 3 * c:
                scratch[:] = [rest.new_empty(nb * 3 * c)]
            pose = torch.mm(feats[n0:n1], dirs[:, 3 * v0:3 * v1], out=scratch[0][:nb * 3 * c].view(nb, 3 * c))
            rest.add_(pose.view(nb, c, 3).transpose(1, 2))
        return rest

    out = _lbs.skin(weights, tf, points, group=m,
                    needs_grad=grad, sizes=_tuning.WIDE_BLOCKS if pose_term is not None else None)
    return out.view(b, m, v, 3)


def shape_offsets(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape blend shapes B_S(beta) = sum_k beta_k S_k.

    Shape:
        - betas: (..., K) shape coefficients (K <= the number of directions; the first K are used).
        - shapedirs: (V, 3, K_total) shape directions, metres per unit of beta.
        - output: (..., V, 3).
    """
    flat = _shape_basis(betas, shapedirs)  # (V*3, K)
    return (betas @ flat.transpose(0, 1)).unflatten(-1, (shapedirs.shape[0], 3))


def _shape_basis(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """The first K = betas.shape[-1] shape directions, checked, as (V * 3, K)."""
    if shapedirs.dim() != 3 or shapedirs.shape[1] != 3:
        raise ValueError(f"shapedirs must have shape (V, 3, K), got {tuple(shapedirs.shape)}")
    k = betas.shape[-1]
    if k > shapedirs.shape[-1]:
        raise ValueError(f"betas has {k} coefficients but shapedirs only {shapedirs.shape[-1]}")
    return shapedirs[..., :k].reshape(-1, k)


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
    feats = _checked_pose_features(rotmats, posedirs)
    return (feats @ posedirs).unflatten(-1, (-1, 3))


def _checked_pose_features(rotmats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """:func:`pose_features` of ``rotmats``, with ``posedirs`` checked to be (P, V * 3) for them."""
    feats = pose_features(rotmats)
    if posedirs.dim() != 2 or posedirs.shape[0] != feats.shape[-1] or posedirs.shape[1] % 3:
        raise ValueError(
            f"posedirs must have shape ({feats.shape[-1]}, V*3), got {tuple(posedirs.shape)}"
        )
    return feats


def blend_offsets(betas: torch.Tensor, shapedirs: torch.Tensor, rotmats: torch.Tensor,
                  posedirs: torch.Tensor) -> torch.Tensor:
    """Both blend shapes at once, B_S(beta) + B_P(theta), for a batch.

    Equal to ``shape_offsets(betas, shapedirs) + pose_offsets(rotmats, posedirs)``, in one output:
    the pose GEMM writes a fresh result (backed by huge pages on CPU, see
    ``kinediff.body._lbs.empty_output``) and the shape term is added into it in place, so no second
    (B, V, 3) tensor is made, added and thrown away.

    Shape:
        - betas: (B, K); shapedirs: (V, 3, K_total).
        - rotmats: (B, J, 3, 3); posedirs: (P, V * 3) as in :func:`pose_offsets`.
        - output: (B, V, 3).
    """
    feats = _checked_pose_features(rotmats, posedirs)
    if shapedirs.dim() != 3 or shapedirs.shape[0] * 3 != posedirs.shape[1]:
        raise ValueError(f"shapedirs must have shape ({posedirs.shape[1] // 3}, 3, K), got "
                         f"{tuple(shapedirs.shape)}")
    if betas.dim() != 2 or feats.dim() != 2 or betas.shape[0] != feats.shape[0]:
        raise ValueError(f"betas (B, K) and rotmats (B, J, 3, 3) must share B; got "
                         f"{tuple(betas.shape)} and {tuple(rotmats.shape)}")
    flat = _shape_basis(betas, shapedirs)  # (V*3, K)
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (betas, shapedirs, rotmats, posedirs))
    if grad:
        out = torch.addmm(betas @ flat.T, feats, posedirs)
    else:
        out = torch.mm(feats, posedirs, out=_lbs.empty_output(tuple(feats.shape[:1]) + (posedirs.shape[1],), feats))
        out.addmm_(betas, flat.T)
    return out.unflatten(-1, (-1, 3))


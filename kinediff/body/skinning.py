"""Linear blend skinning: each rest vertex moved by a weighted blend of its joints' rigid transforms,

    v'_i = sum_j w_ij [R_j | t_j] [v_i; 1]        (paper eq. 1)

with weights w (V, J) whose rows sum to 1 and the skinning transforms [R_j | t_j] = G_j [I | -J_j]
of :func:`~kinediff.body.kinematics.forward_kinematics`. :func:`linear_blend_skinning_reference`,
first below, is that definition in two einsums (as smplx's ``lbs``); the fast paths are tested
against it.

:func:`linear_blend_skinning` and :func:`linear_blend_skinning_affine` compute the same without ever
materialising the blended (..., V, 3, 4) transforms, on one of two backends (``backend=``):
blocked GEMMs in torch (:mod:`kinediff.body.lbs_blocks`; any device, gradients) and fused sparse
kernels compiled by numba (:mod:`kinediff.body.lbs_numba`, the ``kinediff[fast]`` extra; CPU, no
gradients). Their block sizes and the threshold of ``backend="auto"`` are in
:mod:`kinediff.body.tuning`, with the benchmark that chose them.
"""

from __future__ import annotations

import torch

from kinediff.body import lbs_blocks, lbs_numba, tuning
from kinediff.core.checks import check_choice, check_last_dims

__all__ = [
    "SKINNING_BACKENDS",
    "linear_blend_skinning",
    "linear_blend_skinning_affine",
    "linear_blend_skinning_reference",
]


def linear_blend_skinning_reference(vertices: torch.Tensor, weights: torch.Tensor,
                                    skinning_transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning by its definition, v'_i = sum_j w_ij [R_j | t_j] [v_i; 1].

    The reference :func:`linear_blend_skinning` is tested against: it materialises the blended
    (..., V, 3, 4) transforms (as smplx's ``lbs`` does), so it is slow and memory-hungry on large
    batches, and checks no shapes. Use :func:`linear_blend_skinning` for work.

    Shape:
        - vertices: (..., V, 3) rest-pose vertices.
        - weights: (V, J) skinning weights, rows summing to 1.
        - skinning_transforms: (..., J, 3, 4), leading dims broadcastable against those of
          ``vertices``.
        - output: (..., V, 3).
    """
    blended = torch.einsum("vj,...jab->...vab", weights, skinning_transforms)  # (..., V, 3, 4)
    return torch.einsum("...vab,...vb->...va", blended[..., :3], vertices) + blended[..., 3]


#: The values of ``backend=``: numba where it applies ("auto"), the torch path, the numba kernels.
SKINNING_BACKENDS = ("auto", "torch", "numba")


def _use_numba(backend: str, weights: torch.Tensor, tensors: tuple[torch.Tensor, ...],
               pose_term: bool = False) -> bool:
    """Whether a skinning call takes the fused numba kernels (``kinediff.body.lbs_numba``).

    "auto" takes them where they apply: numba installed, CPU tensors without gradients, float32 or
    float64, no per-mesh pose-corrective term, at most ``tuning.MAX_AUTO_INFLUENCES`` joints per
    vertex. "numba" demands them and says why not; "torch" never takes them.
    """
    check_choice(backend, "backend", SKINNING_BACKENDS)
    if backend == "torch":
        return False
    # the cheap checks first: numba is imported only for inputs it could take
    reason: str | None
    if pose_term:
        reason = "per-mesh pose-corrective offsets (the exact blend) run on the torch path"
    else:
        reason = lbs_numba.supports(*tensors)
    if reason is None and not lbs_numba.available():
        reason = "numba is not installed or does not import (pip install 'kinediff[fast]')"
    if backend == "numba":
        if reason is not None:
            raise ValueError(f"backend='numba' cannot skin these inputs: {reason}")
        return True
    return reason is None and lbs_numba.influences(weights) <= tuning.MAX_AUTO_INFLUENCES


def _dense(transforms: torch.Tensor, backend: str, weights: torch.Tensor) -> bool:
    """Whether skinning takes the dense path (:func:`_skin_dense`): inside ``torch.compile`` (the
    blocked CPU loop and the numba kernels cannot be traced; the compiler fuses the dense form)
    and on any device but the CPU (the blocking is sized for CPU caches; a GPU streams the dense
    products at full bandwidth). ``backend`` is checked first ("numba" cannot run there: say so),
    and the weights must have the transforms' dtype, as on the blocked path."""
    check_choice(backend, "backend", SKINNING_BACKENDS)
    dense = torch.compiler.is_compiling() or transforms.device.type != "cpu"
    if dense and backend == "numba":
        raise ValueError("backend='numba' cannot skin these inputs: the numba kernels run on CPU "
                         "tensors outside torch.compile")
    if dense and weights.dtype != transforms.dtype:
        raise ValueError(f"weights are {weights.dtype} but the transforms {transforms.dtype}: "
                         f"convert one")
    return dense


def _skin_dense(weights: torch.Tensor, transforms: torch.Tensor, points: torch.Tensor
                ) -> torch.Tensor:
    """LBS as two dense products: blended transforms (N, V, 12) = W (V, J) @ A (N, J, 12), then
    applied to ``points`` (N, V, 3). Forms the (N, V, 12) blend in memory (12 numbers per vertex
    and mesh: 330 KB per SMPL mesh in float32). Shape: -> (N, V, 3)."""
    blended = torch.matmul(weights, transforms)  # (N, V, 12)
    points = points.to(transforms.dtype)  # the result in the transforms' dtype, as the blocked path
    blended = blended.unflatten(-1, (3, 4))
    return (blended[..., :3] * points[..., None, :]).sum(-1) + blended[..., 3]


def linear_blend_skinning(vertices: torch.Tensor, weights: torch.Tensor,
                          skinning_transforms: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Linear blend skinning: v' = sum_j w_vj [R_j | t_j] v.

    Memory traffic, not arithmetic, bounds skinning: the blended per-vertex transforms are 12
    numbers per vertex and sample. On the torch path they are formed one cache-sized block of
    meshes and vertices at a time by a GEMM and applied at once (``kinediff.body.lbs_blocks``), never
    as a (..., V, J, 3, 4) tensor; the numba path (``backend``, ``kinediff[fast]``) fuses blend
    and apply per vertex over its few nonzero weights (``kinediff.body.lbs_numba``).

    Args:
        backend: "auto" (numba where it applies: installed, CPU, no gradients, float32/float64,
            at most 8 joints per vertex; torch otherwise), "torch", or "numba" (a ``ValueError``
            says why where it cannot run).

    Shape:
        - vertices: (..., V, 3) rest-pose vertices (after blend shapes).
        - weights: (V, J) skinning weights, rows summing to 1.
        - skinning_transforms: (..., J, 3, 4) (from
          :func:`~kinediff.body.kinematics.forward_kinematics`).
        - output: (..., V, 3).

    Example:
        >>> import torch
        >>> from kinediff.body import linear_blend_skinning
        >>> vertices, weights = torch.rand(2, 5, 3), torch.softmax(torch.rand(5, 4), dim=-1)
        >>> lift = torch.eye(3, 4).repeat(2, 4, 1, 1)
        >>> lift[..., 2, 3] = 0.5  # every joint moves 0.5 along z
        >>> torch.allclose(linear_blend_skinning(vertices, weights, lift), vertices + torch.tensor([0, 0, 0.5]))
        True
    """
    check_last_dims(vertices, "vertices", (None, 3))
    v = vertices.shape[-2]
    if weights.dim() != 2 or weights.shape[0] != v:
        raise ValueError(f"weights must have shape ({v}, J), got {tuple(weights.shape)}")
    nj = weights.shape[1]
    check_last_dims(skinning_transforms, "skinning_transforms", (nj, 3, 4))
    lead = torch.broadcast_shapes(vertices.shape[:-2], skinning_transforms.shape[:-3])
    a = skinning_transforms.expand(*lead, nj, 3, 4).reshape(-1, nj, 12)  # (N, J, 12)
    pts = vertices.expand(*lead, v, 3).reshape(a.shape[0], v, 3)
    if _dense(a, backend, weights):
        return _skin_dense(weights, a, pts).reshape(*lead, v, 3)
    if _use_numba(backend, weights, (a, pts, weights)):
        out = lbs_numba.skin_points(pts, weights, a, lbs_blocks.empty_output((a.shape[0], v, 3), a))
        return out.reshape(*lead, v, 3)
    grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (vertices, weights, skinning_transforms))
    out = lbs_blocks.skin(weights, a, lambda n0, n1, v0, v1, buf: pts[n0:n1, v0:v1].transpose(1, 2),
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
        - posedirs: (P, V * 3) as in :func:`~kinediff.body.blendshapes.pose_offsets`; pose_feats:
          (B, M, P) from :func:`~kinediff.body.blendshapes.pose_features`. Both or neither.
        - output: (B, M, V, 3).
    """
    check_last_dims(base, "base", (None, 3))
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
    if _dense(tf, backend, weights):
        rest = base + coeffs[:, :, None, None] * offsets[:, None]  # (B, M, V, 3)
        if pose_term is not None:
            rest = rest + (pose_term[1] @ pose_term[0]).view(b, m, v, 3)
        return _skin_dense(weights, tf, rest.reshape(b * m, v, 3)).view(b, m, v, 3)
    if _use_numba(backend, weights, (tf, base, offsets, coeffs, weights), pose_term is not None):
        out = lbs_numba.skin_affine(base, offsets, coeffs, weights, tf,
                                     lbs_blocks.empty_output((b * m, v, 3), tf))
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

    out = lbs_blocks.skin(weights, tf, points, group=m,
                    needs_grad=grad, sizes=tuning.WIDE_BLOCKS if pose_term is not None else None)
    return out.view(b, m, v, 3)

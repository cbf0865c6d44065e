"""SMPL's blend shapes as pure functions over tensors: a body's rest shape before it is posed.

Notation (paper eq. 1): the rest shape is T + B_S(beta) + B_P(theta), the template T plus the shape
blend shapes B_S(beta) = sum_k beta_k S_k and the pose-corrective blend shapes
B_P(theta) = sum_n (R_n(theta) - I) P_n over the non-root joints. :mod:`kinediff.body.kinematics`
poses the skeleton and :mod:`kinediff.body.skinning` moves this rest shape with it.
"""

from __future__ import annotations

import torch

from kinediff.body import lbs_blocks  # empty_output: blend_offsets' result gets the skinning's huge pages
from kinediff.core.checks import check_last_dims

__all__ = [
    "blend_offsets",
    "pose_features",
    "pose_offsets",
    "rest_shapes",
    "shape_offsets",
]


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
    check_last_dims(rotmats, "rotmats", (None, 3, 3))
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
    ``kinediff.body.lbs_blocks.empty_output``) and the shape term is added into it in place, so no second
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
        shape = tuple(feats.shape[:1]) + (posedirs.shape[1],)
        out = torch.mm(feats, posedirs, out=lbs_blocks.empty_output(shape, feats))
        out.addmm_(betas, flat.T)
    return out.unflatten(-1, (-1, 3))


def rest_shapes(v_template: torch.Tensor, shapedirs: torch.Tensor, betas: torch.Tensor,
                rotmats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Rest shapes T + B_S(beta) + B_P(theta) of N bodies, in one GEMM.

    The three terms are one product, [pose features | beta | 1] @ [posedirs; S; T] with K = P + K_beta
    + 1 rows (218 for SMPL), so the (N, V, 3) result is written once, by the GEMM (backed by huge
    pages on CPU without gradients, see ``kinediff.body.lbs_blocks.empty_output``), instead of a pose GEMM
    followed by passes over its output for the template and the shape term. Equal to
    ``v_template + shape_offsets(betas, shapedirs) + pose_offsets(rotmats, posedirs)`` up to
    rounding.

    Shape:
        - v_template: (V, 3); shapedirs: (V, 3, K_total).
        - betas: (N, K), K <= K_total; rotmats: (N, J, 3, 3); posedirs: (P, V * 3) as in
          :func:`pose_offsets`.
        - output: (N, V, 3).
    """
    feats = _checked_pose_features(rotmats, posedirs)
    v = v_template.shape[0]
    if v_template.shape != (v, 3) or posedirs.shape[1] != 3 * v:
        raise ValueError(f"v_template must have shape ({posedirs.shape[1] // 3}, 3) to match posedirs, "
                         f"got {tuple(v_template.shape)}")
    if betas.dim() != 2 or feats.dim() != 2 or betas.shape[0] != feats.shape[0]:
        raise ValueError(f"betas (N, K) and rotmats (N, J, 3, 3) must share N; got "
                         f"{tuple(betas.shape)} and {tuple(rotmats.shape)}")
    flat = _shape_basis(betas, shapedirs)  # (V*3, K)
    if flat.shape[0] != 3 * v:
        raise ValueError(f"shapedirs must have shape ({v}, 3, K), got {tuple(shapedirs.shape)}")
    coeffs = torch.cat([feats, betas, feats.new_ones(feats.shape[0], 1)], dim=1)  # (N, P + K + 1)
    dirs = torch.cat([posedirs, flat.transpose(0, 1), v_template.reshape(1, 3 * v)])  # (P + K + 1, 3V)
    grad = torch.is_grad_enabled() and any(
        x.requires_grad for x in (v_template, shapedirs, betas, rotmats, posedirs))
    if grad:
        out = coeffs @ dirs
    else:
        out = torch.mm(coeffs, dirs, out=lbs_blocks.empty_output((coeffs.shape[0], 3 * v), coeffs))
    return out.view(-1, v, 3)

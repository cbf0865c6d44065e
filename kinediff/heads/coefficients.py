"""The least-squares map C from the 2D stage's K points to the 2D mesh: M_0^2d = C P (paper §3.1,
"2D mesh"). Which points these are is :func:`kinediff.core.conventions.keypoint_regressor`."""

from __future__ import annotations

import torch

__all__ = ["fit_coefficients"]


def fit_coefficients(points: torch.Tensor, meshes: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Least squares C with meshes ~ C @ points: C = M P^T (P P^T + ridge I)^-1.

    Shape: points (N, K, 2), meshes (N, V, 2) -> C (V, K).
    """
    if points.dim() != 3 or meshes.dim() != 3 or points.shape[0] != meshes.shape[0] \
            or points.shape[2] != meshes.shape[2]:
        raise ValueError(f"points (N, K, D) and meshes (N, V, D) must agree in N and D; got "
                         f"{tuple(points.shape)} and {tuple(meshes.shape)}")
    p = points.permute(1, 0, 2).reshape(points.shape[1], -1).double()  # (K, N D)
    m = meshes.permute(1, 0, 2).reshape(meshes.shape[1], -1).double()  # (V, N D)
    gram = p @ p.T + ridge * torch.eye(p.shape[0], dtype=p.dtype, device=p.device)
    return torch.linalg.lstsq(gram, (m @ p.T).T).solution.T.to(points.dtype)

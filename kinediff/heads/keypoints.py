"""Which K points the 2D stage predicts, and the least-squares map C from points to the 2D mesh.

The default is VirtualMarker's idea without its unreleased optimisation: 17 H36M-like joints (rows
of the body's SMPL joint regressor) and 64 surface points spread over the template by
farthest-point sampling, K = 81.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "H36M_LIKE_SMPL_JOINTS",
    "farthest_point_sampling",
    "fit_coefficients",
    "keypoint_regressor",
]

#: SMPL joints standing in for H36M's 17 (pelvis, R hip/knee/ankle, L hip/knee/ankle, spine,
#: thorax, neck, head, L shoulder/elbow/wrist, R shoulder/elbow/wrist).
H36M_LIKE_SMPL_JOINTS = (0, 2, 5, 8, 1, 4, 7, 6, 9, 12, 15, 16, 18, 20, 17, 19, 21)


def farthest_point_sampling(points: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    """Indices of ``count`` points, each the farthest from those already chosen. (N, D) -> (count,)."""
    if not 1 <= count <= len(points):
        raise ValueError(f"count must be in [1, {len(points)}], got {count}")
    chosen = [int(start)]
    dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(count - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.asarray(chosen)


def keypoint_regressor(body, num_markers: int = 64) -> torch.Tensor:
    """(17 + num_markers, V) weights: keypoints = R @ vertices (joints regressed, markers picked)."""
    joints = body.J_regressor[list(H36M_LIKE_SMPL_JOINTS)]
    template = body.v_template.detach().cpu().double().numpy()
    markers = farthest_point_sampling(template, num_markers, start=int(np.argmax(template[:, 1])))
    picks = torch.zeros(num_markers, body.num_vertices, dtype=joints.dtype, device=joints.device)
    picks[torch.arange(num_markers), torch.as_tensor(markers, device=joints.device)] = 1.0
    return torch.cat([joints, picks], dim=0)


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

"""Rotation representations, batched over any leading dimensions ``...``.

Every function follows the dtype and device of its input. Rotations between axis-angle and matrices
use kornia's conversions; the 6D representation (Zhou et al., CVPR 2019) is written here because
kornia has none.
"""

from __future__ import annotations

import torch
from kornia.geometry.conversions import (
    axis_angle_to_rotation_matrix,
    rotation_matrix_to_axis_angle,
)

from kinediff.core.checks import check_last_dims

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_rotation_6d",
    "rotation_6d_to_matrix",
]


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula (kornia), batched over leading dims.

    Shape:
        - axis_angle: (..., 3), radians, direction = axis.
        - output: (..., 3, 3) rotation matrices.
    """
    check_last_dims(axis_angle, "axis_angle", (3,))
    lead = axis_angle.shape[:-1]
    return axis_angle_to_rotation_matrix(axis_angle.reshape(-1, 3)).reshape(*lead, 3, 3)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`axis_angle_to_matrix` (kornia, through quaternions), angles in [0, pi].

    Shape:
        - matrix: (..., 3, 3) rotation matrices.
        - output: (..., 3).
    """
    check_last_dims(matrix, "matrix", (3, 3))
    lead = matrix.shape[:-2]
    return rotation_matrix_to_axis_angle(matrix.reshape(-1, 3, 3)).reshape(*lead, 3)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Continuous 6D rotation representation to matrices by Gram-Schmidt (Zhou et al. 2019).

    The 6 numbers are the first two *columns* of the rotation matrix (a1, a2), as in the paper.

    Shape:
        - d6: (..., 6).
        - output: (..., 3, 3).
    """
    check_last_dims(d6, "d6", (6,))
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
    check_last_dims(matrix, "matrix", (3, 3))
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)

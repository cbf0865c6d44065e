"""Forward kinematics of an SMPL-family body as pure functions over tensors.

Every function accepts any number of leading batch dimensions ``...`` and follows the dtype and
device of its inputs.

Notation (paper eq. 1): rest joints J (rest pose, shaped), local joint rotations R, parents p;
forward kinematics composes G_j = G_{p(j)} [R_j | J_j - J_{p(j)}] and gives the skinning transforms
G_j [I | -J_j] that :mod:`kinediff.body.skinning` blends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from kinediff.body.skeleton import kinematic_levels
from kinediff.core.checks import check_last_dims

__all__ = [
    "FKResult",
    "forward_kinematics",
]

class FKResult(NamedTuple):
    """Output of :func:`forward_kinematics`.

    Attributes:
        joints: (..., J, 3) posed joint positions.
        global_rotations: (..., J, 3, 3) joint frames' rotations in the body frame.
        skinning_transforms: (..., J, 3, 4) ``[R_g | t]`` mapping rest-pose points to posed points
            rigidly with joint j (``G_j [I | -J_j]``), the input of
            :func:`~kinediff.body.skinning.linear_blend_skinning`.
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

    Example:
        >>> import torch
        >>> from kinediff.body import axis_angle_to_matrix, forward_kinematics
        >>> rest = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # a two-joint chain
        >>> turn = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, torch.pi / 2], [0.0, 0.0, 0.0]]))
        >>> out = forward_kinematics(turn, rest, parents=[-1, 0])  # the root turns 90 deg about z
        >>> torch.allclose(out.joints[1], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6)
        True
    """
    check_last_dims(rotmats, "rotmats", (None, 3, 3))
    n = rotmats.shape[-3]
    check_last_dims(rest_joints, "rest_joints", (n, 3))
    parent_list = [int(p) for p in (parents.tolist() if torch.is_tensor(parents) else parents)]
    if len(parent_list) != n:
        raise ValueError(f"parents has {len(parent_list)} entries but rotmats has {n} joints")
    lead = torch.broadcast_shapes(rotmats.shape[:-3], rest_joints.shape[:-2])
    rotmats = rotmats.expand(*lead, n, 3, 3)
    rest_joints = rest_joints.expand(*lead, n, 3)

    # joints are gathered by stacking views (no index tensors: building one from a Python list is
    # a host-to-device copy, which waits for the device's queue)
    offsets = rest_joints - torch.stack([rest_joints[..., max(p, 0), :] for p in parent_list], dim=-2)
    # every entry is overwritten level by level; the root's values fill the list to start
    rots: list[torch.Tensor] = [rotmats[..., 0, :, :]] * n
    pos: list[torch.Tensor] = [rest_joints[..., 0, :]] * n
    for level in kinematic_levels(parent_list):
        pidx = [parent_list[j] for j in level]
        prot = torch.stack([rots[p] for p in pidx], dim=-3)  # (*, L, 3, 3)
        ppos = torch.stack([pos[p] for p in pidx], dim=-2)  # (*, L, 3)
        local = torch.stack([rotmats[..., j, :, :] for j in level], dim=-3)
        bones = torch.stack([offsets[..., j, :] for j in level], dim=-2)
        grot = prot @ local
        gpos = ppos + (prot @ bones.unsqueeze(-1)).squeeze(-1)
        for k, j in enumerate(level):
            rots[j] = grot[..., k, :, :]
            pos[j] = gpos[..., k, :]
    global_rot = torch.stack(rots, dim=-3)
    joints = torch.stack(pos, dim=-2)
    trans = joints - (global_rot @ rest_joints.unsqueeze(-1)).squeeze(-1)
    skin = torch.cat([global_rot, trans.unsqueeze(-1)], dim=-1)
    return FKResult(joints, global_rot, skin)

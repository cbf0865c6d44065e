"""SMPL's kinematic tree: joint names, parents and left/right pairs.

These are facts about the SMPL topology (24 joints, joint 0 = pelvis = root), shared by the real
model files and by kinediff's synthetic body. Nothing here depends on torch.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "NUM_SMPL_JOINTS",
    "SMPL_FLIP_PERMUTATION",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "kinematic_levels",
]

#: The 24 SMPL joints in SMPL's order. "L_" is the subject's left (+x in SMPL's frame).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle", "R_ankle",
    "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head", "L_shoulder",
    "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)  # fmt: skip

#: Parent of every joint (-1 for the root), as in SMPL's ``kintree_table[0]``.
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

NUM_SMPL_JOINTS = 24

#: Index of each joint's mirror image (left <-> right), used by flip augmentation.
SMPL_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    SMPL_JOINT_NAMES.index(
        n.replace("L_", "#").replace("R_", "L_").replace("#", "R_") if n[:2] in ("L_", "R_") else n
    )
    for n in SMPL_JOINT_NAMES
)


def kinematic_levels(parents: Sequence[int]) -> list[list[int]]:
    """Group joints by depth in the tree so FK can process each depth in one batched step.

    Args:
        parents: parent index of every joint, -1 for exactly one root which must be joint 0,
            and every parent index smaller than its child's (SMPL's topological order).

    Returns:
        ``levels[d]`` is the list of joints at depth ``d + 1`` (the root is excluded).

    Raises:
        ValueError: if the tree is not in topological order or has a root other than joint 0.
    """
    parents = [int(p) for p in parents]
    if not parents or parents[0] != -1:
        raise ValueError(f"parents[0] must be -1 (joint 0 is the root); got parents={parents}")
    depth = [0] * len(parents)
    for j, p in enumerate(parents[1:], start=1):
        if not 0 <= p < j:
            raise ValueError(
                f"parents must list each parent before its child (0 <= parents[j] < j); "
                f"joint {j} has parent {p}"
            )
        depth[j] = depth[p] + 1
    levels: list[list[int]] = [[] for _ in range(max(depth))]
    for j in range(1, len(parents)):
        levels[depth[j] - 1].append(j)
    return levels

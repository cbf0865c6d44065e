"""The depth levels of a kinematic tree, so that forward kinematics processes each depth in one
batched step. SMPL's tree itself (names, parents, mirror pairs) is in
:mod:`kinediff.core.conventions`."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["kinematic_levels"]


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

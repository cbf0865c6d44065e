"""An animated skeleton as Biovision hierarchy text (``.bvh``): the rig's joints, no mesh.

Conventions written (BVH has no standard for them, so they are stated here and in the file's
readers' terms):

- units: centimetres (the offsets and the root's positions are metres x 100);
- axes: the body model's frame (SMPL's: y up, the subject facing +z);
- the root (``pelvis`` for SMPL) has ``OFFSET 0 0 0`` and 6 channels ``Xposition Yposition
  Zposition Zrotation Xrotation Yrotation``; its positions are where the root joint is
  (J_0(beta) + translation), so readers that add the offset and readers that take the channels
  as absolute agree; every other joint has ``OFFSET`` J_j - J_parent and 3 channels
  ``Zrotation Xrotation Yrotation``;
- rotations: the local joint rotations as intrinsic Z, X, Y Euler angles in degrees,
  R = Rz(z) Rx(x) Ry(y) (the channels' order, applied left to right), each channel unwrapped over
  time (it may leave [-180, 180] rather than jump by 360);
- joints are written depth first, children in joint order; a joint without children ends with an
  ``End Site`` half its bone's length further along it;
- one line of channel values per frame, ``Frame Time`` 1 / fps seconds.

Written by hand: BVH is a few lines of text, and the readers on the registries (bvhio, the tests'
independent reader) do not write from rotation matrices.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from kinediff.export.rig import Motion, Rig

__all__ = ["BVH_EULER_ORDER", "BVH_UNITS_PER_METRE", "bvh_text", "depth_first"]

#: The Euler order of every joint's rotation channels (intrinsic: R = Rz Rx Ry).
BVH_EULER_ORDER = "ZXY"
#: Units per metre in the file: centimetres.
BVH_UNITS_PER_METRE = 100.0


def depth_first(parents: tuple[int, ...]) -> list[int]:
    """The joints in the file's order: depth first from the root, children in index order."""
    children: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    roots = []
    for i, p in enumerate(parents):
        (children[p] if p >= 0 else roots).append(i)
    order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(children[i]))
    return order


def _number(x: float) -> str:
    return f"{x:.6f}"


def bvh_text(rig: Rig, motion: Motion) -> str:
    """The ``.bvh`` file of ``rig``'s skeleton animated by ``motion`` (module docstring for its
    conventions)."""
    scale = BVH_UNITS_PER_METRE
    parents = rig.parents
    if sum(p < 0 for p in parents) != 1:
        raise ValueError("a BVH skeleton needs exactly one root joint")
    children: dict[int, list[int]] = {i: [c for c, p in enumerate(parents) if p == i]
                                      for i in range(len(parents))}
    lines = ["HIERARCHY"]

    def write(i: int, depth: int) -> None:
        pad = "\t" * depth
        root = parents[i] < 0
        offset = np.zeros(3) if root else (rig.joints[i] - rig.joints[parents[i]]) * scale
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {rig.names[i]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {' '.join(_number(x) for x in offset)}")
        lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
                     if root else f"{pad}\tCHANNELS 3 Zrotation Xrotation Yrotation")
        for c in children[i]:
            write(c, depth + 1)
        if not children[i]:
            tip = 0.5 * offset if not root else np.array([0.0, 10.0, 0.0])
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {' '.join(_number(x) for x in tip)}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    write(parents.index(-1), 0)
    order = depth_first(parents)
    frames, j = motion.rotations.shape[:2]
    with warnings.catch_warnings():  # near x = +-90 deg the z/y split is arbitrary, R is exact
        warnings.simplefilter("ignore", UserWarning)
        euler = Rotation.from_matrix(motion.rotations[:, order].reshape(-1, 3, 3)).as_euler(
            BVH_EULER_ORDER, degrees=True).reshape(frames, j * 3)
    # each channel continuous over time (no jump of 360 degrees where an angle passes +-180), so
    # that tools that resample the channels take the short way; the rotations are the same
    euler = np.unwrap(euler, period=360.0, axis=0)
    values = np.concatenate([motion.root * scale, euler], axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(_number(x) for x in row) for row in values]
    return "\n".join(lines) + "\n"

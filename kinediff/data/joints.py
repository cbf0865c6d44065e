"""Joint sets by name: the 17 Human3.6M joints every kinediff sample's ``joints3d`` and
``keypoints2d`` use, and the map from a data set's own joint set onto them.

Data sets number their joints differently (MPI-INF-3DHP 28 / 17, COCO 17, SMPL 24, H36M 17);
kinediff maps them by *name*, never by index, so a joint a set lacks stays missing (valid 0)
instead of silently taking a neighbour's place. The names are I2L-MeshNet's for Human3.6M, lower
case: ``torso`` is H36M's spine joint, ``neck`` its thorax, ``nose`` its neck/nose joint and
``head`` the head top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["H36M_FLIP_PERMUTATION", "H36M_JOINTS", "LIMB_JOINTS", "map_joints"]

#: The 17 Human3.6M joints in the order of the H36M 17-joint set.
H36M_JOINTS: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "torso", "neck", "nose",
    "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")


#: The 12 limb joints (hips, knees, ankles, shoulders, elbows, wrists): the joints every 2D and 3D
#: joint set labels as the same anatomical point, and which the SMPL skeleton's stand-ins
#: (:data:`~kinediff.heads.H36M_LIKE_SMPL_JOINTS`) match. The pelvis, torso, neck, nose and head
#: differ between sets (COCO's nose is the nose tip, LSP / MPI-INF-3DHP's head the head top, SMPL's
#: stand-ins the neck and head joints), so supervising them across sets would pull a point
#: between two definitions; the 2D stage's keypoint term uses these 12 only.
LIMB_JOINTS: tuple[str, ...] = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                                "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
                                "r_wrist")


def _flip_permutation(names: Sequence[str]) -> tuple[int, ...]:
    def mirrored(name: str) -> str:
        if name.startswith("l_"):
            return "r_" + name[2:]
        if name.startswith("r_"):
            return "l_" + name[2:]
        return name
    return tuple(names.index(mirrored(n)) for n in names)


#: Index i of a mirrored image holds joint ``H36M_FLIP_PERMUTATION[i]`` of the original (left and
#: right swapped).
H36M_FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation(H36M_JOINTS)


def map_joints(values: np.ndarray, names: Sequence[str], target: Sequence[str] = H36M_JOINTS,
               where: str = "joints") -> tuple[np.ndarray, np.ndarray]:
    """Joints of a data set's own set, by name, in the ``target`` set's order.

    Args:
        values: (J, C) per-joint values (coordinates, with or without a visibility column).
        names: the J names of the source set (a name not in ``target`` is dropped).
        target: the target set's names (default :data:`H36M_JOINTS`).
        where: what to name in errors (file and record).

    Returns:
        ``(out, valid)``: (len(target), C) float64, zeros where the source lacks the joint, and
        (len(target),) bool, True where it was copied.

    Example:
        >>> import numpy as np
        >>> from kinediff.data.joints import map_joints
        >>> out, valid = map_joints(np.array([[1.0, 2.0], [3.0, 4.0]]), ["r_hip", "jaw"])
        >>> out[1].tolist(), int(valid.sum())
        ([1.0, 2.0], 1)
    """
    values = np.asarray(values, dtype=np.float64)
    names = list(names)
    if values.ndim != 2 or values.shape[0] != len(names):
        raise ValueError(f"{where}: values must have shape ({len(names)}, C) for {len(names)} joint "
                         f"names, got {values.shape}")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: joint names repeat: "
                         f"{sorted({n for n in names if names.count(n) > 1})}")
    out = np.zeros((len(target), values.shape[1]))
    valid = np.zeros(len(target), dtype=bool)
    index = {name: i for i, name in enumerate(names)}
    for t, name in enumerate(target):
        if name in index:
            out[t], valid[t] = values[index[name]], True
    return out, valid

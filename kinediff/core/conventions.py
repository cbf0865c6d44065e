"""Joint sets, joint maps, genders and keypoint regressors: the conventions every layer above
shares, in one place below all of them.

- SMPL's kinematic tree (24 joints, joint 0 = pelvis = root), shared by the real model files and
  kinediff's synthetic body: :data:`SMPL_JOINT_NAMES`, :data:`SMPL_PARENTS`,
  :data:`SMPL_FLIP_PERMUTATION`.
- The 17 Human3.6M joints every kinediff sample's ``joints3d`` and ``keypoints2d`` use
  (:data:`H36M_JOINTS`, I2L-MeshNet's names, lower case: ``torso`` is H36M's spine joint, ``neck``
  its thorax, ``nose`` its neck/nose joint and ``head`` the head top), and :func:`map_joints`,
  which maps a data set's own joint set onto them by *name*, never by index, so a joint a set
  lacks stays missing instead of silently taking a neighbour's place.
- The evaluation protocols' 14-joint maps (:data:`GRAPHORMER_MAP`, :data:`SPIN_MAP`), each tied
  to the regressor file whose row order it fits (:data:`REGRESSOR_MAPS`).
- The K points of the 2D stage (:func:`keypoint_regressor`): VirtualMarker's idea without its
  unreleased optimisation, 17 H36M-like joints (rows of the body's SMPL joint regressor,
  :data:`H36M_LIKE_SMPL_JOINTS`) and markers spread over the template by farthest-point sampling.
- :data:`GENDERS`, the body models a record may be labelled with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "GENDERS",
    "GRAPHORMER_MAP",
    "H36M_FLIP_PERMUTATION",
    "H36M_JOINTS",
    "H36M_LIKE_SMPL_JOINTS",
    "J14_NAMES",
    "LIMB_JOINTS",
    "MEASURED_MAP",
    "NUM_SMPL_JOINTS",
    "REGRESSOR_MAPS",
    "SMPL_FLIP_PERMUTATION",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "SPIN_MAP",
    "farthest_point_sampling",
    "flip_permutation",
    "keypoint_regressor",
    "map_joints",
    "synthetic_h36m_regressor",
]

#: The genders a body model (and a record's GT) may have.
GENDERS: tuple[str, ...] = ("neutral", "male", "female")

# -- SMPL -------------------------------------------------------------------------------------

#: The 24 SMPL joints in SMPL's order. ``L_`` is the subject's left (+x in SMPL's frame).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle", "R_ankle",
    "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head", "L_shoulder",
    "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)  # fmt: skip

#: Parent of every joint (-1 for the root), as in SMPL's ``kintree_table[0]``.
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

#: SMPL's joints: the root and 23 body joints.
NUM_SMPL_JOINTS = 24


def flip_permutation(names: Sequence[str], left: str = "l_", right: str = "r_") -> tuple[int, ...]:
    """Index of each joint's mirror image (left <-> right swapped) in a set of joint ``names``
    whose left and right joints start with ``left`` and ``right``; other joints map to
    themselves."""
    def mirrored(name: str) -> str:
        if name.startswith(left):
            return right + name[len(left):]
        if name.startswith(right):
            return left + name[len(right):]
        return name

    return tuple(list(names).index(mirrored(n)) for n in names)


#: Index of each SMPL joint's mirror image (left <-> right), used by flip augmentation.
SMPL_FLIP_PERMUTATION: tuple[int, ...] = flip_permutation(SMPL_JOINT_NAMES, "L_", "R_")

# -- Human3.6M --------------------------------------------------------------------------------

#: The 17 Human3.6M joints in the order of the H36M 17-joint set.
H36M_JOINTS: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "torso", "neck", "nose",
    "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")

#: The 12 limb joints (hips, knees, ankles, shoulders, elbows, wrists): the joints every 2D and 3D
#: joint set labels as the same anatomical point, and which the SMPL skeleton's stand-ins
#: (:data:`H36M_LIKE_SMPL_JOINTS`) match. The pelvis, torso, neck, nose and head differ between
#: sets (COCO's nose is the nose tip, LSP / MPI-INF-3DHP's head the head top, SMPL's stand-ins the
#: neck and head joints), so supervising them across sets would pull a point between two
#: definitions; the 2D stage's keypoint term uses these 12 only.
LIMB_JOINTS: tuple[str, ...] = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                                "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
                                "r_wrist")

#: Index i of a mirrored image holds joint ``H36M_FLIP_PERMUTATION[i]`` of the original (left and
#: right swapped).
H36M_FLIP_PERMUTATION: tuple[int, ...] = flip_permutation(H36M_JOINTS)

#: SMPL joints standing in for H36M's 17 (pelvis, R hip/knee/ankle, L hip/knee/ankle, spine,
#: thorax, neck, head, L shoulder/elbow/wrist, R shoulder/elbow/wrist).
H36M_LIKE_SMPL_JOINTS: tuple[int, ...] = (0, 2, 5, 8, 1, 4, 7, 6, 9, 12, 15, 16, 18, 20, 17, 19, 21)

# -- evaluation maps: 17 regressed H36M joints -> the 14 scored -------------------------------

#: The 14-joint map of ``J_regressor_h36m_correct.npy`` (MeshGraphormer, VirtualMarker, I2L).
GRAPHORMER_MAP: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)
#: The 14-joint map of SPIN's ``J_regressor_h36m.npy`` (its rows list the left leg first).
SPIN_MAP: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
#: The 14 of Human3.6M's measured 17 joints. The measured joints come in H36M's own order
#: (:data:`H36M_JOINTS`), the order of ``J_regressor_h36m_correct``'s rows; SPIN's
#: ``J_regressor_h36m`` lists the left leg (1-3) before the right (4-6). So measured joints are
#: always reduced with this map, whatever the protocol's regressor.
MEASURED_MAP: tuple[int, ...] = GRAPHORMER_MAP
#: Each known regressor file with the only 14-joint map that fits its row order.
REGRESSOR_MAPS: dict[str, tuple[int, ...]] = {"J_regressor_h36m_correct.npy": GRAPHORMER_MAP,
                                              "J_regressor_h36m.npy": SPIN_MAP}
#: The 14 evaluated joints, in the order both maps produce.
J14_NAMES: tuple[str, ...] = (
    "R_ankle", "R_knee", "R_hip", "L_hip", "L_knee", "L_ankle", "R_wrist", "R_elbow",
    "R_shoulder", "L_shoulder", "L_elbow", "L_wrist", "thorax", "head")


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
        >>> from kinediff.core.conventions import map_joints
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


# -- regressors -------------------------------------------------------------------------------

def farthest_point_sampling(points: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    """Indices of ``count`` points, each the farthest from those already chosen.

    Shape: points (N, D) -> (count,) integer indices, starting with ``start``.
    """
    if not 1 <= count <= len(points):
        raise ValueError(f"count must be in [1, {len(points)}], got {count}")
    chosen = [int(start)]
    dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(count - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.asarray(chosen)


def keypoint_regressor(body, num_markers: int = 64,
                       marker_vertices: Sequence[int] | None = None) -> torch.Tensor:
    """The 2D stage's keypoints as weights over a body's vertices: keypoints = R @ vertices.

    The first 17 rows are the body's SMPL joint-regressor rows of :data:`H36M_LIKE_SMPL_JOINTS`;
    the other rows pick one vertex each: ``marker_vertices`` where given (VirtualMarker's, see
    :func:`kinediff.heads.read_virtual_markers`), else ``num_markers`` stand-ins chosen by
    farthest-point sampling over the template, starting at the highest vertex.

    Shape: -> (17 + M, V), in the dtype and device of ``body.J_regressor``.
    """
    joints = body.J_regressor[list(H36M_LIKE_SMPL_JOINTS)]
    if marker_vertices is not None:
        markers = np.asarray(marker_vertices, dtype=np.int64)
        if markers.ndim != 1 or markers.size == 0 or markers.min() < 0 \
                or markers.max() >= body.num_vertices:
            raise ValueError(f"marker_vertices must be vertex indices in [0, {body.num_vertices}) "
                             f"of this body, got {list(marker_vertices)[:8]}")
        num_markers = int(markers.size)
    else:
        template = body.v_template.detach().cpu().double().numpy()
        markers = farthest_point_sampling(template, num_markers,
                                          start=int(np.argmax(template[:, 1])))
    picks = torch.zeros(num_markers, body.num_vertices, dtype=joints.dtype, device=joints.device)
    picks[torch.arange(num_markers), torch.as_tensor(markers, device=joints.device)] = 1.0
    return torch.cat([joints, picks], dim=0)


def synthetic_h36m_regressor(body) -> torch.Tensor:
    """An H36M-17-style regressor (17, V), rows in H36M's own order (that of
    ``J_regressor_h36m_correct``), from the body's own SMPL joint regressor rows (convex vertex
    weights): lets every protocol run on the synthetic body. Numbers from it are synthetic."""
    return body.J_regressor[list(H36M_LIKE_SMPL_JOINTS)].clone()

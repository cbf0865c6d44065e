"""A body model as a skinned rig for animation files: the shaped rest mesh, the joints at J(beta),
the kinematic tree and each vertex's largest skinning weights, plus a checked animation (local
joint rotations and root positions per frame).

The functional core of :func:`kinediff.export.export_animation`; the glTF and BVH writers
(:mod:`kinediff.export.gltf`, :mod:`kinediff.export.bvh`) take a :class:`Rig` and a
:class:`Motion`. All arrays are NumPy float64 (the writers store float32 where the format does).

What a rig cannot carry: SMPL's pose-corrective offsets B_P(theta) (paper eq. 1, the posedirs
term) are not part of linear blend skinning, and the weights keep at most ``max_influences``
joints per vertex (glTF's ``JOINTS_0`` / ``WEIGHTS_0`` hold 4).
:func:`rig_vertices` is that rig's mesh, so ``body(pose, betas).vertices - rig_vertices(...)`` is
what the files lose; :func:`rig_errors` measures both parts on a sequence.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from kinediff.core.checks import check_int, check_number, check_shape
from kinediff.core.conventions import SMPL_JOINT_NAMES

__all__ = ["Motion", "Rig", "array_of", "check_motion", "make_rig", "rig_errors", "rig_vertices"]


class Rig(NamedTuple):
    """A body shaped by one ``betas`` as a skinned rig.

    Attributes:
        vertices: (V, 3) rest (T-pose) mesh T + B_S(beta), metres, in the body model's frame (y up
            for SMPL).
        faces: (F, 3) int64.
        joints: (J, 3) rest joints J(beta), metres.
        parents: (J,) parent of each joint, -1 for the root; parents come before children.
        names: (J,) joint names.
        influences: (V, N) int64 the N joints with the largest weights per vertex, largest first.
        weights: (V, N) their weights renormalised to sum to 1 (0 where a vertex has fewer joints).
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    parents: tuple[int, ...]
    names: tuple[str, ...]
    influences: np.ndarray
    weights: np.ndarray


class Motion(NamedTuple):
    """An animation of a :class:`Rig`, F frames.

    Attributes:
        rotations: (F, J, 3, 3) local joint rotations (joint 0: the global orientation).
        root: (F, 3) the root joint's position, metres: J_0(beta) + translation.
        fps: frames per second; frame k is at (start + k) / fps seconds.
        start: the first frame's index in its clip (0: the animation starts at 0 s).
    """

    rotations: np.ndarray
    root: np.ndarray
    fps: float
    start: int = 0


def array_of(x: Any, name: str) -> np.ndarray:
    """``x`` as a finite float64 array (tensors are detached and moved to the CPU); a clear
    ``TypeError`` / ``ValueError`` naming ``name`` otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array or a tensor of numbers, got {type(x).__name__}") from err
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (it holds NaN or inf)")
    return a


def _names(body, num_joints: int) -> tuple[str, ...]:
    """The joint names: SMPL's for a 24-joint body, else ``joint<j>``."""
    if num_joints == len(SMPL_JOINT_NAMES):
        return SMPL_JOINT_NAMES
    return tuple(f"joint{j}" for j in range(num_joints))


def make_rig(body, betas: Any = None, max_influences: int = 4) -> Rig:
    """The rig of ``body`` shaped by ``betas``.

    Args:
        body: a :class:`~kinediff.body.BodyModel`.
        betas: (K,) shape coefficients (K <= ``body.num_betas``, missing ones 0), or None for the
            mean shape.
        max_influences: joints kept per vertex (1 to J): the largest weights, renormalised.

    Returns:
        :class:`Rig`.
    """
    j = body.num_joints
    k = check_int(max_influences, "max_influences", 1, j)
    beta = np.zeros(body.num_betas) if betas is None else array_of(betas, "betas")
    if beta.ndim != 1 or beta.shape[0] > body.num_betas:
        raise ValueError(f"betas must have shape (K,) with K <= {body.num_betas}, got {beta.shape}")
    tb = torch.as_tensor(beta, dtype=body.v_template.dtype, device=body.v_template.device)[None]
    with torch.no_grad():
        vertices = body.rest_vertices(tb)[0].double().cpu().numpy()
        joints = body.rest_joints(tb)[0].double().cpu().numpy()
    w = body.weights.detach().double().cpu().numpy()
    order = np.argsort(-w, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(w, order, axis=1)
    kept = np.where(kept > 0, kept, 0.0)
    total = kept.sum(1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(f"{int((total <= 0).sum())} vertices have no positive skinning weight")
    influences = np.where(kept > 0, order, 0)  # unused slots: joint 0 with weight 0
    return Rig(vertices, body.faces.cpu().numpy().astype(np.int64), joints,
               tuple(int(p) for p in body.parent_list), _names(body, j), influences, kept / total)


def check_motion(rig: Rig, poses: Any, translations: Any = None, fps: float = 30.0,
                 start_frame: int = 0) -> Motion:
    """Checked animation arrays -> :class:`Motion`.

    Args:
        rig: the rig they animate.
        poses: (F, J, 3) axis-angle, radians (joint 0: the global orientation), or (F, J, 3, 3)
            rotation matrices.
        translations: (F, 3) metres added to the whole body (SMPL's ``transl``), or None.
        fps: frames per second, > 0.
        start_frame: the first frame's index in its clip, >= 0.
    """
    j = len(rig.parents)
    p = array_of(poses, "poses")
    if p.ndim == 4:
        check_shape(torch.from_numpy(p), "poses", ("F", j, 3, 3))
        rot = p
        det = np.linalg.det(rot)
        if not (np.abs(det - 1) < 1e-3).all():
            raise ValueError("poses given as matrices must be rotations (determinant 1)")
    else:
        check_shape(torch.from_numpy(p), "poses", ("F", j, 3))
        rot = Rotation.from_rotvec(p.reshape(-1, 3)).as_matrix().reshape(p.shape[0], j, 3, 3)
    frames = rot.shape[0]
    if frames < 1:
        raise ValueError("poses must hold at least one frame")
    root = np.repeat(rig.joints[None, 0], frames, axis=0)
    if translations is not None:
        t = array_of(translations, "translations")
        check_shape(torch.from_numpy(t), "translations", (frames, 3))
        root = root + t
    rate = check_number(fps, "fps", 0.0, 10000.0, low_open=True)
    return Motion(rot, root, rate, check_int(start_frame, "start_frame", 0))


def rig_vertices(rig: Rig, motion: Motion) -> np.ndarray:
    """The rig's mesh in every frame: linear blend skinning with the rig's weights (no pose
    correctives). Shape: (F, V, 3) metres, in the body model's frame.

    This is what a glTF viewer or Blender shows for the exported file (up to float32 storage and,
    in Blender, its y-up to z-up turn)."""
    frames, j = motion.rotations.shape[:2]
    glob_r = np.empty_like(motion.rotations)
    glob_t = np.empty((frames, j, 3))
    for i, parent in enumerate(rig.parents):  # parents come before children
        if parent < 0:
            glob_r[:, i] = motion.rotations[:, i]
            glob_t[:, i] = motion.root
        else:
            offset = rig.joints[i] - rig.joints[parent]
            glob_r[:, i] = glob_r[:, parent] @ motion.rotations[:, i]
            glob_t[:, i] = glob_t[:, parent] + glob_r[:, parent] @ offset
    # skinning transforms G_j [I | -J_j]: x -> R_j (x - J_j) + t_j
    skin_t = glob_t - np.einsum("fjab,jb->fja", glob_r, rig.joints)
    out = np.zeros((frames, rig.vertices.shape[0], 3))
    for slot in range(rig.influences.shape[1]):
        jj = rig.influences[:, slot]
        w = rig.weights[:, slot][None, :, None]
        moved = np.einsum("fvab,vb->fva", glob_r[:, jj], rig.vertices) + skin_t[:, jj]
        out += w * moved
    return out


def rig_errors(body, poses: Any, betas: Any = None, translations: Any = None,
               max_influences: int = 4) -> dict[str, float]:
    """What an exported rig loses against ``body``'s own mesh on a sequence, in millimetres.

    Returns a dict: ``truncation_max`` / ``truncation_mean``, the vertex distance between linear
    blend skinning with all weights and with the ``max_influences`` largest (renormalised), both
    without pose correctives; ``correctives_max`` / ``correctives_mean``, the size of the
    pose-corrective offsets B_P(theta) the rig leaves out; ``total_max`` / ``total_mean``, the
    exported rig against ``body(poses, betas, translations)``.

    Args: as :func:`~kinediff.export.export_animation` (betas (K,)).
    """
    rig = make_rig(body, betas, max_influences)
    full = make_rig(body, betas, body.num_joints)
    motion = check_motion(rig, poses, translations)
    truncated = rig_vertices(rig, motion)
    lbs = rig_vertices(full, motion)
    dtype, device = body.v_template.dtype, body.v_template.device
    rot = torch.as_tensor(motion.rotations, dtype=dtype, device=device)
    beta = torch.as_tensor(np.zeros(body.num_betas) if betas is None else array_of(betas, "betas"),
                           dtype=dtype, device=device)[None].expand(rot.shape[0], -1)
    with torch.no_grad():
        out = body(rot, beta).vertices.double().cpu().numpy()
        correctives = body.pose_offsets(rot).double().cpu().numpy()
    shift = motion.root - rig.joints[None, 0]
    out = out + shift[:, None]

    def stats(d: np.ndarray) -> tuple[float, float]:
        n = np.linalg.norm(d, axis=-1) * 1000
        return float(n.max()), float(n.mean())

    t_max, t_mean = stats(truncated - lbs)
    c_max, c_mean = stats(correctives)
    a_max, a_mean = stats(truncated - out)
    return {"truncation_max": t_max, "truncation_mean": t_mean, "correctives_max": c_max,
            "correctives_mean": c_mean, "total_max": a_max, "total_mean": a_mean}

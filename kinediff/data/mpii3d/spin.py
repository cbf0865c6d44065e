"""MPI-INF-3DHP as SPIN preprocessed it (``format="spin"``): ``mpi_inf_3dhp_<split>.npz`` with
``imgname`` relative to ``root`` (see :func:`mpii3d_spin_records`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.arrays import read_npz
from kinediff.core.checks import check_dir, check_file, check_finite_array, check_numbers
from kinediff.core.conventions import H36M_JOINTS, map_joints
from kinediff.data.base import Record, root_joint
from kinediff.data.mpii3d.common import image_file_size
from kinediff.data.mpii3d.raw_test import mpii3d_test_intrinsics
from kinediff.data.mpii3d.raw_train import TRAIN_LAYOUT, read_calibration
from kinediff.data.spin import image_names

__all__ = ["SPIN_MPII3D_SLOTS", "mpii3d_spin_records"]

#: What SPIN's MPI-INF-3DHP preprocessing writes into each of the 24 slots of its ``part`` / ``S``
#: arrays (SPIN's ``joints_idx``): slot 17 (SPIN's "Jaw (H36M)") holds MPI's head, slot 18
#: ("Head (H36M)") the head top, slot 12 ("Neck (LSP)") the neck; the slots it leaves empty keep
#: SPIN's names (LSP head top, MPII thorax, nose, eyes, ears) and are not mapped.
SPIN_MPII3D_SLOTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
    "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "lsp_head_top", "pelvis", "mpii_thorax",
    "torso", "nose", "head", "spin_nose", "l_eye", "r_eye", "l_ear", "r_ear")


def _solve_translation(rel: np.ndarray, uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The camera-frame translation T (3,) that best projects the root-relative joints ``rel``
    (J, 3) onto ``uv`` (J, 2) through K: linear least squares over
    fx (X + Tx) = (u - cx) (Z + Tz) and fy (Y + Ty) = (v - cy) (Z + Tz)."""
    (fx, fy), (cx, cy) = np.diag(K)[:2], K[:2, 2]
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    zeros = np.zeros_like(du)
    A = np.concatenate([np.stack([np.full_like(du, fx), zeros, -du], 1),
                        np.stack([zeros, np.full_like(dv, fy), -dv], 1)])
    b = np.concatenate([du * rel[:, 2] - fx * rel[:, 0], dv * rel[:, 2] - fy * rel[:, 1]])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def mpii3d_spin_records(path: str | os.PathLike, root: str | os.PathLike, body: BodyLike | None = None,
                        crop_scale: float = 1.2) -> list[Record]:
    """Records of SPIN's ``mpi_inf_3dhp_{train,test}.npz``.

    ``imgname`` is relative to ``root``: the training folder (``S<s>/Seq<q>/imageFrames/
    video_<c>/frame_<n>.jpg``, whose ``camera.calibration`` gives K) or the folder holding
    ``mpi_inf_3dhp_test_set/TS<k>/...`` (K of
    :func:`~kinediff.data.mpii3d.raw_test.mpii3d_test_intrinsics`). SPIN's ``S`` is root-relative
    (pelvis at 0; the test file's is the universal-height skeleton): kinediff places it in the
    camera frame with the translation that best reprojects it onto ``part`` (exact for
    the training file, whose ``S`` is ``annot3``). Where ``has_smpl`` is 1 the SPIN fit (``pose``
    camera-frame, ``shape``) becomes pseudo-GT SMPL with its root joint J0 at the placed pelvis
    (``body``'s neutral model gives J0; a fit's root and MPI's pelvis marker differ by a few cm).
    The box is SPIN's square (side 200 scale).
    """
    path = check_file(path, "SPIN's mpi_inf_3dhp_<split>.npz (imgname, center, scale, part, S[, pose, "
                              "shape, has_smpl])")
    root = check_dir(root, "the folder SPIN's imgname entries are relative to")
    arrays = read_npz(path, "SPIN's mpi_inf_3dhp_<split>.npz")
    missing = [k for k in ("imgname", "center", "scale", "part", "S") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    n = len(arrays["imgname"])
    for key, shape in (("center", (n, 2)), ("scale", (n,)), ("part", (n, 24, 3)), ("S", (n, 24, 4))):
        if arrays[key].shape != shape:
            raise ValueError(f"{path}: key {key!r} has shape {arrays[key].shape}, expected {shape}")
        check_numbers(arrays[key], str(path), key)
    imgnames = image_names(arrays["imgname"], path)
    has_smpl = np.asarray(arrays.get("has_smpl", np.zeros(n))).reshape(-1)
    if has_smpl.any():
        for key, shape in (("pose", (n, 72)), ("shape", (n, 10)), ("has_smpl", (n,))):
            if key not in arrays or arrays[key].shape != shape:
                raise ValueError(f"{path}: key {key!r} missing or not of shape {shape}")
        neutral = BodySet.of(body).for_gender("neutral", "SPIN's MPI-INF-3DHP fits (neutral model)")
    calibrations: dict[Path, dict] = {}
    test_sizes: dict[int, tuple[int, int] | None] = {}
    records = []
    for i in range(n):
        where = f"{path} record {i}"
        name = imgnames[i]
        for key in ("center", "scale", "part", "S"):
            check_finite_array(arrays[key][i], where, key)
        if not float(arrays["scale"][i]) > 0:
            raise ValueError(f"{where}: key 'scale' must be positive (the box side is 200 * scale), got "
                             f"{float(arrays['scale'][i])}")
        train = re.search(r"S(\d+)/Seq(\d+)/imageFrames/video_(\d+)/", name)
        test = re.search(r"TS(\d+)/imageSequence/", name)
        if train:
            s, q, cam = (int(v) for v in train.groups())
            calib_path = check_file(root / name.split("imageFrames/")[0] / "camera.calibration",
                                      TRAIN_LAYOUT)
            if calib_path not in calibrations:
                calibrations[calib_path] = read_calibration(calib_path)
            if cam not in calibrations[calib_path]:
                raise ValueError(f"{where}: {calib_path} has no camera {cam}")
            K = calibrations[calib_path][cam]["K"]
            extra: dict[str, Any] = {"subject": s, "sequence": q, "camera": cam}
        elif test:
            k = int(test.group(1))
            if k not in test_sizes:
                test_sizes[k] = image_file_size(root / name)
            K = mpii3d_test_intrinsics(k, test_sizes[k])
            extra = {"sequence": k}
        else:
            raise ValueError(f"{where}: imgname {name!r} is neither S<s>/Seq<q>/imageFrames/video_<c>/... "
                             f"nor .../TS<k>/imageSequence/...")
        part, S = arrays["part"][i].astype(np.float64), arrays["S"][i].astype(np.float64)
        kp, _ = map_joints(part, SPIN_MPII3D_SLOTS, where=where)
        rel, _ = map_joints(S, SPIN_MPII3D_SLOTS, where=where)
        use = (kp[:, 2] > 0) & (rel[:, 3] > 0)
        if use.sum() < 2:
            raise ValueError(f"{where}: fewer than 2 joints with both 2D (part) and 3D (S) labels")
        T = _solve_translation(rel[use, :3], kp[use, :2], K)
        joints3d = np.concatenate([rel[:, :3] + T, (rel[:, 3:] > 0)], 1)
        joints3d[rel[:, 3] <= 0, :3] = 0.0
        kp[:, 2] = (kp[:, 2] > 0).astype(np.float64)
        pose = betas = transl = None
        if has_smpl[i] > 0:
            for key in ("pose", "shape"):
                check_finite_array(check_numbers(arrays[key][i], where, key), where, key)
            pose, betas = arrays["pose"][i].astype(np.float64), arrays["shape"][i].astype(np.float64)
            pelvis = joints3d[H36M_JOINTS.index("pelvis"), :3]
            transl = pelvis - root_joint(neutral, betas).numpy()
            extra["pseudo_gt"] = True
        side = 200.0 * float(arrays["scale"][i])
        cx, cy = (float(v) for v in arrays["center"][i])
        records.append(Record(
            image=root / name, pose=pose, betas=betas, transl=transl, K=K.copy(),
            box=(cx - side / 2 / crop_scale, cy - side / 2 / crop_scale, side / crop_scale,
                 side / crop_scale), joints3d=joints3d, keypoints2d=kp, source=where, extra=extra))
    return records

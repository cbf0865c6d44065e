"""MPI-INF-3DHP's released training set (``format="raw"``, ``split="train"``), ``root`` holding
``S1`` ... ``S8``::

    S<s>/Seq<q>/annot.mat                  MATLAB v5: per camera cell (14 x 1) annot2 (F x 56:
                                           28 joints x (x, y) pixels), annot3 (F x 84: camera
                                           frame, mm), univ_annot3; cameras (1 x 14, 0-based)
    S<s>/Seq<q>/camera.calibration         "Skeletool Camera Calibration File V1.0": per camera
                                           name, sensor, size, animated, intrinsic (4 x 4 row
                                           major), extrinsic (4 x 4, world -> camera, mm), radial
    S<s>/Seq<q>/imageSequence/video_<c>.avi          the frames of camera c, or extracted:
    S<s>/Seq<q>/imageFrames/video_<c>/frame_<n:06d>.jpg          (SPIN's extraction) or
    S<s>/Seq<q>/images/S<s>_Seq<q>_V<c>/img_S<s>_Seq<q>_V<c>_<n:06d>.jpg    (HybrIK's)

Annotation row i is decoded frame i of the video, i.e. extracted image n = i + 1. Rows past the
sequence's frame count (the data set's ``mpii_get_sequence_info``) are not read, as its README
advises. Videos are read with PyAV (``pip install kinediff[video]``,
:func:`~kinediff.core.video.read_video_frame`), seeking to the frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kinediff.core.arrays import read_mat
from kinediff.core.checks import (
    check_array,
    check_dir,
    check_file,
    check_finite_array,
    check_int,
    check_intrinsics,
    check_key,
    check_rotation,
)
from kinediff.data.base import Record
from kinediff.data.mpii3d.common import MPII3D_JOINTS, chosen_folders, joint_labels

__all__ = ["MPII3D_CAMERA_SETS", "MPII3D_FRAME_COUNTS", "TRAIN_LAYOUT", "mpii3d_train_records",
           "read_calibration"]

#: Camera subsets of the training set (the data set's ``mpii_get_camera_set``); "vnect" is the set
#: SPIN and VNect train on.
MPII3D_CAMERA_SETS: dict[str, tuple[int, ...]] = {
    "vnect": (0, 1, 2, 4, 5, 6, 7, 8), "relevant": tuple(range(11)), "ceiling": (11, 12, 13),
    "mm3d_chest": (0, 2, 4, 7, 8), "all": tuple(range(14))}

#: Frames per (subject, sequence) video (the data set's ``mpii_get_sequence_info``); annotation
#: rows past these have no frame.
MPII3D_FRAME_COUNTS: dict[tuple[int, int], int] = {
    (1, 1): 6416, (1, 2): 12430, (2, 1): 6502, (2, 2): 6081, (3, 1): 12488, (3, 2): 12283,
    (4, 1): 6171, (4, 2): 6675, (5, 1): 12820, (5, 2): 12312, (6, 1): 6188, (6, 2): 6145,
    (7, 1): 6239, (7, 2): 6320, (8, 1): 6468, (8, 2): 6054}

#: The files of the released training set (named in the error for a missing one).
TRAIN_LAYOUT = ("the MPI-INF-3DHP training folder with S<s>/Seq<q>/annot.mat, camera.calibration and "
                "imageSequence/video_<c>.avi (or frames extracted to imageFrames/video_<c>/"
                "frame_<n:06d>.jpg) (https://vcai.mpi-inf.mpg.de/3dhp-dataset/)")


def read_calibration(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """The cameras of a training sequence's ``camera.calibration`` (Skeletool format V1.0).

    Returns camera id -> {"K": (3, 3) pixels, "R": (3, 3), "t": (3,) metres (world -> camera:
    X_cam = R X_world + t), "size": (width, height)}. A malformed file raises ``ValueError``
    naming it, the camera and the key.
    """
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    if not lines or not lines[0].strip().startswith("Skeletool Camera Calibration File"):
        raise ValueError(f"{path}: not a Skeletool camera calibration file (first line "
                         f"{lines[0].strip() if lines else ''!r})")
    raw: dict[int, dict[str, list[float]]] = {}
    current: int | None = None
    for number, line in enumerate(lines[1:], 2):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "name":
                current = int(parts[1])
                raw[current] = {}
            elif current is None:
                raise ValueError("an entry before the first 'name'")
            else:
                raw[current][parts[0]] = [float(v) for v in parts[1:]]
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path} line {number}: malformed entry {line.strip()!r}: {err}") from None
    cameras = {}
    for cam, entries in raw.items():
        where = f"{path} camera {cam}"
        intrinsic = check_array(check_key(entries, "intrinsic", where), (16,), where, "intrinsic",
                                  exact=True)
        extrinsic = check_array(check_key(entries, "extrinsic", where), (16,), where, "extrinsic",
                                  exact=True)
        size = check_array(check_key(entries, "size", where), (2,), where, "size", exact=True,
                             finite=True)
        K, E = intrinsic.reshape(4, 4)[:3, :3], extrinsic.reshape(4, 4)
        check_intrinsics(K, where, "intrinsic")
        check_rotation(E[:3, :3], where, "extrinsic")
        check_finite_array(E[:3, 3], where, "extrinsic")
        if not ((size >= 1).all() and (size == np.round(size)).all()):
            raise ValueError(f"{where}: key 'size' must be a positive width and height in pixels, got "
                             f"{size.tolist()}")
        cameras[cam] = {"K": K.copy(), "R": E[:3, :3].copy(), "t": E[:3, 3] / 1000.0,
                        "size": (int(size[0]), int(size[1]))}
    return cameras


def _frame_source(seq_dir: Path, subject: int, sequence: int, camera: int):
    """How camera ``camera``'s frames of a sequence are stored: a function row -> (path, video
    frame index or None), from the first layout present (SPIN's extracted frames, HybrIK's, the
    video)."""
    spin = seq_dir / "imageFrames" / f"video_{camera}"
    if spin.is_dir():
        return lambda row: (spin / f"frame_{row + 1:06d}.jpg", None)
    tag = f"S{subject}_Seq{sequence}_V{camera}"
    hybrik = seq_dir / "images" / tag
    if hybrik.is_dir():
        return lambda row: (hybrik / f"img_{tag}_{row + 1:06d}.jpg", None)
    video = seq_dir / "imageSequence" / f"video_{camera}.avi"
    if video.is_file():
        return lambda row: (video, row)
    raise FileNotFoundError(f"no frames of camera {camera} in {seq_dir}: expected {video}, or frames "
                            f"extracted to {spin}/frame_<n:06d>.jpg or {hybrik}/img_{tag}_<n:06d>.jpg")


def _cell(array: Any, index: int, where: str, key: str, width: int) -> np.ndarray:
    """Camera ``index``'s (F, width) matrix of an annot.mat cell array (14 x 1)."""
    cells = np.asarray(array, dtype=object).reshape(-1)
    if index >= len(cells):
        raise ValueError(f"{where}: key {key!r} has {len(cells)} camera cells, camera cell {index} asked for")
    value = check_array(cells[index], (width,), where, key)
    return value.reshape(-1, width)


def mpii3d_train_records(root: str | os.PathLike, subjects: tuple[int, ...] | None = None,
                         sequences: tuple[int, ...] | None = None,
                         cameras: tuple[int, ...] | str = "vnect", frame_step: int = 10) -> list[Record]:
    """Records of the released training set: every ``frame_step``-th annotated frame of the chosen
    subjects (default: every ``S<s>`` folder present), sequences (default: every ``Seq<q>``
    present) and cameras (a name of :data:`MPII3D_CAMERA_SETS` or camera ids; default "vnect", the
    set SPIN trains on). Joints only: MPI-INF-3DHP has no SMPL."""
    root = check_dir(root, TRAIN_LAYOUT)
    check_int(frame_step, "frame_step", 1)
    if isinstance(cameras, str):
        if cameras not in MPII3D_CAMERA_SETS:
            raise ValueError(f"cameras must be camera ids or one of {sorted(MPII3D_CAMERA_SETS)}, "
                             f"got {cameras!r}")
        cameras = MPII3D_CAMERA_SETS[cameras]
    records = []
    for s, s_dir in chosen_folders(root, "S", subjects, "s", TRAIN_LAYOUT):
        for q, q_dir in chosen_folders(s_dir, "Seq", sequences, "q", TRAIN_LAYOUT):
            annot = check_file(q_dir / "annot.mat", TRAIN_LAYOUT)
            calib = read_calibration(check_file(q_dir / "camera.calibration", TRAIN_LAYOUT))
            mat = read_mat(annot, ["annot2", "annot3", "cameras"])
            where = str(annot)
            for key in ("annot2", "annot3"):
                check_key(mat, key, where)
            cam_ids = (np.asarray(mat["cameras"]).reshape(-1).astype(int) if "cameras" in mat
                       else np.arange(np.asarray(mat["annot2"], dtype=object).size))
            for cell, cam in enumerate(cam_ids):
                if int(cam) not in cameras:
                    continue
                cam = int(cam)
                cam_where = f"{annot} camera {cam}"
                uv = _cell(mat["annot2"], cell, cam_where, "annot2", 56).reshape(-1, 28, 2)
                xyz = _cell(mat["annot3"], cell, cam_where, "annot3", 84).reshape(-1, 28, 3)
                if len(uv) != len(xyz):
                    raise ValueError(f"{cam_where}: annot2 has {len(uv)} frames, annot3 {len(xyz)}")
                if cam not in calib:
                    raise ValueError(f"{q_dir / 'camera.calibration'}: no camera {cam} (annot.mat has it)")
                K, size = calib[cam]["K"], calib[cam]["size"]
                source = _frame_source(q_dir, s, q, cam)
                n = min(len(uv), MPII3D_FRAME_COUNTS.get((s, q), len(uv)))
                for row in range(0, n, frame_step):
                    rec_where = f"{cam_where} frame {row}"
                    joints3d, kp, box = joint_labels(xyz[row], uv[row], MPII3D_JOINTS, size, rec_where)
                    if box is None:
                        continue  # fewer than 2 joints in the image: nothing to crop
                    image, video_frame = source(row)
                    records.append(Record(
                        image=image, pose=None, betas=None, transl=None, K=K.copy(), box=box,
                        joints3d=joints3d, keypoints2d=kp, source=rec_where,
                        extra={"subject": s, "sequence": q, "camera": cam, "frame": row,
                               "video_frame": video_frame, "size": size}))
    return records

"""MPI-INF-3DHP's released test set (``format="raw"``, ``split="test"``), ``root`` holding ``TS1``
... ``TS6`` (or their parent ``mpi_inf_3dhp_test_set``)::

    TS<k>/annot_data.mat                   MATLAB v7.3 (HDF5; read with h5py, ``pip install h5py``)
                                           or a v5 copy: annot2 (2 x 17 x 1 x N), annot3,
                                           univ_annot3 (3 x 17 x 1 x N, mm), valid_frame (N)
    TS<k>/imageSequence/img_<n:06d>.jpg    n = frame index + 1

Only frames with ``valid_frame`` 1 are kept. The test set ships no intrinsics in its annotations:
its evaluation code (``mpii_perspective_correction_code``) uses a principal point at the image
centre and f = width / 10 mm * focal length, 7.320339203 mm for TS1-4 (2048 x 2048 studio) and
8.770747185 mm for TS5-6 (1920 x 1080 outdoor), which kinediff follows with each sequence's
image size. ``joints3d`` are ``annot3`` (metric); ``extra["joints3d_univ"]`` the universal-height
``univ_annot3`` that the official PCK / AUC are scored on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kinediff.core.arrays import read_mat
from kinediff.core.checks import check_dir, check_file, check_finite_array, check_int, check_key
from kinediff.core.conventions import map_joints
from kinediff.data.base import Record
from kinediff.data.mpii3d.common import (
    MPII3D_TEST_JOINTS,
    chosen_folders,
    image_file_size,
    joint_labels,
    numbered_folders,
)

__all__ = ["TEST_LAYOUT", "mpii3d_test_intrinsics", "mpii3d_test_records"]

#: The test sequences' lens (focal length in mm on a 10 mm wide sensor) and published image size
#: (width, height), from the test set's ``mpii_perspective_correction_code``.
_TEST_LENS = {1: (7.320339203, (2048, 2048)), 2: (7.320339203, (2048, 2048)),
              3: (7.320339203, (2048, 2048)), 4: (7.320339203, (2048, 2048)),
              5: (8.770747185, (1920, 1080)), 6: (8.770747185, (1920, 1080))}
_TEST_SENSOR_MM = 10.0

#: The files of the released test set (named in the error for a missing one).
TEST_LAYOUT = ("the MPI-INF-3DHP test folder (mpi_inf_3dhp_test_set) with TS<k>/annot_data.mat and "
               "TS<k>/imageSequence/img_<n:06d>.jpg")


def mpii3d_test_intrinsics(sequence: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """The intrinsics (3, 3) of test sequence TS<sequence> (1-6) for images of ``size`` (width,
    height; default the published 2048 x 2048 for TS1-4, 1920 x 1080 for TS5-6): the test set's
    evaluation code's f = width / 10 mm * lens (7.320339203 mm for TS1-4, 8.770747185 mm for TS5-6)
    and the image centre."""
    if sequence not in _TEST_LENS:
        raise ValueError(f"MPI-INF-3DHP test sequences are TS1 ... TS6, got TS{sequence}")
    lens, published = _TEST_LENS[sequence]
    w, h = published if size is None else size
    f = w / _TEST_SENSOR_MM * lens
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])


def _test_root(root: Path) -> Path:
    nested = root / "mpi_inf_3dhp_test_set"
    return nested if not numbered_folders(root, "TS") and nested.is_dir() else root


def mpii3d_test_records(root: str | os.PathLike, sequences: tuple[int, ...] | None = None,
                        frame_step: int = 1) -> list[Record]:
    """Records of the valid frames of the test set (every ``frame_step``-th; sequences default:
    every ``TS<k>`` folder present). ``joints3d`` from ``annot3``; ``extra["joints3d_univ"]``
    (17, 4) from ``univ_annot3``, ``extra["activity"]`` from ``activity_annotation``."""
    root = _test_root(check_dir(root, TEST_LAYOUT))
    check_int(frame_step, "frame_step", 1)
    records = []
    for k, ts_dir in chosen_folders(root, "TS", sequences, "k", TEST_LAYOUT):
        if k not in _TEST_LENS:
            raise ValueError(f"{ts_dir}: MPI-INF-3DHP test sequences are TS1 ... TS6")
        annot = check_file(ts_dir / "annot_data.mat", TEST_LAYOUT)
        where = str(annot)
        mat = read_mat(annot, ["annot2", "annot3", "univ_annot3", "valid_frame", "activity_annotation"])
        arrays = {}
        for key, dim in (("annot2", 2), ("annot3", 3), ("univ_annot3", 3)):
            value = np.asarray(check_key(mat, key, where))
            # MATLAB (dim, 17, 1, N); a one-frame file may lose its trailing axes
            value = value.reshape(dim, 17, -1) if value.ndim in (2, 3, 4) and value.shape[:2] == (dim, 17) \
                else None
            if value is None:
                raise ValueError(f"{where}: key {key!r} has shape {np.shape(mat[key])}, expected "
                                 f"({dim}, 17, 1, N)")
            arrays[key] = value.transpose(2, 1, 0).astype(np.float64)  # (N, 17, dim)
        valid = np.asarray(check_key(mat, "valid_frame", where)).reshape(-1)
        n = len(valid)
        for key, value in arrays.items():
            if len(value) != n:
                raise ValueError(f"{where}: key {key!r} has {len(value)} frames, valid_frame {n}")
        activity = np.asarray(mat.get("activity_annotation", np.zeros(n))).reshape(-1)
        frames = [i for i in np.flatnonzero(valid > 0)][::frame_step]
        size = None
        if frames:
            size = image_file_size(ts_dir / "imageSequence" / f"img_{frames[0] + 1:06d}.jpg")
        K = mpii3d_test_intrinsics(k, size)
        size = size or _TEST_LENS[k][1]
        for i in frames:
            rec_where = f"{where} frame {i}"
            joints3d, kp, box = joint_labels(arrays["annot3"][i], arrays["annot2"][i], MPII3D_TEST_JOINTS,
                                        size, rec_where)
            if box is None:
                continue
            univ_mm = check_finite_array(arrays["univ_annot3"][i], rec_where, "univ_annot3")
            univ, univ_valid = map_joints(univ_mm / 1000.0, MPII3D_TEST_JOINTS)
            records.append(Record(
                image=ts_dir / "imageSequence" / f"img_{i + 1:06d}.jpg", pose=None, betas=None,
                transl=None, K=K.copy(), box=box, joints3d=joints3d, keypoints2d=kp, source=rec_where,
                extra={"sequence": k, "frame": int(i), "joints3d_univ": np.concatenate(
                    [univ, univ_valid[:, None]], 1),
                    "activity": int(activity[i]) if i < len(activity) else 0}))
    return records

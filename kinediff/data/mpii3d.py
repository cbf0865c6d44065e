"""MPI-INF-3DHP: the released training and test sets, and the preprocessed files other methods
read (NeuralAnnot / Hand4Whole JSON, HybrIK / VirtualMarker JSON, SPIN npz).

MPI-INF-3DHP has measured 3D joints (markerless multi-view capture) but no SMPL; its samples have
``joints3d`` (camera frame, metres) and ``keypoints2d`` in :data:`~kinediff.core.conventions.H36M_JOINTS`
order, and SMPL only from a fit (NeuralAnnot, SPIN's static fits), marked
``extra["pseudo_gt"] = True``.

Training set (``format="raw"``, ``split="train"``), ``root`` holding ``S1`` ... ``S8``::

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
advises. Videos are read with PyAV (``pip install kinediff[video]``), seeking to the frame.

Test set (``format="raw"``, ``split="test"``), ``root`` holding ``TS1`` ... ``TS6`` (or their parent
``mpi_inf_3dhp_test_set``)::

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

Joints: the 28-joint training set and the 17-joint test set are named as the data set's
``mpii_get_joint_set`` names them and mapped to H36M by name (:data:`MPII3D_JOINTS`,
:data:`MPII3D_TEST_JOINTS`): MPI's ``spine`` is H36M's spine (``torso``), its ``neck`` H36M's
thorax (``neck``), its ``head`` H36M's neck/nose joint (``nose``) and ``head_top`` the head
(``head``), as SPIN, HybrIK and the data set's own H36M map pair them. ``keypoints2d`` are the
released 2D joints, visible where inside the image; the box is the 2D joints' extent (frames with
fewer than 2 joints inside the image are left out).

Other formats (``format=``):

- ``"neuralannot"`` (training set; the Hand4Whole / 3DCrowdNet / NeuralAnnot layout, ``root``
  holding): ``MPI-INF-3DHP_1k.json`` (COCO: images with subject_idx, seq_idx, frame_idx,
  cam_idx; annotations with bbox), ``MPI-INF-3DHP_camera_1k.json`` (subject -> seq -> cam: R, t
  mm, focal, princpt), ``MPI-INF-3DHP_joint_3d.json`` (subject -> seq -> frame: 17 x 3 world mm,
  the test set's joint order), ``MPI-INF-3DHP_SMPL_NeuralAnnot.json`` (subject -> seq -> frame:
  world-frame neutral SMPL pose, shape, trans) and ``images_1k/S<s>/Seq<q>/imageSequence/<file>``.
  SMPL is moved into the camera frame (:func:`~kinediff.data.base.camera_frame_smpl`) and marked
  pseudo-GT; frames without a fit get joints only.
- ``"hybrik"`` (the file VirtualMarker and HybrIK read): ``annotation_mpi_inf_3dhp_<split>.json``
  (images {id, file_name, width, height}; annotations {image_id, bbox, cam_param
  {intrinsic_param 3 x 4}, keypoints_cam: 28 (train) or 17 (test) x 3, camera frame, mm}) with
  images under ``mpi_inf_3dhp_<split>_set/``.
- ``"spin"``: SPIN's ``mpi_inf_3dhp_<split>.npz`` (``annotation`` names another file) with
  ``imgname`` relative to ``root`` (see :func:`mpii3d_spin_records`).
- ``"coco"``: ``MPI-INF-3DHP_<split>.json`` as :func:`convert_mpii3d` writes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.checks import check_file_array_size
from kinediff.core.conventions import H36M_JOINTS, map_joints
from kinediff.core.io import load_json
from kinediff.data.base import (
    PersonDataset,
    Record,
    camera_frame_smpl,
    camera_matrix,
    require_array,
    require_box,
    require_dir,
    require_file,
    require_finite,
    require_ids,
    require_int,
    require_intrinsics,
    require_key,
    require_name,
    require_numbers,
    require_pose,
    require_rotation,
    root_joint,
)
from kinediff.data.files import check_mat_v5_size, read_npz
from kinediff.data.images import read_image
from kinediff.data.pw3d import coco_entries, coco_records
from kinediff.data.spin import image_names

__all__ = ["MPII3D_CAMERA_SETS", "MPII3D_FRAME_COUNTS", "MPII3D_JOINTS", "MPII3D_TEST_JOINTS",
           "MPIINF3DHP", "SPIN_MPII3D_SLOTS", "convert_mpii3d", "mpii3d_coco_records",
           "mpii3d_hybrik_records", "mpii3d_neuralannot_records", "mpii3d_spin_records",
           "mpii3d_test_intrinsics", "mpii3d_test_records", "mpii3d_train_records", "read_avi_frame",
           "read_calibration", "read_mat"]

#: The 28 joints of the training set in ``annot.mat``'s order (the data set's
#: ``mpii_get_joint_set('all')``), spelled as :data:`~kinediff.core.conventions.H36M_JOINTS` where the
#: joint is the same one: MPI ``spine`` -> ``torso``, ``neck`` -> ``neck`` (H36M thorax),
#: ``head`` -> ``nose`` (H36M neck/nose), ``head_top`` -> ``head``. The others keep their own names
#: (spine2-4, clavicles, hands, feet, toes) and are not mapped.
MPII3D_JOINTS: tuple[str, ...] = (
    "spine3", "spine4", "spine2", "torso", "pelvis", "neck", "nose", "head",
    "l_clavicle", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_foot", "l_toe",
    "r_hip", "r_knee", "r_ankle", "r_foot", "r_toe")

#: The 17 joints of the test set (``mpii_get_joint_set('relevant')``: head_top, neck,
#: right_shoulder, right_elbow, right_wrist, left_shoulder, left_elbow, left_wrist, right_hip,
#: right_knee, right_ankle, left_hip, left_knee, left_ankle, pelvis, spine, head) in kinediff's
#: names; also the order of NeuralAnnot's ``MPI-INF-3DHP_joint_3d.json``.
MPII3D_TEST_JOINTS: tuple[str, ...] = (
    "head", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "torso", "nose")

#: What SPIN's MPI-INF-3DHP preprocessing writes into each of the 24 slots of its ``part`` / ``S``
#: arrays (SPIN's ``joints_idx``): slot 17 (SPIN's "Jaw (H36M)") holds MPI's head, slot 18
#: ("Head (H36M)") the head top, slot 12 ("Neck (LSP)") the neck; the slots it leaves empty keep
#: SPIN's names (LSP head top, MPII thorax, nose, eyes, ears) and are not mapped.
SPIN_MPII3D_SLOTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
    "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "lsp_head_top", "pelvis", "mpii_thorax",
    "torso", "nose", "head", "spin_nose", "l_eye", "r_eye", "l_ear", "r_ear")

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

#: The test sequences' lens (focal length in mm on a 10 mm wide sensor) and published image size
#: (width, height), from the test set's ``mpii_perspective_correction_code``.
_TEST_LENS = {1: (7.320339203, (2048, 2048)), 2: (7.320339203, (2048, 2048)),
              3: (7.320339203, (2048, 2048)), 4: (7.320339203, (2048, 2048)),
              5: (8.770747185, (1920, 1080)), 6: (8.770747185, (1920, 1080))}
_TEST_SENSOR_MM = 10.0

TRAIN_LAYOUT = ("the MPI-INF-3DHP training folder with S<s>/Seq<q>/annot.mat, camera.calibration and "
                "imageSequence/video_<c>.avi (or frames extracted to imageFrames/video_<c>/"
                "frame_<n:06d>.jpg) (https://vcai.mpi-inf.mpg.de/3dhp-dataset/)")
TEST_LAYOUT = ("the MPI-INF-3DHP test folder (mpi_inf_3dhp_test_set) with TS<k>/annot_data.mat and "
               "TS<k>/imageSequence/img_<n:06d>.jpg")
NEURALANNOT_LAYOUT = ("the NeuralAnnot / Hand4Whole MPI_INF_3DHP/data folder with MPI-INF-3DHP_1k.json, "
                      "MPI-INF-3DHP_camera_1k.json, MPI-INF-3DHP_joint_3d.json, "
                      "MPI-INF-3DHP_SMPL_NeuralAnnot.json and images_1k/S<s>/Seq<q>/imageSequence/")
HYBRIK_LAYOUT = ("the HybrIK / VirtualMarker 3dhp folder with annotation_mpi_inf_3dhp_<split>.json and "
                 "mpi_inf_3dhp_<split>_set/<file_name>")
COCO_LAYOUT = ("MPI-INF-3DHP_<split>.json (written by `kinediff data convert mpi-inf-3dhp`) with the "
               "images at <root>/<file_name>")
SPLITS = ("train", "test")
FORMATS = ("raw", "coco", "neuralannot", "hybrik", "spin")


# -- files ----------------------------------------------------------------------------------------

def read_mat(path: str | os.PathLike, names: list[str]) -> dict[str, Any]:
    """The variables ``names`` (those present) of a MATLAB file, in MATLAB's axis order.

    v5 / v7 files are read with ``scipy.io.loadmat``; v7.3 files (HDF5, e.g. the test set's
    ``annot_data.mat``) with h5py, their numeric arrays transposed back to MATLAB's order (h5py
    sees them reversed). Raises ``ValueError`` naming the file when it is not a readable MATLAB
    file, and ``ImportError`` when a v7.3 file meets a Python without h5py.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        header = fh.read(128)
    if header.startswith(b"MATLAB 7.3 MAT-file"):
        try:
            import h5py
        except ImportError:
            raise ImportError(f"{path} is a MATLAB v7.3 (HDF5) file: reading it needs h5py "
                              f"(pip install h5py), or re-save it as v7 in MATLAB") from None
        out: dict[str, Any] = {}
        try:
            with h5py.File(path, "r") as f:
                for name in names:
                    if name not in f:
                        continue
                    node = f[name]
                    if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "biuf":
                        raise ValueError(f"{path}: variable {name!r} is not a numeric array "
                                         f"(cells and structs of v7.3 files are not supported)")
                    check_file_array_size(tuple(int(d) for d in node.shape), node.dtype.itemsize,
                                          f"{path}", f"variable {name!r}")
                    out[name] = np.asarray(node[()]).T
        except OSError as err:
            raise ValueError(f"{path} is not a readable MATLAB v7.3 (HDF5) file: {err}") from None
        return out
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    check_mat_v5_size(path)
    try:
        return {k: v for k, v in loadmat(str(path), variable_names=names).items() if k in names}
    except (MatReadError, ValueError, TypeError, OSError, EOFError, IndexError, KeyError,
            NotImplementedError) as err:  # scipy signals damaged files with any of these
        raise ValueError(f"{path} is not a readable MATLAB file: {err}") from None


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
        intrinsic = require_array(require_key(entries, "intrinsic", where), (16,), where, "intrinsic",
                                  exact=True)
        extrinsic = require_array(require_key(entries, "extrinsic", where), (16,), where, "extrinsic",
                                  exact=True)
        size = require_array(require_key(entries, "size", where), (2,), where, "size", exact=True,
                             finite=True)
        K, E = intrinsic.reshape(4, 4)[:3, :3], extrinsic.reshape(4, 4)
        require_intrinsics(K, where, "intrinsic")
        require_rotation(E[:3, :3], where, "extrinsic")
        require_finite(E[:3, 3], where, "extrinsic")
        if not ((size >= 1).all() and (size == np.round(size)).all()):
            raise ValueError(f"{where}: key 'size' must be a positive width and height in pixels, got "
                             f"{size.tolist()}")
        cameras[cam] = {"K": K.copy(), "R": E[:3, :3].copy(), "t": E[:3, 3] / 1000.0,
                        "size": (int(size[0]), int(size[1]))}
    return cameras


class _OpenVideo:
    """A video kept open between frame reads: its PyAV container, decoder and position."""

    def __init__(self, path: Path, container: Any) -> None:
        self.path, self.container = path, container
        self.frames: Any = None  # the decoder's frame iterator, None until positioned
        self.next: int | None = None  # index of the frame it yields next, None if unknown
        self.timestamps = True  # False once frames without time stamps were met

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container, self.frames, self.next = None, None, None


_OPEN_VIDEOS: weakref.WeakSet[_OpenVideo] = weakref.WeakSet()


def _close_open_videos() -> None:
    """Close every open video before a fork (a DataLoader worker): FFmpeg's decoder threads do not
    survive one, and a child that inherits a decoder mid-use can hang. They reopen on the next read."""
    for video in list(_OPEN_VIDEOS):
        video.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_open_videos)


def read_avi_frame(path: Path, index: int, cache: dict | None = None) -> torch.Tensor:
    """Frame ``index`` (0-based, decode order) of a video as (3, H, W) float in [0, 1].

    Seeks to the key frame before it and decodes forward (PyAV), so long 2048 x 2048 videos are
    never held in memory; ``cache`` keeps the open video between calls (closed before the process
    forks), and reading frames in increasing order decodes each frame once. A missing file raises
    ``FileNotFoundError``, an undecodable one or a frame past the end ``ValueError``.
    """
    try:
        import av
    except ImportError:
        raise ImportError("reading MPI-INF-3DHP's .avi videos needs PyAV: pip install "
                          "'kinediff[video]' (or pip install av), or extract the frames") from None
    video = cache.get("video") if cache is not None else None
    if video is None or video.path != path or video.container is None:
        if video is not None:
            video.close()
        if not path.is_file():
            raise FileNotFoundError(f"no video at {path}")
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as err:
            raise ValueError(f"{path} is not a decodable video: {err}") from None
        if not container.streams.video:
            container.close()
            raise ValueError(f"{path} has no video stream")
        video = _OpenVideo(path, container)
        _OPEN_VIDEOS.add(video)
        if cache is not None:
            cache["video"] = video
    stream = video.container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    start = stream.start_time or 0

    def seek() -> None:  # to the key frame before ``index`` (or the start when frames have no times)
        if video.timestamps and rate and stream.time_base:
            target = start + round(index / float(rate * stream.time_base))
            video.container.seek(target, stream=stream, backward=True, any_frame=False)
            video.next = None
        else:
            video.container.seek(0, stream=stream)
            video.next = 0
        video.frames = video.container.decode(stream)

    try:
        if video.frames is None or video.next is None or not video.next <= index <= video.next + 50:
            seek()
        while (frame := next(video.frames, None)) is not None:
            if frame.pts is not None and rate:
                i = round(float((frame.pts - start) * stream.time_base * rate))
            elif video.next is None:  # no time stamps: count frames from the start instead
                video.timestamps = False
                seek()
                continue
            else:
                i = video.next
            video.next = i + 1
            if i == index:
                rgb = frame.to_ndarray(format="rgb24")
                return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
            if i > index:
                break
        video.frames = None
        raise ValueError(f"{path} has no frame {index}")
    except (av.FFmpegError, OSError) as err:
        video.frames = None
        raise ValueError(f"{path} is not a decodable video: {err}") from None
    finally:
        if cache is None:
            video.close()


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, or None if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (OSError, UnidentifiedImageError):
        return None


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


# -- labels ---------------------------------------------------------------------------------------

def _labels(joints_mm: np.ndarray | None, uv: np.ndarray, names: tuple[str, ...], size: tuple[int, int],
            where: str) -> tuple[np.ndarray | None, np.ndarray, tuple[float, ...] | None]:
    """joints3d (17, 4) in metres, keypoints2d (17, 3) and the box of one person from the data
    set's joints (J, 3) in mm (or None) and 2D joints (J, 2) in pixels, mapped by name.

    A 2D joint is visible where it lies inside the ``size`` = (width, height) image; the box is the
    extent of the visible 2D joints (None with fewer than 2). Joints that are not finite raise
    ``ValueError`` naming ``where``."""
    require_finite(uv, where, "2D joints")
    if joints_mm is not None:
        require_finite(joints_mm, where, "3D joints")
    w, h = size
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    kp, valid2 = map_joints(np.concatenate([uv, inside[:, None]], 1), names, where=where)
    kp[~valid2] = 0.0
    joints3d = None
    if joints_mm is not None:
        j3, valid3 = map_joints(joints_mm / 1000.0, names, where=where)
        joints3d = np.concatenate([j3, valid3[:, None]], 1)
    box = None
    if inside.sum() >= 2:
        lo, hi = uv[inside].min(0), uv[inside].max(0)
        box = (float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0)))
    return joints3d, kp, box


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (J, 2) of camera-frame points (J, 3) through K (3, 3)."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def _numbered(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """Sub-folders ``<prefix><k>`` of ``folder`` as (k, path), sorted by k."""
    found = []
    for p in folder.iterdir() if folder.is_dir() else []:
        m = re.fullmatch(re.escape(prefix) + r"(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


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
    value = require_array(cells[index], (width,), where, key)
    return value.reshape(-1, width)


def mpii3d_train_records(root: str | os.PathLike, subjects: tuple[int, ...] | None = None,
                         sequences: tuple[int, ...] | None = None,
                         cameras: tuple[int, ...] | str = "vnect", frame_step: int = 10) -> list[Record]:
    """Records of the released training set: every ``frame_step``-th annotated frame of the chosen
    subjects (default: every ``S<s>`` folder present), sequences (default: every ``Seq<q>``
    present) and cameras (a name of :data:`MPII3D_CAMERA_SETS` or camera ids; default "vnect", the
    set SPIN trains on). Joints only: MPI-INF-3DHP has no SMPL."""
    root = require_dir(root, TRAIN_LAYOUT)
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    if isinstance(cameras, str):
        if cameras not in MPII3D_CAMERA_SETS:
            raise ValueError(f"cameras must be camera ids or one of {sorted(MPII3D_CAMERA_SETS)}, "
                             f"got {cameras!r}")
        cameras = MPII3D_CAMERA_SETS[cameras]
    if subjects is None:
        subject_dirs = _numbered(root, "S")
        if not subject_dirs:
            raise FileNotFoundError(f"no S<s> folders in {root}; expected {TRAIN_LAYOUT}")
    else:
        subject_dirs = [(s, require_dir(root / f"S{s}", TRAIN_LAYOUT)) for s in subjects]
    records = []
    for s, s_dir in subject_dirs:
        if sequences is None:
            seq_dirs = _numbered(s_dir, "Seq")
            if not seq_dirs:
                raise FileNotFoundError(f"no Seq<q> folders in {s_dir}; expected {TRAIN_LAYOUT}")
        else:
            seq_dirs = [(q, require_dir(s_dir / f"Seq{q}", TRAIN_LAYOUT)) for q in sequences]
        for q, q_dir in seq_dirs:
            annot = require_file(q_dir / "annot.mat", TRAIN_LAYOUT)
            calib = read_calibration(require_file(q_dir / "camera.calibration", TRAIN_LAYOUT))
            mat = read_mat(annot, ["annot2", "annot3", "cameras"])
            where = str(annot)
            for key in ("annot2", "annot3"):
                require_key(mat, key, where)
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
                    joints3d, kp, box = _labels(xyz[row], uv[row], MPII3D_JOINTS, size, rec_where)
                    if box is None:
                        continue  # fewer than 2 joints in the image: nothing to crop
                    image, video_frame = source(row)
                    records.append(Record(
                        image=image, pose=None, betas=None, transl=None, K=K.copy(), box=box,
                        joints3d=joints3d, keypoints2d=kp, source=rec_where,
                        extra={"subject": s, "sequence": q, "camera": cam, "frame": row,
                               "video_frame": video_frame, "size": size}))
    return records


def _test_root(root: Path) -> Path:
    nested = root / "mpi_inf_3dhp_test_set"
    return nested if not _numbered(root, "TS") and nested.is_dir() else root


def mpii3d_test_records(root: str | os.PathLike, sequences: tuple[int, ...] | None = None,
                        frame_step: int = 1) -> list[Record]:
    """Records of the valid frames of the test set (every ``frame_step``-th; sequences default:
    every ``TS<k>`` folder present). ``joints3d`` from ``annot3``; ``extra["joints3d_univ"]``
    (17, 4) from ``univ_annot3``, ``extra["activity"]`` from ``activity_annotation``."""
    root = _test_root(require_dir(root, TEST_LAYOUT))
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    if sequences is None:
        ts_dirs = _numbered(root, "TS")
        if not ts_dirs:
            raise FileNotFoundError(f"no TS<k> folders in {root}; expected {TEST_LAYOUT}")
    else:
        ts_dirs = [(k, require_dir(root / f"TS{k}", TEST_LAYOUT)) for k in sequences]
    records = []
    for k, ts_dir in ts_dirs:
        if k not in _TEST_LENS:
            raise ValueError(f"{ts_dir}: MPI-INF-3DHP test sequences are TS1 ... TS6")
        annot = require_file(ts_dir / "annot_data.mat", TEST_LAYOUT)
        where = str(annot)
        mat = read_mat(annot, ["annot2", "annot3", "univ_annot3", "valid_frame", "activity_annotation"])
        arrays = {}
        for key, dim in (("annot2", 2), ("annot3", 3), ("univ_annot3", 3)):
            value = np.asarray(require_key(mat, key, where))
            # MATLAB (dim, 17, 1, N); a one-frame file may lose its trailing axes
            value = value.reshape(dim, 17, -1) if value.ndim in (2, 3, 4) and value.shape[:2] == (dim, 17) \
                else None
            if value is None:
                raise ValueError(f"{where}: key {key!r} has shape {np.shape(mat[key])}, expected "
                                 f"({dim}, 17, 1, N)")
            arrays[key] = value.transpose(2, 1, 0).astype(np.float64)  # (N, 17, dim)
        valid = np.asarray(require_key(mat, "valid_frame", where)).reshape(-1)
        n = len(valid)
        for key, value in arrays.items():
            if len(value) != n:
                raise ValueError(f"{where}: key {key!r} has {len(value)} frames, valid_frame {n}")
        activity = np.asarray(mat.get("activity_annotation", np.zeros(n))).reshape(-1)
        frames = [i for i in np.flatnonzero(valid > 0)][::frame_step]
        size = None
        if frames:
            size = _image_size(ts_dir / "imageSequence" / f"img_{frames[0] + 1:06d}.jpg")
        K = mpii3d_test_intrinsics(k, size)
        size = size or _TEST_LENS[k][1]
        for i in frames:
            rec_where = f"{where} frame {i}"
            joints3d, kp, box = _labels(arrays["annot3"][i], arrays["annot2"][i], MPII3D_TEST_JOINTS,
                                        size, rec_where)
            if box is None:
                continue
            univ, univ_valid = map_joints(require_finite(arrays["univ_annot3"][i], rec_where, "univ_annot3")
                                          / 1000.0, MPII3D_TEST_JOINTS)
            records.append(Record(
                image=ts_dir / "imageSequence" / f"img_{i + 1:06d}.jpg", pose=None, betas=None,
                transl=None, K=K.copy(), box=box, joints3d=joints3d, keypoints2d=kp, source=rec_where,
                extra={"sequence": k, "frame": int(i), "joints3d_univ": np.concatenate(
                    [univ, univ_valid[:, None]], 1),
                    "activity": int(activity[i]) if i < len(activity) else 0}))
    return records


def mpii3d_neuralannot_records(root: str | os.PathLike, body: BodyLike | None = None,
                               frame_step: int = 1, smpl: bool = True) -> list[Record]:
    """Records of the NeuralAnnot / Hand4Whole files (training set, images at 1k resolution):
    measured joints (world mm -> camera metres) and, with ``smpl``, the NeuralAnnot SMPL fit moved
    into the camera frame (``body``'s neutral model gives J0) and marked ``pseudo_gt``. Frames
    whose ``frame_idx`` is not a multiple of ``frame_step`` are left out (Hand4Whole: 3)."""
    root = require_dir(root, NEURALANNOT_LAYOUT)
    files = {k: require_file(root / f"MPI-INF-3DHP_{k}.json", NEURALANNOT_LAYOUT)
             for k in ("1k", "camera_1k", "joint_3d")}
    data, cameras, joints = (load_json(files[k]) for k in ("1k", "camera_1k", "joint_3d"))
    params = None
    if smpl:
        path = require_file(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", NEURALANNOT_LAYOUT +
                            " (or smpl=False for joints only)")
        params = load_json(path)
        neutral = BodySet.of(body).for_gender("neutral", "MPI-INF-3DHP NeuralAnnot (neutral-model fits)")
    images = require_ids(require_key(data, "images", str(files["1k"])), str(files["1k"]))
    records = []
    for a, ann in enumerate(require_key(data, "annotations", str(files["1k"]))):
        where = f"{files['1k']} annotations[{a}]"
        image_id = require_int(require_key(ann, "image_id", where), where, "image_id")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the images")
        im = images[image_id]
        im_where = f"{where} (image {image_id})"
        s, q, frame, cam = (require_int(require_key(im, k, im_where), im_where, k)
                            for k in ("subject_idx", "seq_idx", "frame_idx", "cam_idx"))
        if frame % frame_step:
            continue
        cam_where = f"{files['camera_1k']} subject {s} seq {q} camera {cam}"
        cam_param = require_key(require_key(require_key(cameras, str(s), cam_where), str(q), cam_where),
                                str(cam), cam_where)
        R = require_rotation(require_key(cam_param, "R", cam_where), cam_where, "R")
        t = require_array(require_key(cam_param, "t", cam_where), (3,), cam_where, "t", exact=True,
                          finite=True) / 1000.0
        K = camera_matrix(require_key(cam_param, "focal", cam_where),
                          require_key(cam_param, "princpt", cam_where), cam_where)
        j_where = f"{files['joint_3d']} subject {s} seq {q} frame {frame}"
        world = require_array(require_key(require_key(require_key(joints, str(s), j_where), str(q), j_where),
                                          str(frame), j_where), (3,), j_where, "joints")
        if world.shape != (17, 3):
            raise ValueError(f"{j_where}: expected 17 x 3 joints, got {world.shape}")
        require_finite(world, j_where, "joints")
        cam_mm = world @ R.T + t * 1000.0
        size = _image_size_of(im, where)
        joints3d, kp, _ = _labels(cam_mm, _project(cam_mm, K), MPII3D_TEST_JOINTS, size, j_where)
        raw_box = ann.get("bbox")
        box = None if raw_box is None else require_box(raw_box, where, "bbox")
        pose = betas = transl = None
        extra: dict[str, Any] = {"subject": s, "sequence": q, "camera": cam, "frame": frame,
                                 "image_id": image_id}
        param = params.get(str(s), {}).get(str(q), {}).get(str(frame)) if params is not None else None
        if param is not None:
            p_where = f"{root / 'MPI-INF-3DHP_SMPL_NeuralAnnot.json'} subject {s} seq {q} frame {frame}"
            pose_w = require_pose(require_key(param, "pose", p_where), p_where, "pose")
            betas = require_array(require_key(param, "shape", p_where), (10,), p_where, "shape", exact=True,
                                  finite=True)
            trans_w = require_array(require_key(param, "trans", p_where), (3,), p_where, "trans", exact=True,
                                    finite=True)
            pose, transl = camera_frame_smpl(pose_w, trans_w, R, t, root_joint(neutral, betas).numpy())
            extra["pseudo_gt"] = True
        records.append(Record(
            image=root / "images_1k" / f"S{s}" / f"Seq{q}" / "imageSequence" / require_name(
                im, "file_name", where), pose=pose, betas=betas, transl=transl, K=K, box=box,
            joints3d=joints3d, keypoints2d=kp, source=where, extra=extra))
    return records


def mpii3d_hybrik_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of HybrIK's ``annotation_mpi_inf_3dhp_<split>.json`` (the file VirtualMarker reads):
    camera-frame joints (28 for train, 17 for test, mm), the 3 x 4 ``intrinsic_param``; 2D joints
    are the joints projected, as HybrIK and VirtualMarker make them."""
    root = require_dir(root, HYBRIK_LAYOUT)
    path = require_file(root / f"annotation_mpi_inf_3dhp_{split}.json", HYBRIK_LAYOUT)
    data = load_json(path)
    images = require_ids(require_key(data, "images", str(path)), str(path))
    folder = root / f"mpi_inf_3dhp_{split}_set"
    records = []
    for a, ann in enumerate(require_key(data, "annotations", str(path))):
        where = f"{path} annotations[{a}]"
        image_id = require_int(require_key(ann, "image_id", where), where, "image_id")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the images")
        im = images[image_id]
        cam = require_array(require_key(require_key(ann, "cam_param", where), "intrinsic_param", where),
                            (4,), where, "cam_param.intrinsic_param")
        if cam.shape != (3, 4):
            raise ValueError(f"{where}: key 'cam_param.intrinsic_param' has shape {cam.shape}, expected (3, 4)")
        K = require_intrinsics(cam[:, :3].copy(), where, "cam_param.intrinsic_param")
        joints = require_array(require_key(ann, "keypoints_cam", where), (3,), where, "keypoints_cam",
                               finite=True)
        names = {28: MPII3D_JOINTS, 17: MPII3D_TEST_JOINTS}.get(len(joints))
        if names is None:
            raise ValueError(f"{where}: key 'keypoints_cam' has {len(joints)} joints, expected 28 "
                             f"(train) or 17 (test)")
        size = _image_size_of(im, where)
        joints3d, kp, joint_box = _labels(joints, _project(joints, K), names, size, where)
        raw_box = ann.get("bbox")
        box = joint_box if raw_box is None else require_box(raw_box, where, "bbox")
        extra = {"image_id": image_id}
        if "activity_id" in ann:
            extra["activity"] = require_int(ann["activity_id"], where, "activity_id")
        records.append(Record(image=folder / require_name(im, "file_name", where), pose=None,
                              betas=None, transl=None, K=K, box=box, joints3d=joints3d, keypoints2d=kp,
                              source=where, extra=extra))
    return records


def _image_size_of(im: Any, where: str) -> tuple[int, int]:
    """(width, height) of a COCO-style image entry: positive integers."""
    size = tuple(require_int(require_key(im, k, where), where, k) for k in ("width", "height"))
    if min(size) < 1:
        raise ValueError(f"{where}: keys 'width' and 'height' must be positive, got {size}")
    return size  # type: ignore[return-value]


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
    ``mpi_inf_3dhp_test_set/TS<k>/...`` (K of :func:`mpii3d_test_intrinsics`). SPIN's ``S`` is
    root-relative (pelvis at 0; the test file's is the universal-height skeleton): kinediff places
    it in the camera frame with the translation that best reprojects it onto ``part`` (exact for
    the training file, whose ``S`` is ``annot3``). Where ``has_smpl`` is 1 the SPIN fit (``pose``
    camera-frame, ``shape``) becomes pseudo-GT SMPL with its root joint J0 at the placed pelvis
    (``body``'s neutral model gives J0; a fit's root and MPI's pelvis marker differ by a few cm).
    The box is SPIN's square (side 200 scale).
    """
    path = require_file(path, "SPIN's mpi_inf_3dhp_<split>.npz (imgname, center, scale, part, S[, pose, "
                              "shape, has_smpl])")
    root = require_dir(root, "the folder SPIN's imgname entries are relative to")
    arrays = read_npz(path, "SPIN's mpi_inf_3dhp_<split>.npz")
    missing = [k for k in ("imgname", "center", "scale", "part", "S") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    n = len(arrays["imgname"])
    for key, shape in (("center", (n, 2)), ("scale", (n,)), ("part", (n, 24, 3)), ("S", (n, 24, 4))):
        if arrays[key].shape != shape:
            raise ValueError(f"{path}: key {key!r} has shape {arrays[key].shape}, expected {shape}")
        require_numbers(arrays[key], str(path), key)
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
            require_finite(arrays[key][i], where, key)
        if not float(arrays["scale"][i]) > 0:
            raise ValueError(f"{where}: key 'scale' must be positive (the box side is 200 * scale), got "
                             f"{float(arrays['scale'][i])}")
        train = re.search(r"S(\d+)/Seq(\d+)/imageFrames/video_(\d+)/", name)
        test = re.search(r"TS(\d+)/imageSequence/", name)
        if train:
            s, q, cam = (int(v) for v in train.groups())
            calib_path = require_file(root / name.split("imageFrames/")[0] / "camera.calibration",
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
                test_sizes[k] = _image_size(root / name)
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
                require_finite(require_numbers(arrays[key][i], where, key), where, key)
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


def mpii3d_coco_records(root: str | os.PathLike, split: str, annotation: str | None = None) -> list[Record]:
    """Records of a COCO-style ``MPI-INF-3DHP_<split>.json`` (:func:`convert_mpii3d`), images at
    ``root/<file_name>``; the test split's ``univ_joint_cam`` comes back as
    ``extra["joints3d_univ"]``."""
    root = require_dir(root, COCO_LAYOUT)
    path = require_file(root / (annotation or f"MPI-INF-3DHP_{split}.json"), COCO_LAYOUT)

    def extra(ann: dict, where: str) -> dict[str, Any]:
        out = {k: ann[k] for k in ("subject", "sequence", "camera", "frame", "activity") if k in ann}
        if ann.get("univ_joint_cam") is not None:
            univ = require_array(ann["univ_joint_cam"], (3,), where, "univ_joint_cam")
            if univ.shape != (17, 3):
                raise ValueError(f"{where}: key 'univ_joint_cam' has shape {univ.shape}, expected (17, 3)")
            require_finite(univ, where, "univ_joint_cam")
            valid = require_array(ann.get("joint_valid", np.ones(17)), (17,), where, "joint_valid")
            out["joints3d_univ"] = np.concatenate([univ / 1000.0, (valid > 0)[:, None]], 1)
        return out

    return coco_records(path, lambda im, where: root / require_name(im, "file_name", where),
                        annotation_extra=extra)


class MPIINF3DHP(PersonDataset):
    """MPI-INF-3DHP in the common sample format (see the module doc for every layout).

    Samples carry ``joints3d`` / ``keypoints2d`` (``has_joints3d``, ``has_joints2d``); SMPL only
    from fits (``format="neuralannot"``, SPIN files with ``has_smpl``), as pseudo-GT.

    Args:
        root: the data folder of ``format`` (see the module doc).
        split: "train" or "test" (raw, hybrik, spin, coco; neuralannot is the training set).
        format: "raw", "coco", "neuralannot", "hybrik" or "spin".
        body: the SMPL model(s) labelling the pseudo-GT meshes (the files' fits are neutral-model
            fits: the neutral model converts them). Default the synthetic body.
        image_size, mesh_factors, crop_scale, gt_gender: see
            :class:`~kinediff.data.base.PersonDataset`.
        subjects, sequences: raw selection (training subjects 1-8 / sequences 1-2; test sequences
            1-6); default every folder present.
        cameras: raw training cameras, ids or a name of :data:`MPII3D_CAMERA_SETS` (default
            "vnect", SPIN's set).
        frame_step: keep every n-th frame (default: 10 for the raw training set, as SPIN; 1
            otherwise; neuralannot counts ``frame_idx``, as Hand4Whole's 3).
        annotation: the file name of a spin (default ``mpi_inf_3dhp_<split>.npz``) or coco
            (default ``MPI-INF-3DHP_<split>.json``) annotation inside ``root``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", format: str = "raw",
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None, subjects: tuple[int, ...] | None = None,
                 sequences: tuple[int, ...] | None = None, cameras: tuple[int, ...] | str = "vnect",
                 frame_step: int | None = None, annotation: str | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        bodies = BodySet.of(body)
        if format == "raw" and split == "train":
            records = mpii3d_train_records(root, subjects, sequences, cameras,
                                           10 if frame_step is None else frame_step)
        elif format == "raw":
            records = mpii3d_test_records(root, sequences, frame_step or 1)
        elif format == "neuralannot":
            if split != "train":
                raise ValueError("NeuralAnnot's MPI-INF-3DHP files cover the training set only")
            records = mpii3d_neuralannot_records(root, bodies, frame_step or 1)
        elif format == "hybrik":
            records = mpii3d_hybrik_records(root, split)
        elif format == "spin":
            root = require_dir(root, "the folder SPIN's imgname entries are relative to")
            records = mpii3d_spin_records(Path(root) / (annotation or f"mpi_inf_3dhp_{split}.npz"), root,
                                          bodies, crop_scale)
        else:
            records = mpii3d_coco_records(root, split, annotation)
        if frame_step is not None and format in ("hybrik", "spin", "coco"):
            records = records[::frame_step]
        super().__init__(records, bodies, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.format = Path(root), split, format
        self._video: dict[str, Any] = {}

    def _read(self, record: Record) -> torch.Tensor:
        frame = record.extra.get("video_frame")
        if frame is None:
            return read_image(record.image)
        return read_avi_frame(record.image, frame, self._video)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        univ = self.records[sample["index"]].extra.get("joints3d_univ")
        if univ is not None:
            sample["joints3d_univ"] = torch.as_tensor(univ, dtype=torch.float32)
        return sample

    def __getstate__(self) -> dict[str, Any]:  # an open video does not travel to workers
        state = dict(self.__dict__)
        state["_video"] = {}
        return state


def _frame_name(record: Record, split: str) -> str:
    """The file name, relative to the data root, of a raw record's image in the COCO-style file:
    the training set's frames in SPIN's extracted layout, the test set's as released."""
    e = record.extra
    if split == "train":
        return f"S{e['subject']}/Seq{e['sequence']}/imageFrames/video_{e['camera']}/frame_{e['frame'] + 1:06d}.jpg"
    return f"TS{e['sequence']}/imageSequence/img_{e['frame'] + 1:06d}.jpg"


def convert_mpii3d(src: str | os.PathLike, dst: str | os.PathLike, split: str = "train",
                   body: BodyLike | None = None, subjects: tuple[int, ...] | None = None,
                   sequences: tuple[int, ...] | None = None, cameras: tuple[int, ...] | str = "vnect",
                   frame_step: int | None = None, progress: bool = False) -> Path:
    """Write ``dst/MPI-INF-3DHP_<split>.json`` (COCO style: ``joint_cam`` mm, ``keypoints``,
    ``bbox``, K as ``cam_param``; the test split adds ``univ_joint_cam``) from the raw files in
    ``src`` (the selection arguments as :class:`MPIINF3DHP`), readable with
    ``MPIINF3DHP(dst, split, format="coco")``.

    ``file_name`` is relative to ``dst``: each image not already there is placed there -- copied,
    or, for frames only in a video, decoded and written as JPEG in SPIN's extracted layout
    (``S<s>/Seq<q>/imageFrames/video_<c>/frame_<n:06d>.jpg``). With ``dst`` = ``src`` only the
    missing frames are written. ``body`` is accepted for a uniform signature: raw MPI-INF-3DHP has
    no SMPL."""
    from PIL import Image
    from tqdm.auto import tqdm

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "train":
        records = mpii3d_train_records(src, subjects, sequences, cameras, 10 if frame_step is None else frame_step)
    else:
        records = mpii3d_test_records(src, sequences, frame_step or 1)
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    skipped: dict[str, str] = {}
    cache: dict[str, Any] = {}
    for i, r in enumerate(tqdm(records, desc="MPI-INF-3DHP", disable=not progress, unit="frame")):
        name = _frame_name(r, split)
        out = dst / name
        width, height = r.extra.get("size") or (0, 0)
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            try:  # an unreadable frame is left out of the file, counted and reported at the end
                if r.extra.get("video_frame") is not None:
                    frame = read_avi_frame(r.image, r.extra["video_frame"], cache)
                    pixels = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                    tmp = out.with_name(out.name + ".tmp")
                    Image.fromarray(pixels).save(tmp, format="JPEG", quality=95)
                    os.replace(tmp, out)
                else:
                    source = require_file(r.image, TRAIN_LAYOUT if split == "train" else TEST_LAYOUT)
                    tmp = out.with_name(out.name + ".tmp")
                    shutil.copyfile(source, tmp)
                    os.replace(tmp, out)
            except (FileNotFoundError, ValueError, OSError) as err:
                skipped[r.source or name] = str(err)
                continue
        if not width:
            width, height = _image_size(out) or (0, 0)
        image, annotation = coco_entries(i, r, file_name=name, width=int(width), height=int(height))
        keep = {k: r.extra[k] for k in ("subject", "sequence", "camera", "frame", "activity") if k in r.extra}
        image.update(keep)
        annotation.update(keep)
        if "joints3d_univ" in r.extra:
            annotation["univ_joint_cam"] = (np.asarray(r.extra["joints3d_univ"])[:, :3] * 1000.0).tolist()
        images.append(image)
        annotations.append(annotation)
    if cache.get("video") is not None:
        cache["video"].close()
    if skipped:
        first = next(iter(skipped.items()))
        print(f"convert_mpii3d: left out {len(skipped)} unreadable frame(s) of {len(records)}, e.g. "
              f"{first[0]}: {first[1]}")
    path = dst / f"MPI-INF-3DHP_{split}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"images": images, "annotations": annotations}))
    os.replace(tmp, path)
    return path

"""3DPW: the raw sequence files and the Pose2Mesh / I2L-MeshNet COCO-style JSON.

Layout under ``root`` (the 3DPW folder)::

    sequenceFiles/{train,validation,test}/<sequence>.pkl    raw annotations (format="raw")
    imageFiles/<sequence>/image_<frame:05d>.jpg             images
    3DPW_{train,validation,test}.json                       COCO-style annotations (format="coco")

Raw files (Python 2 pickles, read latin-1 with kinediff's restricted unpickler — nothing in them is
executed) hold per person world-frame ``poses`` (N, 72), ``trans`` (N, 3), ``betas`` (10 or 300;
the first 10 are kept), ``genders`` ("m" / "f"), ``poses2d`` (N, 3, 18) and ``campose_valid`` (N,),
and per frame ``cam_poses`` (N, 4, 4; world -> camera), ``img_frame_ids`` and one
``cam_intrinsics`` (3, 3). The loader moves root orientation and translation into the camera frame
(:func:`~kinediff.data.base.camera_frame_smpl`) and keeps frames whose camera pose is valid.

COCO-style files hold ``images`` {id, file_name, sequence, width, height, cam_param {focal,
princpt}} and ``annotations`` {image_id, bbox, smpl_param {pose, shape, trans, gender},
joint_cam}; their SMPL parameters are already in the camera frame (their cam_param has no
extrinsics; read by :func:`~kinediff.data.coco_style.coco_records`). ``convert_3dpw`` writes this
format from the raw files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kinediff.body.genders import BodyLike, BodySet
from kinediff.body.smpl_io import load_restricted_pickle
from kinediff.core.checks import (
    check_array,
    check_choice,
    check_dir,
    check_file,
    check_finite_array,
    check_intrinsics,
    check_key,
    check_name,
    check_numbers,
    check_rotation,
)
from kinediff.data.base import PersonDataset, Record, camera_frame_smpl, root_joint
from kinediff.data.coco_style import coco_entries, coco_records, gender_name, write_coco_file

__all__ = ["PW3D", "convert_3dpw", "pw3d_coco_records", "pw3d_raw_records"]

RAW_LAYOUT = ("the 3DPW folder with sequenceFiles/{train,validation,test}/*.pkl and "
              "imageFiles/<sequence>/image_<frame:05d>.jpg (https://virtualhumans.mpi-inf.mpg.de/3DPW/)")
COCO_LAYOUT = ("3DPW_<split>.json (Pose2Mesh / I2L-MeshNet COCO-style annotations, or written by "
               "`kinediff data convert 3dpw`) next to imageFiles/")
SPLITS = ("train", "validation", "test")


def _box_from_joints(joints2d: np.ndarray, threshold: float = 0.3) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) around 2D joints (J, 3) whose confidence exceeds ``threshold`` (None if < 4)."""
    visible = joints2d[joints2d[:, 2] > threshold, :2]
    if len(visible) < 4:
        return None
    lo, hi = visible.min(0), visible.max(0)
    return float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0))


def pw3d_raw_records(root: str | os.PathLike, split: str, body: BodyLike | None = None
                     ) -> list[Record]:
    """Records of every valid (person, frame) in the raw sequence files of ``split``.

    ``body`` gives the root joint J0(beta) of the camera-frame conversion: one model for every
    person, or a mapping gender -> model (each person converted with their own gender's model,
    which 3DPW's parameters were fitted with). Default: the synthetic body.
    """
    bodies = BodySet.of(body)
    check_choice(split, "split", SPLITS)
    root = check_dir(root, RAW_LAYOUT)
    seq_dir = check_dir(root / "sequenceFiles" / split, RAW_LAYOUT)
    files = sorted(seq_dir.glob("*.pkl"))
    if not files:
        raise FileNotFoundError(f"no .pkl files in {seq_dir}; expected {RAW_LAYOUT}")
    records = []
    for path in files:
        data = load_restricted_pickle(path, label=f"3DPW file {path}")
        records += _sequence_records(data, path, root, bodies)
    return records


def _per_person(data: Any, key: str, n_people: int, where: str) -> list[Any]:
    """The per-person list ``data[key]``, one entry per person of ``poses``."""
    value = check_key(data, key, where)
    try:
        n = len(value)
    except TypeError:
        raise ValueError(f"{where}: key {key!r} must be a list with one entry per person, got "
                         f"{type(value).__name__}") from None
    if n != n_people:
        raise ValueError(f"{where}: key {key!r} has {n} entries but 'poses' has {n_people} persons")
    return list(value)


def _frames_of(value: Any, n_frames: int, where: str, key: str) -> np.ndarray:
    """A per-frame array of a 3DPW file: ``n_frames`` entries along its first axis."""
    if len(value) != n_frames:
        raise ValueError(f"{where}: key {key!r} has {len(value)} frames but 'cam_poses' has {n_frames}")
    return value


def _sequence_records(data: Any, path: Path, root: Path, bodies: BodySet) -> list[Record]:
    """The records of one raw 3DPW sequence file's content ``data`` (see
    :func:`pw3d_raw_records`): its arrays' shapes and lengths checked against each other, each
    used frame's values checked for finiteness and a rigid camera pose."""
    where_file = str(path)
    seq = check_name(data, "sequence", where_file)
    K = check_intrinsics(check_key(data, "cam_intrinsics", where_file), where_file, "cam_intrinsics")
    cams = check_array(check_key(data, "cam_poses", where_file), (4, 4), where_file, "cam_poses")
    if cams.ndim != 3:
        raise ValueError(f"{path}: key 'cam_poses' has shape {cams.shape}, expected (N, 4, 4)")
    n_frames = len(cams)
    frames = check_numbers(check_key(data, "img_frame_ids", where_file), where_file, "img_frame_ids")
    if frames.ndim != 1:
        raise ValueError(f"{path}: key 'img_frame_ids' has shape {frames.shape}, expected (N,)")
    frames = check_finite_array(_frames_of(frames, n_frames, where_file, "img_frame_ids"), where_file,
                            "img_frame_ids")
    if (frames != np.round(frames)).any() or (frames < 0).any():
        raise ValueError(f"{path}: key 'img_frame_ids' must hold non-negative integers, got "
                         f"{frames[(frames != np.round(frames)) | (frames < 0)][:3].tolist()}")
    people = check_key(data, "poses", where_file)
    try:
        n_people = len(people)
    except TypeError:
        raise ValueError(f"{path}: key 'poses' must be a list with one (N, 72) array per person, got "
                         f"{type(people).__name__}") from None
    per_person = {key: _per_person(data, key, n_people, where_file)
                  for key in ("trans", "betas", "genders", "campose_valid")}
    poses2d_all = _per_person(data, "poses2d", n_people, where_file) if "poses2d" in data else None
    records = []
    for p in range(n_people):
        where = f"{path} person {p}"
        poses = _frames_of(check_array(people[p], (72,), where, "poses"), n_frames, where, "poses")
        trans = _frames_of(check_array(per_person["trans"][p], (3,), where, "trans"), n_frames, where,
                           "trans")
        if poses.ndim != 2 or trans.ndim != 2:
            raise ValueError(f"{where}: keys 'poses' and 'trans' must have shapes (N, 72) and (N, 3), got "
                             f"{poses.shape} and {trans.shape}")
        betas = check_numbers(per_person["betas"][p], where, "betas")
        if betas.ndim == 2 and 1 in betas.shape:  # the readme's "10 x 1"
            betas = betas.reshape(-1)
        if betas.ndim != 1 or betas.size < 10:
            raise ValueError(f"{where}: key 'betas' has shape {betas.shape}, expected 10 or more values (the "
                             f"first 10 are kept)")
        betas = check_finite_array(betas[:10], where, "betas")
        gender = gender_name(per_person["genders"][p], where)
        valid = check_numbers(per_person["campose_valid"][p], where, "campose_valid")
        if valid.ndim != 1:
            raise ValueError(f"{where}: key 'campose_valid' has shape {valid.shape}, expected (N,)")
        valid = check_finite_array(_frames_of(valid, n_frames, where, "campose_valid"), where,
                               "campose_valid").astype(bool)
        poses2d = None
        if poses2d_all is not None:
            poses2d = _frames_of(check_array(poses2d_all[p], (3, 18), where, "poses2d"), n_frames, where,
                                 "poses2d")
        j0 = root_joint(bodies.for_gender(gender, where), betas).numpy()
        for i in np.flatnonzero(valid):
            frame_where = f"{where} frame {i}"
            check_finite_array(poses[i], frame_where, "poses")
            check_finite_array(trans[i], frame_where, "trans")
            R = check_rotation(cams[i, :3, :3], frame_where, "cam_poses")
            t = check_finite_array(cams[i, :3, 3], frame_where, "cam_poses")
            pose_c, transl_c = camera_frame_smpl(poses[i], trans[i], R, t, j0)
            joints2d = None
            if poses2d is not None:
                joints2d = check_finite_array(poses2d[i], frame_where, "poses2d").T  # (18, 3)
            records.append(Record(
                image=root / "imageFiles" / seq / f"image_{int(frames[i]):05d}.jpg",
                pose=pose_c, betas=betas, transl=transl_c, K=K, gender=gender,
                box=None if joints2d is None else _box_from_joints(joints2d),
                joints2d=joints2d, source=frame_where,
                extra={"sequence": seq, "frame": int(frames[i]), "person": p}))
    return records


def pw3d_coco_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of a COCO-style ``3DPW_<split>.json`` (images under imageFiles/<sequence>/)."""
    root = check_dir(root, COCO_LAYOUT)
    path = check_file(root / f"3DPW_{split}.json", COCO_LAYOUT)
    return coco_records(path, lambda im, where: root / "imageFiles" / check_name(im, "sequence", where)
                        / check_name(im, "file_name", where))


class PW3D(PersonDataset):
    """3DPW in the common sample format.

    Args:
        root: the 3DPW folder (see the module doc for the layout).
        split: "train", "validation" or "test".
        format: "raw" (sequenceFiles) or "coco" (3DPW_<split>.json).
        body: the SMPL model(s) labelling 2D meshes and, for raw files, giving the root joint of
            the camera-frame conversion: one :class:`~kinediff.body.BodyModel`, or a mapping
            gender -> model (:func:`~kinediff.body.load_smpl_bodies`; each person is then
            converted with their own gender's model, as 3DPW's parameters were fitted). Pass the
            real SMPL model(s) for real numbers; default the synthetic body. The given models are
            never converted or moved.
        gt_gender: "gendered" (each person labelled with their own gender's model, as SPIN and
            Pose2Mesh evaluate 3DPW; the default with a mapping) or "neutral" (the neutral model,
            as MeshGraphormer and VirtualMarker; the default with one body).
        image_size, mesh_factors, crop_scale: see :class:`~kinediff.data.base.PersonDataset`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "test", format: str = "raw",
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None) -> None:
        check_choice(format, "format", ("raw", "coco"))
        bodies = BodySet.of(body)
        records = (pw3d_raw_records(root, split, bodies) if format == "raw"
                   else pw3d_coco_records(root, split))
        super().__init__(records, bodies, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.format = Path(root), split, format


def convert_3dpw(src: str | os.PathLike, dst: str | os.PathLike, split: str = "test",
                 body: BodyLike | None = None) -> Path:
    """Write ``dst/3DPW_<split>.json`` (COCO style, camera-frame SMPL) from the raw files in ``src``.

    ``body`` gives the root joint of the camera-frame conversion (default: the synthetic body;
    pass the real SMPL models for real data — a mapping gender -> model converts each person with
    their own gender's model, as their parameters were fitted). Images are referenced, not copied."""
    records = pw3d_raw_records(src, split, body)
    images, annotations = [], []
    for i, r in enumerate(records):
        image, annotation = coco_entries(i, r, file_name=r.image.name,
                                         sequence=r.extra["sequence"], frame=r.extra["frame"])
        images.append(image)
        annotations.append({**annotation, "person": r.extra["person"]})
    return write_coco_file(Path(dst) / f"3DPW_{split}.json", images, annotations)

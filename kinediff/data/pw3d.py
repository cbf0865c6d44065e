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
extrinsics). ``convert_3dpw`` writes this format from the raw files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from kinediff.body.genders import BodyLike, BodySet
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

__all__ = ["PW3D", "coco_entries", "coco_records", "convert_3dpw", "gender_name", "pw3d_coco_records",
           "pw3d_raw_records"]

RAW_LAYOUT = ("the 3DPW folder with sequenceFiles/{train,validation,test}/*.pkl and "
              "imageFiles/<sequence>/image_<frame:05d>.jpg (https://virtualhumans.mpi-inf.mpg.de/3DPW/)")
COCO_LAYOUT = ("3DPW_<split>.json (Pose2Mesh / I2L-MeshNet COCO-style annotations, or written by "
               "`kinediff data convert 3dpw`) next to imageFiles/")
SPLITS = ("train", "validation", "test")
_GENDER = {"m": "male", "f": "female", "male": "male", "female": "female", "neutral": "neutral"}


def gender_name(value: Any, where: str, codes: dict | None = None) -> str:
    """A record's gender as "neutral" / "male" / "female" from a file's value: 3DPW's "m" / "f",
    the full names, or a numeric code looked up in ``codes`` (SURREAL: 0 female, 1 male). Anything
    else raises ``ValueError`` naming ``where`` (an unknown gender is never read as neutral)."""
    if codes is not None and isinstance(value, (int, float, np.integer, np.floating)) \
            and not isinstance(value, bool) and float(value) == int(value) and int(value) in codes:
        return codes[int(value)]
    if isinstance(value, (str, np.str_, bytes)):
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if text.strip().lower() in _GENDER:
            return _GENDER[text.strip().lower()]
    known = sorted(_GENDER) + ([str(k) for k in codes] if codes else [])
    shown = value.item() if isinstance(value, np.generic) else value
    raise ValueError(f"{where}: unknown gender {shown!r}; expected one of {', '.join(known)}")


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
    from kinediff.body.smpl_io import load_restricted_pickle

    bodies = BodySet.of(body)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = require_dir(root, RAW_LAYOUT)
    seq_dir = require_dir(root / "sequenceFiles" / split, RAW_LAYOUT)
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
    value = require_key(data, key, where)
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
    seq = require_name(data, "sequence", where_file)
    K = require_intrinsics(require_key(data, "cam_intrinsics", where_file), where_file, "cam_intrinsics")
    cams = require_array(require_key(data, "cam_poses", where_file), (4, 4), where_file, "cam_poses")
    if cams.ndim != 3:
        raise ValueError(f"{path}: key 'cam_poses' has shape {cams.shape}, expected (N, 4, 4)")
    n_frames = len(cams)
    frames = require_numbers(require_key(data, "img_frame_ids", where_file), where_file, "img_frame_ids")
    if frames.ndim != 1:
        raise ValueError(f"{path}: key 'img_frame_ids' has shape {frames.shape}, expected (N,)")
    frames = require_finite(_frames_of(frames, n_frames, where_file, "img_frame_ids"), where_file,
                            "img_frame_ids")
    if (frames != np.round(frames)).any() or (frames < 0).any():
        raise ValueError(f"{path}: key 'img_frame_ids' must hold non-negative integers, got "
                         f"{frames[(frames != np.round(frames)) | (frames < 0)][:3].tolist()}")
    people = require_key(data, "poses", where_file)
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
        poses = _frames_of(require_array(people[p], (72,), where, "poses"), n_frames, where, "poses")
        trans = _frames_of(require_array(per_person["trans"][p], (3,), where, "trans"), n_frames, where,
                           "trans")
        if poses.ndim != 2 or trans.ndim != 2:
            raise ValueError(f"{where}: keys 'poses' and 'trans' must have shapes (N, 72) and (N, 3), got "
                             f"{poses.shape} and {trans.shape}")
        betas = require_numbers(per_person["betas"][p], where, "betas")
        if betas.ndim == 2 and 1 in betas.shape:  # the readme's "10 x 1"
            betas = betas.reshape(-1)
        if betas.ndim != 1 or betas.size < 10:
            raise ValueError(f"{where}: key 'betas' has shape {betas.shape}, expected 10 or more values (the "
                             f"first 10 are kept)")
        betas = require_finite(betas[:10], where, "betas")
        gender = gender_name(per_person["genders"][p], where)
        valid = require_numbers(per_person["campose_valid"][p], where, "campose_valid")
        if valid.ndim != 1:
            raise ValueError(f"{where}: key 'campose_valid' has shape {valid.shape}, expected (N,)")
        valid = require_finite(_frames_of(valid, n_frames, where, "campose_valid"), where,
                               "campose_valid").astype(bool)
        poses2d = None
        if poses2d_all is not None:
            poses2d = _frames_of(require_array(poses2d_all[p], (3, 18), where, "poses2d"), n_frames, where,
                                 "poses2d")
        j0 = root_joint(bodies.for_gender(gender, where), betas).numpy()
        for i in np.flatnonzero(valid):
            frame_where = f"{where} frame {i}"
            require_finite(poses[i], frame_where, "poses")
            require_finite(trans[i], frame_where, "trans")
            R = require_rotation(cams[i, :3, :3], frame_where, "cam_poses")
            t = require_finite(cams[i, :3, 3], frame_where, "cam_poses")
            pose_c, transl_c = camera_frame_smpl(poses[i], trans[i], R, t, j0)
            joints2d = None
            if poses2d is not None:
                joints2d = require_finite(poses2d[i], frame_where, "poses2d").T  # (18, 3)
            records.append(Record(
                image=root / "imageFiles" / seq / f"image_{int(frames[i]):05d}.jpg",
                pose=pose_c, betas=betas, transl=transl_c, K=K, gender=gender,
                box=None if joints2d is None else _box_from_joints(joints2d),
                joints2d=joints2d, source=frame_where,
                extra={"sequence": seq, "frame": int(frames[i]), "person": p}))
    return records


def coco_records(path: Path, image_path, gender_codes: dict | None = None,
                 annotation_extra=None) -> list[Record]:
    """Records of a Pose2Mesh / I2L-MeshNet COCO-style annotation file.

    Each annotation has ``image_id``, optional ``bbox`` (x, y, w, h), and at least one label:
    ``smpl_param`` {pose (72), shape (10), trans (3), gender} in the camera frame, ``joint_cam``
    (17 x 3, millimetres, camera frame, H36M order; optional ``joint_valid`` (17)) and
    ``keypoints`` (17 x 3: full-image pixels and visibility, H36M order); ``pseudo_gt: true``
    marks fitted SMPL parameters.

    ``image_path(image_dict, where)`` gives each image's file; ``gender_codes`` maps numeric
    genders (SURREAL: 0 = female, 1 = male); ``annotation_extra(annotation, where)`` returns
    data-set-specific entries for the record's ``extra`` (e.g. Human3.6M's joints)."""
    data = load_json(path)
    images = require_ids(require_key(data, "images", str(path)), str(path))
    records = []
    for a, ann in enumerate(require_key(data, "annotations", str(path))):
        where = f"{path} annotations[{a}]"
        image_id = require_int(require_key(ann, "image_id", where), where, "image_id")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the images")
        im = images[image_id]
        cam_where = f"{where} (image {image_id})"
        cam = require_key(im, "cam_param", cam_where)
        K = camera_matrix(require_key(cam, "focal", cam_where), require_key(cam, "princpt", cam_where),
                          cam_where, ("cam_param.focal", "cam_param.princpt"))
        raw_box = ann.get("bbox")
        box = None if raw_box is None else require_box(raw_box, where, "bbox")
        smpl = ann.get("smpl_param")
        if smpl is not None:
            gender = gender_name(smpl.get("gender", "neutral"), where, gender_codes)
            pose = require_pose(require_key(smpl, "pose", where), where, "smpl_param.pose")
            betas = require_array(require_key(smpl, "shape", where), (10,), where, "smpl_param.shape",
                                  exact=True, finite=True)
            transl = require_array(require_key(smpl, "trans", where), (3,), where, "smpl_param.trans",
                                   exact=True, finite=True)
        else:
            gender, pose, betas, transl = "neutral", None, None, None
        joints3d = keypoints2d = None
        if ann.get("joint_cam") is not None:
            cam = require_array(ann["joint_cam"], (17, 3), where, "joint_cam", exact=True, finite=True)
            valid = require_array(ann.get("joint_valid", np.ones(17)), (17,), where, "joint_valid",
                                  exact=True, finite=True)
            joints3d = np.concatenate([cam / 1000.0, (valid.reshape(17, 1) > 0)], 1)
        if ann.get("keypoints") is not None:
            keypoints2d = require_array(ann["keypoints"], (17, 3), where, "keypoints", exact=True,
                                        finite=True)
        if smpl is None and joints3d is None and keypoints2d is None:
            raise ValueError(f"{where}: missing or malformed key 'smpl_param' (KeyError): an "
                             f"annotation needs smpl_param, joint_cam or keypoints")
        extra = {"image_id": image_id, **(annotation_extra(ann, where) if annotation_extra is not None else {})}
        if ann.get("pseudo_gt"):
            extra["pseudo_gt"] = True
        records.append(Record(
            image=image_path(im, where), pose=pose, betas=betas, transl=transl, K=K,
            gender=gender, box=box, source=where, extra=extra, joints3d=joints3d,
            keypoints2d=keypoints2d))
    return records


def coco_entries(index: int, record: Record, gender: Any = None, **image_fields: Any
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image and annotation entries of one record in the COCO-style layout that
    :func:`coco_records` reads back: id, intrinsics as ``cam_param``, ``bbox``, camera-frame
    ``smpl_param`` (``gender`` overrides the record's, e.g. with SURREAL's numeric code), and the
    record's ``joint_cam`` / ``joint_valid`` / ``keypoints`` / ``pseudo_gt`` where it has them. Extra image
    fields (file name, sequence, ...) are passed as keywords; the caller adds annotation extras."""
    K = record.K
    image = {"id": index, **image_fields,
             "cam_param": {"focal": [float(K[0, 0]), float(K[1, 1])],
                           "princpt": [float(K[0, 2]), float(K[1, 2])]}}
    annotation: dict[str, Any] = {"id": index, "image_id": index,
                                  "bbox": list(record.box) if record.box is not None else None}
    if record.has_smpl:
        annotation["smpl_param"] = {"pose": np.asarray(record.pose).tolist(),
                                    "shape": np.asarray(record.betas).tolist(),
                                    "trans": np.asarray(record.transl).tolist(),
                                    "gender": record.gender if gender is None else gender}
    if record.joints3d is not None:
        annotation["joint_cam"] = (np.asarray(record.joints3d)[:, :3] * 1000.0).tolist()
        annotation["joint_valid"] = np.asarray(record.joints3d)[:, 3].tolist()
    if record.keypoints2d is not None:
        annotation["keypoints"] = np.asarray(record.keypoints2d).tolist()
    if record.extra.get("pseudo_gt"):
        annotation["pseudo_gt"] = True
    return image, annotation


def pw3d_coco_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of a COCO-style ``3DPW_<split>.json`` (images under imageFiles/<sequence>/)."""
    root = require_dir(root, COCO_LAYOUT)
    path = require_file(root / f"3DPW_{split}.json", COCO_LAYOUT)
    return coco_records(path, lambda im, where: root / "imageFiles" / require_name(im, "sequence", where)
                        / require_name(im, "file_name", where))


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
        if format not in ("raw", "coco"):
            raise ValueError(f"format must be 'raw' or 'coco', got {format!r}")
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
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / f"3DPW_{split}.json"
    out.write_text(json.dumps({"images": images, "annotations": annotations}))
    return out

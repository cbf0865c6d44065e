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
from kinediff.data.base import (
    PersonDataset,
    Record,
    camera_frame_smpl,
    require_array,
    require_dir,
    require_file,
    require_key,
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
    raise ValueError(f"{where}: unknown gender {value!r}; expected one of {', '.join(known)}")


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
        seq = str(require_key(data, "sequence", f"{path}"))
        K = require_array(require_key(data, "cam_intrinsics", f"{path}"), (3, 3), str(path), "cam_intrinsics")
        cams = require_array(require_key(data, "cam_poses", f"{path}"), (4, 4), str(path), "cam_poses")
        frames = np.asarray(require_key(data, "img_frame_ids", f"{path}"))
        for p, poses in enumerate(require_key(data, "poses", f"{path}")):
            where = f"{path} person {p}"
            poses = require_array(poses, (72,), where, "poses")
            trans = require_array(require_key(require_key(data, "trans", where), p, where), (3,), where,
                                  "trans")
            betas = np.asarray(require_key(require_key(data, "betas", where), p, where),
                               dtype=np.float64)[:10]
            gender = gender_name(require_key(require_key(data, "genders", where), p, where), where)
            valid = np.asarray(require_key(require_key(data, "campose_valid", where), p, where)).astype(bool)
            poses2d = require_key(data, "poses2d", where)[p] if "poses2d" in data else None
            j0 = root_joint(bodies.for_gender(gender, where), betas).numpy()
            for i in np.flatnonzero(valid):
                pose_c, transl_c = camera_frame_smpl(poses[i], trans[i], cams[i, :3, :3],
                                                     cams[i, :3, 3], j0)
                joints2d = None
                if poses2d is not None:
                    joints2d = require_array(poses2d[i], (3, 18), where, "poses2d").T  # (18, 3)
                records.append(Record(
                    image=root / "imageFiles" / seq / f"image_{int(frames[i]):05d}.jpg",
                    pose=pose_c, betas=betas, transl=transl_c, K=K, gender=gender,
                    box=None if joints2d is None else _box_from_joints(joints2d),
                    joints2d=joints2d, source=f"{where} frame {i}",
                    extra={"sequence": seq, "frame": int(frames[i]), "person": p}))
    return records


def load_json(path: Path) -> Any:
    """A JSON annotation file; a malformed one raises ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


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
    images = {int(require_key(im, "id", f"{path} images[{i}]")): im
              for i, im in enumerate(require_key(data, "images", str(path)))}
    records = []
    for a, ann in enumerate(require_key(data, "annotations", str(path))):
        where = f"{path} annotations[{a}]"
        image_id = int(require_key(ann, "image_id", where))
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the images")
        im = images[image_id]
        cam = require_key(im, "cam_param", f"{where} (image {image_id})")
        (fx, fy), (cx, cy) = require_key(cam, "focal", where), require_key(cam, "princpt", where)
        raw_box = ann.get("bbox")
        box = None if raw_box is None else tuple(
            float(v) for v in require_array(raw_box, (4,), where, "bbox"))
        smpl = ann.get("smpl_param")
        if smpl is not None:
            gender = gender_name(smpl.get("gender", "neutral"), where, gender_codes)
            pose = require_array(require_key(smpl, "pose", where), (72,), where, "smpl_param.pose")
            betas = require_array(require_key(smpl, "shape", where), (10,), where, "smpl_param.shape")
            transl = require_array(require_key(smpl, "trans", where), (3,), where, "smpl_param.trans")
        else:
            gender, pose, betas, transl = "neutral", None, None, None
        joints3d = keypoints2d = None
        if ann.get("joint_cam") is not None:
            cam = require_array(ann["joint_cam"], (3,), where, "joint_cam")
            if cam.shape != (17, 3):
                raise ValueError(f"{where}: key 'joint_cam' has shape {cam.shape}, expected (17, 3)")
            valid = require_array(ann.get("joint_valid", np.ones(17)), (17,), where, "joint_valid")
            joints3d = np.concatenate([cam / 1000.0, (valid.reshape(17, 1) > 0)], 1)
        if ann.get("keypoints") is not None:
            keypoints2d = require_array(ann["keypoints"], (3,), where, "keypoints")
            if keypoints2d.shape != (17, 3):
                raise ValueError(f"{where}: key 'keypoints' has shape {keypoints2d.shape}, expected "
                                 f"(17, 3)")
        if smpl is None and joints3d is None and keypoints2d is None:
            raise ValueError(f"{where}: missing or malformed key 'smpl_param' (KeyError): an "
                             f"annotation needs smpl_param, joint_cam or keypoints")
        extra = {"image_id": image_id, **(annotation_extra(ann, where) if annotation_extra is not None else {})}
        if ann.get("pseudo_gt"):
            extra["pseudo_gt"] = True
        records.append(Record(
            image=image_path(im, where), pose=pose, betas=betas, transl=transl,
            K=np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]),
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
    return coco_records(path, lambda im, where: root / "imageFiles" / str(require_key(im, "sequence", where))
                        / str(require_key(im, "file_name", where)))


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

"""The COCO-style annotation files of Pose2Mesh / I2L-MeshNet, which several data sets share, and
the gender codes of the data sets' files.

A file holds ``images`` {id, cam_param {focal, princpt}, and the data set's own fields (file_name,
sequence, width, height, ...)} and ``annotations`` {image_id, bbox (x, y, w, h), and at least one
label: ``smpl_param`` {pose (72), shape (10), trans (3), gender} in the camera frame, ``joint_cam``
(17 x 3, millimetres, camera frame, H36M order; optional ``joint_valid`` (17)), ``keypoints`` (17 x 3:
full-image pixels and visibility, H36M order); ``pseudo_gt: true`` marks fitted SMPL parameters}.
:func:`coco_records` reads one into :class:`~kinediff.data.base.Record` objects; every converter
(``convert_3dpw``, ``convert_h36m``, ``convert_surreal``, ...) writes one with :func:`coco_entries`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kinediff.core.camera import camera_matrix
from kinediff.core.checks import (
    check_array,
    check_box,
    check_ids,
    check_image_ref,
    check_key,
    check_pose_array,
)
from kinediff.core.io import load_json, write_atomic
from kinediff.data.base import Record

__all__ = ["coco_entries", "coco_records", "gender_name", "write_coco_file"]

#: The gender values of the data sets' files (3DPW's "m" / "f" and the full names) -> kinediff's.
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


def coco_records(path: Path, image_path: Callable[[Any, str], Path], gender_codes: dict | None = None,
                 annotation_extra: Callable[[Any, str], dict[str, Any]] | None = None) -> list[Record]:
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
    images = check_ids(check_key(data, "images", str(path)), str(path))
    annotations = check_key(data, "annotations", str(path))
    if not isinstance(annotations, list):
        raise ValueError(f"{path}: key 'annotations' must be a list of annotation objects, got "
                         f"{type(annotations).__name__}")
    records = []
    for a, ann in enumerate(annotations):
        where = f"{path} annotations[{a}]"
        image_id, im = check_image_ref(ann, images, where)
        cam_where = f"{where} (image {image_id})"
        cam = check_key(im, "cam_param", cam_where)
        K = camera_matrix(check_key(cam, "focal", cam_where), check_key(cam, "princpt", cam_where),
                          cam_where, ("cam_param.focal", "cam_param.princpt"))
        raw_box = ann.get("bbox")
        box = None if raw_box is None else check_box(raw_box, where, "bbox")
        smpl = ann.get("smpl_param")
        if smpl is not None and not isinstance(smpl, dict):
            raise ValueError(f"{where}: key 'smpl_param' must be an object with pose, shape, trans "
                             f"and gender, got {type(smpl).__name__}")
        if smpl is not None:
            gender = gender_name(smpl.get("gender", "neutral"), where, gender_codes)
            pose = check_pose_array(check_key(smpl, "pose", where), where, "smpl_param.pose")
            betas = check_array(check_key(smpl, "shape", where), (10,), where, "smpl_param.shape",
                                  exact=True, finite=True)
            transl = check_array(check_key(smpl, "trans", where), (3,), where, "smpl_param.trans",
                                   exact=True, finite=True)
        else:
            gender, pose, betas, transl = "neutral", None, None, None
        joints3d = keypoints2d = None
        if ann.get("joint_cam") is not None:
            cam = check_array(ann["joint_cam"], (17, 3), where, "joint_cam", exact=True, finite=True)
            valid = check_array(ann.get("joint_valid", np.ones(17)), (17,), where, "joint_valid",
                                  exact=True, finite=True)
            joints3d = np.concatenate([cam / 1000.0, (valid.reshape(17, 1) > 0)], 1)
        if ann.get("keypoints") is not None:
            keypoints2d = check_array(ann["keypoints"], (17, 3), where, "keypoints", exact=True,
                                        finite=True)
        if smpl is None and joints3d is None and keypoints2d is None:
            raise ValueError(f"{where}: missing or malformed key 'smpl_param' (KeyError): an "
                             f"annotation needs smpl_param, joint_cam or keypoints")
        extra = {"image_id": image_id, **(annotation_extra(ann, where) if annotation_extra is not None else {})}
        pseudo = ann.get("pseudo_gt", False)
        if not (isinstance(pseudo, bool) or (isinstance(pseudo, int) and pseudo in (0, 1))):
            raise ValueError(f"{where}: key 'pseudo_gt' must be true or false, got {pseudo!r}")
        if pseudo:
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


def write_coco_file(path: Path, images: list[dict[str, Any]], annotations: list[dict[str, Any]],
                    info: dict[str, Any] | None = None) -> Path:
    """A COCO-style annotation file (``{"info": ..., "images": [...], "annotations": [...]}``, the
    entries as :func:`coco_entries` makes them) at ``path``, written atomically
    (:func:`~kinediff.core.io.write_atomic`: the folder made, no half-written file); the
    converters' output, read back by :func:`coco_records`."""
    data = ({} if info is None else {"info": info}) | {"images": images, "annotations": annotations}
    text = json.dumps(data)
    return write_atomic(Path(path), lambda tmp: tmp.write_text(text))

"""COCO 2017 person keypoints, with SMPL pseudo-GT from the NeuralAnnot or EFT fitting files.

Layout under ``root`` (the COCO folder; images under ``images/`` as I2L-MeshNet and VirtualMarker
keep them also work)::

    annotations/person_keypoints_{train,val}2017.json   the released keypoints (format="raw")
    annotations/MSCOCO_train_SMPL_NeuralAnnot.json      NeuralAnnot fits (smpl="neuralannot")
    annotations/COCO2014-All-ver01.json                 EFT fits (smpl="eft"; or -Part-, or in eft_fit/)
    {train,val}2017/<file_name>                         images (or images/{train,val}2017/)
    COCO_<split>[_<smpl>].json                          written by convert_coco (format="kinediff")

The keypoints file holds ``images`` {id, file_name, width, height} and ``annotations`` {id, image_id,
category_id, keypoints (17 x (x, y, v)), num_keypoints, bbox (x, y, w, h), area, iscrowd}; v is 0
(not labelled, x = y = 0), 1 (labelled, occluded) or 2 (labelled, visible). COCO's keypoint
coordinates are integer pixel indices: kinediff (pixel (i, j) centred at (j + 0.5, i + 0.5)) adds
0.5 to them, as detectron2 does, and to the principal points of fits made against them. Crowd
annotations, boxes without area and persons with fewer than ``min_keypoints`` labelled keypoints
(v > 0) are skipped, counted and reported (:meth:`COCO.report`). I2L-MeshNet, VirtualMarker and
Hand4Whole skip ``iscrowd`` and ``num_keypoints == 0`` (``min_keypoints=1``, the default); SPIN
keeps only persons whose 12 limb keypoints (shoulders to ankles) are all labelled
(``min_limb_keypoints=12``), as does EFT's COCO2014-All file.

Keypoints are mapped to :data:`~kinediff.core.conventions.H36M_JOINTS` by name (:data:`COCO_JOINTS`);
``pelvis`` (mid-hips) and ``neck`` (H36M's thorax, mid-shoulders) are derived, only where both
source joints are labelled — I2L-MeshNet's rule for its added pelvis; ``torso`` and ``head`` (top)
have no COCO counterpart and stay invalid; eyes and ears are dropped. A keypoint counts as visible
in ``keypoints2d`` when labelled (v > 0), as I2L-MeshNet and SPIN treat COCO's flags.

SMPL pseudo-GT (``extra["pseudo_gt"] = True``; neutral-model fits, not measurements):

- ``smpl="neuralannot"``: ``MSCOCO_<split>_SMPL_NeuralAnnot.json`` (NeuralAnnot's release, read by
  Hand4Whole; also accepted as ``COCO_<split>_SMPL_NeuralAnnot.json``, or any file of the same
  schema such as I2L-MeshNet's ``coco_smplifyx_train.json`` through ``smpl_file``): an object keyed
  by the annotation id (a string), each ``{"smpl_param": {"pose": 72, "shape": 10, "trans": 3},
  "cam_param": {"focal": [fx, fy], "princpt": [cx, cy]}}``. The parameters are in the camera frame
  (COCO's entries have no extrinsics): vertices = SMPL(pose, shape) + trans, projected with fx, fy,
  cx, cy (one virtual camera per annotation).
- ``smpl="eft"``: EFT's ``COCO2014-All-ver01.json`` / ``COCO2014-Part-ver01.json``: ``{"ver",
  "data": [...]}``, each entry with ``parm_pose`` (24 x 3 x 3 rotation matrices), ``parm_shape``
  (10), ``parm_cam`` (s, tx, ty), ``bbox_scale``, ``bbox_center``, ``annotId`` (the COCO annotation
  id, shared by COCO 2014 and 2017) and ``imageName`` (``COCO_train2014_<2017 file name>``). EFT
  fitted the weak perspective x = s X + t (X: the SMPL mesh without translation; x in [-1, 1] over
  the 224-pixel crop of side 200 * bbox_scale around bbox_center). kinediff turns it into SPIN's
  perspective camera: f = :data:`EFT_FOCAL` (5000) pixels for the 224 crop, i.e. 5000 * 200 *
  bbox_scale / 224 in the image, principal point bbox_center (+ 0.5), translation (tx / s, ty / s,
  2 * 5000 / (224 s)) (EFT's ``convert_smpl_to_bbox_perspective``). It reproduces the weak
  perspective up to the body's depth relief over a ~50 m camera distance (about 0.5 %); SPIN / EFT's
  integer crop arithmetic (up to about one crop pixel) is not reproduced.

A fitted sample has the mesh labels (``has_smpl``, ``has_mesh2d``) and, from the fitted mesh,
``joints3d`` (``has_joints3d``: pseudo-GT too); its ``keypoints2d`` stay COCO's. Records without a
fit keep their keypoints and box only (``has_smpl`` False) with a nominal camera (I2L-MeshNet's:
f = 1500 px, principal point at the image centre); ``fitted_only=True`` drops them instead, as
VirtualMarker does.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.camera import camera_matrix
from kinediff.core.checks import (
    check_array,
    check_choice,
    check_dir,
    check_file,
    check_finite_array,
    check_ids,
    check_image_ref,
    check_key,
    check_name,
    check_pose_array,
    check_record_int,
)
from kinediff.core.conventions import map_joints
from kinediff.core.io import load_json
from kinediff.data.base import PersonDataset, Record
from kinediff.data.coco_style import coco_entries, coco_records, gender_name, write_coco_file

__all__ = ["COCO", "COCO_JOINTS", "COCO_KEYPOINT_NAMES", "COCO_PIXEL_OFFSET", "EFT_CROP", "EFT_FOCAL",
           "coco_keypoints_h36m", "coco_raw_records", "convert_coco", "eft_camera"]

#: COCO's 17 keypoint names as ``categories[0]["keypoints"]`` spells them, in file order.
COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle")

#: The same joints in kinediff's canonical names (:data:`~kinediff.core.conventions.H36M_JOINTS` where the
#: joint is the same one; COCO's nose is H36M's "neck/nose" joint as I2L-MeshNet names both "Nose"),
#: eyes and ears under their own names (not in the H36M set, so dropped by the map).
COCO_JOINTS: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")

#: Joints derived as the midpoint of two COCO joints (valid only where both are labelled).
DERIVED_JOINTS: dict[str, tuple[str, str]] = {"pelvis": ("l_hip", "r_hip"),
                                              "neck": ("l_shoulder", "r_shoulder")}

#: The 12 limb joints (shoulders, elbows, wrists, hips, knees, ankles) SPIN's filter counts.
COCO_LIMB_JOINTS: tuple[str, ...] = COCO_JOINTS[5:]

#: Added to COCO's (integer pixel index) keypoints to put them in kinediff's pixel frame.
COCO_PIXEL_OFFSET = 0.5

#: EFT / SPIN's nominal focal length (pixels) for the 224-pixel crop.
EFT_FOCAL, EFT_CROP = 5000.0, 224.0

#: Nominal focal length (pixels) of records without a fit (I2L-MeshNet's COCO camera).
NOMINAL_FOCAL = 1500.0

SPLITS = ("train", "val")
SMPL_SOURCES = ("neuralannot", "eft")
LAYOUT = ("the COCO folder with annotations/person_keypoints_<split>2017.json and <split>2017/ (or "
          "images/<split>2017/) (https://cocodataset.org/#download)")
NEURALANNOT_FILES = ("MSCOCO_{split}_SMPL_NeuralAnnot.json", "COCO_{split}_SMPL_NeuralAnnot.json")
NEURALANNOT_LAYOUT = ("annotations/MSCOCO_<split>_SMPL_NeuralAnnot.json (NeuralAnnot's SMPL fits, "
                      "https://github.com/mks0601/NeuralAnnot_RELEASE), or pass smpl_file=")
EFT_FILES = ("COCO2014-All-ver01.json", "COCO2014-Part-ver01.json")
EFT_LAYOUT = ("annotations/ or eft_fit/ with COCO2014-All-ver01.json or COCO2014-Part-ver01.json (EFT's "
              "fits, https://github.com/facebookresearch/eft: sh scripts/download_eft.sh), or pass "
              "smpl_file=")


def coco_keypoints_h36m(keypoints: np.ndarray) -> np.ndarray:
    """COCO keypoints of one person in kinediff's H36M joint set.

    Shape: keypoints (17, 3) as released (x, y integer pixel indices, v in {0, 1, 2}) -> (17, 3) in
    :data:`~kinediff.core.conventions.H36M_JOINTS` order: full-image pixels (+ :data:`COCO_PIXEL_OFFSET`)
    and 1 where the joint is labelled (v > 0) or derived from two labelled joints, else a zero row.

    Example:
        >>> import numpy as np
        >>> from kinediff.data.coco import coco_keypoints_h36m
        >>> kp = np.zeros((17, 3))
        >>> kp[11], kp[12] = [40, 80, 2], [60, 80, 1]  # left hip visible, right hip occluded
        >>> out = coco_keypoints_h36m(kp)
        >>> out[0].tolist(), out[4].tolist(), out[8].tolist()  # pelvis, l_hip, neck (no shoulders)
        ([50.5, 80.5, 1.0], [40.5, 80.5, 1.0], [0.0, 0.0, 0.0])
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    labelled = keypoints[:, 2] > 0
    values = np.concatenate([keypoints[:, :2] + COCO_PIXEL_OFFSET, labelled[:, None]], 1)
    names = list(COCO_JOINTS)
    for name, (a, b) in DERIVED_JOINTS.items():
        ia, ib = COCO_JOINTS.index(a), COCO_JOINTS.index(b)
        both = bool(labelled[ia] and labelled[ib])
        mid = (values[ia, :2] + values[ib, :2]) / 2 if both else np.zeros(2)
        values = np.concatenate([values, [[mid[0], mid[1], float(both)]]])
        names.append(name)
    out, valid = map_joints(values, names)
    out[~(valid & (out[:, 2] > 0))] = 0.0
    return out


def eft_camera(parm_cam, bbox_center, bbox_scale) -> tuple[np.ndarray, np.ndarray]:
    """SPIN's perspective camera for an EFT fit: full-image K (3, 3) and translation (3,).

    ``parm_cam`` (s, tx, ty): EFT's weak perspective x = s X + t over the 224-pixel crop of side
    200 * ``bbox_scale`` around ``bbox_center`` (x, y, in COCO's keypoint pixel frame). Returns
    K with f = 5000 * 200 * bbox_scale / 224 and principal point bbox_center +
    :data:`COCO_PIXEL_OFFSET`, and transl (tx / s, ty / s, 2 * 5000 / (224 s)) in metres.
    """
    s, tx, ty = (float(v) for v in parm_cam)
    side = 200.0 * float(bbox_scale)
    f = EFT_FOCAL * side / EFT_CROP
    cx, cy = (float(v) + COCO_PIXEL_OFFSET for v in bbox_center)
    K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    return K, np.array([tx / s, ty / s, 2.0 * EFT_FOCAL / (EFT_CROP * s)])


def _image_dir(root: Path, split: str) -> Path:
    for folder in (root / f"{split}2017", root / "images" / f"{split}2017"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"no directory {root / f'{split}2017'} or {root / 'images' / f'{split}2017'}; "
                            f"expected {LAYOUT}")


def _fit_file(root: Path, split: str, smpl: str, smpl_file: str | os.PathLike | None) -> Path:
    layout = NEURALANNOT_LAYOUT if smpl == "neuralannot" else EFT_LAYOUT
    if smpl_file is not None:
        path = Path(smpl_file).expanduser()
        if not path.is_absolute() and not path.is_file():
            path = root / "annotations" / path
        return check_file(path, layout)
    if smpl == "neuralannot":
        names = [n.format(split=split) for n in NEURALANNOT_FILES]
        folders = [root / "annotations", root]
    else:
        names, folders = list(EFT_FILES), [root / "annotations", root / "eft_fit", root]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no {' or '.join(names)} in {', '.join(str(f) for f in folders)}; "
                            f"expected {layout}")


def _neuralannot_fit(entry: Any, where: str) -> dict[str, Any]:
    smpl = check_key(entry, "smpl_param", where)
    cam = check_key(entry, "cam_param", where)
    princpt = check_array(check_key(cam, "princpt", where), (2,), where, "cam_param.princpt",
                            exact=True, finite=True) + COCO_PIXEL_OFFSET
    return {"pose": check_pose_array(check_key(smpl, "pose", where), where, "smpl_param.pose"),
            "betas": check_array(check_key(smpl, "shape", where), (10,), where, "smpl_param.shape",
                                   exact=True, finite=True),
            "transl": check_array(check_key(smpl, "trans", where), (3,), where, "smpl_param.trans",
                                    exact=True, finite=True),
            "K": camera_matrix(check_key(cam, "focal", where), princpt, where,
                               ("cam_param.focal", "cam_param.princpt")),
            "gender": gender_name(smpl.get("gender", "neutral"), where)}


def _eft_fit(entry: Any, where: str, file_name: str) -> dict[str, Any]:
    rot = check_array(check_key(entry, "parm_pose", where), (3, 3), where, "parm_pose")
    if rot.shape != (24, 3, 3):
        raise ValueError(f"{where}: key 'parm_pose' has shape {rot.shape}, expected (24, 3, 3)")
    check_finite_array(rot, where, "parm_pose")
    err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max()
    if err > 1e-3 or (np.linalg.det(rot) < 0).any():
        raise ValueError(f"{where}: key 'parm_pose' holds no rotation matrices (|R R^T - I| = {err:.3g})")
    cam = check_array(check_key(entry, "parm_cam", where), (3,), where, "parm_cam", finite=True)
    scale = float(check_array(check_key(entry, "bbox_scale", where), (), where, "bbox_scale",
                                finite=True))
    center = check_array(check_key(entry, "bbox_center", where), (2,), where, "bbox_center",
                           finite=True)
    if not (cam[0] > 0 and scale > 0):
        raise ValueError(f"{where}: parm_cam scale {cam[0]} and bbox_scale {scale} must be positive")
    name = os.path.basename(str(check_key(entry, "imageName", where)))
    if name != file_name and not name.endswith("_" + file_name):
        raise ValueError(f"{where}: key 'imageName' {name!r} does not name the annotation's image "
                         f"{file_name!r} (COCO 2014 names are COCO_train2014_<2017 name>)")
    K, transl = eft_camera(cam, center, scale)
    return {"pose": Rotation.from_matrix(rot).as_rotvec().reshape(72),
            "betas": check_array(check_key(entry, "parm_shape", where), (10,), where, "parm_shape",
                                   exact=True, finite=True),
            "transl": transl, "K": K, "gender": "neutral"}


def _load_fits(path: Path, smpl: str) -> dict[int, tuple[str, Any]]:
    """The fits of a NeuralAnnot or EFT file by COCO annotation id: (where, entry), parsed later
    (only the kept annotations' fits are read)."""
    data = load_json(path)
    fits: dict[int, tuple[str, Any]] = {}
    if smpl == "neuralannot":
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object keyed by COCO annotation id, got "
                             f"{type(data).__name__}")
        for key, entry in data.items():
            try:
                ann_id = int(key)
            except ValueError:
                raise ValueError(f"{path}: key {key!r} is not a COCO annotation id") from None
            if entry is not None:
                fits[ann_id] = (f"{path} annotation {key}", entry)
        return fits
    for i, entry in enumerate(check_key(data, "data", str(path))):
        where = f"{path} data[{i}]"
        ann_id = check_record_int(check_key(entry, "annotId", where), where, "annotId")
        fits.setdefault(ann_id, (where, entry))  # the first fit of an annotation
    return fits


def coco_raw_records(root: str | os.PathLike, split: str = "train", smpl: str | None = None,
                     smpl_file: str | os.PathLike | None = None, min_keypoints: int = 1,
                     min_limb_keypoints: int = 0, fitted_only: bool = False
                     ) -> tuple[list[Record], dict[str, int]]:
    """Records of the released keypoints file of ``split`` (see the module doc), and the counts of
    what was kept and skipped: ``annotations`` (person annotations in the file), ``crowd``,
    ``few_keypoints``, ``empty_box``, ``kept``, ``with_fit``, ``without_fit`` (kept without SMPL),
    ``no_fit_dropped`` (``fitted_only``), ``unused_fits`` (fits whose annotation is not kept).

    Record ``extra``: ``image_id``, ``ann_id``, ``iscrowd``, ``area``, ``num_keypoints``,
    ``coco_keypoints`` (17, 3) as released, ``crowd_boxes`` (the image's crowd regions, x y w h),
    ``file_name``, ``width``, ``height``; with a fit ``pseudo_gt`` True and ``smpl_source``.
    """
    check_choice(split, "split", SPLITS)
    check_choice(smpl, "smpl", (None, *SMPL_SOURCES))
    if smpl is None and (smpl_file is not None or fitted_only):
        raise ValueError("smpl_file and fitted_only need smpl='neuralannot' or 'eft'")
    root = check_dir(root, LAYOUT)
    path = check_file(root / "annotations" / f"person_keypoints_{split}2017.json", LAYOUT)
    image_dir = _image_dir(root, split)
    data = load_json(path)
    _check_keypoint_names(data, path)
    images = check_ids(check_key(data, "images", str(path)), str(path))
    fits = {} if smpl is None else _load_fits(_fit_file(root, split, smpl, smpl_file), smpl)
    annotations = check_key(data, "annotations", str(path))
    crowd_boxes: dict[int, list] = {}
    for a, ann in enumerate(annotations):
        where = f"{path} annotations[{a}]"
        if not isinstance(ann, dict):
            raise ValueError(f"{where}: expected an annotation object, got {type(ann).__name__}")
        if ann.get("iscrowd"):
            crowd_boxes.setdefault(check_record_int(check_key(ann, "image_id", where), where, "image_id"),
                                   []).append(list(ann.get("bbox", [])))
    counts: Counter = Counter()
    used: set[int] = set()
    records = []
    limb_index = [COCO_JOINTS.index(n) for n in COCO_LIMB_JOINTS]
    for a, ann in enumerate(annotations):
        where = f"{path} annotations[{a}]"
        if check_record_int(check_key(ann, "category_id", where), where, "category_id") != 1:
            continue
        counts["annotations"] += 1
        if ann.get("iscrowd"):
            counts["crowd"] += 1
            continue
        keypoints = check_array(check_key(ann, "keypoints", where), (51,), where, "keypoints",
                                  finite=True)
        keypoints = keypoints.reshape(17, 3)
        labelled = keypoints[:, 2] > 0
        if labelled.sum() < min_keypoints or labelled[limb_index].sum() < min_limb_keypoints:
            counts["few_keypoints"] += 1
            continue
        box = tuple(float(v) for v in check_array(check_key(ann, "bbox", where), (4,), where, "bbox",
                                                    exact=True, finite=True))
        if box[2] <= 0 or box[3] <= 0:
            counts["empty_box"] += 1
            continue
        image_id, im = check_image_ref(ann, images, where)
        im_where = f"{path} image {image_id}"
        file_name = check_name(im, "file_name", im_where)
        width, height = (float(check_array(check_key(im, k, im_where), (), im_where, k, finite=True))
                         for k in ("width", "height"))
        if not (width > 0 and height > 0):
            raise ValueError(f"{im_where}: keys 'width' and 'height' must be positive, got {width} x "
                             f"{height}")
        ann_id = check_record_int(check_key(ann, "id", where), where, "id")
        fit = None
        if ann_id in fits:
            used.add(ann_id)
            fit_where, entry = fits[ann_id]
            fit = (_neuralannot_fit(entry, fit_where) if smpl == "neuralannot"
                   else _eft_fit(entry, fit_where, file_name))
        elif fitted_only:
            counts["no_fit_dropped"] += 1
            continue
        extra = {"image_id": image_id, "ann_id": ann_id, "iscrowd": 0,
                 "area": float(ann.get("area", box[2] * box[3])),
                 "num_keypoints": int(ann.get("num_keypoints", labelled.sum())),
                 "coco_keypoints": keypoints, "crowd_boxes": crowd_boxes.get(image_id, []),
                 "file_name": file_name, "width": width, "height": height}
        if fit is None:
            K = np.array([[NOMINAL_FOCAL, 0.0, width / 2], [0.0, NOMINAL_FOCAL, height / 2], [0.0, 0.0, 1.0]])
            pose = betas = transl = None
            gender = "neutral"
            counts["without_fit"] += 1
        else:
            pose, betas, transl, K, gender = (fit[k] for k in ("pose", "betas", "transl", "K", "gender"))
            extra.update(pseudo_gt=True, smpl_source=smpl)
            counts["with_fit"] += 1
        counts["kept"] += 1
        records.append(Record(image=image_dir / file_name, pose=pose, betas=betas, transl=transl, K=K,
                              gender=gender, box=box, source=where, extra=extra,
                              keypoints2d=coco_keypoints_h36m(keypoints)))
    counts["unused_fits"] = len(fits) - len(used)
    return records, {k: int(counts.get(k, 0)) for k in (
        "annotations", "crowd", "few_keypoints", "empty_box", "kept", "with_fit", "without_fit",
        "no_fit_dropped", "unused_fits")}


def _check_keypoint_names(data: Any, path: Path) -> None:
    """The file's person category must list COCO's 17 keypoint names in COCO's order (kinediff maps
    them by these names)."""
    for c, category in enumerate(data.get("categories", []) if isinstance(data, dict) else []):
        if category.get("id") == 1 and "keypoints" in category:
            names = tuple(category["keypoints"])
            if names != COCO_KEYPOINT_NAMES:
                raise ValueError(f"{path} categories[{c}]: key 'keypoints' lists {list(names)}, expected "
                                 f"COCO's {list(COCO_KEYPOINT_NAMES)}")


def _annotation_file(smpl: str | None, split: str) -> str:
    return f"COCO_{split}.json" if smpl is None else f"COCO_{split}_{smpl}.json"


def _kinediff_records(root: str | os.PathLike, split: str, smpl: str | None) -> list[Record]:
    root = check_dir(root, LAYOUT)
    name = _annotation_file(smpl, split)
    path = check_file(root / name, f"{name} (written by `kinediff data convert coco`) next to "
                                      f"{split}2017/ or images/{split}2017/")

    def coco_extra(ann: dict, where: str) -> dict[str, Any]:
        out = {k: ann[k] for k in ("ann_id", "iscrowd", "area", "num_keypoints", "crowd_boxes",
                                   "smpl_source") if k in ann}
        if "coco_keypoints" in ann:
            kp = check_array(ann["coco_keypoints"], (3,), where, "coco_keypoints")
            if kp.shape != (17, 3):
                raise ValueError(f"{where}: key 'coco_keypoints' has shape {kp.shape}, expected (17, 3)")
            out["coco_keypoints"] = check_finite_array(kp, where, "coco_keypoints")
        return out

    records = coco_records(path, lambda im, where: root / check_name(im, "file_name", where),
                           annotation_extra=coco_extra)
    for r in records:
        r.extra.setdefault("file_name", r.image.name)
    return records


class COCO(PersonDataset):
    """COCO 2017 person keypoints in the common sample format, with SMPL pseudo-GT where given.

    Args:
        root: the COCO folder (see the module doc for the layout).
        split: "train" or "val".
        smpl: None (keypoints only), "neuralannot" or "eft" (see the module doc).
        body, image_size, mesh_factors, crop_scale, gt_gender: as
            :class:`~kinediff.data.pw3d.PW3D`; the fits are neutral-model ones.
        min_keypoints: fewest labelled keypoints (of 17) a person needs (1: I2L-MeshNet).
        min_limb_keypoints: fewest labelled limb keypoints (of 12) a person needs (12: SPIN).
        fitted_only: with ``smpl``, drop persons without a fit (VirtualMarker) instead of keeping
            their keypoints only.
        smpl_file: the fitting file, if not found under its released name (absolute, or relative to
            ``annotations/``).
        format: "raw" (the released files) or "kinediff" (``COCO_<split>[_<smpl>].json`` written by
            :func:`convert_coco`, its selection fixed when written).

    Attributes:
        counts: what the raw files held and what was kept / skipped (see :func:`coco_raw_records`).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", smpl: str | None = None,
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None, min_keypoints: int = 1, min_limb_keypoints: int = 0,
                 fitted_only: bool = False, smpl_file: str | os.PathLike | None = None,
                 format: str = "raw") -> None:
        check_choice(format, "format", ("raw", "kinediff"))
        check_choice(smpl, "smpl", (None, *SMPL_SOURCES))
        check_choice(split, "split", SPLITS)
        bodies = BodySet.of(body)
        if format == "raw":
            records, self.counts = coco_raw_records(root, split, smpl, smpl_file, min_keypoints,
                                                    min_limb_keypoints, fitted_only)
        else:
            records = _kinediff_records(root, split, smpl)
            self.counts = {"kept": len(records), "with_fit": sum(r.has_smpl for r in records)}
        self.min_keypoints, self.min_limb_keypoints = min_keypoints, min_limb_keypoints
        super().__init__(records, bodies, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.smpl, self.format = Path(root), split, smpl, format

    def report(self) -> str:
        """What was skipped: the annotations the filters dropped (raw files) and, as for every
        :class:`~kinediff.data.base.PersonDataset`, unreadable images; '' when nothing was."""
        lines = [super().report()]
        c = self.counts
        dropped = {k: c.get(k, 0) for k in ("crowd", "few_keypoints", "empty_box", "no_fit_dropped")}
        if self.format == "raw" and (any(dropped.values()) or c.get("unused_fits", 0)):
            parts = [f"{dropped['crowd']} crowd",
                     (f"{dropped['few_keypoints']} with too few labelled keypoints (min_keypoints="
                      f"{self.min_keypoints}, min_limb_keypoints={self.min_limb_keypoints})"),
                     f"{dropped['empty_box']} with an empty box"]
            if dropped["no_fit_dropped"]:
                parts.append(f"{dropped['no_fit_dropped']} without a {self.smpl} fit (fitted_only)")
            line = (f"COCO {self.split}: kept {c['kept']} of {c['annotations']} person annotations; "
                    f"skipped {', '.join(parts)}")
            if self.smpl is not None:
                line += (f"; {self.smpl} pseudo-GT for {c['with_fit']}, keypoints only for "
                         f"{c['without_fit']}, {c['unused_fits']} fit(s) of no kept annotation")
            lines.append(line)
        return "\n".join(line for line in lines if line)


def convert_coco(src: str | os.PathLike, dst: str | os.PathLike, split: str = "train",
                 body: BodyLike | None = None, smpl: str | None = None,
                 smpl_file: str | os.PathLike | None = None, min_keypoints: int = 1,
                 min_limb_keypoints: int = 0, fitted_only: bool = False) -> Path:
    """Write ``dst/COCO_<split>[_<smpl>].json`` (kinediff's COCO style) from the released files in
    ``src``: per kept person an image entry (``file_name`` relative to ``src``, ``cam_param``) and an
    annotation with ``bbox``, ``keypoints`` (17 x 3, H36M order, kinediff pixels), camera-frame
    ``smpl_param`` and ``pseudo_gt`` where fitted, and COCO's ``ann_id``, ``area``,
    ``num_keypoints``, ``coco_keypoints``, ``crowd_boxes``. Read it with ``COCO(src, split, smpl,
    format="kinediff")`` after placing it in ``src``. ``body`` is accepted for the converters' common
    signature; COCO's conversion needs no body model. Images are referenced, not copied."""
    records, counts = coco_raw_records(src, split, smpl, smpl_file, min_keypoints, min_limb_keypoints,
                                       fitted_only)
    src = Path(src).expanduser()
    images, annotations = [], []
    for i, r in enumerate(records):
        image, annotation = coco_entries(i, r, file_name=str(r.image.relative_to(src)),
                                         width=int(r.extra["width"]), height=int(r.extra["height"]),
                                         coco_image_id=r.extra["image_id"])
        images.append(image)
        annotations.append({**annotation, "ann_id": r.extra["ann_id"], "iscrowd": 0,
                            "area": r.extra["area"], "num_keypoints": r.extra["num_keypoints"],
                            "coco_keypoints": np.asarray(r.extra["coco_keypoints"]).tolist(),
                            "crowd_boxes": r.extra["crowd_boxes"],
                            **({"smpl_source": smpl} if r.has_smpl else {})})
    info = {"source": f"person_keypoints_{split}2017.json", "smpl": smpl, "counts": counts}
    return write_coco_file(Path(dst) / _annotation_file(smpl, split), images, annotations, info)

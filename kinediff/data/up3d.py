"""UP-3D (Unite the People, Lassner et al. 2017): the released ``up-3d`` folder, kinediff's
COCO-style JSON and GraphCMR's preprocessed npz.

Layout under ``root`` (the ``up-3d`` folder of http://up.is.tuebingen.mpg.de)::

    <index:05d>_image.png             the image
    <index:05d>_body.pkl              the SMPL fit (Python 2 pickle): pose (72,), betas (10,),
                                      trans (3,), camera rt (3,), t (3,), f (px), j2d (25, 2)
    <index:05d>_joints.npy            (3, 14) LSP joints: x, y (image pixels), visibility
    <index:05d>_fit_crop_info.txt     "H W y1 y2 x1 x2" (the fit's image, see below)
    <index:05d>_dataset_info.txt      source data set and its index, e.g. "lsp 1002"
    <index:05d>_quality_info.txt      the fit's quality rating, e.g. "high"
    {train,val,test,trainval}.txt     one "/<index:05d>_image.png" per line
    UP3D_<split>.json                 COCO-style annotations (format="coco", convert_up3d)
    up_3d_<split>.npz                 GraphCMR's preprocessed file (format="spin")

The fits are neutral-SMPL SMPLify fits to each image's 14 LSP joints (pseudo ground truth, marked
``extra["pseudo_gt"]``). UP's code renders a fit as camera vertices
R(rt) (SMPL(pose, betas) + trans) + t through a pinhole of focal length f (5000 px) and principal
point at the centre of the *fit image*: an H x W image that is rows y1:y2, columns x1:x2 of the
released image, resized (``_fit_crop_info.txt``). A fit pixel u maps to the image as
u / fac_x + x1 with fac_x = W / (x2 - x1) (likewise y), so the image's intrinsics are
fx = f / fac_x, cx = x1 + (W / 2) / fac_x, fy = f / fac_y, cy = y1 + (H / 2) / fac_y. The loader
moves the root orientation and translation into that camera frame
(:func:`~kinediff.data.base.camera_frame_smpl`; rt and trans are zero in the released fits, whose
pose is already in the camera frame). ``_body.pkl`` files are read with kinediff's restricted
unpickler (nothing in them is executed); chumpy arrays in them become numpy arrays without chumpy.

The LSP joints become ``keypoints2d`` in H36M order by name (:data:`UP3D_JOINTS`): LSP's neck is
the upper neck, not H36M's thorax, so it keeps its own name; the pelvis (mid-hips, as I2L-MeshNet
derives it for COCO) and the thorax ``neck`` (mid-shoulders) are derived, visible where both
joints are. The person box is the projected mesh's (GraphCMR's box of the fit's silhouette).
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from kinediff.body.genders import BodyLike, BodySet
from kinediff.body.smpl_io import PickleFileError, load_smpl_pickle
from kinediff.core.arrays import read_npy, read_npz
from kinediff.core.checks import (
    check_array,
    check_choice,
    check_dir,
    check_file,
    check_finite_array,
    check_key,
    check_name,
    check_numbers,
)
from kinediff.core.conventions import map_joints
from kinediff.data.base import PersonDataset, Record, camera_frame_smpl, root_joint
from kinediff.data.coco_style import coco_entries, coco_records, write_coco_file
from kinediff.data.spin import spin_records

__all__ = ["UP3D", "UP3D_JOINTS", "UP3D_SPLITS", "convert_up3d", "fit_intrinsics", "lsp_keypoints",
           "read_crop_info", "read_fit", "read_split", "up3d_coco_records", "up3d_raw_records",
           "up3d_spin_records"]

#: The 14 LSP joints of ``_joints.npy`` in file order, in kinediff's joint names
#: (:data:`~kinediff.core.conventions.H36M_JOINTS` where the joint is the same one). LSP's "neck" is
#: the upper neck (SPIN files it as MPII's upper neck, apart from the thorax), so it is not H36M's
#: thorax "neck"; LSP's head top is H36M's "head".
UP3D_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow", "r_shoulder",
    "l_shoulder", "l_elbow", "l_wrist", "upper_neck", "head")
#: The splits of UP-3D's released lists (``<split>.txt``).
UP3D_SPLITS = ("train", "val", "test", "trainval")
#: GraphCMR's npz modes (``up_3d_<mode>.npz``).
SPIN_SPLITS = ("trainval", "lsp_test")
RAW_LAYOUT = ("the up-3d folder of the Unite the People release (http://up.is.tuebingen.mpg.de) with "
              "<index:05d>_{image.png,body.pkl,joints.npy,fit_crop_info.txt} and "
              "{train,val,test,trainval}.txt")
COCO_LAYOUT = "UP3D_<split>.json (written by `kinediff data convert up3d`) next to the up-3d images"
SPIN_LAYOUT = ("GraphCMR's up_3d_<mode>.npz (datasets/preprocess/up_3d.py; imgname, center, scale, "
               "part, pose, shape) copied into the up-3d folder")
_LINE = re.compile(r"^/?(\d{5})_image\.png$")


def read_split(root: Path, split: str) -> list[int]:
    """The sample indices of ``root/<split>.txt`` (lines "/00001_image.png"), in file order."""
    check_choice(split, "split", UP3D_SPLITS)
    path = check_file(root / f"{split}.txt", RAW_LAYOUT)
    indices = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip().split()[0] if line.strip() else ""
        if not text:
            continue
        match = _LINE.match(text)
        if match is None:
            raise ValueError(f"{path} line {n}: expected '/<index:05d>_image.png', got {line!r}")
        indices.append(int(match.group(1)))
    return indices


def read_crop_info(path: Path) -> np.ndarray:
    """``_fit_crop_info.txt`` as (6,) ints ``H W y1 y2 x1 x2``: the fit's H x W image is rows
    y1:y2, columns x1:x2 (end exclusive) of the released image, resized."""
    text = check_file(path, RAW_LAYOUT).read_text().split()
    try:
        crop = np.array([int(float(v)) for v in text])
    except ValueError:
        crop = np.zeros(0)
    if crop.shape != (6,) or (crop[:2] <= 0).any() or crop[3] <= crop[2] or crop[5] <= crop[4]:
        raise ValueError(f"{path}: expected six integers 'H W y1 y2 x1 x2' with H, W > 0, y2 > y1 "
                         f"and x2 > x1, got {' '.join(text)!r}")
    return crop


def fit_intrinsics(f: float | np.ndarray, crop: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """The released image's K (3, 3) of a fit with focal length ``f`` (px; scalar or (fx, fy))
    and principal point ``c`` (fit pixels; default the fit image's centre (W / 2, H / 2)) on the
    fit image described by ``crop`` (:func:`read_crop_info`)."""
    fx, fy = np.broadcast_to(np.asarray(f, dtype=np.float64).reshape(-1), (2,))
    h, w, y1, y2, x1, x2 = (float(v) for v in crop)
    cx, cy = (w / 2, h / 2) if c is None else (float(c[0]), float(c[1]))
    fac_x, fac_y = w / (x2 - x1), h / (y2 - y1)
    return np.array([[fx / fac_x, 0.0, cx / fac_x + x1], [0.0, fy / fac_y, cy / fac_y + y1],
                     [0.0, 0.0, 1.0]])


def read_fit(path: Path, where: str) -> dict[str, Any]:
    """A ``_body.pkl`` as numpy arrays: pose (72,), betas (10,) (the first 10), trans (3,), rt (3,),
    t (3,), f (1,) or (2,), optional cam_c (2,); ``where`` names file and record in errors."""
    check_file(path, RAW_LAYOUT)
    try:
        data = load_smpl_pickle(path)
    except (pickle.UnpicklingError, EOFError) as err:
        raise PickleFileError(f"{path}: {err}") from None
    pose = check_array(check_key(data, "pose", where), (72,), where, "pose")
    if pose.size != 72:
        raise ValueError(f"{where}: key 'pose' has shape {pose.shape}, expected (72,)")
    fit = {"pose": check_finite_array(pose.reshape(72), where, "pose")}
    for key in ("trans", "rt", "t"):
        value = check_array(check_key(data, key, where), (3,), where, key)
        if value.size != 3:
            raise ValueError(f"{where}: key {key!r} has shape {value.shape}, expected (3,)")
        fit[key] = check_finite_array(value.reshape(3), where, key)
    for key in ("betas", "f"):
        fit[key] = check_finite_array(check_numbers(check_key(data, key, where), where, key).reshape(-1),
                                  where, key)
    if fit["betas"].size < 10:
        raise ValueError(f"{where}: key 'betas' has {fit['betas'].size} values, expected at least 10")
    fit["betas"] = fit["betas"][:10]
    if fit["f"].size not in (1, 2) or not (fit["f"] > 0).all():
        raise ValueError(f"{where}: key 'f' must be one or two positive focal lengths, got {fit['f']}")
    fit["cam_c"] = (check_finite_array(check_array(data["cam_c"], (2,), where, "cam_c").reshape(2), where,
                                   "cam_c")
                    if data.get("cam_c") is not None else None)
    return fit


def lsp_keypoints(joints: np.ndarray, where: str = "joints") -> np.ndarray:
    """UP-3D's LSP joints ((3, 14) as in ``_joints.npy``, or (14, 3)) -> ``keypoints2d`` (17, 3) in
    H36M order: the joints by name (:data:`UP3D_JOINTS`), a joint visible where its third value is
    > 0, plus the derived pelvis (mid-hips) and thorax ``neck`` (mid-shoulders), visible where both
    of their joints are. Missing H36M joints (torso, nose) are zeros with visibility 0."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape == (3, 14):
        joints = joints.T
    if joints.shape != (14, 3):
        raise ValueError(f"{where}: LSP joints must have shape (3, 14) or (14, 3), got {joints.shape}")
    values = np.concatenate([joints[:, :2], (joints[:, 2:] > 0).astype(np.float64)], 1)
    idx = {name: i for i, name in enumerate(UP3D_JOINTS)}
    derived = []
    for a, b in (("r_hip", "l_hip"), ("r_shoulder", "l_shoulder")):
        both = values[idx[a], 2] * values[idx[b], 2]
        derived.append([*((values[idx[a], :2] + values[idx[b], :2]) / 2 * both), both])
    out, _ = map_joints(np.concatenate([values, np.array(derived)]),
                        [*UP3D_JOINTS, "pelvis", "neck"], where=where)
    return out


def up3d_raw_records(root: str | os.PathLike, split: str, body: BodyLike | None = None,
                     quality: str | None = None) -> list[Record]:
    """Records of the released files of ``split`` (see the module doc): camera-frame SMPL, the
    image's K, LSP ``keypoints2d``. ``body``'s neutral model gives the root joint of the
    camera-frame conversion (UP-3D's fits are neutral); default the synthetic body. ``quality``
    keeps only fits whose ``_quality_info.txt`` says so (e.g. "high")."""
    neutral = BodySet.of(body).for_gender("neutral", "UP-3D (neutral-model SMPL fits)")
    root = check_dir(root, RAW_LAYOUT)
    records = []
    for index in read_split(root, split):
        stem = root / f"{index:05d}"
        pkl = Path(f"{stem}_body.pkl")
        where = f"{pkl} (UP-3D index {index})"
        info = {}
        for key in ("dataset", "quality"):
            path = Path(f"{stem}_{key}_info.txt")
            info[key] = path.read_text().split() if path.is_file() else None
        if quality is not None:
            if info["quality"] is None:
                raise FileNotFoundError(f"no file {stem}_quality_info.txt to filter by quality; "
                                        f"expected {RAW_LAYOUT}")
            if info["quality"][:1] != [quality]:
                continue
        fit = read_fit(pkl, where)
        crop = read_crop_info(Path(f"{stem}_fit_crop_info.txt"))
        K = fit_intrinsics(fit["f"], crop, fit["cam_c"])
        j0 = root_joint(neutral, fit["betas"]).numpy()
        pose, transl = camera_frame_smpl(fit["pose"], fit["trans"],
                                         Rotation.from_rotvec(fit["rt"]).as_matrix(), fit["t"], j0)
        joints_path = Path(f"{stem}_joints.npy")
        lsp = keypoints = None
        if joints_path.is_file():
            raw = read_npy(joints_path, RAW_LAYOUT)
            joints_where = f"{joints_path} (UP-3D index {index})"
            check_finite_array(check_numbers(raw, joints_where, "joints"), joints_where, "joints")
            keypoints = lsp_keypoints(raw, joints_where)
            lsp = raw.T.astype(np.float64) if raw.shape == (3, 14) else raw.astype(np.float64)
        dataset = info["dataset"]
        records.append(Record(
            image=Path(f"{stem}_image.png"), pose=pose, betas=fit["betas"], transl=transl, K=K,
            gender="neutral", joints2d=lsp, keypoints2d=keypoints, source=where,
            extra={"index": index, "pseudo_gt": True,
                   "dataset": dataset[0] if dataset else None,
                   "dataset_index": int(dataset[1]) if dataset and len(dataset) > 1 else None,
                   "quality": info["quality"][0] if info["quality"] else None}))
    return records


def _annotation_extra(ann: dict, where: str) -> dict[str, Any]:
    return {k: ann.get(k) for k in ("index", "dataset", "dataset_index", "quality")}


def up3d_coco_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of ``root/UP3D_<split>.json`` (images ``file_name`` under ``root``)."""
    root = check_dir(root, COCO_LAYOUT)
    path = check_file(root / f"UP3D_{split}.json", COCO_LAYOUT)
    return coco_records(path, lambda im, where: root / check_name(im, "file_name", where),
                        annotation_extra=_annotation_extra)


def up3d_spin_records(root: str | os.PathLike, split: str = "trainval", body: BodyLike | None = None,
                      crop_scale: float = 1.2) -> list[Record]:
    """Records of GraphCMR's ``root/up_3d_<split>.npz`` (``split`` "trainval" or "lsp_test"),
    through :func:`kinediff.data.spin.spin_records` (SPIN's nominal camera: the file has none),
    with the ``part`` rows 0-13 (LSP joints, image pixels) as ``keypoints2d``."""
    check_choice(split, "split (GraphCMR's npz)", SPIN_SPLITS)
    root = check_dir(root, SPIN_LAYOUT)
    path = check_file(root / f"up_3d_{split}.npz", SPIN_LAYOUT)
    records = spin_records(path, root, body, crop_scale)
    parts = read_npz(path, SPIN_LAYOUT, ("part",)).get("part")
    if parts is not None and parts.shape != (len(records), 24, 3):
        raise ValueError(f"{path}: key 'part' has shape {parts.shape}, expected ({len(records)}, 24, 3)")
    return [replace(r, keypoints2d=None if parts is None else lsp_keypoints(parts[i, :14], r.source),
                    extra={**r.extra, "pseudo_gt": True})
            for i, r in enumerate(records)]


class UP3D(PersonDataset):
    """UP-3D in the common sample format: pseudo-GT SMPL (neutral), LSP 2D keypoints.

    Args:
        root: the up-3d folder (see the module doc for the layout).
        split: "train", "val", "test" or "trainval" (GraphCMR's npz: "trainval" or "lsp_test").
        format: "raw" (the released files), "coco" (``UP3D_<split>.json``) or "spin" (GraphCMR's
            ``up_3d_<split>.npz``: no camera, so SPIN's nominal one, see :mod:`kinediff.data.spin`).
        body: the SMPL model(s) labelling 2D meshes and giving the root joint of the camera-frame
            conversion (its neutral model; UP-3D's fits are neutral). Default the synthetic body;
            pass the real SMPL model for real numbers. The given models are never converted or
            moved.
        quality: keep only fits rated so in ``_quality_info.txt`` (e.g. "high"; raw format only).
        image_size, mesh_factors, crop_scale, gt_gender: see
            :class:`~kinediff.data.base.PersonDataset`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", format: str = "raw",
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None, quality: str | None = None) -> None:
        check_choice(format, "format", ("raw", "coco", "spin"))
        if quality is not None and format != "raw":
            raise ValueError("quality filters the raw files only (their _quality_info.txt)")
        bodies = BodySet.of(body)
        if format == "raw":
            records = up3d_raw_records(root, split, bodies, quality)
        elif format == "coco":
            records = up3d_coco_records(root, split)
        else:
            records = up3d_spin_records(root, split, bodies, crop_scale)
        super().__init__(records, bodies, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.format = Path(root), split, format


def convert_up3d(src: str | os.PathLike, dst: str | os.PathLike, split: str = "trainval",
                 body: BodyLike | None = None) -> Path:
    """Write ``dst/UP3D_<split>.json`` (COCO style: camera-frame SMPL marked ``pseudo_gt``, the
    image's ``cam_param``, LSP ``keypoints`` in H36M order) from the released files in ``src``.

    ``body`` gives the root joint of the camera-frame conversion (default the synthetic body; pass
    the real neutral SMPL model for real data). Images are referenced by file name, not copied: put
    the JSON in the up-3d folder (``dst`` = ``src``) for ``UP3D(..., format="coco")``."""
    records = up3d_raw_records(src, split, body)
    images, annotations = [], []
    for i, r in enumerate(records):
        image, annotation = coco_entries(i, r, file_name=r.image.name)
        images.append(image)
        annotations.append({**annotation, **{k: r.extra[k] for k in
                                             ("index", "dataset", "dataset_index", "quality")}})
    return write_coco_file(Path(dst) / f"UP3D_{split}.json", images, annotations)

"""SURREAL: the raw ``*_info.mat`` / ``_segm.mat`` / ``.mp4`` clips and the Pose2Mesh / I2L-MeshNet
COCO-style annotations.

Raw layout (``format="raw"``), ``root`` being SURREAL's ``data/cmu`` folder::

    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>_info.mat   annotations (T frames, mostly 100)
    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>_segm.mat   part masks segm_1 ... segm_T
    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>.mp4        320 x 240 RGB video

``*_info.mat`` holds per frame ``pose`` (72, T; the MoSh'ed CMU pose, root orientation in the
z-up mocap frame), ``shape`` (10, T), ``gender`` (T; 0 = female, 1 = male), ``joints2D`` (2, 24, T;
pixels, rounded), ``joints3D`` (3, 24, T; Blender world, metres), ``zrot`` (T; the clip's random
rotation about the vertical) and one ``camLoc`` (3; the camera position in the Blender world).
How these combine is fixed by SURREAL's generation code (``datageneration/main_part1.py``) and its
own projection scripts (``misc/3Dto2D``, ``misc/smpl_relations``):

- intrinsics: f = 60 mm lens on a 32 mm sensor at 320 px -> 600 px; c = (160, 120);
- world -> camera: SURREAL's extrinsic (``misc/3Dto2D/getExtrinsicBlender.m``: Blender's fixed
  camera matrix turned into computer-vision axes) is ``[[0, 0, -1], [0, 1, 0], [-1, 0, 0]]``, whose
  determinant is -1: a reflection. It reproduces the released ``joints2D``, and the videos are the
  matching mirror images (SURREAL's demo notes that "left/right are swapped"). kinediff undoes the
  mirror: frames and masks are flipped horizontally, ``joints2D`` become 320 - u, and the camera is
  the rotation ``R = diag(-1, 1, 1) R_surreal = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]`` with
  ``t = -R camLoc`` — so the GT is the true SMPL mesh (not a mirrored one) seen by a real camera;
- root orientation in the world: ``Rx(pi/2) Rz(zrot) R(pose[:3])`` (z-up mocap -> SMPL's frame
  turned by the clip's zrot);
- placement: the posed root joint lands on ``joints3D[:, 0]``, so the world translation is
  ``joints3D[:, 0] - J0(beta)``. (SURREAL's demo subtracts the mean shape's J0 instead; the shaped
  J0 is the exact one, since Blender's armature is re-jointed to each shape.)

The loader moves root orientation and translation into the camera frame
(:func:`~kinediff.data.base.camera_frame_smpl`), so samples equal those of the COCO-style files.
Videos are decoded with PyAV (``pip install kinediff[video]``); masks come from ``_segm.mat``
(part index > 0). ``convert_surreal`` writes the COCO style with the frames as JPEG files.

COCO-style layout (``format="coco"``)::

    surreal_<split>.json     images {id, file_name, width, height, cam_param {focal, princpt}},
                             annotations {image_id, bbox, smpl_param {pose, shape, trans, gender}}
    images/<file_name>       the frames, extracted from the videos

There SMPL parameters are in the camera frame; ``gender`` may be a string or SURREAL's code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm.auto import tqdm

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.arrays import read_mat
from kinediff.core.checks import (
    check_array,
    check_choice,
    check_dir,
    check_file,
    check_finite_array,
    check_int,
    check_name,
    check_numbers,
)
from kinediff.core.images import write_jpeg
from kinediff.core.video import close_video, read_video_frame
from kinediff.data.base import PersonDataset, Record, camera_frame_smpl
from kinediff.data.coco_style import coco_entries, coco_records, write_coco_file

__all__ = ["SURREAL_K", "SURREAL_R_WORLD2CAM", "Surreal", "convert_surreal", "surreal_raw_records",
           "surreal_world_orientation"]

LAYOUT = ("the SURREAL folder with surreal_<split>.json (Pose2Mesh / I2L-MeshNet COCO-style "
          "annotations, or written by `kinediff data convert surreal`) and images/<file_name>")
RAW_LAYOUT = ("SURREAL's data/cmu folder with <split>/run<r>/<sequence>/<sequence>_c<clip>_info.mat, "
              "_segm.mat and .mp4 (https://www.di.ens.fr/willow/research/surreal/data/)")
SPLITS = ("train", "val", "test")
GENDER_CODES = {0: "female", 1: "male"}

#: SURREAL's intrinsics (every clip): 600 px focal length, principal point (160, 120), 320 x 240.
SURREAL_K = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])
#: Blender world -> computer-vision camera rotation of the un-mirrored frames (every clip; a proper
#: rotation, SURREAL's own extrinsic with its x row negated); translation is -R @ camLoc.
SURREAL_R_WORLD2CAM = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
SURREAL_WIDTH = 320
_INFO_KEYS = ("pose", "shape", "gender", "joints2D", "joints3D", "zrot", "camLoc")


def surreal_world_orientation(root_rotvec: np.ndarray, zrot: float) -> np.ndarray:
    """The SMPL root orientation in SURREAL's Blender world: Rx(pi/2) Rz(zrot) R(root_rotvec).

    Shape: root_rotvec (3,) axis-angle, zrot radians -> (3,) axis-angle.
    """
    turn = Rotation.from_euler("x", np.pi / 2) * Rotation.from_euler("z", float(zrot))
    return (turn * Rotation.from_rotvec(np.asarray(root_rotvec, dtype=np.float64))).as_rotvec()


def _load_info(path: Path) -> dict[str, np.ndarray]:
    mat = read_mat(path, list(_INFO_KEYS))
    missing = [k for k in _INFO_KEYS if k not in mat]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(map(repr, missing))}; expected "
                         f"{', '.join(_INFO_KEYS)} (SURREAL *_info.mat)")
    return mat


def _clip_arrays(info: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Frame-major arrays of one clip, checked: pose (T, 72), shape (T, 10), ... ."""
    where = str(path)

    def frames_last(key: str) -> np.ndarray:  # MATLAB drops the trailing frame axis when T = 1
        value = np.asarray(info[key])
        return value[:, :, None] if value.ndim == 2 else value

    pose = check_array(np.asarray(info["pose"]).T, (72,), where, "pose")
    n = len(pose)
    out = {"pose": pose,
           "shape": check_array(np.asarray(info["shape"]).T, (10,), where, "shape"),
           "joints2D": check_array(frames_last("joints2D").transpose(2, 1, 0), (24, 2), where,
                                     "joints2D"),
           "joints3D": check_array(frames_last("joints3D").transpose(2, 1, 0), (24, 3), where,
                                     "joints3D"),
           "zrot": np.asarray(info["zrot"], dtype=np.float64).ravel(),
           "gender": _gender_codes(info["gender"], where),
           "camLoc": np.asarray(info["camLoc"], dtype=np.float64).ravel()}
    for key in ("shape", "joints2D", "joints3D", "zrot", "gender"):
        if len(out[key]) != n:
            raise ValueError(f"{where}: key {key!r} has {len(out[key])} frames, pose has {n}")
    if out["camLoc"].shape != (3,):
        raise ValueError(f"{where}: key 'camLoc' has {out['camLoc'].size} values, expected 3")
    check_finite_array(out["camLoc"], where, "camLoc")
    return out


def _gender_codes(value: Any, where: str) -> np.ndarray:
    """SURREAL's per-frame gender codes as int64, refusing non-integral values (0.5, NaN)."""
    codes = check_numbers(value, where, "gender").ravel()
    if not np.isfinite(codes).all() or (codes != np.round(codes)).any():
        raise ValueError(f"{where}: key 'gender' must hold integer codes 0 (female) / 1 (male), got "
                         f"{codes[~np.isfinite(codes) | (codes != np.round(codes))][:3].tolist()}")
    return codes.astype(np.int64)


def _check_frame(clip: dict[str, np.ndarray], t: int, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` (file and frame) and the key if a value of frame ``t``
    that the record uses is not finite."""
    for key in ("pose", "shape", "joints2D", "joints3D", "zrot"):
        check_finite_array(clip[key][t], where, key)


def surreal_raw_records(root: str | os.PathLike, split: str, body: BodyLike | None = None,
                        frame_step: int = 1, runs: tuple[int, ...] | None = None,
                        progress: bool = False) -> list[Record]:
    """Records of every ``frame_step``-th frame of the raw clips of ``split`` (runs: all by default).

    ``body`` gives J0(beta), the root joint the placement and the camera-frame conversion use:
    a mapping gender -> model (SURREAL's clips were made with the gendered models, so the exact
    placement needs each frame's own gender's J0), or one model for every frame. Default: the
    synthetic body.
    """
    check_choice(split, "split", SPLITS)
    check_int(frame_step, "frame_step", 1)
    root = check_dir(root, RAW_LAYOUT)
    split_dir = check_dir(root / split, RAW_LAYOUT)
    run_dirs = sorted(split_dir.glob("run*")) if runs is None else [split_dir / f"run{r}" for r in runs]
    files = [f for d in run_dirs for f in sorted(check_dir(d, RAW_LAYOUT).glob("*/*_info.mat"))]
    if not files:
        raise FileNotFoundError(f"no *_info.mat files under {split_dir}; expected {RAW_LAYOUT}")
    R = SURREAL_R_WORLD2CAM
    bodies = BodySet.of(body)
    records = []
    for path in tqdm(files, desc=f"SURREAL {split}", disable=not progress, unit="clip"):
        clip = _clip_arrays(_load_info(path), path)
        stem = path.name[: -len("_info.mat")]
        t_cam = -R @ clip["camLoc"]
        frames = np.arange(0, len(clip["pose"]), frame_step)
        genders = []
        for t in frames:
            _check_frame(clip, t, f"{path} frame {t}")
            code = int(clip["gender"][t])
            if code not in GENDER_CODES:
                raise ValueError(f"{path} frame {t}: gender code {code}, expected 0 (female) or "
                                 f"1 (male)")
            genders.append(GENDER_CODES[code])
        j0 = np.zeros((len(frames), 3))
        for gender in sorted(set(genders)):  # J0(beta) of each frame's own gender's model
            rows = [k for k, g in enumerate(genders) if g == gender]
            model = bodies.for_gender(gender, f"{path}")
            with torch.no_grad():
                b = torch.as_tensor(clip["shape"][frames[rows]]).to(model.v_template)
                j0[rows] = model.rest_joints(b)[:, 0].double().cpu().numpy()
        for k, t in enumerate(frames):
            where = f"{path} frame {t}"
            pose = clip["pose"][t].copy()
            pose[:3] = surreal_world_orientation(pose[:3], clip["zrot"][t])
            trans = clip["joints3D"][t, 0] - j0[k]
            pose_c, transl_c = camera_frame_smpl(pose, trans, R, t_cam, j0[k])
            joints2d = np.concatenate([clip["joints2D"][t], np.ones((24, 1))], 1)
            joints2d[:, 0] = SURREAL_WIDTH - joints2d[:, 0]  # un-mirrored
            records.append(Record(
                image=path.with_name(stem + ".mp4"), pose=pose_c, betas=clip["shape"][t].copy(),
                transl=transl_c, K=SURREAL_K.copy(), gender=genders[k], box=None,
                joints2d=joints2d, source=where,
                extra={"sequence": stem, "frame": int(t), "segm": path.with_name(stem + "_segm.mat")}))
    return records


def read_segm_mask(path: Path, frame: int) -> np.ndarray | None:
    """Foreground mask (H, W) float of frame ``frame`` from a ``_segm.mat``, as stored (None if the
    file is absent); a file without the frame's ``segm_<frame+1>`` raises ValueError."""
    if not path.is_file():
        return None
    key = f"segm_{frame + 1}"
    mat = read_mat(path, [key])
    if key not in mat:
        raise ValueError(f"{path}: missing key {key!r} (SURREAL _segm.mat holds segm_1 ... segm_T)")
    return (np.asarray(mat[key]) > 0).astype(np.float32)


class Surreal(PersonDataset):
    """SURREAL in the common sample format.

    SURREAL's people were made with SMPL's gendered models, and its protocol's GT is gendered:
    pass ``body=load_smpl_bodies(folder)`` (a mapping gender -> model) for the exact GT; one model
    labels every frame with it (see :mod:`kinediff.body.genders`).

    Args:
        root: the folder (see the module doc): SURREAL's ``data/cmu`` for ``format="raw"``, the
            folder of ``surreal_<split>.json`` for ``format="coco"``.
        split: "train", "val" or "test".
        format: "coco" (default, COCO-style JSON + extracted frames) or "raw" (the released clips).
        annotation: the JSON file name, if not ``surreal_<split>.json`` (coco only).
        frame_step: keep every n-th frame of each clip (raw only; clips have 100 frames at 30 fps).
        runs: which ``run<r>`` folders to read (raw only; default all: run0, run1, run2).
        body, image_size, mesh_factors, crop_scale, gt_gender: as :class:`~kinediff.data.pw3d.PW3D`.
        progress: a progress bar while the raw clips' annotations are read.

    Raw samples carry SURREAL's masks (``has_mask`` True where the ``_segm.mat`` is present).
    """

    def __init__(self, root: str | os.PathLike, split: str = "val", format: str = "coco",
                 annotation: str | None = None, body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 frame_step: int = 1, runs: tuple[int, ...] | None = None,
                 progress: bool = False, gt_gender: str | None = None) -> None:
        check_choice(format, "format", ("raw", "coco"))
        body = BodySet.of(body)
        if format == "raw":
            records = surreal_raw_records(root, split, body, frame_step, runs, progress)
        else:
            root = check_dir(root, LAYOUT)
            path = check_file(root / (annotation or f"surreal_{split}.json"), LAYOUT)
            records = coco_records(path, lambda im, where: root / "images" / check_name(
                im, "file_name", where), gender_codes=GENDER_CODES)
        super().__init__(records, body, image_size, mesh_factors, crop_scale, gt_gender)
        self.root, self.split, self.format = Path(root), split, format
        self._video: dict[str, Any] = {}

    def _read(self, record: Record) -> torch.Tensor:
        if self.format == "coco":
            return super()._read(record)
        return read_video_frame(record.image, record.extra["frame"], self._video).flip(-1)

    def _read_mask(self, record: Record) -> np.ndarray | None:
        if self.format == "coco":
            return super()._read_mask(record)
        mask = read_segm_mask(record.extra["segm"], record.extra["frame"])
        return None if mask is None else np.ascontiguousarray(mask[:, ::-1])

    def __getstate__(self) -> dict[str, Any]:  # an open video does not travel to workers
        state = dict(self.__dict__)
        state["_video"] = {}
        return state


def convert_surreal(src: str | os.PathLike, dst: str | os.PathLike, split: str = "val",
                    body: BodyLike | None = None, frame_step: int = 1,
                    runs: tuple[int, ...] | None = None,
                    progress: bool = True) -> Path:
    """Write ``dst/surreal_<split>.json`` (COCO style, camera-frame SMPL, SURREAL gender codes) and
    the un-mirrored frames as ``dst/images/<sequence>/frame_<t:05d>.jpg`` from the raw clips in
    ``src`` (see the module doc on SURREAL's mirror).

    ``body`` gives the root joint of the conversion (default: the synthetic body; pass the real
    SMPL models for real data: a mapping gender -> model places each frame with its own gender's
    J0(beta), as SURREAL's generator did)."""
    records = surreal_raw_records(src, split, body, frame_step, runs, progress)
    dst = Path(dst)
    images, annotations = [], []
    cache: dict[str, Any] = {}
    codes = {v: k for k, v in GENDER_CODES.items()}
    for i, r in enumerate(tqdm(records, desc="frames", disable=not progress, unit="frame")):
        name = f"{r.extra['sequence']}/frame_{r.extra['frame']:05d}.jpg"
        frame = read_video_frame(r.image, r.extra["frame"], cache).flip(-1)  # un-mirrored
        write_jpeg(frame, dst / "images" / name)
        image, annotation = coco_entries(i, r, codes[r.gender], file_name=name,
                                         width=int(frame.shape[2]), height=int(frame.shape[1]),
                                         sequence=r.extra["sequence"], frame=r.extra["frame"])
        images.append(image)
        annotations.append(annotation)
    close_video(cache)
    return write_coco_file(dst / f"surreal_{split}.json", images, annotations)

"""Human3.6M in the Pose2Mesh / I2L-MeshNet per-subject JSON format, Protocol 2 selection as flags.

Layout under ``root``::

    annotations/Human36M_subject<S>_data.json        COCO style: images {id, file_name, width,
                                                     height, subject, action_idx, subaction_idx,
                                                     cam_idx, frame_idx}, annotations {image_id, bbox}
    annotations/Human36M_subject<S>_camera.json      {cam_idx: {R (3x3), t (3, mm), f (2), c (2)}}
    annotations/Human36M_subject<S>_joint_3d.json    {action: {subaction: {frame: 17 x 3 world mm}}}
    annotations/Human36M_subject<S>_smpl_param.json  {action: {subaction: {frame: {pose (72),
                                                     shape (10), trans (3, world metres)}}}}
    images/<file_name>

World -> camera: X_cam = R X_world + t (t in millimetres). The SMPL parameters (NeuralAnnot fits,
world frame) are moved into the camera frame like 3DPW's; the measured 17 joints come along in
metres (``joints17``) so protocols can score joints against them (``Evaluator.update(...,
gt_joints17=...)``). Protocol 2 = subjects S9 and S11, the frontal camera (``cam_idx`` 4 in these
files), every 5th frame (SPIN) or every 64th (I2L): the ``subjects``, ``camera`` and ``frame_step``
flags; ``split="train"`` is S1, S5, S6, S7, S8, every camera, every 5th frame.

``format="coco"`` reads one COCO-style ``Human36M_<split>.json`` (camera-frame ``smpl_param`` and
``joint_cam`` in millimetres per annotation), as :func:`convert_h36m` writes it from the
per-subject files with a chosen selection.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.camera import camera_matrix
from kinediff.core.checks import (
    check_array,
    check_box,
    check_choice,
    check_dir,
    check_file,
    check_ids,
    check_image_ref,
    check_int,
    check_key,
    check_name,
    check_pose_array,
    check_record_int,
    check_rotation,
)
from kinediff.core.io import load_json
from kinediff.data.base import PersonDataset, Record, camera_frame_smpl, root_joint
from kinediff.data.coco_style import coco_entries, coco_records, write_coco_file

__all__ = ["H36M_CAMERAS", "Human36M", "convert_h36m", "h36m_records", "protocol_selection"]

LAYOUT = ("the Human3.6M folder with annotations/Human36M_subject<S>_{data,camera,joint_3d,"
          "smpl_param}.json (Pose2Mesh / I2L-MeshNet format) and images/")
SPLIT_SUBJECTS = {"train": (1, 5, 6, 7, 8), "test": (9, 11)}


def h36m_records(root: str | os.PathLike, subjects: tuple[int, ...], camera: int | None,
                 frame_step: int, body: BodyLike | None = None) -> list[Record]:
    """Records of the chosen subjects / camera / frames. The files give no gender (their SMPL
    parameters are neutral-model fits): ``body``'s neutral model gives J0 for the camera-frame
    conversion."""
    neutral = BodySet.of(body).for_gender("neutral", "Human3.6M (neutral-model SMPL fits)")
    root = check_dir(root, LAYOUT)
    ann_dir = check_dir(root / "annotations", LAYOUT)
    records = []
    for s in subjects:
        files = {k: check_file(ann_dir / f"Human36M_subject{s}_{k}.json", LAYOUT)
                 for k in ("data", "camera", "joint_3d", "smpl_param")}
        data, cams = load_json(files["data"]), load_json(files["camera"])
        joints3d, smpl = load_json(files["joint_3d"]), load_json(files["smpl_param"])
        images = check_ids(check_key(data, "images", str(files["data"])), str(files["data"]))
        for a, ann in enumerate(check_key(data, "annotations", str(files["data"]))):
            where = f"{files['data']} annotations[{a}]"
            image_id, im = check_image_ref(ann, images, where)
            im_where = f"{where} (image {image_id})"
            cam_idx = check_record_int(check_key(im, "cam_idx", im_where), im_where, "cam_idx")
            frame = check_record_int(check_key(im, "frame_idx", im_where), im_where, "frame_idx")
            if (camera is not None and cam_idx != camera) or frame % frame_step:
                continue
            act = str(check_record_int(check_key(im, "action_idx", im_where), im_where, "action_idx"))
            sub = str(check_record_int(check_key(im, "subaction_idx", im_where), im_where, "subaction_idx"))
            cam_where = f"{files['camera']} camera {cam_idx}"
            cam = check_key(cams, str(cam_idx), cam_where)
            R = check_rotation(check_key(cam, "R", cam_where), cam_where, "R")
            t = check_array(check_key(cam, "t", cam_where), (3,), cam_where, "t", exact=True,
                              finite=True) / 1000.0
            K = camera_matrix(check_key(cam, "f", cam_where), check_key(cam, "c", cam_where), cam_where,
                              ("f", "c"))
            p_where = f"{files['smpl_param']} action {act} subaction {sub} frame {frame}"
            param = check_key(check_key(check_key(smpl, act, p_where), sub, p_where), str(frame),
                                p_where)
            pose = check_pose_array(check_key(param, "pose", p_where), p_where, "pose")
            betas = check_array(check_key(param, "shape", p_where), (10,), p_where, "shape", exact=True,
                                  finite=True)
            trans = check_array(check_key(param, "trans", p_where), (3,), p_where, "trans", exact=True,
                                  finite=True)
            j_where = f"{files['joint_3d']} action {act} subaction {sub} frame {frame}"
            joints = check_key(check_key(check_key(joints3d, act, j_where), sub, j_where), str(frame),
                                 j_where)
            j17 = check_array(joints, (3,), j_where, "joints")
            if j17.shape != (17, 3):
                raise ValueError(f"{j_where}: expected 17 x 3 joints, got {j17.shape}")
            j17 = check_array(j17, (17, 3), j_where, "joints", exact=True, finite=True)
            j0 = root_joint(neutral, betas).numpy()
            pose_c, transl_c = camera_frame_smpl(pose, trans, R, t, j0)
            box = ann.get("bbox")
            records.append(Record(
                image=root / "images" / check_name(im, "file_name", where), pose=pose_c,
                betas=betas, transl=transl_c, K=K,
                box=None if box is None else check_box(box, where, "bbox"), source=where,
                extra={"joints17": (j17 / 1000.0) @ R.T + t, "subject": s, "camera": cam_idx,
                       "frame": frame}))
    return records


#: Human3.6M's cameras by the names protocols use, as ``cam_idx`` in Pose2Mesh's files (1-4;
#: camera 4 is 60457274, the frontal one SPIN's and I2L-MeshNet's Protocol 2 keep).
H36M_CAMERAS = {"frontal": 4}


def protocol_selection(protocol) -> dict[str, Any]:
    """The Human3.6M test-set selection of an evaluation protocol: ``subjects`` (ints, from
    "S9"-style names), ``camera`` (``cam_idx``, from :data:`H36M_CAMERAS` or an int) and
    ``frame_step``. Raises ``ValueError`` for a protocol without one (e.g. a 3DPW protocol)."""
    names, cam, step = protocol.subjects, protocol.camera, protocol.frame_step
    if not names:
        raise ValueError(f"the {protocol.name} protocol selects no Human3.6M subjects")
    try:
        subjects = tuple(int(str(n).upper().removeprefix("S")) for n in names)
    except ValueError:
        raise ValueError(f"the {protocol.name} protocol's subjects {names} are not Human3.6M "
                         f"subject names like 'S9'") from None
    if cam is None or isinstance(cam, int):
        camera = cam
    elif cam in H36M_CAMERAS:
        camera = H36M_CAMERAS[cam]
    else:
        raise ValueError(f"the {protocol.name} protocol's camera {cam!r} is not one of "
                         f"{sorted(H36M_CAMERAS)} or a cam_idx")
    return {"subjects": subjects, "camera": camera, "frame_step": step if step is not None else 5}


def h36m_coco_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of a COCO-style ``Human36M_<split>.json`` (with ``joint_cam`` in millimetres)."""
    root = check_dir(root, LAYOUT)
    path = check_file(root / f"Human36M_{split}.json",
                        f"Human36M_{split}.json (written by `kinediff data convert h36m`)")

    def joints(ann: dict, where: str) -> dict[str, Any]:
        j17 = check_array(check_key(ann, "joint_cam", where), (3,), where, "joint_cam")
        if j17.shape != (17, 3):
            raise ValueError(f"{where}: expected 17 x 3 joint_cam, got {j17.shape}")
        return {"joints17": check_array(j17, (17, 3), where, "joint_cam", exact=True, finite=True) / 1000.0}

    return coco_records(path, lambda im, where: root / "images" / check_name(im, "file_name", where),
                        annotation_extra=joints)


def convert_h36m(src: str | os.PathLike, dst: str | os.PathLike, split: str = "test",
                 protocol: int = 2, frame_step: int = 5, body: BodyLike | None = None,
                 subjects: tuple[int, ...] | None = None) -> Path:
    """Write ``dst/Human36M_<split>.json`` (COCO style: camera-frame SMPL, ``joint_cam`` in mm)
    from the Pose2Mesh per-subject files in ``src``, with the split's selection (Protocol 2: the
    frontal camera for the test split; every ``frame_step``-th frame). Images are referenced
    (``file_name`` relative to ``src/images``), not copied; read it with
    ``Human36M(src, split, format="coco")`` after placing it in ``src``."""
    data = Human36M(src, split, protocol=protocol, subjects=subjects, frame_step=frame_step,
                    body=body)
    images, annotations = [], []
    for i, r in enumerate(data.records):
        image, annotation = coco_entries(
            i, r, file_name=str(r.image.relative_to(Path(src) / "images")),
            subject=r.extra["subject"], cam_idx=r.extra["camera"], frame_idx=r.extra["frame"])
        images.append(image)
        annotations.append({**annotation,
                            "joint_cam": (np.asarray(r.extra["joints17"]) * 1000.0).tolist()})
    return write_coco_file(Path(dst) / f"Human36M_{split}.json", images, annotations)


class Human36M(PersonDataset):
    """Human3.6M in the common sample format, plus ``joints17`` (17, 3): the measured joints in the
    camera frame, metres.

    Args:
        root: the Human3.6M folder (see the module doc).
        split: "train" (S1, S5, S6, S7, S8) or "test" (S9, S11).
        protocol: 2 selects the frontal camera for the test split (``camera`` overrides it); or a
            :class:`~kinediff.metrics.Protocol` with a test-set selection (``H36M_P2``): its
            ``subjects``, ``camera`` and ``frame_step`` (explicit arguments override them).
        subjects, camera, frame_step: explicit selection (``frame_step`` 5 as SPIN — the
            default — 64 as I2L).
        format: "pose2mesh" (the per-subject files) or "coco" (``Human36M_<split>.json``).
        body: the SMPL model(s); the files' SMPL parameters are neutral-model fits, so the neutral
            model (one body, or a mapping's "neutral") converts and labels every record.
        image_size, mesh_factors, crop_scale: as :class:`~kinediff.data.pw3d.PW3D`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "test", protocol: Any = 2,
                 subjects: tuple[int, ...] | None = None, camera: int | None = None,
                 frame_step: int | None = None, body: BodyLike | None = None,
                 image_size: int = 256, mesh_factors: tuple[int, ...] = (4, 4),
                 crop_scale: float = 1.2, format: str = "pose2mesh") -> None:
        check_choice(split, "split", tuple(SPLIT_SUBJECTS))
        default_camera = True
        if not isinstance(protocol, int):  # a kinediff.metrics.Protocol: its test-set selection
            if split != "test":
                raise ValueError(f"an evaluation protocol selects the test split, got split={split!r}")
            if format == "coco":
                raise ValueError("format='coco' holds the selection made when it was written "
                                 "(kinediff data convert h36m): pass protocol=2, not a Protocol")
            chosen = protocol_selection(protocol)
            subjects = chosen["subjects"] if subjects is None else subjects
            camera = chosen["camera"] if camera is None else camera
            frame_step = chosen["frame_step"] if frame_step is None else frame_step
            protocol, default_camera = 2, False  # the protocol's camera, None = every camera
        check_choice(protocol, "protocol", (1, 2))
        frame_step = check_int(5 if frame_step is None else frame_step, "frame_step", 1)
        check_choice(format, "format", ("pose2mesh", "coco"))
        if camera is None and default_camera and split == "test" and protocol == 2:
            camera = 4
        body = BodySet.of(body)
        self.subjects = tuple(subjects) if subjects is not None else SPLIT_SUBJECTS[split]
        if format == "coco":  # the selection was made when the file was written
            records = h36m_coco_records(root, split)
        else:
            records = h36m_records(root, self.subjects, camera, frame_step, body)
        for r in records:  # the measured joints are the sample's joints3d
            r.joints3d = np.concatenate([np.asarray(r.extra["joints17"]), np.ones((17, 1))], 1)
        super().__init__(records, body, image_size, mesh_factors, crop_scale, "neutral")
        self.root, self.split, self.camera, self.frame_step = Path(root), split, camera, frame_step

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        record = self.records[sample["index"]]
        sample["joints17"] = torch.as_tensor(record.extra["joints17"], dtype=torch.float32)
        return sample

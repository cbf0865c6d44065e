"""MPI-INF-3DHP's training set as NeuralAnnot / Hand4Whole / 3DCrowdNet read it
(``format="neuralannot"``), ``root`` holding::

    MPI-INF-3DHP_1k.json                   COCO: images with subject_idx, seq_idx, frame_idx,
                                           cam_idx, width, height; annotations with bbox
    MPI-INF-3DHP_camera_1k.json            subject -> seq -> cam: R, t (mm), focal, princpt
    MPI-INF-3DHP_joint_3d.json             subject -> seq -> frame: 17 x 3 world mm, the test
                                           set's joint order
    MPI-INF-3DHP_SMPL_NeuralAnnot.json     subject -> seq -> frame: world-frame neutral SMPL pose,
                                           shape, trans
    images_1k/S<s>/Seq<q>/imageSequence/<file_name>

SMPL is moved into the camera frame (:func:`~kinediff.data.base.camera_frame_smpl`) and marked
pseudo-GT (``extra["pseudo_gt"] = True``); frames without a fit get joints only.
"""

from __future__ import annotations

import os
from typing import Any

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.camera import camera_matrix
from kinediff.core.checks import (
    check_array,
    check_box,
    check_dir,
    check_file,
    check_finite_array,
    check_ids,
    check_image_ref,
    check_key,
    check_name,
    check_pose_array,
    check_record_int,
    check_rotation,
)
from kinediff.core.io import load_json
from kinediff.data.base import Record, camera_frame_smpl, root_joint
from kinediff.data.mpii3d.common import MPII3D_TEST_JOINTS, image_entry_size, joint_labels, project_joints

__all__ = ["NEURALANNOT_LAYOUT", "mpii3d_neuralannot_records"]

#: The files the "neuralannot" format reads (named in the error for a missing one).
NEURALANNOT_LAYOUT = ("the NeuralAnnot / Hand4Whole MPI_INF_3DHP/data folder with MPI-INF-3DHP_1k.json, "
                      "MPI-INF-3DHP_camera_1k.json, MPI-INF-3DHP_joint_3d.json, "
                      "MPI-INF-3DHP_SMPL_NeuralAnnot.json and images_1k/S<s>/Seq<q>/imageSequence/")


def mpii3d_neuralannot_records(root: str | os.PathLike, body: BodyLike | None = None,
                               frame_step: int = 1, smpl: bool = True) -> list[Record]:
    """Records of the NeuralAnnot / Hand4Whole files (training set, images at 1k resolution):
    measured joints (world mm -> camera metres) and, with ``smpl``, the NeuralAnnot SMPL fit moved
    into the camera frame (``body``'s neutral model gives J0) and marked ``pseudo_gt``. Frames
    whose ``frame_idx`` is not a multiple of ``frame_step`` are left out (Hand4Whole: 3)."""
    root = check_dir(root, NEURALANNOT_LAYOUT)
    files = {k: check_file(root / f"MPI-INF-3DHP_{k}.json", NEURALANNOT_LAYOUT)
             for k in ("1k", "camera_1k", "joint_3d")}
    data, cameras, joints = (load_json(files[k]) for k in ("1k", "camera_1k", "joint_3d"))
    params = None
    if smpl:
        path = check_file(root / "MPI-INF-3DHP_SMPL_NeuralAnnot.json", NEURALANNOT_LAYOUT +
                            " (or smpl=False for joints only)")
        params = load_json(path)
        neutral = BodySet.of(body).for_gender("neutral", "MPI-INF-3DHP NeuralAnnot (neutral-model fits)")
    images = check_ids(check_key(data, "images", str(files["1k"])), str(files["1k"]))
    records = []
    for a, ann in enumerate(check_key(data, "annotations", str(files["1k"]))):
        where = f"{files['1k']} annotations[{a}]"
        image_id, im = check_image_ref(ann, images, where)
        im_where = f"{where} (image {image_id})"
        s, q, frame, cam = (check_record_int(check_key(im, k, im_where), im_where, k)
                            for k in ("subject_idx", "seq_idx", "frame_idx", "cam_idx"))
        if frame % frame_step:
            continue
        cam_where = f"{files['camera_1k']} subject {s} seq {q} camera {cam}"
        cam_param = check_key(check_key(check_key(cameras, str(s), cam_where), str(q), cam_where),
                                str(cam), cam_where)
        R = check_rotation(check_key(cam_param, "R", cam_where), cam_where, "R")
        t = check_array(check_key(cam_param, "t", cam_where), (3,), cam_where, "t", exact=True,
                          finite=True) / 1000.0
        K = camera_matrix(check_key(cam_param, "focal", cam_where),
                          check_key(cam_param, "princpt", cam_where), cam_where)
        j_where = f"{files['joint_3d']} subject {s} seq {q} frame {frame}"
        world = check_array(check_key(check_key(check_key(joints, str(s), j_where), str(q), j_where),
                                          str(frame), j_where), (3,), j_where, "joints")
        if world.shape != (17, 3):
            raise ValueError(f"{j_where}: expected 17 x 3 joints, got {world.shape}")
        check_finite_array(world, j_where, "joints")
        cam_mm = world @ R.T + t * 1000.0
        size = image_entry_size(im, where)
        joints3d, kp, _ = joint_labels(cam_mm, project_joints(cam_mm, K), MPII3D_TEST_JOINTS, size, j_where)
        raw_box = ann.get("bbox")
        box = None if raw_box is None else check_box(raw_box, where, "bbox")
        pose = betas = transl = None
        extra: dict[str, Any] = {"subject": s, "sequence": q, "camera": cam, "frame": frame,
                                 "image_id": image_id}
        param = params.get(str(s), {}).get(str(q), {}).get(str(frame)) if params is not None else None
        if param is not None:
            p_where = f"{root / 'MPI-INF-3DHP_SMPL_NeuralAnnot.json'} subject {s} seq {q} frame {frame}"
            pose_w = check_pose_array(check_key(param, "pose", p_where), p_where, "pose")
            betas = check_array(check_key(param, "shape", p_where), (10,), p_where, "shape", exact=True,
                                  finite=True)
            trans_w = check_array(check_key(param, "trans", p_where), (3,), p_where, "trans", exact=True,
                                    finite=True)
            pose, transl = camera_frame_smpl(pose_w, trans_w, R, t, root_joint(neutral, betas).numpy())
            extra["pseudo_gt"] = True
        records.append(Record(
            image=root / "images_1k" / f"S{s}" / f"Seq{q}" / "imageSequence" / check_name(
                im, "file_name", where), pose=pose, betas=betas, transl=transl, K=K, box=box,
            joints3d=joints3d, keypoints2d=kp, source=where, extra=extra))
    return records

"""MPI-INF-3DHP as HybrIK and VirtualMarker read it (``format="hybrik"``), ``root`` holding
``annotation_mpi_inf_3dhp_<split>.json`` (images {id, file_name, width, height}; annotations
{image_id, bbox, cam_param {intrinsic_param 3 x 4}, keypoints_cam: 28 (train) or 17 (test) x 3,
camera frame, mm}) and the images under ``mpi_inf_3dhp_<split>_set/``.
"""

from __future__ import annotations

import os

from kinediff.core.checks import (
    check_array,
    check_box,
    check_dir,
    check_file,
    check_ids,
    check_image_ref,
    check_intrinsics,
    check_key,
    check_name,
    check_record_int,
)
from kinediff.core.io import load_json
from kinediff.data.base import Record
from kinediff.data.mpii3d.common import (
    MPII3D_JOINTS,
    MPII3D_TEST_JOINTS,
    image_entry_size,
    joint_labels,
    project_joints,
)

__all__ = ["HYBRIK_LAYOUT", "mpii3d_hybrik_records"]

#: The files the "hybrik" format reads (named in the error for a missing one).
HYBRIK_LAYOUT = ("the HybrIK / VirtualMarker 3dhp folder with annotation_mpi_inf_3dhp_<split>.json and "
                 "mpi_inf_3dhp_<split>_set/<file_name>")


def mpii3d_hybrik_records(root: str | os.PathLike, split: str) -> list[Record]:
    """Records of HybrIK's ``annotation_mpi_inf_3dhp_<split>.json`` (the file VirtualMarker reads):
    camera-frame joints (28 for train, 17 for test, mm), the 3 x 4 ``intrinsic_param``; 2D joints
    are the joints projected, as HybrIK and VirtualMarker make them."""
    root = check_dir(root, HYBRIK_LAYOUT)
    path = check_file(root / f"annotation_mpi_inf_3dhp_{split}.json", HYBRIK_LAYOUT)
    data = load_json(path)
    images = check_ids(check_key(data, "images", str(path)), str(path))
    folder = root / f"mpi_inf_3dhp_{split}_set"
    records = []
    for a, ann in enumerate(check_key(data, "annotations", str(path))):
        where = f"{path} annotations[{a}]"
        image_id, im = check_image_ref(ann, images, where)
        cam = check_array(check_key(check_key(ann, "cam_param", where), "intrinsic_param", where),
                            (4,), where, "cam_param.intrinsic_param")
        if cam.shape != (3, 4):
            raise ValueError(f"{where}: key 'cam_param.intrinsic_param' has shape {cam.shape}, expected (3, 4)")
        K = check_intrinsics(cam[:, :3].copy(), where, "cam_param.intrinsic_param")
        joints = check_array(check_key(ann, "keypoints_cam", where), (3,), where, "keypoints_cam",
                               finite=True)
        names = {28: MPII3D_JOINTS, 17: MPII3D_TEST_JOINTS}.get(len(joints))
        if names is None:
            raise ValueError(f"{where}: key 'keypoints_cam' has {len(joints)} joints, expected 28 "
                             f"(train) or 17 (test)")
        size = image_entry_size(im, where)
        joints3d, kp, joint_box = joint_labels(joints, project_joints(joints, K), names, size, where)
        raw_box = ann.get("bbox")
        box = joint_box if raw_box is None else check_box(raw_box, where, "bbox")
        extra = {"image_id": image_id}
        if "activity_id" in ann:
            extra["activity"] = check_record_int(ann["activity_id"], where, "activity_id")
        records.append(Record(image=folder / check_name(im, "file_name", where), pose=None,
                              betas=None, transl=None, K=K, box=box, joints3d=joints3d, keypoints2d=kp,
                              source=where, extra=extra))
    return records

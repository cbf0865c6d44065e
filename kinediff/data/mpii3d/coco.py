"""MPI-INF-3DHP in the COCO-style layout (``format="coco"``): ``MPI-INF-3DHP_<split>.json`` as
:func:`~kinediff.data.mpii3d.dataset.convert_mpii3d` writes it (``joint_cam`` mm, ``keypoints``,
``bbox``, K as ``cam_param``; the test split adds ``univ_joint_cam``), the images at
``root/<file_name>``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kinediff.core.checks import check_array, check_dir, check_file, check_finite_array, check_name
from kinediff.data.base import Record
from kinediff.data.coco_style import coco_records

__all__ = ["COCO_LAYOUT", "mpii3d_coco_records"]

#: The files the "coco" format reads (named in the error for a missing one).
COCO_LAYOUT = ("MPI-INF-3DHP_<split>.json (written by `kinediff data convert mpi-inf-3dhp`) with the "
               "images at <root>/<file_name>")


def mpii3d_coco_records(root: str | os.PathLike, split: str, annotation: str | None = None) -> list[Record]:
    """Records of a COCO-style ``MPI-INF-3DHP_<split>.json``
    (:func:`~kinediff.data.mpii3d.dataset.convert_mpii3d`), images at ``root/<file_name>``; the
    test split's ``univ_joint_cam`` comes back as ``extra["joints3d_univ"]``."""
    root = check_dir(root, COCO_LAYOUT)
    path = check_file(root / (annotation or f"MPI-INF-3DHP_{split}.json"), COCO_LAYOUT)

    def extra(ann: dict, where: str) -> dict[str, Any]:
        out = {k: ann[k] for k in ("subject", "sequence", "camera", "frame", "activity") if k in ann}
        if ann.get("univ_joint_cam") is not None:
            univ = check_array(ann["univ_joint_cam"], (3,), where, "univ_joint_cam")
            if univ.shape != (17, 3):
                raise ValueError(f"{where}: key 'univ_joint_cam' has shape {univ.shape}, expected (17, 3)")
            check_finite_array(univ, where, "univ_joint_cam")
            valid = check_array(ann.get("joint_valid", np.ones(17)), (17,), where, "joint_valid")
            out["joints3d_univ"] = np.concatenate([univ / 1000.0, (valid > 0)[:, None]], 1)
        return out

    return coco_records(path, lambda im, where: root / check_name(im, "file_name", where),
                        annotation_extra=extra)

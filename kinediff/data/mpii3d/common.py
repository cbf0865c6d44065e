"""What the MPI-INF-3DHP formats share: the data set's two joint sets named as kinediff names them,
the labels of one person (H36M-order joints, 2D keypoints and a box) made from the data set's
joints, and the image sizes and numbered folders (``S1``, ``Seq2``, ``TS3``) the readers look up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kinediff.core.checks import check_dir, check_finite_array, check_key, check_record_int
from kinediff.core.conventions import map_joints

__all__ = ["MPII3D_JOINTS", "MPII3D_TEST_JOINTS", "chosen_folders", "image_entry_size",
           "image_file_size", "joint_labels", "numbered_folders", "project_joints"]

#: The 28 joints of the training set in ``annot.mat``'s order (the data set's
#: ``mpii_get_joint_set('all')``), spelled as :data:`~kinediff.core.conventions.H36M_JOINTS` where the
#: joint is the same one: MPI ``spine`` -> ``torso``, ``neck`` -> ``neck`` (H36M thorax),
#: ``head`` -> ``nose`` (H36M neck/nose), ``head_top`` -> ``head``. The others keep their own names
#: (spine2-4, clavicles, hands, feet, toes) and are not mapped.
MPII3D_JOINTS: tuple[str, ...] = (
    "spine3", "spine4", "spine2", "torso", "pelvis", "neck", "nose", "head",
    "l_clavicle", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
    "r_clavicle", "r_shoulder", "r_elbow", "r_wrist", "r_hand",
    "l_hip", "l_knee", "l_ankle", "l_foot", "l_toe",
    "r_hip", "r_knee", "r_ankle", "r_foot", "r_toe")

#: The 17 joints of the test set (``mpii_get_joint_set('relevant')``: head_top, neck,
#: right_shoulder, right_elbow, right_wrist, left_shoulder, left_elbow, left_wrist, right_hip,
#: right_knee, right_ankle, left_hip, left_knee, left_ankle, pelvis, spine, head) in kinediff's
#: names; also the order of NeuralAnnot's ``MPI-INF-3DHP_joint_3d.json``.
MPII3D_TEST_JOINTS: tuple[str, ...] = (
    "head", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "torso", "nose")


def joint_labels(joints_mm: np.ndarray | None, uv: np.ndarray, names: tuple[str, ...],
                 size: tuple[int, int], where: str
                 ) -> tuple[np.ndarray | None, np.ndarray, tuple[float, ...] | None]:
    """joints3d (17, 4) in metres, keypoints2d (17, 3) and the box of one person from the data
    set's joints (J, 3) in mm (or None) and 2D joints (J, 2) in pixels, mapped by name.

    A 2D joint is visible where it lies inside the ``size`` = (width, height) image; the box is the
    extent of the visible 2D joints (None with fewer than 2). Joints that are not finite raise
    ``ValueError`` naming ``where``."""
    check_finite_array(uv, where, "2D joints")
    if joints_mm is not None:
        check_finite_array(joints_mm, where, "3D joints")
    w, h = size
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    kp, valid2 = map_joints(np.concatenate([uv, inside[:, None]], 1), names, where=where)
    kp[~valid2] = 0.0
    joints3d = None
    if joints_mm is not None:
        j3, valid3 = map_joints(joints_mm / 1000.0, names, where=where)
        joints3d = np.concatenate([j3, valid3[:, None]], 1)
    box = None
    if inside.sum() >= 2:
        lo, hi = uv[inside].min(0), uv[inside].max(0)
        box = (float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0)))
    return joints3d, kp, box


def project_joints(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (J, 2) of camera-frame points (J, 3) through K (3, 3) (NumPy, float64)."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def image_file_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, or None if it cannot be read."""
    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except (OSError, UnidentifiedImageError):
        return None


def image_entry_size(im: Any, where: str) -> tuple[int, int]:
    """(width, height) of a COCO-style image entry (its ``width`` and ``height``): positive integers,
    else ``ValueError`` naming ``where``."""
    size = tuple(check_record_int(check_key(im, k, where), where, k) for k in ("width", "height"))
    if min(size) < 1:
        raise ValueError(f"{where}: keys 'width' and 'height' must be positive, got {size}")
    return size  # type: ignore[return-value]


def numbered_folders(folder: Path, prefix: str) -> list[tuple[int, Path]]:
    """Sub-folders ``<prefix><k>`` of ``folder`` (``S1``, ``Seq2``, ``TS3``) as (k, path), sorted by k;
    none if ``folder`` is not a folder."""
    found = []
    for p in folder.iterdir() if folder.is_dir() else []:
        m = re.fullmatch(re.escape(prefix) + r"(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def chosen_folders(folder: Path, prefix: str, ids: Any, index: str, layout: str) -> list[tuple[int, Path]]:
    """The sub-folders ``<prefix><k>`` for each k of ``ids`` (each must exist), or, for ``ids``
    None, all there are (:func:`numbered_folders`; ``FileNotFoundError`` for none, naming
    ``<prefix><index>`` and the expected ``layout``)."""
    if ids is None:
        found = numbered_folders(folder, prefix)
        if not found:
            raise FileNotFoundError(f"no {prefix}<{index}> folders in {folder}; expected {layout}")
        return found
    return [(k, check_dir(folder / f"{prefix}{k}", layout)) for k in ids]

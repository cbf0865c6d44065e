"""The sample format every kinediff data set yields (SynthBody and the real-data loaders).

A sample is a dict of tensors (plus ``gender``):

========== ================ ==========================================================
key        shape            meaning
========== ================ ==========================================================
image      (3, S, S) float  RGB crop in [0, 1]
mask       (S, S) float     person mask (1 inside); all zeros with ``has_mask`` False
pose       (24, 3)          SMPL axis-angle, root orientation in the camera frame
betas      (10,)            SMPL shape
transl     (3,)             camera-frame translation: camera vertices = SMPL(pose, betas) + transl
gender     str              "neutral", "male" or "female"
K          (3, 3)           intrinsics of the crop, pixels
joints2d   (J, 3)           2D joints in crop pixels with a visibility (0/1) column
mesh2d     (N, 2)           the coarse mesh projected into the crop, pixels
joints3d   (17, 4)          3D joints in H36M order (:data:`~kinediff.core.conventions.H36M_JOINTS`),
                            camera frame, metres, with a validity (0/1) column
keypoints2d (17, 3)         2D joints in that order, crop pixels, with a visibility column
has_smpl   bool tensor      whether pose/betas/transl are ground truth (or pseudo-GT)
has_mask   bool tensor      whether ``mask`` is ground truth
has_mesh2d bool tensor      whether ``mesh2d`` (and ``joints2d``) are labels
has_joints3d bool tensor    whether ``joints3d`` has a valid joint
has_joints2d bool tensor    whether ``keypoints2d`` has a visible joint
========== ================ ==========================================================

Labels may be partial (a data set of 2D keypoints only, of 3D joints only): a label a sample
lacks is zeros and its flag False, so batches of mixed data sets collate, and the model's losses
apply each term only to the samples that have its label. With SMPL, ``joints3d`` and
``keypoints2d`` are the data set's measured joints where it has them, else the SMPL skeleton's
H36M-like joints (:data:`~kinediff.heads.H36M_LIKE_SMPL_JOINTS`).

The real-data loaders also give ``vertices`` (V, 3): the body-frame GT mesh (SMPL(pose, betas),
metres, no ``transl``) of the model that labelled the sample — the record's own gendered model for
gendered GT — from which the 2D labels were projected.

Camera frame: x right, y down, z forward (OpenCV); pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from kinediff.core.camera import project_points

__all__ = ["SAMPLE_KEYS", "check_sample", "collate", "project_labels"]

#: The keys of every sample (:func:`check_sample` checks them; :func:`collate` stacks them).
SAMPLE_KEYS: tuple[str, ...] = ("image", "mask", "pose", "betas", "transl", "gender", "K",
                                "joints2d", "mesh2d", "joints3d", "keypoints2d", "has_smpl",
                                "has_mask", "has_mesh2d", "has_joints3d", "has_joints2d")


def check_sample(sample: Mapping[str, Any], image_size: int | None = None) -> None:
    """Raise ``ValueError`` naming the first key that is missing or has the wrong shape."""
    missing = [k for k in SAMPLE_KEYS if k not in sample]
    if missing:
        raise ValueError(f"sample lacks keys {missing}")
    s = sample["image"].shape[-1] if image_size is None else image_size
    expect = {"image": (3, s, s), "mask": (s, s), "pose": (24, 3), "betas": (10,), "transl": (3,),
              "K": (3, 3), "joints3d": (17, 4), "keypoints2d": (17, 3)}
    for key, shape in expect.items():
        if tuple(sample[key].shape) != shape:
            raise ValueError(f"sample[{key!r}] must have shape {shape}, got {tuple(sample[key].shape)}")
    for key, last in (("joints2d", 3), ("mesh2d", 2)):
        if sample[key].dim() != 2 or sample[key].shape[1] != last:
            raise ValueError(f"sample[{key!r}] must have shape (N, {last}), got "
                             f"{tuple(sample[key].shape)}")
    if sample["gender"] not in ("neutral", "male", "female"):
        raise ValueError(f"sample['gender'] must be neutral, male or female, got {sample['gender']!r}")


def project_labels(joints: torch.Tensor, vertices: torch.Tensor, K: torch.Tensor,
                   transl: torch.Tensor, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2D labels of the sample format from body-frame 3D points and the crop's camera.

    Shape: joints (B, J, 3) and coarse-mesh vertices (B, N, 3) in metres, K (B, 3, 3), transl
    (B, 3) -> joints2d (B, J, 3) (crop pixels and a 0/1 column: inside the S x S crop) and
    mesh2d (B, N, 2) in crop pixels.
    """
    j2d = project_points(joints, K, transl)
    vis = ((j2d >= 0) & (j2d < image_size)).all(-1, keepdim=True).to(j2d.dtype)
    return torch.cat([j2d, vis], -1), project_points(vertices, K, transl)


def collate(samples: list[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Any]:
    """Stack samples into a batch (``gender`` becomes a list of strings). A batch that a data
    set's ``__getitems__`` already assembled (a mapping) is passed through."""
    if isinstance(samples, Mapping):
        return dict(samples)
    return torch.utils.data.default_collate(list(samples))

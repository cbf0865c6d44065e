"""Training augmentations as VirtualMarker uses them, each switchable, labels kept exact.

- rotation (probability 0.6, angle ~ N(0, 30 deg) clipped at 2 sigma) and scale (factor in
  1 +- 0.25): a similarity of the crop about the principal point, which is exactly a rotation of the
  camera frame about its optical axis plus a focal-length change: the root orientation and the
  translation are rotated, K is scaled, and the 2D labels are re-projected from the body;
- horizontal flip (probability 0.5): the image mirrored, left and right joints swapped and the
  axis-angles mirrored (y and z negated), the principal point mirrored, the translation mirrored
  (with the root joint's offset) — exact for a left/right-symmetric template;
- colour: each channel scaled by a factor in 1 +- 0.2;
- synthetic occlusion (probability 0.5): a rectangle of random texture over part of the crop
  (VirtualMarker pastes Pascal VOC objects; no such data here, so random texture).

Every draw comes from a generator seeded by (seed, epoch, index): :class:`Augmented` is
deterministic, and ``set_epoch`` (called by the Trainer) gives each epoch new draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.core.conventions import H36M_FLIP_PERMUTATION, SMPL_FLIP_PERMUTATION
from kinediff.data.base import root_joint
from kinediff.data.sample import project_labels

__all__ = ["Augment", "Augmented", "augment_sample", "flip_pose", "relabel"]


@dataclass
class Augment:
    """Which augmentations run and how strongly (VirtualMarker's values by default)."""

    flip: float = 0.5
    rotation: float = 0.6
    rotation_std_deg: float = 30.0
    scale: float = 0.25
    color: float = 0.2
    occlusion: float = 0.5

    @classmethod
    def none(cls) -> Augment:
        return cls(flip=0.0, rotation=0.0, scale=0.0, color=0.0, occlusion=0.0)


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror SMPL poses across the body's sagittal plane. Shape: (..., 24, 3) -> same."""
    flipped = pose[..., list(SMPL_FLIP_PERMUTATION), :].clone()
    flipped[..., 1:] *= -1
    return flipped


def relabel(sample: dict[str, Any], body, selection: torch.Tensor) -> dict[str, Any]:
    """Recompute ``joints2d`` and ``mesh2d`` (and ``vertices``, where the sample has them) of a
    sample from its SMPL parameters and K."""
    with torch.no_grad():
        out = body(sample["pose"][None].to(body.v_template), sample["betas"][None].to(body.v_template))
    joints2d, mesh2d = project_labels(out.joints.float().cpu(), out.vertices.float().cpu()[:, selection],
                                      sample["K"][None].float(), sample["transl"][None].float(),
                                      sample["image"].shape[-1])
    sample["joints2d"], sample["mesh2d"] = joints2d[0], mesh2d[0]
    if "vertices" in sample:
        sample["vertices"] = out.vertices[0].float().cpu()
    return sample


def _warp(image: torch.Tensor, matrix: torch.Tensor, centre: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample (C, S, S) so that output pixel p shows input pixel centre + matrix^-1 (p - centre)."""
    s = image.shape[-1]
    coords = torch.arange(s, dtype=torch.float64) + 0.5
    grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), -1)  # (S, S, 2) x, y
    src = (grid - centre) @ torch.linalg.inv(matrix).T + centre
    norm = (src / s * 2 - 1).to(image.dtype)
    return F.grid_sample(image[None], norm[None], mode=mode, padding_mode="zeros",
                         align_corners=False)[0]


def augment_sample(sample: dict[str, Any], aug: Augment, generator: torch.Generator, body,
                   selection: torch.Tensor) -> dict[str, Any]:
    """One augmented copy of a sample (see the module doc); labels re-projected."""
    out = dict(sample)
    u = torch.rand(8, generator=generator, dtype=torch.float64)
    s = out["image"].shape[-1]
    angle = 0.0
    if float(u[0]) < aug.rotation:
        z = float(torch.randn(1, generator=generator, dtype=torch.float64))
        angle = math.radians(max(-2.0, min(2.0, z)) * aug.rotation_std_deg)
    scale = 1.0 + aug.scale * (2 * float(u[1]) - 1)
    flip = float(u[2]) < aug.flip
    smpl = bool(out.get("has_smpl", True))
    j0 = root_joint(body, out["betas"]) if smpl and (angle or scale != 1.0 or flip) else None
    if angle or scale != 1.0:
        K = out["K"].double()
        c, sn = math.cos(angle), math.sin(angle)
        rot2 = torch.tensor([[c, -sn], [sn, c]], dtype=torch.float64)
        if smpl:
            # about the principal point: exactly a camera roll and a focal-length change, so the
            # SMPL root orientation and translation move with the image and K keeps its form
            centre = K[:2, 2]
        else:
            # no SMPL to move: about the crop centre (an off-centre person stays in the crop), K
            # becomes the similarity times K, and the 3D joints keep their camera frame
            centre = torch.full((2,), s / 2, dtype=torch.float64)
        out["image"] = _warp(out["image"], scale * rot2, centre, "bilinear")
        out["mask"] = _warp(out["mask"][None], scale * rot2, centre, "nearest")[0]
        if smpl:
            rz = torch.eye(3, dtype=torch.float64)
            rz[:2, :2] = rot2
            root = axis_angle_to_matrix(out["pose"][0].double())
            pose = out["pose"].clone()
            pose[0] = matrix_to_axis_angle(rz @ root).to(pose.dtype)
            out["pose"] = pose
            out["transl"] = (rz @ (j0 + out["transl"].double()) - j0).to(out["transl"].dtype)
            _move_joints(out, rz, scale * rot2, centre)
            K = K.clone()
            K[0, 0] *= scale
            K[1, 1] *= scale
        else:
            similarity = torch.eye(3, dtype=torch.float64)
            similarity[:2, :2] = scale * rot2
            similarity[:2, 2] = centre - scale * rot2 @ centre
            _move_joints(out, torch.eye(3, dtype=torch.float64), scale * rot2, centre)
            K = similarity @ K
        out["K"] = K.to(sample["K"].dtype)
    if flip:
        out["image"] = out["image"].flip(-1)
        out["mask"] = out["mask"].flip(-1)
        if smpl:
            pose = out["pose"].double().clone()
            root = axis_angle_to_matrix(pose[0])
            mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
            # the mirrored root: M R M (its axis-angle is (x, -y, -z)); the body part flips
            pose = flip_pose(pose)
            pose[0] = matrix_to_axis_angle(mirror @ root @ mirror)
            out["pose"] = pose.to(sample["pose"].dtype)
            # V' = M V with M J0 = J0 - 2 J0x e_x: t' = M (J0 + t) - J0
            out["transl"] = (mirror @ (j0 + out["transl"].double()) - j0).to(sample["transl"].dtype)
        _flip_joints(out, s)
        # u -> S - u of the camera with X -> -X: K' = F K diag(-1, 1, 1), F = [[-1, 0, S], ...]
        # (for an upper-triangular K just c_x -> S - c_x)
        f = torch.tensor([[-1.0, 0.0, s], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
        K = f @ out["K"].double() @ torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
        out["K"] = K.to(sample["K"].dtype)
    if aug.color:
        factors = 1 + aug.color * (2 * torch.rand(3, generator=generator) - 1)
        out["image"] = (out["image"] * factors[:, None, None]).clamp(0, 1)
    if float(u[3]) < aug.occlusion:
        w = int(s * (0.15 + 0.25 * float(u[4])))
        h = int(s * (0.15 + 0.25 * float(u[5])))
        x0, y0 = int((s - w) * float(u[6])), int((s - h) * float(u[7]))
        patch = torch.rand(3, 4, 4, generator=generator)
        patch = F.interpolate(patch[None], size=(h, w), mode="nearest")[0]
        image = out["image"].clone()
        image[:, y0:y0 + h, x0:x0 + w] = patch
        out["image"] = image
    if not smpl:
        return out  # nothing to re-project: its joints moved with the image
    return relabel(out, body, selection)


def _move_joints(sample: dict[str, Any], rz: torch.Tensor, affine: torch.Tensor,
                 centre: torch.Tensor) -> None:
    """Rotate ``joints3d`` by the camera roll ``rz`` (3, 3) and move ``keypoints2d`` with the
    image (p -> centre + affine (p - centre)); points leaving the crop become invisible."""
    if "joints3d" in sample:
        j = sample["joints3d"].double()
        sample["joints3d"] = torch.cat([j[:, :3] @ rz.T, j[:, 3:]], 1).to(sample["joints3d"].dtype)
    if "keypoints2d" in sample:
        _set_keypoints(sample, (sample["keypoints2d"][:, :2].double() - centre) @ affine.T + centre)


def _flip_joints(sample: dict[str, Any], size: int) -> None:
    """Mirror ``joints3d`` (x -> -x) and ``keypoints2d`` (u -> S - u), left and right swapped."""
    perm = list(H36M_FLIP_PERMUTATION)
    if "joints3d" in sample:
        j = sample["joints3d"][perm].clone()
        j[:, 0] = -j[:, 0]
        sample["joints3d"] = j
    if "keypoints2d" in sample:
        k = sample["keypoints2d"][perm].clone()
        sample["keypoints2d"] = k
        uv = k[:, :2].double().clone()
        uv[:, 0] = size - uv[:, 0]
        _set_keypoints(sample, uv)


def _set_keypoints(sample: dict[str, Any], uv: torch.Tensor) -> None:
    """New crop coordinates (17, 2) for ``keypoints2d``: visible where it was and inside the crop."""
    old = sample["keypoints2d"]
    size = sample["image"].shape[-1]
    vis = (old[:, 2] > 0) & ((uv >= 0) & (uv < size)).all(-1)
    sample["keypoints2d"] = torch.cat([torch.where(vis[:, None], uv, torch.zeros_like(uv)),
                                       vis[:, None].double()], 1).to(old.dtype)
    if "has_joints2d" in sample:
        sample["has_joints2d"] = vis.any()


class Augmented(Dataset):
    """A data set with augmentations: item i of epoch e is ``augment_sample`` of ``dataset[i]``
    with a generator seeded by (seed, e, i); the labels are re-projected with the body that made
    them (``dataset.body_for(sample["gender"])`` where the data set has one, else ``dataset.body``)."""

    def __init__(self, dataset, augment: Augment | None = None, seed: int = 0) -> None:
        self.dataset, self.augment, self.seed, self.epoch = dataset, augment or Augment(), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        inner = getattr(self.dataset, "set_epoch", None)
        if callable(inner):
            inner(epoch)

    @property
    def body(self):
        """The wrapped data set's body."""
        return self.dataset.body

    @property
    def selection(self) -> torch.Tensor:
        """The wrapped data set's coarse-mesh vertex selection."""
        return self.dataset.selection

    def body_for(self, gender: str):
        """The wrapped data set's body for ``gender`` (its only body if it has no ``body_for``)."""
        inner = getattr(self.dataset, "body_for", None)
        return inner(gender) if callable(inner) else self.dataset.body

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.draw(index)

    def draw(self, index: int, repeat: int = 0) -> dict[str, Any]:
        """Item ``index`` augmented with the draw (seed, epoch, index, ``repeat``): a
        :class:`~kinediff.data.MixedDataset` that takes one item several times in an epoch asks
        for a different ``repeat`` each time, so the copies are augmented differently."""
        key = ((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index) * 101 + repeat \
            if repeat else (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index
        g = torch.Generator().manual_seed(key % (2**63 - 1))
        sample = self.dataset[index]
        # the labels are re-projected with the body that made them (the sample's gender's model)
        return augment_sample(sample, self.augment, g, self.body_for(sample["gender"]),
                              self.dataset.selection)

    def report(self) -> str:
        report = getattr(self.dataset, "report", None)
        return report() if callable(report) else ""

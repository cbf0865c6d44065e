"""What every real-data loader shares: records -> samples in the common format, clear errors,
and unreadable images skipped, counted and reported instead of crashing an epoch.

A loader lists *records* (one person in one frame: image path, full-image intrinsics, camera-frame
SMPL parameters, gender, a person box or 2D joints) and :func:`make_sample` turns a record into a
sample (:mod:`kinediff.data.sample`): the square crop around the box (scale factor
``crop_scale``), the crop's intrinsics, and the GT 2D joints and 2D coarse mesh projected from the
body model — the record's own gender's model when the data set is given one per gender
(:class:`~kinediff.body.BodySet`) — so every data set labels the same way as SynthBody.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from kinediff.body.genders import BodyLike, BodySet
from kinediff.data.crops import CROP_SCALE, crop_intrinsics, crop_square
from kinediff.data.images import read_image
from kinediff.data.sample import project_labels
from kinediff.render.zbuffer import project_points

__all__ = ["PersonDataset", "Record", "camera_frame_smpl", "make_sample", "require_array", "require_dir",
           "require_file", "require_key", "resolve_gt_gender", "root_joint"]


def require_dir(path: str | os.PathLike, layout: str) -> Path:
    """``path`` as a Path, or FileNotFoundError naming it and the expected ``layout``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"no directory {path}; expected {layout}")
    return path


def require_file(path: str | os.PathLike, layout: str) -> Path:
    """``path`` as a Path, or FileNotFoundError naming it and the expected ``layout``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}; expected {layout}")
    return path


def require_key(data: Any, key: Any, where: str) -> Any:
    """``data[key]`` of an annotation file's content (a dict key or a list index), or
    ``ValueError`` naming ``where`` (file and record) and the key: "<where>: missing or malformed
    key 'pose' (KeyError)"."""
    try:
        return data[key]
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"{where}: missing or malformed key {key!r} ({type(err).__name__})") from None


def require_array(value: Any, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    """``value`` (the entry ``key`` of an annotation) as a float64 array ending in ``shape``, or
    ``ValueError`` naming ``where`` and ``key``.

    Shape: value (..., *shape) -> the same, float64; e.g. shape (72,) for a pose or (3, 3) for
    intrinsics. Messages: "<where>: key 'pose' is not numeric: ..." and "<where>: key 'pose' has
    shape (69,), expected (..., 72)".
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: key {key!r} is not numeric: {err}") from None
    if array.shape[-len(shape):] != shape:
        raise ValueError(f"{where}: key {key!r} has shape {array.shape}, expected (..., "
                         f"{', '.join(map(str, shape))})")
    return array


@dataclass
class Record:
    """One person in one frame.

    ``pose`` (72,) axis-angle with the root in the camera frame, ``betas`` (10,), ``transl`` (3,)
    camera frame (vertices = SMPL(pose, betas) + transl), ``K`` (3, 3) of the full image,
    ``box`` (x, y, w, h) in pixels or None (then the projected mesh's box is used), ``joints2d``
    (J, 3) in full-image pixels with visibility, or None. ``source`` names file and record for
    error messages.
    """

    image: Path
    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    K: np.ndarray
    gender: str = "neutral"
    box: tuple[float, ...] | None = None
    joints2d: np.ndarray | None = None
    mask: np.ndarray | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def root_joint(body, betas) -> torch.Tensor:
    """The rest-pose root joint J0(beta) about which SMPL rotates the body.

    Shape: betas (K,) array or tensor -> (3,) float64 CPU tensor, metres.
    """
    with torch.no_grad():
        b = torch.as_tensor(betas).to(body.v_template)[None]
        return body.rest_joints(b)[0, 0].double().cpu()


def camera_frame_smpl(pose: np.ndarray, transl: np.ndarray, rotation: np.ndarray,
                      translation: np.ndarray, root_joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move SMPL parameters from the world frame into a camera frame X_c = R X_w + t.

    SMPL rotates about its root joint J0(beta), so the root orientation becomes R R_root and the
    translation R (J0 + trans) + t - J0. Shapes: pose (72,), transl (3,), rotation (3, 3),
    translation (3,), root_joint (3,) -> camera-frame pose (72,) and transl (3,).
    """
    from scipy.spatial.transform import Rotation

    pose = np.asarray(pose, dtype=np.float64).copy()
    root = Rotation.from_rotvec(pose[:3]).as_matrix()
    pose[:3] = Rotation.from_matrix(rotation @ root).as_rotvec()
    j0 = np.asarray(root_joint, dtype=np.float64)
    new_transl = rotation @ (j0 + np.asarray(transl, dtype=np.float64)) + translation - j0
    return pose, new_transl


def resolve_gt_gender(bodies: BodySet, gt_gender: str | None, context: str) -> str:
    """``gt_gender`` checked against ``bodies`` ("gendered" needs a mapping gender -> model);
    ``None`` gives "gendered" for a mapping and "neutral" for one body."""
    if gt_gender is None:
        return "gendered" if bodies.gendered else "neutral"
    if gt_gender not in ("gendered", "neutral"):
        raise ValueError(f"{context}: gt_gender must be 'gendered' or 'neutral', got {gt_gender!r}")
    if gt_gender == "gendered" and not bodies.gendered:
        raise ValueError(f"{context}: gendered GT needs one SMPL model per gender: pass "
                         f"body=kinediff.body.load_smpl_bodies(folder) (a mapping gender -> model), "
                         f"not a single model")
    return gt_gender


def make_sample(record: Record, image: torch.Tensor, body, selection: torch.Tensor,
                image_size: int = 256, crop_scale: float = CROP_SCALE) -> dict[str, Any]:
    """Turn a record and its decoded image (3, H, W) into a sample of the common format, its 2D
    labels projected from ``body`` (the model of the record's gender for gendered GT)."""
    from kinediff.data.crops import box_to_square

    pose = torch.as_tensor(record.pose, dtype=torch.float32).reshape(1, 24, 3)
    betas = torch.as_tensor(record.betas, dtype=torch.float32).reshape(1, -1)[:, :10]
    transl = torch.as_tensor(record.transl, dtype=torch.float32).reshape(1, 3)
    K_full = torch.as_tensor(record.K, dtype=torch.float64)
    with torch.no_grad():
        out = body(pose.to(body.v_template), betas.to(body.v_template))
        verts, joints = out.vertices.float().cpu(), out.joints.float().cpu()
    if record.box is not None:
        box = record.box
    else:  # the projected mesh's box
        uv = project_points(verts.double(), K_full, transl.double())[0]
        lo, hi = uv.min(0).values, uv.max(0).values
        box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    cx, cy, side = box_to_square(box, crop_scale)
    K = crop_intrinsics(K_full, cx, cy, side, image_size).float()
    crop = crop_square(image, cx, cy, side, image_size)
    if record.mask is not None:
        mask = crop_square(torch.as_tensor(record.mask, dtype=torch.float32)[None], cx, cy, side,
                           image_size)[0].round()
        has_mask = True
    else:
        mask, has_mask = torch.zeros(image_size, image_size), False
    joints2d, mesh2d = project_labels(joints, verts[:, selection], K[None], transl, image_size)
    return {"image": crop.clamp(0, 1), "mask": mask, "pose": pose[0], "betas": betas[0],
            "transl": transl[0], "gender": record.gender, "K": K,
            "joints2d": joints2d[0], "mesh2d": mesh2d[0], "vertices": verts[0],
            "has_smpl": torch.tensor(True), "has_mask": torch.tensor(has_mask)}


class PersonDataset(Dataset):
    """Base class of the real-data loaders: a list of :class:`Record` and the shared sampling.

    Args:
        records: the records (subclasses build them).
        body: the SMPL model(s) of the data: one :class:`~kinediff.body.BodyModel`, or a mapping
            gender -> ``BodyModel`` (:func:`~kinediff.body.load_smpl_bodies`; see
            :mod:`kinediff.body.genders`). Default: the synthetic body; pass the real SMPL model(s)
            for real data. The data set works on float32 CPU copies: the given models are never
            converted or moved.
        image_size: crop side. mesh_factors: hierarchy of the 2D coarse mesh.
        crop_scale: box enlargement.
        gt_gender: which model labels a record: "gendered" (its own gender's model; the default
            with a mapping) or "neutral" (the neutral model; the default with one body). With a
            mapping, loaders of raw files convert parameters to the camera frame with each
            record's own gender's model whatever ``gt_gender`` says (that is how the parameters
            were made), and refuse a record whose gender the mapping lacks.

    Attributes:
        bodies: the :class:`~kinediff.body.BodySet` of the data.
        body: its reference body (the neutral one when given), which fixes the mesh topology.
        gt_gender: "gendered" or "neutral".

    An image that cannot be read is skipped: the next readable record is returned in its place,
    and :meth:`report` (also printed by the Trainer at each epoch end) lists what was skipped.
    """

    def __init__(self, records: list[Record], body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = CROP_SCALE,
                 gt_gender: str | None = None) -> None:
        from kinediff.mesh import MeshHierarchy

        self.records = records
        self.bodies = BodySet.of(body).to("cpu", torch.float32, copy=True)
        self.gt_gender = resolve_gt_gender(self.bodies, gt_gender, type(self).__name__)
        if self.gt_gender == "gendered":
            self.bodies.require((r.gender for r in records), type(self).__name__)
        else:
            self.bodies.for_gender("neutral", type(self).__name__)
        self.body = self.bodies.reference
        self.image_size, self.crop_scale = image_size, crop_scale
        self.selection = MeshHierarchy.from_body(self.body, mesh_factors).selection(-1).cpu()
        self.skipped: dict[str, str] = {}

    def body_for(self, gender: str):
        """The (float32, CPU) body that labels a record or sample of ``gender``."""
        if self.gt_gender == "neutral":
            return self.bodies.for_gender("neutral", type(self).__name__)
        return self.bodies.for_gender(gender, type(self).__name__)

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, record: Record) -> torch.Tensor:
        return read_image(record.image)

    def _read_mask(self, record: Record) -> np.ndarray | None:
        """The full-image mask (H, W) of a record, or None (subclasses read it lazily)."""
        return record.mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {n} records")
        for attempt in range(n):
            record = self.records[(index + attempt) % n]
            try:
                image = self._read(record)
                mask = self._read_mask(record)
            except (FileNotFoundError, ValueError) as err:
                self.skipped[str(record.image)] = str(err)
                continue
            if mask is not record.mask:
                record = replace(record, mask=mask)
            sample = make_sample(record, image, self.body_for(record.gender), self.selection,
                                 self.image_size, self.crop_scale)
            sample["index"] = (index + attempt) % n
            return sample
        raise RuntimeError(f"{type(self).__name__}: no readable image among {n} records; "
                           f"first problem: {next(iter(self.skipped.values()), '?')}")

    def report(self) -> str:
        """A line on skipped (unreadable) images, or '' when none were."""
        if not self.skipped:
            return ""
        first = next(iter(self.skipped.items()))
        return (f"{type(self).__name__}: skipped {len(self.skipped)} unreadable image(s), "
                f"e.g. {first[0]}: {first[1]}")

"""What every real-data loader shares: records -> samples in the common format, clear errors,
and unreadable images skipped, counted and reported instead of crashing an epoch.

A loader lists *records* (one person in one frame: image path, full-image intrinsics, camera-frame
SMPL parameters, gender, a person box or 2D joints) and :func:`make_sample` turns a record into a
sample (:mod:`kinediff.data.sample`): the square crop around the box (scale factor
``crop_scale``), the crop's intrinsics, and the GT 2D joints and 2D coarse mesh projected from the
body model — the record's own gender's model when the data set is given one per gender
(:class:`~kinediff.body.BodySet`) — so every data set labels the same way as SynthBody.

Bad input: every record is checked once, when it is built (:func:`check_record`: exact shapes,
finite values, positive focal lengths and box sizes, a known gender), and the file-record checks
of :mod:`kinediff.core.checks` (``check_key``, ``check_array``, ...) check an annotation's values
where a loader reads them; each raises ``ValueError`` naming file, record and key (files
themselves are read by :mod:`kinediff.core.arrays`, every failure named and array sizes bounded
before allocation). A record that still fails while its sample is
made, or whose image cannot be read, is skipped, counted and reported
(:meth:`PersonDataset.report`).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch.utils.data import Dataset

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.camera import CROP_SCALE, box_to_square, crop_intrinsics, crop_square, project_points
from kinediff.core.checks import check_array, check_box, check_intrinsics, short_repr
from kinediff.core.conventions import GENDERS, H36M_LIKE_SMPL_JOINTS
from kinediff.core.images import read_image
from kinediff.data.sample import project_labels
from kinediff.mesh import MeshHierarchy

__all__ = [
    "PersonDataset",
    "Record",
    "camera_frame_smpl",
    "check_record",
    "make_sample",
    "resolve_gt_gender",
    "root_joint",
]


@dataclass
class Record:
    """One person in one frame, with whichever labels its data set has.

    SMPL (all three or none): ``pose`` (72,) axis-angle with the root in the camera frame,
    ``betas`` (10,), ``transl`` (3,) camera frame (vertices = SMPL(pose, betas) + transl); None
    where the data set has no SMPL label (``extra["pseudo_gt"] = True`` marks a fit such as
    NeuralAnnot or EFT rather than a measurement). ``K`` (3, 3) of the full image. ``gender``
    one of :data:`GENDERS`. ``box`` (x, y, w, h) in pixels, or None: then the projected SMPL
    mesh's box, else the visible ``keypoints2d``'s. ``joints2d`` (J, 3) in full-image pixels
    with visibility (the data set's own joints, used for boxes), or None. ``joints3d`` (17, 4): measured 3D joints in
    :data:`~kinediff.core.conventions.H36M_JOINTS` order, camera frame, metres, last column 1 where
    valid; ``keypoints2d`` (17, 3): 2D joints in that order, full-image pixels, last column 1
    where visible; each None where the data set has none. ``mask`` (H, W) of the full image, or
    None. ``source`` names file and record for error messages.

    A record is checked when it is made (:func:`check_record`): a wrong shape, a NaN or infinite
    value, a focal length or box size that is not positive, or an unknown gender raises
    ``ValueError`` naming ``source`` and the field.
    """

    image: Path
    pose: np.ndarray | None
    betas: np.ndarray | None
    transl: np.ndarray | None
    K: np.ndarray
    gender: str = "neutral"
    box: tuple[float, ...] | None = None
    joints2d: np.ndarray | None = None
    mask: np.ndarray | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    joints3d: np.ndarray | None = None
    keypoints2d: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_record(self)

    @property
    def has_smpl(self) -> bool:
        return self.pose is not None


def check_record(record: Record) -> None:
    """Raise ``ValueError`` naming the record's ``source`` (or image) and the field unless every
    label has its exact shape and finite values: ``pose`` (72,) or (24, 3), ``betas`` (10,),
    ``transl`` (3,) (all three or none), ``K`` (:func:`~kinediff.core.checks.check_intrinsics`),
    ``box`` (:func:`~kinediff.core.checks.check_box`), ``joints2d`` (J, 3), ``joints3d`` (17, 4), ``keypoints2d`` (17, 3),
    ``mask`` (H, W), a gender of :data:`GENDERS`, and at least one label. Run once per record,
    when it is made."""
    where = record.source or str(record.image)
    if not isinstance(record.image, (str, os.PathLike)):
        raise ValueError(f"{where}: image must be a file path, got {short_repr(record.image)}")
    smpl = [x is None for x in (record.pose, record.betas, record.transl)]
    if any(smpl) and not all(smpl):
        raise ValueError(f"{record.source or 'record'}: pose, betas and transl are given together "
                         f"or not at all")
    if record.pose is None and record.joints3d is None and record.keypoints2d is None:
        raise ValueError(f"{record.source or 'record'}: no label (SMPL, joints3d or keypoints2d)")
    for name, shape in (("joints3d", (17, 4)), ("keypoints2d", (17, 3))):
        value = getattr(record, name)
        if value is not None:
            if np.shape(value) != shape:
                raise ValueError(f"{record.source or 'record'}: {name} must have shape {shape}, got "
                                 f"{np.shape(value)}")
            check_array(value, shape, where, name, exact=True, finite=True)
    if record.pose is not None:
        if np.shape(record.pose) not in ((72,), (24, 3)):
            raise ValueError(f"{where}: key 'pose' has shape {np.shape(record.pose)}, expected (72,) or "
                             f"(24, 3)")
        check_array(record.pose, np.shape(record.pose), where, "pose", exact=True, finite=True)
        check_array(record.betas, (10,), where, "betas", exact=True, finite=True)
        check_array(record.transl, (3,), where, "transl", exact=True, finite=True)
    check_intrinsics(record.K, where, "K")
    if record.gender not in GENDERS:
        raise ValueError(f"{where}: unknown gender {record.gender!r}; expected one of {', '.join(GENDERS)}")
    if record.box is not None:
        check_box(record.box, where, "box")
    if record.joints2d is not None:
        joints2d = check_array(record.joints2d, (3,), where, "joints2d", finite=True)
        if joints2d.ndim != 2:
            raise ValueError(f"{where}: key 'joints2d' has shape {joints2d.shape}, expected (J, 3)")
    if record.mask is not None and np.ndim(record.mask) != 2:
        raise ValueError(f"{where}: key 'mask' has shape {np.shape(record.mask)}, expected (H, W)")


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


def _visible_box(points: np.ndarray | torch.Tensor) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) around the visible rows of (J, 3) points (None with fewer than 2)."""
    pts = torch.as_tensor(points, dtype=torch.float64)
    visible = pts[pts[:, 2] > 0, :2]
    if len(visible) < 2:
        return None
    lo, hi = visible.min(0).values, visible.max(0).values
    return float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0))


def make_sample(record: Record, image: torch.Tensor, body, selection: torch.Tensor,
                image_size: int = 256, crop_scale: float = CROP_SCALE) -> dict[str, Any]:
    """Turn a record and its decoded image (3, H, W) into a sample of the common format, its 2D
    labels projected from ``body`` (the model of the record's gender for gendered GT).

    A record with SMPL gets every label: the mesh's 2D labels, and ``joints3d`` / ``keypoints2d``
    (the record's measured ones, else the SMPL skeleton's H36M-like joints
    :data:`~kinediff.core.conventions.H36M_LIKE_SMPL_JOINTS` in the camera frame and projected). A record
    without gets zeros in the SMPL labels (``has_smpl``, ``has_mesh2d`` False) and its own joints.
    ``keypoints2d`` are moved into the crop; a point outside it counts as not visible.

    Raises:
        ValueError: naming the record's source: the record has no box and nothing to take one
            from; its SMPL mesh is not wholly in front of the camera (its projection is no
            image); its mask's shape is not the image's; or a computed label is not finite.
    """
    where = record.source or str(record.image)
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{where}: the decoded image has shape {tuple(image.shape)}, expected (3, H, W)")
    if record.mask is not None and tuple(np.shape(record.mask)) != tuple(image.shape[1:]):
        raise ValueError(f"{where}: the mask has shape {tuple(np.shape(record.mask))} but the image is "
                         f"{tuple(image.shape[1:])} (H, W)")
    K_full = torch.as_tensor(record.K, dtype=torch.float64)
    n_joints, n_verts = body.num_joints, body.num_vertices
    if record.has_smpl:
        pose = torch.as_tensor(record.pose, dtype=torch.float32).reshape(1, 24, 3)
        betas = torch.as_tensor(record.betas, dtype=torch.float32).reshape(1, -1)[:, :10]
        transl = torch.as_tensor(record.transl, dtype=torch.float32).reshape(1, 3)
        with torch.no_grad():
            out = body(pose.to(body.v_template), betas.to(body.v_template))
            verts, joints = out.vertices.float().cpu(), out.joints.float().cpu()
        nearest = float((verts[0, :, 2] + transl[0, 2]).min())
        if not nearest > 1e-6:
            raise ValueError(f"{where}: the SMPL mesh is not in front of the camera (its nearest vertex "
                             f"at z = {nearest:.3g} m; transl {transl[0].tolist()}), so it projects to no "
                             f"image")
    else:
        pose, betas, transl = torch.zeros(1, 24, 3), torch.zeros(1, 10), torch.zeros(1, 3)
        verts, joints = torch.zeros(1, n_verts, 3), torch.zeros(1, n_joints, 3)
    if record.joints3d is not None:
        joints3d = torch.as_tensor(record.joints3d, dtype=torch.float64)
    elif record.has_smpl:
        h36m = (joints[0, list(H36M_LIKE_SMPL_JOINTS)] + transl[0]).double()
        joints3d = torch.cat([h36m, torch.ones(17, 1, dtype=torch.float64)], 1)
    else:
        joints3d = torch.zeros(17, 4, dtype=torch.float64)
    if record.keypoints2d is not None:
        keypoints = torch.as_tensor(record.keypoints2d, dtype=torch.float64)
    else:  # the 3D joints projected (those in front of the camera)
        valid = (joints3d[:, 3] > 0) & (joints3d[:, 2] > 1e-6)
        uv = project_points(joints3d[None, :, :3], K_full, torch.zeros(1, 3, dtype=torch.float64))[0]
        keypoints = torch.cat([torch.where(valid[:, None], uv, torch.zeros_like(uv)),
                               valid[:, None].double()], 1)
    if record.box is not None:
        box = record.box
    elif record.has_smpl:  # the projected mesh's box
        uv = project_points(verts.double(), K_full, transl.double())[0]
        lo, hi = uv.min(0).values, uv.max(0).values
        box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    else:
        found = _visible_box(keypoints)
        if found is None:
            raise ValueError(f"{record.source or record.image}: no box, no SMPL and fewer than 2 "
                             f"visible keypoints to take one from")
        box = found
    cx, cy, side = box_to_square(box, crop_scale)
    K = crop_intrinsics(K_full, cx, cy, side, image_size)
    crop = crop_square(image, cx, cy, side, image_size)
    # full image -> crop pixels: the affine map K_crop K_full^-1 (both cameras share the rays)
    to_crop = K @ torch.linalg.inv(K_full)
    kp = keypoints[:, :2] @ to_crop[:2, :2].T + to_crop[:2, 2]
    inside = ((kp >= 0) & (kp < image_size)).all(-1)
    vis = (keypoints[:, 2] > 0) & inside
    keypoints2d = torch.cat([torch.where(vis[:, None], kp, torch.zeros_like(kp)), vis[:, None].double()], 1)
    K = K.float()
    if record.mask is not None:
        mask = crop_square(torch.as_tensor(record.mask, dtype=torch.float32)[None], cx, cy, side,
                           image_size)[0].round()
        has_mask = True
    else:
        mask, has_mask = torch.zeros(image_size, image_size), False
    if record.has_smpl:
        joints2d, mesh2d = project_labels(joints, verts[:, selection], K[None], transl, image_size)
        joints2d, mesh2d = joints2d[0], mesh2d[0]
    else:
        joints2d, mesh2d = torch.zeros(n_joints, 3), torch.zeros(len(selection), 2)
    for key, value in (("K", K), ("joints2d", joints2d), ("mesh2d", mesh2d), ("keypoints2d", keypoints2d),
                       ("vertices", verts)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{where}: the sample's {key} is not finite (from K {record.K.tolist()} "
                             f"and box {box})")
    return {"image": crop.clamp(0, 1), "mask": mask, "pose": pose[0], "betas": betas[0],
            "transl": transl[0], "gender": record.gender, "K": K,
            "joints2d": joints2d, "mesh2d": mesh2d, "vertices": verts[0],
            "joints3d": joints3d.float(), "keypoints2d": keypoints2d.float(),
            "has_smpl": torch.tensor(record.has_smpl), "has_mask": torch.tensor(has_mask),
            "has_mesh2d": torch.tensor(record.has_smpl),
            "has_joints3d": torch.tensor(bool((joints3d[:, 3] > 0).any())),
            "has_joints2d": torch.tensor(bool(vis.any()))}


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

    A record whose image cannot be read (missing, undecodable, a decompression bomb), or that
    cannot become a sample (no box to crop, a mesh behind the camera, any error while the sample is
    made), is skipped: the next good record is returned in its place, the record is not tried
    again, and :meth:`report` (also printed by the Trainer at each epoch end) counts the skipped
    records (and the files they share) with a first example. Records were checked when they were
    built (:func:`check_record`).
    """

    def __init__(self, records: list[Record], body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = CROP_SCALE,
                 gt_gender: str | None = None) -> None:
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
        #: unreadable image (or video) file -> the error
        self.skipped: dict[str, str] = {}
        #: index of a record whose image could not be read -> its file
        self.skipped_records: dict[int, str] = {}
        #: index of a record that could not become a sample -> the error, naming its source
        self.bad_records: dict[int, str] = {}

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
            i = (index + attempt) % n
            if i in self.skipped_records or i in self.bad_records:
                continue  # known bad: not read again
            record = self.records[i]
            try:
                image = self._read(record)
                mask = self._read_mask(record)
            except (FileNotFoundError, ValueError) as err:  # UnreadableImageError is a ValueError
                self.skipped[str(record.image)] = str(err)
                self.skipped_records[i] = str(record.image)
                continue
            if mask is not record.mask:
                record = copy.copy(record)  # checked once when built, not again per sample
                record.mask = mask
            try:
                sample = make_sample(record, image, self.body_for(record.gender), self.selection,
                                     self.image_size, self.crop_scale)
            except Exception as err:  # noqa: BLE001 - any failure skips this record, never the epoch
                text = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
                where = record.source or str(record.image)
                self.bad_records[i] = text if text.startswith(where) else f"{where}: {text}"
                continue
            sample["index"] = i
            return sample
        problems = [*self.skipped.values(), *self.bad_records.values()]
        raise RuntimeError(f"{type(self).__name__}: no usable record among {n} records; "
                           f"first problem: {problems[0] if problems else '?'}")

    def report(self) -> str:
        """Lines on what was skipped while sampling, or '' when nothing was: the records whose
        image (or video frame) could not be read, with the number of unreadable files they share,
        and the records that could not become a sample, each with a first example."""
        lines = []
        if self.skipped_records:
            files = {self.skipped_records[i] for i in self.skipped_records}
            first = next(iter(self.skipped.items()))
            lines.append(f"{type(self).__name__}: skipped {len(files)} unreadable image(s) "
                         f"({len(self.skipped_records)} record(s)), e.g. {first[0]}: {first[1]}")
        if self.bad_records:
            lines.append(f"{type(self).__name__}: skipped {len(self.bad_records)} record(s) that "
                         f"could not become a sample, e.g. {next(iter(self.bad_records.values()))}")
        return "\n".join(lines)

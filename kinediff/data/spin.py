"""SPIN-style ``.npz`` annotation files (``3dpw_test.npz``, ...): evaluation sets without a camera.

Keys: ``imgname`` (N,) image paths relative to ``image_root``, ``center`` (N, 2) and ``scale`` (N,)
(the person box: side = 200 * scale pixels around center), ``pose`` (N, 72) camera-frame SMPL,
``shape`` (N, 10), optionally ``gender`` (N,) "m" / "f" and ``has_smpl`` (N,) (a row without a fit
holds zeros, which are not a body: such rows are left out and counted). SPIN's files have no intrinsics or
translation, so kinediff assumes SPIN's nominal camera — f = 5000 px for a 224-pixel crop of the
box, principal point at the box centre — and places the mesh on the box's central ray at the depth
at which its 2D extent fills 1 / ``crop_scale`` of the crop. The 3D metrics do not depend on this
(they are root-aligned); 2D labels (``mesh2d``, ``joints2d``) are approximate. SPIN's Human3.6M
file holds no SMPL parameters (only 3D joints ``S``): use :class:`~kinediff.data.Human36M` there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from kinediff.body.genders import BodyLike, BodySet
from kinediff.core.arrays import read_npz
from kinediff.core.checks import (
    check_dir,
    check_file,
    check_finite_array,
    check_numbers,
)
from kinediff.data.base import PersonDataset, Record
from kinediff.data.coco_style import gender_name

__all__ = ["SpinNpz", "image_names", "spin_records"]

SPIN_FOCAL, SPIN_CROP = 5000.0, 224.0


def image_names(imgname: np.ndarray, path: Path) -> list[str]:
    """The ``imgname`` array of a SPIN-style file as text (bytes decoded as UTF-8), or
    ``ValueError`` naming the file if it holds numbers."""
    if imgname.ndim != 1 or imgname.dtype.kind not in "US":
        raise ValueError(f"{path}: key 'imgname' must be a 1-D array of file names, got {imgname.dtype} "
                         f"of shape {imgname.shape}")
    if imgname.dtype.kind == "S":
        return [name.decode("utf-8", errors="replace") for name in imgname.tolist()]
    return [str(name) for name in imgname]


def spin_records(path: str | os.PathLike, image_root: str | os.PathLike,
                 body: BodyLike | None = None, crop_scale: float = 1.2) -> list[Record]:
    """Records of a SPIN-style npz file (see the module doc for the assumed camera). ``body``
    (one model, or a mapping gender -> model: each record placed with its own gender's mesh)
    places the mesh in depth."""
    bodies = BodySet.of(body)
    layout = "a SPIN-style .npz (imgname, center, scale, pose, shape[, gender])"
    path = check_file(path, layout)
    image_root = check_dir(image_root, "the folder the npz's imgname entries are relative to")
    arrays = read_npz(path, layout)
    missing = [k for k in ("imgname", "center", "scale", "pose", "shape") if k not in arrays]
    if missing:
        hint = (" (SPIN's Human3.6M files hold no SMPL parameters: use kinediff.data.Human36M)"
                if "pose" in missing else "")
        raise ValueError(f"{path}: missing keys {missing}{hint}")
    n = len(arrays["imgname"])
    for key, shape in (("center", (n, 2)), ("scale", (n,)), ("pose", (n, 72)), ("shape", (n, 10))):
        if arrays[key].shape != shape:
            rows = "" if arrays[key].shape[:1] == (n,) else f" (one row per 'imgname' entry: {n})"
            raise ValueError(f"{path}: key {key!r} has shape {arrays[key].shape}, expected {shape}{rows}")
        check_numbers(arrays[key], str(path), key)
    names = image_names(arrays["imgname"], path)
    genders = arrays.get("gender")
    has_smpl = arrays.get("has_smpl")
    for key in ("gender", "has_smpl"):  # optional, one entry per 'imgname' entry when present
        if key in arrays and arrays[key].shape[:1] != (n,):
            raise ValueError(f"{path}: key {key!r} has shape {arrays[key].shape}, expected ({n},) "
                             f"(one entry per 'imgname' entry: {n})")
    if has_smpl is not None:
        check_numbers(has_smpl, str(path), "has_smpl")
    records = []
    for i in range(n):
        if has_smpl is not None and not float(has_smpl[i]) > 0:
            continue  # zeros, not a body (SPIN's MPI-INF-3DHP file: rows without a static fit)
        where = f"{path} record {i}"
        gender = "neutral" if genders is None else gender_name(genders[i], where)
        for key in ("center", "scale", "pose", "shape"):
            check_finite_array(arrays[key][i], where, key)
        if not float(arrays["scale"][i]) > 0:
            raise ValueError(f"{where}: key 'scale' must be positive (the box side is 200 * scale), got "
                             f"{float(arrays['scale'][i])}")
        side = 200.0 * float(arrays["scale"][i])
        cx, cy = (float(v) for v in arrays["center"][i])
        f = SPIN_FOCAL * side / SPIN_CROP
        pose, betas = arrays["pose"][i].astype(np.float64), arrays["shape"][i].astype(np.float64)
        body = bodies.for_gender(gender, where)
        ref = body.v_template
        with torch.no_grad():
            out = body(torch.as_tensor(pose).to(ref).reshape(1, 24, 3),
                       torch.as_tensor(betas).to(ref)[None])
        v = out.vertices[0].double().cpu().numpy()
        lo, hi = v.min(0), v.max(0)
        extent = float(max(hi[0] - lo[0], hi[1] - lo[1]))
        depth = f * extent * crop_scale / side
        mid = (lo + hi) / 2
        transl = np.array([-mid[0], -mid[1], depth - mid[2]])
        records.append(Record(
            image=image_root / names[i], pose=pose, betas=betas, transl=transl,
            K=np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]]),
            gender=gender,
            # a box that make_sample enlarges by crop_scale back to SPIN's square
            box=(cx - side / 2 / crop_scale, cy - side / 2 / crop_scale, side / crop_scale,
                 side / crop_scale), source=where))
    return records


class SpinNpz(PersonDataset):
    """A SPIN-style npz evaluation file in the common sample format.

    Args:
        path: the ``.npz`` file. image_root: folder its ``imgname`` entries are relative to.
        body, image_size, mesh_factors, crop_scale, gt_gender: as :class:`~kinediff.data.pw3d.PW3D`
            (the crop is SPIN's box: side 200 * scale).
    """

    def __init__(self, path: str | os.PathLike, image_root: str | os.PathLike,
                 body: BodyLike | None = None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), crop_scale: float = 1.2,
                 gt_gender: str | None = None) -> None:
        body = BodySet.of(body)
        records = spin_records(path, image_root, body, crop_scale)
        if not records:
            raise ValueError(f"{path}: no row has SMPL parameters (has_smpl is 0 everywhere)")
        super().__init__(records, body, image_size, mesh_factors, crop_scale, gt_gender)
        self.path = Path(path)
        total = len(read_npz(self.path, "a SPIN-style .npz", ("imgname",))["imgname"])
        #: rows of the file left out for having no SMPL fit (``has_smpl`` 0)
        self.without_smpl = total - len(records)

    def report(self) -> str:
        lines = [line for line in (super().report(),) if line]
        if self.without_smpl:
            lines.append(f"SpinNpz: left out {self.without_smpl} row(s) of {self.path} without an "
                         f"SMPL fit (has_smpl 0)")
        return "\n".join(lines)

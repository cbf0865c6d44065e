"""A small UP-3D folder in the released layout (the ``up-3d`` folder of the Unite the People
release) and GraphCMR's preprocessed ``up_3d_<mode>.npz``, drawn from a body model, read by
:class:`kinediff.data.UP3D`.

What the UP-3D files hold and how kinediff reads them is in :mod:`kinediff.data.up3d`. This module
is written from the file format itself (the UP fitting code's camera: f = 5000 px, principal point
at the centre of the fit image, the fit image a resized crop of the released image), not from the
loader's helpers, so the fixture checks them. ``_body.pkl`` files are written as Python 2's
``cPickle.dump`` wrote them (protocol 0, numpy arrays as Python 2 ``str`` data), optionally with
chumpy ``Ch`` objects in place of the arrays.
"""

from __future__ import annotations

import codecs
import copy
import copyreg
import io
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from kinediff.body.smpl_io import load_smpl_pickle
from kinediff.core.camera import project_points
from kinediff.data.limits import sample_body_pose
from kinediff.testing.scene import render_rgb

__all__ = ["LSP_FROM_SMPL", "write_up3d", "write_up3d_spin_npz"]

#: The fit's focal length (px) in every UP-3D ``_body.pkl`` (classner/up 3dfit/bodyfit.py).
_FIT_FOCAL = 5000.0
#: SMPL joints standing in for LSP joints 0..12 in the fixture's ``_joints.npy`` (the fit's own
#: LSP -> SMPL mapping for 0..11, SMPL's neck for LSP's neck); LSP 13 (head top) is a vertex.
LSP_FROM_SMPL = (8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12)
_DATASETS = (("lsp", 1002), ("mpii", 57), ("lspext", 3), ("fashionpose", 12))


class _Ch:
    """What a chumpy ``Ch`` array pickles as: an object of class chumpy.ch.Ch whose state holds
    the value as ``x`` (copy_reg reconstruction, as protocol 0 pickles new-style objects)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)

    def __reduce_ex__(self, protocol):
        return copyreg._reconstructor, (type(self), object, None), {"x": self.x}


_PY2_GLOBALS = {"copyreg": "copy_reg", "builtins": "__builtin__"}


class _Py2Pickler(pickle._Pickler):
    """Protocol-0 pickler that writes what Python 2's cPickle wrote: text and byte strings as
    Python 2 ``str`` (STRING opcode), numpy's reconstruction under ``numpy.core``, copy_reg and
    __builtin__ by their Python 2 names, and :class:`_Ch` as ``chumpy.ch.Ch``."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(b"S'" + codecs.escape_encode(data)[0] + b"'\n")
        self.memoize(obj)

    def save_global(self, obj, name=None) -> None:
        if obj is _Ch:
            module, name = "chumpy.ch", "Ch"
        else:
            module, name = obj.__module__, name or obj.__qualname__
            module = _PY2_GLOBALS.get(module, module).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str
    dispatch[type] = save_global
    dispatch[type(len)] = save_global
    dispatch[type(save_global)] = save_global


def _py2_pickle(data: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    _Py2Pickler(out, protocol=0).dump(data)
    return out.getvalue()


def _save_png(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(rgb).save(path)


def write_up3d(root: Path, body, samples: int = 4, seed: int = 0,
               splits: dict[str, tuple[int, ...]] | None = None) -> dict:
    """``samples`` people (one per image) in UP-3D's released layout under ``root``.

    Per index ``i``: ``{i:05d}_image.png`` (the released image), ``_render_light.png`` (the fit
    on white), ``_body.pkl`` (pose (72,), betas (10,), trans (3,), rt (3,), t (3,), f = 5000,
    j2d (25, 2): the 24 SMPL joints and a head vertex projected into the fit frame),
    ``_joints.npy`` ((3, 14) LSP joints x, y, visibility in released-image pixels),
    ``_fit_crop_info.txt`` (``H W y1 y2 x1 x2``), ``_dataset_info.txt`` and
    ``_quality_info.txt``; and the split lists ``{train,val,test,trainval}.txt`` of
    ``/{i:05d}_image.png`` lines (default: 0-1 train, 2 val, 3 test, 0-2 trainval).

    The samples vary what the format allows: sample 1 was fitted on a resized crop of its image
    (fac 1.5 x 1.6), sample 2 has a non-zero camera rotation ``rt`` and model ``trans``, sample 3
    stores chumpy ``Ch`` objects instead of arrays, sample 0 has an invisible left wrist.

    Returns, per index (dict keyed by index): camera-frame ``vertices`` (V, 3) and ``joints``
    (24, 3) float64 metres computed from the written parameters as the UP code renders them
    (R(rt) (SMPL(pose, betas) + trans) + t), the released image's intrinsics ``K`` (3, 3), the
    written ``lsp`` (14, 3) joints, ``j2d`` (25, 2), ``crop`` (6,), the ``head_vertex`` and the
    written ``params``; plus ``splits``.
    """
    if splits is None:
        splits = {"train": (0, 1), "val": (2,), "test": (3,), "trainval": (0, 1, 2)}
    root.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(body).double()
    head = int(torch.argmax(model.v_template[:, 1]))  # top of the head (SMPLify uses vertex 411)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    sizes = [(120, 160), (160, 120), (128, 128), (100, 140)]
    out: dict[Any, Any] = {}
    for i in range(samples):
        w, h = sizes[i % len(sizes)]
        if i % 4 == 1:  # fitted on rows 10:110, cols 20:140 resized to 160 x 180
            crop = np.array([160, 180, 10, 110, 20, 140])
        else:
            crop = np.array([h, w, 0, h, 0, w])
        fac_x, fac_y = crop[1] / (crop[5] - crop[4]), crop[0] / (crop[3] - crop[2])
        K_fit = np.array([[_FIT_FOCAL, 0, crop[1] / 2], [0, _FIT_FOCAL, crop[0] / 2], [0, 0, 1]])
        # released-image pixel = fit pixel / fac + crop origin
        K = np.array([[K_fit[0, 0] / fac_x, 0, K_fit[0, 2] / fac_x + crop[4]],
                      [0, K_fit[1, 1] / fac_y, K_fit[1, 2] / fac_y + crop[2]], [0, 0, 1]])
        pose = sample_body_pose(1, g, 0.5, torch.float64)[0].reshape(72).numpy()
        yaw = rng.uniform(-35, 35)
        cam_root = Rotation.from_euler("xy", [180, yaw], degrees=True)  # upright, facing the camera
        betas = rng.normal(0, 0.5, 10)
        if i % 4 == 2:
            rt, trans = np.array([0.1, -0.2, 0.05]), np.array([0.05, -0.03, 0.2])
        else:
            rt, trans = np.zeros(3), np.zeros(3)
        R = Rotation.from_rotvec(rt)
        pose[:3] = (R.inv() * cam_root).as_rotvec()
        with torch.no_grad():
            o = model(torch.as_tensor(pose)[None], torch.as_tensor(betas)[None],
                      torch.as_tensor(trans)[None])
        rot = torch.as_tensor(R.as_matrix())
        rotated = o.vertices[0] @ rot.T
        # t: the depth at which the body fills ~75 % of the fit image's height, a small offset
        lo, hi = rotated.min(0).values.numpy(), rotated.max(0).values.numpy()
        z = _FIT_FOCAL * (hi[1] - lo[1]) / (0.75 * crop[0])
        mid = (lo + hi) / 2
        t = np.array([-mid[0] + rng.uniform(-0.002, 0.002) * z, -mid[1], z - mid[2]])
        # camera-frame mesh from the written parameters, as UP's renderer uses them
        verts = rotated + torch.as_tensor(t)
        joints = o.joints[0] @ rot.T + torch.as_tensor(t)
        fit_points = torch.cat([joints, verts[head:head + 1]])
        j2d = project_points(fit_points[None], torch.as_tensor(K_fit))[0].numpy()
        lsp_points = torch.cat([joints[list(LSP_FROM_SMPL)], verts[head:head + 1]])
        lsp_uv = project_points(lsp_points[None], torch.as_tensor(K))[0].numpy()
        lsp = np.concatenate([lsp_uv, np.ones((14, 1))], 1)
        if i % 4 == 0:
            lsp[11, 2] = 0.0  # left wrist not visible
        stem = root / f"{i:05d}"
        rgb = render_rgb(body, verts, K, w, h)
        _save_png(rgb, Path(f"{stem}_image.png"))
        light = rgb.copy()
        light[rgb.max(-1) == 0] = 255
        _save_png(light, Path(f"{stem}_render_light.png"))
        value = _Ch if i % 4 == 3 else np.asarray
        params = {"j2d": j2d, "t": value(t), "rt": value(rt), "f": _FIT_FOCAL,
                  "pose": value(pose), "betas": value(betas), "trans": value(trans)}
        Path(f"{stem}_body.pkl").write_bytes(_py2_pickle(params))
        np.save(f"{stem}_joints.npy", lsp.T.copy())
        Path(f"{stem}_fit_crop_info.txt").write_text(" ".join(str(int(c)) for c in crop) + "\n")
        name, index = _DATASETS[i % len(_DATASETS)]
        Path(f"{stem}_dataset_info.txt").write_text(f"{name} {index}\n")
        Path(f"{stem}_quality_info.txt").write_text("high\n")
        out[i] = {"vertices": verts, "joints": joints, "K": K, "lsp": lsp, "j2d": j2d,
                  "crop": crop, "head_vertex": head, "size": (w, h),
                  "params": {"pose": pose, "betas": betas, "trans": trans, "rt": rt, "t": t}}
    for split, indices in splits.items():
        (root / f"{split}.txt").write_text("".join(f"/{i:05d}_image.png\n" for i in indices))
    out["splits"] = splits
    return out


def write_up3d_spin_npz(root: Path, mode: str = "trainval") -> Path:
    """GraphCMR's ``up_3d_<mode>.npz`` (what its ``datasets/preprocess/up_3d.py`` makes) from a
    UP-3D folder: for each image of ``<mode>.txt``, ``imgname`` ("NNNNN_image.png"), ``center``
    and ``scale`` (1.2 x the longer side / 200) of the ``_render_light.png`` silhouette box
    (Python 2 integer centre, as GraphCMR computed it), ``part`` (24, 3) with the 14 LSP joints in
    rows 0-13, ``pose`` (72,) and ``shape`` (10,) from ``_body.pkl``. Written next to the images."""
    names, centers, scales, parts, poses, shapes = [], [], [], [], [], []
    for line in (root / f"{mode}.txt").read_text().splitlines():
        if not line:
            continue
        base = line[1:-10]
        light = np.asarray(Image.open(root / f"{base}_render_light.png"))
        ys, xs = np.where(light.min(axis=2) < 255)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        centers.append([(box[2] + box[0]) // 2, (box[3] + box[1]) // 2])
        scales.append(1.2 * max(box[2] - box[0], box[3] - box[1]) / 200.0)
        joints = np.load(root / f"{base}_joints.npy")
        part = np.zeros((24, 3))
        part[:14] = np.hstack([joints[:2].T, joints[2][:, None]])
        parts.append(part)
        fit = load_smpl_pickle(root / f"{base}_body.pkl")
        poses.append(fit["pose"])
        shapes.append(fit["betas"])
        names.append(f"{base}_image.png")
    path = root / f"up_3d_{mode}.npz"
    np.savez(path, imgname=np.array(names), center=np.array(centers, dtype=np.float64),
             scale=np.array(scales), part=np.array(parts), pose=np.array(poses),
             shape=np.array(shapes))
    return path

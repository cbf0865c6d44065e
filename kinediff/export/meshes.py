"""A predicted body as files for Blender and animation tools: a mesh (OBJ, PLY, glTF binary) and an
NPZ archive with the mesh, its SMPL parameters and its camera.

Every file is written atomically: into a temporary file in the target's folder, renamed onto the
target once complete (``os.replace``), so that a reader never sees half a file and a failed write
leaves the folder as it was.

Frames: the vertices are written as given. kinediff's meshes live in the camera frame (x right,
y down, z forward, metres); tools that expect y up (Blender's OBJ and glTF importers, most
animation packages) show them upside down: turn them by pi about x first
(``vertices * [1, -1, -1]``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinediff.core.checks import check_faces, check_image_size, check_shape
from kinediff.core.io import write_atomic

__all__ = ["MESH_FORMATS", "NPZ_KEYS", "export_mesh", "export_npz"]

#: The mesh formats :func:`export_mesh` writes, by file suffix (trimesh's file types).
MESH_FORMATS = {".obj": "obj", ".ply": "ply", ".glb": "glb"}
#: The arrays :func:`export_npz` writes under its own names (``extra`` may not reuse them).
NPZ_KEYS = ("vertices", "faces", "pose", "betas", "transl", "K", "image_size")

ArrayLike = Any  # a torch.Tensor, a NumPy array or anything np.asarray takes


def _array(x: ArrayLike, name: str, dtype: type | None = None) -> np.ndarray:
    """``x`` as a NumPy array (a tensor is detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array or a tensor, got {type(x).__name__}") from err


def _vertices(vertices: ArrayLike, name: str = "vertices") -> np.ndarray:
    """(V, 3) finite float64 vertices, checked."""
    v = _array(vertices, name)
    if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {v.dtype}")
    check_shape(torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)), name, ("V", 3))
    bad = ~np.isfinite(v).all(1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} must be finite: {rows.size} of {v.shape[0]} vertices hold NaN or "
                         f"inf (first: vertex {int(rows[0])})")
    return v.astype(np.float64)


def _faces(faces: ArrayLike, num_vertices: int) -> np.ndarray:
    """(F, 3) int64 vertex indices in [0, num_vertices), checked."""
    f = _array(faces, "faces")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise TypeError(f"faces must hold integer vertex indices, got dtype {f.dtype}")
    f = f.astype(np.int64)
    check_faces(torch.from_numpy(f), num_vertices, "vertices")
    return f


def export_mesh(path: str | os.PathLike, vertices: ArrayLike, faces: ArrayLike) -> Path:
    """Write one mesh; the format follows the suffix: ``.obj`` (Wavefront), ``.ply`` (binary PLY)
    or ``.glb`` (glTF binary). Written through trimesh, vertex order and faces as given (no
    merging or clean-up), atomically.

    Args:
        path: the file to write (its folder is created).
        vertices: (V, 3) metres, finite (a tensor or an array), e.g. ``predict(...)["vertices"][0]``.
        faces: (F, 3) integer indices into ``vertices``, e.g. ``body.faces``.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown suffix, a wrong shape, non-finite vertices, faces out of range.
        TypeError: non-numeric vertices or non-integer faces.

    Precision: OBJ keeps 8 decimals; PLY and GLB store float32 (about 1e-7 m for a body).

    Example:
        >>> import tempfile, torch, trimesh
        >>> from kinediff.export import export_mesh
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> out = export_mesh(tempfile.mkdtemp() + "/tri.ply", v, [[0, 1, 2]])
        >>> trimesh.load(out, process=False).faces.tolist()
        [[0, 1, 2]]
    """
    # trimesh: heavy, imported only where mesh files are read or written
    import trimesh

    path = Path(path)
    kind = MESH_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"unknown mesh format {path.suffix!r} in {str(path)!r}: the suffix must be "
                         f"{', '.join(MESH_FORMATS)} (for arrays and SMPL parameters, export_npz "
                         f"writes .npz)")
    v = _vertices(vertices)
    f = _faces(faces, v.shape[0])
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False, validate=False)
    data = mesh.export(file_type=kind)
    payload = data.encode() if isinstance(data, str) else data
    return write_atomic(path, lambda tmp: tmp.write_bytes(payload))


def _smpl(smpl: dict[str, ArrayLike]) -> dict[str, np.ndarray]:
    """The SMPL parameters, checked: ``pose`` (24, 3) axis-angle (or (72,)), ``betas`` (K,),
    optional ``transl`` (3,)."""
    if not isinstance(smpl, dict):
        raise TypeError(f"smpl must be a dict with pose, betas and optionally transl, got "
                        f"{type(smpl).__name__}")
    unknown = sorted(set(smpl) - {"pose", "betas", "transl"})
    missing = [k for k in ("pose", "betas") if k not in smpl]
    if unknown or missing:
        raise ValueError(f"smpl must hold pose (24, 3), betas (K,) and optionally transl (3,); "
                         f"missing {missing}, unknown {unknown}")
    out = {"pose": _array(smpl["pose"], "smpl['pose']", np.float64),
           "betas": _array(smpl["betas"], "smpl['betas']", np.float64)}
    if out["pose"].shape == (72,):
        out["pose"] = out["pose"].reshape(24, 3)
    wanted = {"pose": (24, 3), "betas": ("K",)}
    if "transl" in smpl:
        out["transl"] = _array(smpl["transl"], "smpl['transl']", np.float64)
        wanted["transl"] = (3,)
    for key, dims in wanted.items():
        check_shape(torch.from_numpy(out[key]), f"smpl[{key!r}]", dims)
        if not np.isfinite(out[key]).all():
            raise ValueError(f"smpl[{key!r}] must be finite")
    return out


def _camera(camera: dict[str, Any]) -> dict[str, np.ndarray]:
    """The camera, checked: ``K`` (3, 3) pixels and ``image_size`` (H = W or (H, W)) -> (2,)."""
    if not isinstance(camera, dict) or set(camera) != {"K", "image_size"}:
        got = sorted(camera) if isinstance(camera, dict) else type(camera).__name__
        raise ValueError(f"camera must be a dict with K (3, 3) intrinsics in pixels and image_size "
                         f"(an int or (H, W)), got {got}")
    k = _array(camera["K"], "camera['K']", np.float64)
    check_shape(torch.from_numpy(k), "camera['K']", (3, 3))
    if not np.isfinite(k).all():
        raise ValueError("camera['K'] must be finite")
    size = camera["image_size"]
    size = size.tolist() if isinstance(size, (np.ndarray, torch.Tensor)) else size
    return {"K": k, "image_size": np.asarray(check_image_size(size), dtype=np.int64)}


def export_npz(path: str | os.PathLike, vertices: ArrayLike, faces: ArrayLike | None = None,
               smpl: dict[str, ArrayLike] | None = None, camera: dict[str, Any] | None = None,
               **extra: ArrayLike) -> Path:
    """Write a body as an uncompressed NumPy archive (``np.load`` reads it), atomically.

    Keys: ``vertices`` (V, 3) float64 metres; with ``faces``, ``faces`` (F, 3) int64; with
    ``smpl``, ``pose`` (24, 3) axis-angle radians, ``betas`` (K,) and, if given, ``transl`` (3,)
    metres (float64); with ``camera``, ``K`` (3, 3) pixels and ``image_size`` (2,) int64 as
    (H, W); and each ``extra`` array under its own name (e.g. ``joints=(24, 3)``,
    ``mesh2d=(N, 2)``), as given.

    Args:
        path: the file to write; the suffix must be ``.npz``.
        vertices: (V, 3) finite; faces: (F, 3) indices into them.
        smpl: a dict with ``pose`` (24, 3) (or (72,)), ``betas`` (K,) and optionally ``transl``.
        camera: a dict with ``K`` (3, 3) and ``image_size`` (an int for square images, or (H, W)).
        extra: more arrays (tensors are moved to the CPU); not the names of :data:`NPZ_KEYS`.

    Returns:
        The path written.

    Raises:
        ValueError: another suffix, a wrong shape, non-finite values, faces out of range, unknown
            ``smpl`` or ``camera`` keys, an ``extra`` name of :data:`NPZ_KEYS`.

    Example:
        >>> import tempfile, numpy as np, torch
        >>> from kinediff.export import export_npz
        >>> out = export_npz(tempfile.mkdtemp() + "/body.npz", torch.zeros(6890, 3),
        ...                  smpl={"pose": torch.zeros(24, 3), "betas": torch.zeros(10)},
        ...                  camera={"K": np.eye(3), "image_size": (480, 640)}, score=np.float32(0.9))
        >>> sorted(np.load(out).files)
        ['K', 'betas', 'image_size', 'pose', 'score', 'vertices']
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"export_npz writes .npz files, got {str(path)!r} (for meshes, export_mesh "
                         f"writes {', '.join(MESH_FORMATS)})")
    clash = sorted(set(extra) & set(NPZ_KEYS))
    if clash:
        raise ValueError(f"extra arrays may not be named {clash}: export_npz writes those itself "
                         f"(pass them as vertices, faces, smpl= or camera=)")
    arrays: dict[str, np.ndarray] = {"vertices": _vertices(vertices)}
    if faces is not None:
        arrays["faces"] = _faces(faces, arrays["vertices"].shape[0])
    if smpl is not None:
        arrays.update(_smpl(smpl))
    if camera is not None:
        arrays.update(_camera(camera))
    for name, value in extra.items():
        arrays[name] = _array(value, name)
        if arrays[name].dtype == object:
            raise TypeError(f"extra array {name!r} must be numeric, got an object array "
                            f"(from {type(value).__name__})")
    buffer = io.BytesIO()  # written whole in memory first: np.savez would append .npz to a name
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    return write_atomic(path, lambda tmp: tmp.write_bytes(payload))

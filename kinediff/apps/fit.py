"""``kinediff fit`` (proposed): SMPL parameters for mesh files, e.g. the ``<name>.obj`` that
``kinediff predict`` writes.

Each file must hold one mesh of the body's topology (its vertices in the body's order; faces are
not read). The meshes are fitted in batches with :func:`kinediff.fit.fit_smpl`, and per file
``<name>_smpl.npz`` is written with ``pose`` (24, 3) axis-angle, ``betas`` (10,), ``transl`` (3,)
(metres: ``body(pose, betas).vertices + transl`` is the fit) and ``error_m``, the fit's mean vertex
error in metres.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinediff.body import BodyModel
from kinediff.core.checks import check_finite_array
from kinediff.core.io import write_atomic
from kinediff.fit import fit_smpl

__all__ = ["fit_mesh_files"]


def _read_vertices(path: Path, num_vertices: int) -> np.ndarray:
    # trimesh: heavy, imported only where mesh files are read or written
    import trimesh

    if not path.is_file():
        raise FileNotFoundError(f"no mesh file {path}")
    mesh = trimesh.load(path, process=False, force="mesh")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if vertices.shape != (num_vertices, 3):
        raise ValueError(f"{path} holds {len(vertices)} vertices but the body has {num_vertices}: "
                         f"fit_smpl needs meshes of the body's topology (as kinediff predict writes)")
    return check_finite_array(vertices, str(path), "vertices")


def fit_mesh_files(paths: Sequence[str | os.PathLike], body=None, out: str | os.PathLike | None = None,
                   batch_size: int = 64, iterations: int = 6) -> list[dict[str, Any]]:
    """Fit SMPL parameters to mesh files and write ``<name>_smpl.npz`` for each.

    Args:
        paths: mesh files trimesh reads (OBJ, PLY, ...), one mesh of the body's topology each,
            finite coordinates (a file with NaN or infinite ones raises ``ValueError`` naming it).
        body: the :class:`~kinediff.body.BodyModel` (default: the synthetic body).
        out: output folder (default: next to each input file).
        batch_size: meshes fitted at once.
        iterations: :func:`~kinediff.fit.fit_smpl`'s Levenberg-Marquardt iterations.

    Returns:
        one record per file: ``mesh``, ``params`` (the .npz written) and ``error_mm``.
    """

    body = body if body is not None else BodyModel.synthetic()
    ref = body.v_template
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("no mesh files given")
    records = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        vertices = torch.as_tensor(np.stack([_read_vertices(p, body.num_vertices) for p in chunk]))
        fit = fit_smpl(vertices.to(ref), body, iterations=iterations)
        for i, path in enumerate(chunk):
            folder = Path(out) if out is not None else path.parent
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{path.stem}_smpl.npz"
            arrays = {"pose": fit.pose[i].detach().cpu().numpy(),
                      "betas": fit.betas[i].detach().cpu().numpy(),
                      "transl": fit.transl[i].detach().cpu().numpy(), "error_m": float(fit.error[i])}
            write_atomic(target, lambda tmp, arrays=arrays: np.savez(tmp, **arrays))
            records.append({"mesh": str(path), "params": str(target),
                            "error_mm": 1e3 * float(fit.error[i])})
    return records

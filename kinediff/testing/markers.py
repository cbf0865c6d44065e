"""VirtualMarker's marker files (its repository's ``assets/64/vm_B_sym.npz`` and the
``smpl_indices.pkl`` of its ``data/smpl/`` download), drawn for a body and written in their
released layout (:mod:`kinediff.heads.markers` reads them)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["write_virtual_markers"]

#: The parts of VirtualMarker's ``smpl_indices.pkl`` the fixture splits the vertices into
#: ("head" is the one its markers leave out).
PARTS = ("head", "leftArm", "rightArm", "torso", "legs")


def write_virtual_markers(root: str | os.PathLike, num_vertices: int = 6890,
                          num_markers: int = 64, head_vertices: int = 1226, seed: int = 0
                          ) -> dict[str, Any]:
    """Write ``root/assets/64/vm_B_sym.npz`` and ``root/data/smpl/smpl_indices.pkl`` as
    VirtualMarker releases them: a scipy.sparse CSC matrix (kept vertices x markers) with one
    weight 1.0 per column, over the vertices without the "head" part; a pickled dict part ->
    1-D int64 torch tensor. The head is ``head_vertices`` vertices drawn at random (SMPL's is
    1226), the markers distinct kept vertices.

    Returns the two paths (``markers``, ``smpl_indices``), the ``parts`` (name -> indices), the
    ``kept`` vertex indices and the markers' full-mesh ``marker_vertices`` (M,).
    """
    if not 0 < head_vertices < num_vertices - num_markers:
        raise ValueError(f"head_vertices must lie in (0, {num_vertices - num_markers}), "
                         f"got {head_vertices}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_vertices)
    head = np.sort(order[:head_vertices])
    rest = np.array_split(np.sort(order[head_vertices:]), len(PARTS) - 1)
    parts = {"head": head, **{name: chunk for name, chunk in zip(PARTS[1:], rest)}}
    kept = np.setdiff1d(np.arange(num_vertices), head)
    rows = rng.choice(kept.size, num_markers, replace=False)
    matrix = sp.csc_matrix((np.ones(num_markers, np.float32), (rows, np.arange(num_markers))),
                           shape=(kept.size, num_markers))
    folder = Path(root) / "assets" / "64"
    folder.mkdir(parents=True, exist_ok=True)
    markers = folder / "vm_B_sym.npz"
    sp.save_npz(markers, matrix)
    indices = Path(root) / "data" / "smpl" / "smpl_indices.pkl"
    indices.parent.mkdir(parents=True, exist_ok=True)
    with open(indices, "wb") as f:
        pickle.dump({name: torch.as_tensor(v, dtype=torch.int64) for name, v in parts.items()}, f)
    return {"markers": markers, "smpl_indices": indices, "parts": parts, "kept": kept,
            "marker_vertices": kept[rows]}

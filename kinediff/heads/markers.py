"""VirtualMarker's released marker definition, read from its own files.

The 2D stage locates K = 17 + M points: 17 H36M-style joints and M markers (the paper, §4.2:
"similar to [29], the initial output number of the 2D points is 81"). A marker is a template
vertex: ``HRNetMeshHead(marker_vertices=...)`` names them, and without them kinediff uses
stand-ins, M vertices by farthest-point sampling
(:func:`kinediff.core.conventions.keypoint_regressor`). :func:`read_virtual_markers` gives
VirtualMarker's released ones from its files, as its public repository (ShirleyMaxx/VirtualMarker)
stores them:

- ``assets/64/vm_B_sym.npz``: a scipy sparse matrix (``scipy.sparse.save_npz``: keys ``data``,
  ``indices``, ``indptr``, ``format``, ``shape``) of shape (V_kept, M) = (5664, 64) with one
  weight 1.0 per column: marker m = sum_r B[r, m] * vertex ``kept[r]``, a single vertex;
- ``smpl_indices.pkl`` (its ``data/smpl/`` download, not in the repository): a pickled dict
  body part -> 1-D torch tensor of SMPL vertex indices. The kept vertices ``kept`` are
  0 .. 6889 in order without those of the ignored parts (its config's
  ``model.mesh2vm.ignore_part = ['head']``: 6890 - 1226 = 5664).

Markers follow the 17 joints in the K points, as VirtualMarker orders them. Because each marker
is one vertex, a model stores them as vertex indices in its config: a trained model needs the
files no more.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["MAX_PART_SIZE", "VIRTUALMARKER_IGNORED_PARTS", "read_virtual_markers"]

#: The body parts VirtualMarker leaves out of the marker vertices (its ``ignore_part``).
VIRTUALMARKER_IGNORED_PARTS = ("head",)


def _tensor_from_bytes(data: bytes) -> Any:
    """A torch storage pickled inside the file (``torch.storage._load_from_bytes``), read with
    ``torch.load(weights_only=True)``: tensors only, no code."""
    return torch.load(io.BytesIO(data), weights_only=True)


#: The most vertex indices one part may hold (many times a body's vertices).
MAX_PART_SIZE = 1 << 20


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *args: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for a 1-D index tensor whose view lies inside its
    storage (a view past the storage's end would read memory the file never held)."""
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) == 1 and all(isinstance(v, int) and v >= 0
                                                    for v in (offset, *size, *stride))):
        raise pickle.UnpicklingError("a part's indices must be a 1-D tensor (size, stride and "
                                     "offset non-negative integers)")
    with warnings.catch_warnings():  # torch warns on any use of the TypedStorage pickles hold
        warnings.simplefilter("ignore", UserWarning)
        length = len(storage)
    if size[0] > MAX_PART_SIZE or (size[0] and offset + (size[0] - 1) * stride[0] >= length):
        raise pickle.UnpicklingError(f"a tensor of {size[0]} indices (offset {offset}, stride "
                                     f"{stride[0]}) does not fit its storage of {length}")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, *args)


#: The globals a pickled dict of index tensors names (module, name) -> what they resolve to.
_INDEX_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _tensor_from_bytes,
    ("collections", "OrderedDict"): OrderedDict}


class _IndicesUnpickler(pickle.Unpickler):
    """Resolves only what a dict of index tensors needs; nothing from the file runs.
    (Hand-written: torch's own safe loader reads ``torch.save`` files, not a plain pickle.)"""

    def find_class(self, module: str, name: str) -> Any:  # pickle hook
        if (module, name) in _INDEX_GLOBALS:
            return _INDEX_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(f"refusing global '{module}.{name}': only a dict of "
                                     f"index tensors is read (nothing from the file is executed)")


def _read_parts(path: str | os.PathLike, num_vertices: int) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as f:
            parts = _IndicesUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError,
            RuntimeError) as err:
        raise ValueError(f"{path} is not a readable smpl_indices.pkl: {err or 'it is empty or cut short'}"
                         ) from err
    if not isinstance(parts, dict) or not parts:
        raise ValueError(f"{path} must hold a dict body part -> vertex indices, got "
                         f"{type(parts).__name__}")
    out = {}
    for name, value in parts.items():
        array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if not isinstance(name, str) or array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(f"{path}: part {name!r} must be a 1-D integer array of vertex "
                             f"indices, got {array.dtype} of shape {array.shape}")
        if array.size and (array.min() < 0 or array.max() >= num_vertices):
            raise ValueError(f"{path}: part {name!r} has vertex indices outside [0, "
                             f"{num_vertices}) (a body with {num_vertices} vertices)")
        out[name] = array.astype(np.int64)
    return out


def read_virtual_markers(markers: str | os.PathLike, smpl_indices: str | os.PathLike,
                         num_vertices: int = 6890,
                         ignored_parts: Sequence[str] = VIRTUALMARKER_IGNORED_PARTS
                         ) -> tuple[int, ...]:
    """VirtualMarker's markers as the body vertices they are, for
    ``HRNetMeshHead(marker_vertices=...)``.

    Args:
        markers: its ``vm_B_sym.npz`` (or another ``vm_B*.npz`` of its assets), or the folder
            holding ``vm_B_sym.npz``.
        smpl_indices: its ``smpl_indices.pkl`` (body part -> vertex indices).
        num_vertices: V, the body's vertex count (SMPL: 6890).
        ignored_parts: the parts left out of the kept vertices (VirtualMarker's: "head").

    Returns:
        The M markers' vertex indices on the full mesh, in [0, V), in the file's column order:
        marker positions = vertices[indices], as VirtualMarker's vm_B.T @ vertices[kept].

    Errors name the file: a matrix whose row count is not the kept vertex count, an ignored
    part the indices file lacks, a column that is not a single weight 1.0 (a blended marker,
    which VirtualMarker's released files do not hold).
    """
    path = os.fspath(markers)
    if os.path.isdir(path):
        path = os.path.join(path, "vm_B_sym.npz")
    try:
        matrix = sp.load_npz(path).tocsc()  # np.load without pickles
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable VirtualMarker marker file (a scipy.sparse "
                         f"npz such as assets/64/vm_B_sym.npz): {err}") from err
    parts = _read_parts(smpl_indices, num_vertices)
    missing = [p for p in ignored_parts if p not in parts]
    if missing:
        raise ValueError(f"{smpl_indices} has no part {missing[0]!r} (parts: {sorted(parts)}); "
                         f"VirtualMarker's markers leave out {list(ignored_parts)}")
    ignored = np.unique(np.concatenate([parts[p] for p in ignored_parts]))
    kept = np.setdiff1d(np.arange(num_vertices), ignored)  # in order, as VirtualMarker's list
    if matrix.shape[0] != kept.size:
        raise ValueError(f"{path} has {matrix.shape[0]} rows, but {smpl_indices} keeps "
                         f"{kept.size} of {num_vertices} vertices without {list(ignored_parts)}: "
                         f"the two files do not belong together")
    matrix.eliminate_zeros()
    counts = np.diff(matrix.indptr)
    for m in range(matrix.shape[1]):
        values = matrix.data[matrix.indptr[m]:matrix.indptr[m + 1]]
        if counts[m] != 1 or values[0] != 1.0:
            raise ValueError(f"{path}: marker {m} is not one vertex of weight 1 ({counts[m]} "
                             f"weights {values.tolist()[:4]}); VirtualMarker's released markers "
                             f"are single vertices, and kinediff reads only those")
    return tuple(int(v) for v in kept[matrix.indices])

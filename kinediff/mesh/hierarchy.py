"""``MeshHierarchy``: the mesh levels 6890 -> 1723 -> 431 (for factors 4, 4) of any body model.

Per level l >= 1 it holds a pure selection D_l (a subset of level l-1's vertices, quadric-error
decimation), a barycentric up-sampling U_l (3 weights a row, from the closest level-l triangle to
each level-(l-1) vertex), the level's faces and its normalised adjacency (A + I, rows summing
to 1). Built once per mesh and cached on disk (an ``.npz``, no pickle) keyed by a hash of the mesh.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kinediff.core.io import cache_dir as resolve_cache_dir
from kinediff.core.io import corrupt_cache_error, read_cached, write_atomic
from kinediff.mesh.topology import barycentric_upsampling, decimate_to_subset, normalized_adjacency

__all__ = ["HIERARCHY_VERSION", "MeshHierarchy"]

#: Bump when the construction changes, so cached files are rebuilt.
HIERARCHY_VERSION = "1"


def _mesh_key(vertices: np.ndarray, faces: np.ndarray, factors: Sequence[int]) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(np.round(vertices, 7), dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    h.update(repr((tuple(int(f) for f in factors), HIERARCHY_VERSION)).encode())
    return h.hexdigest()[:16]


def build_hierarchy_arrays(vertices: np.ndarray, faces: np.ndarray,
                           factors: Sequence[int] = (4, 4)) -> dict[str, np.ndarray]:
    """The hierarchy as plain arrays: per level l = 1.. ``select{l}`` (n_l,) indices into level l-1,
    ``faces{l}`` (F_l, 3), ``up_index{l}`` / ``up_weight{l}`` (n_{l-1}, 3); and ``faces0``."""
    out: dict[str, np.ndarray] = {"faces0": np.asarray(faces, dtype=np.int64)}
    v, f = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    for level, factor in enumerate(factors, start=1):
        if int(factor) < 2:
            raise ValueError(f"factors must be integers >= 2, got {list(factors)}")
        keep, coarse_faces = decimate_to_subset(v, f, math.ceil(len(v) / int(factor)))
        up_index, up_weight = barycentric_upsampling(v, v[keep], coarse_faces)
        out[f"select{level}"] = keep.astype(np.int64)
        out[f"faces{level}"] = coarse_faces.astype(np.int64)
        out[f"up_index{level}"] = up_index.astype(np.int64)
        out[f"up_weight{level}"] = up_weight
        v, f = v[keep], coarse_faces
    return out


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class MeshHierarchy(nn.Module):
    """Mesh levels of a body (level 0 = the full mesh), with down- and up-sampling.

    Build with :meth:`from_body`. Buffers move with ``.to(device, dtype)``.

    Attributes:
        sizes: vertex counts per level, e.g. (6890, 1723, 431).
        num_levels: len(sizes).
    """

    def __init__(self, arrays: dict[str, np.ndarray], num_vertices: int,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.num_levels = 1 + sum(1 for k in arrays if k.startswith("select"))
        sizes = [int(num_vertices)]
        for level in range(1, self.num_levels):
            sizes.append(len(arrays[f"select{level}"]))
        self.sizes: tuple[int, ...] = tuple(sizes)
        for level in range(self.num_levels):
            self.register_buffer(f"faces{level}", torch.as_tensor(arrays[f"faces{level}"]))
        for level in range(1, self.num_levels):
            self.register_buffer(f"select{level}", torch.as_tensor(arrays[f"select{level}"]))
            self.register_buffer(f"up_index{level}", torch.as_tensor(arrays[f"up_index{level}"]))
            self.register_buffer(f"up_weight{level}",
                                 torch.as_tensor(arrays[f"up_weight{level}"], dtype=dtype))
        self._adjacency: dict[tuple[int, bool, torch.device, torch.dtype], torch.Tensor] = {}

    @classmethod
    def from_body(cls, body, factors: Sequence[int] = (4, 4),
                  cache_dir: str | os.PathLike | None = None) -> MeshHierarchy:
        """Build (or load from the cache) the hierarchy of ``body``'s template mesh.

        Args:
            body: a :class:`~kinediff.body.BodyModel` (any vertex count; a closed manifold mesh).
            factors: decimation factor per level: sizes are ceil(V / factor) level by level.
            cache_dir: cache folder (default ``$KINEDIFF_CACHE_DIR`` or the user cache dir).

        Example:
            >>> from kinediff.body import BodyModel
            >>> from kinediff.mesh import MeshHierarchy
            >>> hierarchy = MeshHierarchy.from_body(BodyModel.synthetic(), factors=(4, 4))
            >>> hierarchy.sizes  # 6890 vertices, then each level about a quarter
            (6890, 1723, 431)
        """
        vertices = body.v_template.detach().cpu().double().numpy()
        faces = body.faces.cpu().numpy()
        return cls.from_mesh(vertices, faces, factors, cache_dir, dtype=body.v_template.dtype)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, factors: Sequence[int] = (4, 4),
                  cache_dir: str | os.PathLike | None = None,
                  dtype: torch.dtype = torch.float32) -> MeshHierarchy:
        """As :meth:`from_body`, from a (V, 3) vertex array and (F, 3) faces."""
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3) and faces (F, 3); got {vertices.shape} and "
                             f"{faces.shape}")
        path = resolve_cache_dir(cache_dir) / f"hierarchy_{_mesh_key(vertices, faces, factors)}.npz"
        if path.is_file():
            arrays = read_cached(path, _read_arrays, "mesh hierarchy")
            if not {"faces0", f"faces{len(factors)}"} <= set(arrays):
                raise corrupt_cache_error(path, "mesh hierarchy", "arrays missing")
        else:
            arrays = build_hierarchy_arrays(vertices, faces, factors)
            write_atomic(path, lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]
        return cls(arrays, len(vertices), dtype=dtype)

    # ----------------------------------------------------------------------------------------

    def _buffer(self, name: str) -> torch.Tensor:
        buf = getattr(self, name)
        assert isinstance(buf, torch.Tensor)
        return buf

    @property
    def device(self) -> torch.device:
        return self._buffer("faces0").device

    def level_index(self, level: int) -> int:
        """``level`` as a non-negative index: -1 is the coarsest level, -num_levels the full mesh
        (checked: a level outside [-num_levels, num_levels - 1] raises ``ValueError``)."""
        if not -self.num_levels <= level < self.num_levels:
            raise ValueError(f"level must be in [{-self.num_levels}, {self.num_levels - 1}], "
                             f"got {level}")
        return level % self.num_levels

    def level_of(self, x: torch.Tensor) -> int:
        """The level whose vertex count matches x's second dimension (x is (B, V, C))."""
        if x.dim() != 3 or x.shape[1] not in self.sizes:
            raise ValueError(f"expected (B, V, C) with V one of {self.sizes}, got {tuple(x.shape)}")
        return self.sizes.index(x.shape[1])

    def faces(self, level: int = -1) -> torch.Tensor:
        """(F_l, 3) long faces of a level."""
        return self._buffer(f"faces{self.level_index(level)}")

    def selection(self, level: int = -1) -> torch.Tensor:
        """(n_level,) indices of level ``level``'s vertices among the full mesh's (level 0)."""
        level = self.level_index(level)
        idx = torch.arange(self.sizes[0], device=self.device)
        for l in range(1, level + 1):
            idx = idx[self._buffer(f"select{l}")]
        return idx

    def downsample(self, x: torch.Tensor, level: int = -1) -> torch.Tensor:
        """Keep the vertices of a coarser level (D is a pure selection). (B, V_from, C) -> (B, V_to, C)."""
        start, stop = self.level_of(x), self.level_index(level)
        if stop < start:
            raise ValueError(f"downsample goes to a coarser level; x is at level {start}, asked {stop}")
        for l in range(start + 1, stop + 1):
            x = x.index_select(1, self._buffer(f"select{l}"))
        return x

    def upsample(self, x: torch.Tensor, level: int = 0) -> torch.Tensor:
        """Barycentric up-sampling U to a finer level. (B, V_from, C) -> (B, V_to, C)."""
        start, stop = self.level_of(x), self.level_index(level)
        if stop > start:
            raise ValueError(f"upsample goes to a finer level; x is at level {start}, asked {stop}")
        for l in range(start, stop, -1):
            idx, w = self._buffer(f"up_index{l}"), self._buffer(f"up_weight{l}").to(x.dtype)
            x = (x[:, idx] * w[None, :, :, None]).sum(2)
        return x

    def upsampling_matrix(self, level: int) -> torch.Tensor:
        """Dense U_l (n_{l-1}, n_l): level l to level l - 1 (for initialising learned up-samplers)."""
        level = self.level_index(level)
        if level == 0:
            raise ValueError("level 0 has no finer level to up-sample to")
        idx, w = self._buffer(f"up_index{level}"), self._buffer(f"up_weight{level}")
        u = w.new_zeros(self.sizes[level - 1], self.sizes[level])
        u.scatter_add_(1, idx, w)
        return u

    def adjacency(self, level: int = -1, normalize: bool = True) -> torch.Tensor:
        """Sparse (n, n) adjacency of a level: row-normalised (A + I), or the 0/1 A + I.

        Returned as a coalesced ``torch.sparse_coo`` tensor on the hierarchy's device; cached.
        """
        level = self.level_index(level)
        dtype = self._buffer("up_weight1").dtype if self.num_levels > 1 else torch.float32
        key = (level, normalize, self.device, dtype)
        if key not in self._adjacency:
            a = normalized_adjacency(self.sizes[level], self.faces(level).cpu().numpy()).tocoo()
            if not normalize:
                a.data = np.ones_like(a.data)
            idx = torch.as_tensor(np.vstack([a.row, a.col]), dtype=torch.long)
            t = torch.sparse_coo_tensor(idx, torch.as_tensor(a.data), a.shape, check_invariants=True)
            self._adjacency[key] = t.coalesce().to(device=self.device, dtype=dtype)
        return self._adjacency[key]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}"

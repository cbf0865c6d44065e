"""Mesh topology helpers on numpy arrays: edges, closedness, decimation to a vertex subset,
barycentric up-sampling and normalised adjacency. Used by :class:`MeshHierarchy`."""

from __future__ import annotations

import fast_simplification
import numpy as np
import scipy.sparse as sp

__all__ = [
    "barycentric_upsampling",
    "decimate_to_subset",
    "edges",
    "is_closed_manifold",
    "normalized_adjacency",
]

#: ``agg`` values tried in turn by :func:`decimate_to_subset`: the first whose result is a closed
#: manifold of the same genus is kept (fast-simplification's default 7 first).
_AGGRESSIVENESS = (7.0, 6.0, 8.0, 5.0, 9.0, 4.0, 3.0, 10.0)


def edges(faces: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2), sorted, of a triangle list (F, 3)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def is_closed_manifold(num_vertices: int, faces: np.ndarray) -> tuple[bool, int]:
    """Whether every edge has exactly two faces and every vertex is used; and the Euler number."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    used = len(np.unique(faces)) == num_vertices
    return bool(np.all(counts == 2) and used), num_vertices - len(counts) + len(faces)


def decimate_to_subset(vertices: np.ndarray, faces: np.ndarray, num_target: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Quadric-error decimation whose vertices are a subset of the input's.

    fast-simplification collapses edges until the face count is 2 (V' - 2) (V' = ``num_target``
    for a closed genus-0 mesh); its collapse history maps every input vertex to the survivor it
    was merged into, and the survivors keep their *original* positions (COMA-style selection).

    Args:
        vertices: (V, 3). faces: (F, 3), a closed manifold.
        num_target: vertices to keep.

    Returns:
        ``keep`` (V',) sorted indices of the kept vertices and ``coarse_faces`` (F', 3) indexing
        into ``keep``.

    Raises:
        RuntimeError: no setting gave a closed manifold of the input's genus with ``num_target``
            vertices.
    """
    ok_in, euler = is_closed_manifold(len(vertices), faces)
    if not ok_in:
        raise ValueError("decimate_to_subset needs a closed manifold triangle mesh")
    target_faces = 2 * (num_target - euler)  # Euler: V - E + F = chi with E = 3F/2
    for agg in _AGGRESSIVENESS:
        _, _, collapses = fast_simplification.simplify(
            vertices.astype(np.float64), faces.astype(np.int64), target_count=target_faces,
            agg=agg, return_collapses=True)
        parent = np.arange(len(vertices))
        for keep_into, removed in collapses:
            parent[removed] = keep_into
        root = parent.copy()
        while True:  # follow chains of collapses to their survivor
            nxt = parent[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        keep = np.unique(root)
        new_index = np.full(len(vertices), -1)
        new_index[keep] = np.arange(len(keep))
        mapped = new_index[root][faces]
        mapped = mapped[(mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2])
                        & (mapped[:, 0] != mapped[:, 2])]
        ok, chi = is_closed_manifold(len(keep), mapped)
        if len(keep) == num_target and ok and chi == euler:
            return keep, mapped
    raise RuntimeError(f"could not decimate {len(vertices)} vertices to a closed manifold with "
                       f"{num_target} vertices (tried agg = {_AGGRESSIVENESS})")


def barycentric_upsampling(fine: np.ndarray, coarse: np.ndarray, coarse_faces: np.ndarray,
                           candidates: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """For each fine vertex, the closest coarse triangle and barycentric weights of the closest point.

    Args:
        fine: (N, 3) fine-level vertices. coarse: (M, 3). coarse_faces: (F, 3).
        candidates: triangles (nearest by centroid) searched per vertex.

    Returns:
        ``indices`` (N, 3) coarse vertex indices and ``weights`` (N, 3), non-negative, rows summing
        to 1, so that ``fine ~ sum_k weights[:, k] * coarse[indices[:, k]]``.
    """
    # heavy to import, and only building a new hierarchy (cached on disk) needs them
    import trimesh.triangles as tt
    from scipy.spatial import cKDTree

    tris = coarse[coarse_faces]  # (F, 3, 3)
    k = min(candidates, len(coarse_faces))
    _, cand = cKDTree(tris.mean(1)).query(fine, k=k)
    cand = cand.reshape(len(fine), k)
    pts = np.repeat(fine, k, axis=0)
    closest = tt.closest_point(tris[cand.ravel()], pts).reshape(len(fine), k, 3)
    best = np.argmin(np.linalg.norm(closest - fine[:, None], axis=2), axis=1)
    face = cand[np.arange(len(fine)), best]
    bary = tt.points_to_barycentric(tris[face], closest[np.arange(len(fine)), best])
    bary = np.clip(bary, 0.0, None)
    bary /= bary.sum(1, keepdims=True)
    return coarse_faces[face], bary


def normalized_adjacency(num_vertices: int, faces: np.ndarray) -> sp.csr_matrix:
    """Row-normalised (A + I) of the mesh graph, as scipy CSR (num_vertices, num_vertices)."""
    e = edges(faces)
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    a = (a + a.T + sp.identity(num_vertices)).tocsr()
    deg = np.asarray(a.sum(1)).ravel()
    return (sp.diags(1.0 / deg) @ a).tocsr()

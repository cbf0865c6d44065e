"""Mesh hierarchy of a body model: 6890 -> 1723 -> 431 vertices (factors 4, 4) by quadric-error
decimation to vertex subsets, barycentric up-sampling, faces and normalised adjacency per level."""

from kinediff.mesh.hierarchy import HIERARCHY_VERSION, MeshHierarchy, build_hierarchy_arrays
from kinediff.mesh.topology import (
    barycentric_upsampling,
    decimate_to_subset,
    edges,
    is_closed_manifold,
    normalized_adjacency,
)

__all__ = [
    "HIERARCHY_VERSION",
    "MeshHierarchy",
    "barycentric_upsampling",
    "build_hierarchy_arrays",
    "decimate_to_subset",
    "edges",
    "is_closed_manifold",
    "normalized_adjacency",
]

"""Differentiable silhouette rendering of 2D meshes in pure torch (tiled, face-culled)."""

from kinediff.render.soft import (
    SoftSilhouetteRasterizer,
    signed_distance_to_triangles,
    soft_silhouette,
    soft_silhouette_naive,
)

__all__ = [
    "SoftSilhouetteRasterizer",
    "signed_distance_to_triangles",
    "soft_silhouette",
    "soft_silhouette_naive",
]

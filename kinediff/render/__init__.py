"""Rendering in pure torch: differentiable soft silhouettes of 2D meshes (face-culled; optionally
through pytorch3d) and a hard z-buffer rasterizer for shaded images of 3D meshes."""

from kinediff.render.coverage import coverage_silhouette, signed_distance_to_triangles
from kinediff.render.pytorch3d_backend import (
    pytorch3d_available,
    pytorch3d_faces_per_pixel,
    soft_silhouette_pytorch3d,
)
from kinediff.render.soft import (
    SILHOUETTE_BACKENDS,
    SoftSilhouetteRasterizer,
    soft_silhouette,
    soft_silhouette_naive,
)
from kinediff.render.zbuffer import overlay_mesh, rasterize_faces, render_flat

__all__ = [
    "SILHOUETTE_BACKENDS",
    "SoftSilhouetteRasterizer",
    "coverage_silhouette",
    "overlay_mesh",
    "pytorch3d_available",
    "pytorch3d_faces_per_pixel",
    "rasterize_faces",
    "render_flat",
    "signed_distance_to_triangles",
    "soft_silhouette",
    "soft_silhouette_naive",
    "soft_silhouette_pytorch3d",
]

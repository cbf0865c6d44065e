"""Rendering in pure torch: differentiable soft silhouettes of 2D meshes (tiled, face-culled) and a
hard z-buffer rasterizer for shaded images of 3D meshes."""

from kinediff.render.soft import (
    SoftSilhouetteRasterizer,
    signed_distance_to_triangles,
    soft_silhouette,
    soft_silhouette_naive,
)
from kinediff.render.zbuffer import (
    fit_translation,
    overlay_mesh,
    project_points,
    rasterize_faces,
    render_flat,
)

__all__ = [
    "SoftSilhouetteRasterizer",
    "fit_translation",
    "overlay_mesh",
    "project_points",
    "rasterize_faces",
    "render_flat",
    "signed_distance_to_triangles",
    "soft_silhouette",
    "soft_silhouette_naive",
]

"""The optional pytorch3d backend of :func:`kinediff.render.soft_silhouette`.

pytorch3d's rasterizer (CUDA or C++) finds, per pixel, up to ``faces_per_pixel`` faces within the
blur radius and their signed squared distances in NDC units; kinediff turns those into the same
soft silhouette as its own rasterizer: D_f = sigmoid(-d_f / sigma) with d_f in pixels, aggregated
as 1 - prod(1 - D_f). Results agree with the pure-torch backend whenever no pixel has more than
``faces_per_pixel`` faces within sigma * ln(1 / eps) pixels.

pytorch3d's conventions used here (its ``rasterize_meshes`` documentation): +x points left and +y
up in NDC, the centre of pixel column i of an S-wide image is at x = 1 - (2 i + 1) / S (rows
alike), one pixel is 2 / S NDC units, ``blur_radius`` and ``dists`` are squared NDC distances,
``dists`` negative inside a face, and unused slots have ``pix_to_face = -1``. Square images only
(pytorch3d scales NDC by the shorter side on rectangular ones).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["pytorch3d_available", "soft_silhouette_pytorch3d"]


def pytorch3d_available() -> bool:
    """Whether pytorch3d's mesh rasterizer imports."""
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes  # noqa: F401
        from pytorch3d.structures import Meshes  # noqa: F401
    except ImportError:
        return False
    return True


def soft_silhouette_pytorch3d(verts2d: torch.Tensor, faces: torch.Tensor,
                              image_size: int | tuple[int, int],
                              sigma: float = 1.0, eps: float = 1e-6, faces_per_pixel: int = 50
                              ) -> torch.Tensor:
    """Soft silhouette through pytorch3d's rasterizer (see the module docstring).

    Shape: verts2d (B, V, 2) pixels (x right, y down, pixel (i, j) centred at (j + 0.5, i + 0.5)),
    faces (F, 3) -> (B, S, S) in [0, 1]; differentiable with respect to ``verts2d`` when sigma > 0.
    Memory: B x S x S x faces_per_pixel slots.
    """
    try:
        from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
        from pytorch3d.structures import Meshes
    except ImportError:
        raise ImportError("backend='pytorch3d' needs pytorch3d (https://github.com/facebookresearch/"
                          "pytorch3d/blob/main/INSTALL.md); backend='torch' needs nothing") from None
    from kinediff.render.soft import _check

    h, w = _check(verts2d, faces, image_size)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if h != w:
        raise ValueError(f"the pytorch3d backend renders square images only, got {h} x {w}")
    if faces_per_pixel < 1:
        raise ValueError(f"faces_per_pixel must be positive, got {faces_per_pixel}")
    b, s = verts2d.shape[0], h
    ndc = torch.stack([1 - 2 * verts2d[..., 0] / s, 1 - 2 * verts2d[..., 1] / s,
                       torch.ones_like(verts2d[..., 0])], -1)
    meshes = Meshes(verts=ndc.float(), faces=faces.to(verts2d.device).expand(b, -1, -1))
    margin_ndc = 2.0 * sigma * math.log(1.0 / eps) / s if sigma > 0 else 0.0
    pix_to_face, _, _, dists = rasterize_meshes(meshes, image_size=s, blur_radius=margin_ndc ** 2,
                                                faces_per_pixel=faces_per_pixel,
                                                perspective_correct=False)
    valid = pix_to_face >= 0  # (B, S, S, K)
    if sigma == 0:
        return (valid & (dists < 0)).any(-1).to(verts2d.dtype)
    d = torch.sign(dists) * (dists.abs() + 1e-20).sqrt() * (s / 2.0)  # signed distance, pixels
    terms = torch.where(valid, F.softplus(-d / sigma), torch.zeros_like(d))
    return (1.0 - torch.exp(-terms.sum(-1))).to(verts2d.dtype)

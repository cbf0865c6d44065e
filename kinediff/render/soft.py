"""A pure-torch differentiable silhouette rasterizer for 2D triangle meshes (SoftRas-style).

Each face f covers pixel p with probability D_f(p) = sigmoid(-d_f(p) / sigma), d_f the signed
distance in pixels from the pixel centre to the triangle (negative inside); the silhouette is
1 - prod_f (1 - D_f), computed stably as 1 - exp(-sum_f softplus(d_f / sigma)). ``sigma = 0``
gives the hard mask (inside tests, no gradient) for data generation.

Memory stays bounded: the image is cut into tiles, each tile only looks at the faces whose bounding
box, grown by the distance where D_f drops below ``eps``, reaches it, and tiles are processed in
chunks of at most ``max_elements`` (pixel, face) pairs, recomputed in the backward pass
(``torch.utils.checkpoint``) instead of stored. Why hand-written: pytorch3d has no wheels here,
and no other installable library rasterizes differentiably in torch.

Pixel convention: vertices are (x, y) in pixels, x to the right, y down, (0, 0) the image's top-left
corner; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    "SoftSilhouetteRasterizer",
    "signed_distance_to_triangles",
    "soft_silhouette",
    "soft_silhouette_naive",
]


def signed_distance_to_triangles(points: torch.Tensor, tris: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels) from points to triangles: negative inside, any winding.

    Shape:
        - points: (..., P, 1, 2).
        - tris: (..., 1, K, 3, 2), broadcastable against points.
        - output: (..., P, K).
    """
    a, b, c = tris[..., 0, :], tris[..., 1, :], tris[..., 2, :]
    dist = None
    inside = None
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) \
        - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    for p0, p1 in ((a, b), (b, c), (c, a)):
        edge = p1 - p0
        rel = points - p0
        t = ((rel * edge).sum(-1) / (edge * edge).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
        d = (rel - t[..., None] * edge).square().sum(-1)
        dist = d if dist is None else torch.minimum(dist, d)
        side = (edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]) * area >= 0
        inside = side if inside is None else inside & side
    assert dist is not None and inside is not None
    dist = (dist + 1e-12).sqrt()
    inside = inside & (area.abs() > 1e-12)  # degenerate triangles cover nothing
    return torch.where(inside, -dist, dist)


def _pixel_centres(h: int, w: int, device, dtype) -> torch.Tensor:
    ys = torch.arange(h, device=device, dtype=dtype) + 0.5
    xs = torch.arange(w, device=device, dtype=dtype) + 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2) as (x, y)


def _coverage(sd: torch.Tensor, sigma: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """1 - prod(1 - sigmoid(-sd / sigma)) over the last axis; hard inside test for sigma = 0."""
    if sigma == 0:
        inside = sd < 0
        if valid is not None:
            inside = inside & valid
        return inside.any(-1).to(sd.dtype)
    terms = F.softplus(-sd / sigma)  # -log(1 - D)
    if valid is not None:
        terms = terms * valid
    return 1.0 - torch.exp(-terms.sum(-1))


def _check(verts2d: torch.Tensor, faces: torch.Tensor, image_size) -> tuple[int, int]:
    if verts2d.dim() != 3 or verts2d.shape[-1] != 2:
        raise ValueError(f"verts2d must have shape (B, V, 2), got {tuple(verts2d.shape)}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= verts2d.shape[1]):
        raise ValueError(f"faces index vertices in [{int(faces.min())}, {int(faces.max())}] but "
                         f"verts2d has {verts2d.shape[1]} vertices")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    return int(h), int(w)


def soft_silhouette_naive(verts2d: torch.Tensor, faces: torch.Tensor, image_size, sigma: float = 1.0
                          ) -> torch.Tensor:
    """Reference implementation over all (pixel, face) pairs at once: B * H * W * F memory.

    Shape: verts2d (B, V, 2) pixels, faces (F, 3) -> (B, H, W) in [0, 1].
    """
    h, w = _check(verts2d, faces, image_size)
    tris = verts2d[:, faces]  # (B, F, 3, 2)
    pix = _pixel_centres(h, w, verts2d.device, verts2d.dtype).view(1, h * w, 1, 2)
    sd = signed_distance_to_triangles(pix, tris[:, None])  # (B, H*W, F)
    return _coverage(sd, sigma).view(-1, h, w)


def soft_silhouette(verts2d: torch.Tensor, faces: torch.Tensor, image_size, sigma: float = 1.0,
                    tile_size: int = 16, eps: float = 1e-6, max_elements: int = 2**22) -> torch.Tensor:
    """Tiled, face-culled soft silhouette (see the module docstring).

    Args:
        verts2d: (B, V, 2) vertex positions in pixels.
        faces: (F, 3) long triangle indices.
        image_size: H = W (int) or (H, W).
        sigma: softness in pixels (0: hard mask).
        tile_size: tile side in pixels.
        eps: coverage below which a face is culled from a tile.
        max_elements: (pixel, face) pairs per chunk of tiles (bounds memory).

    Returns:
        (B, H, W) silhouette in [0, 1], differentiable with respect to ``verts2d`` when sigma > 0.
    """
    h, w = _check(verts2d, faces, image_size)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    b = verts2d.shape[0]
    s = int(tile_size)
    nty, ntx = math.ceil(h / s), math.ceil(w / s)
    tris = verts2d[:, faces]  # (B, F, 3, 2)
    if faces.shape[0] == 0:
        return verts2d.new_zeros(b, h, w)
    margin = sigma * math.log(1.0 / eps) if sigma > 0 else 0.0
    lo = tris.amin(2).detach() - margin  # (B, F, 2)
    hi = tris.amax(2).detach() + margin
    ty, tx = torch.meshgrid(torch.arange(nty, device=verts2d.device),
                            torch.arange(ntx, device=verts2d.device), indexing="ij")
    t_lo = torch.stack([tx.reshape(-1) * s, ty.reshape(-1) * s], -1).to(verts2d.dtype)  # (T, 2)
    t_hi = t_lo + s
    overlap = ((hi[:, :, None] >= t_lo) & (lo[:, :, None] <= t_hi)).all(-1)  # (B, F, T)
    overlap = overlap.transpose(1, 2)  # (B, T, F)
    faces_per_tile = overlap.sum(-1).amax(0).tolist()  # most faces any sample has in each tile
    pix = _pixel_centres(nty * s, ntx * s, verts2d.device, verts2d.dtype)  # padded image
    tile_pix = pix.view(nty, s, ntx, s, 2).permute(0, 2, 1, 3, 4).reshape(nty * ntx, s * s, 2)
    n_tiles = nty * ntx
    out = []
    start = 0
    while start < n_tiles:
        # grow the chunk while its (pixel, face) pairs stay under the budget
        stop = start + 1
        k = faces_per_tile[start]
        while stop < n_tiles:
            k_next = max(k, faces_per_tile[stop])
            if b * (stop + 1 - start) * s * s * max(k_next, 1) > max_elements:
                break
            k, stop = k_next, stop + 1
        out.append(_tile_chunk(tris, overlap[:, start:stop], tile_pix[start:stop], max(k, 1),
                               sigma))
        start = stop
    masks = torch.cat(out, dim=1)  # (B, T, S*S)
    masks = masks.view(b, nty, ntx, s, s).permute(0, 1, 3, 2, 4).reshape(b, nty * s, ntx * s)
    return masks[:, :h, :w]


def _tile_chunk(tris: torch.Tensor, overlap: torch.Tensor, tile_pix: torch.Tensor, k: int,
                sigma: float) -> torch.Tensor:
    """Coverage of a chunk of tiles: (B, Tc, S*S), from the (at most k) faces reaching each tile."""
    vals, idx = overlap.to(torch.uint8).topk(k, dim=-1)  # faces reaching the tile come first
    valid = vals.bool()  # (B, Tc, K)

    def compute(tris_: torch.Tensor) -> torch.Tensor:
        b, tc = idx.shape[:2]
        cand = tris_.gather(1, idx.reshape(b, -1, 1, 1).expand(-1, -1, 3, 2)).view(b, tc, k, 3, 2)
        sd = signed_distance_to_triangles(tile_pix[None, :, :, None], cand[:, :, None])
        return _coverage(sd, sigma, valid[:, :, None])

    if torch.is_grad_enabled() and tris.requires_grad and sigma > 0:
        return checkpoint(compute, tris, use_reentrant=False)
    return compute(tris)


class SoftSilhouetteRasterizer(nn.Module):
    """Module form of :func:`soft_silhouette`.

    Args:
        image_size: H = W or (H, W) in pixels.
        sigma: softness in pixels (0 = hard mask for data generation).
        tile_size, eps, max_elements: see :func:`soft_silhouette`.

    Shape: verts2d (B, V, 2) pixels, faces (F, 3) -> (B, H, W) in [0, 1].
    """

    def __init__(self, image_size, sigma: float = 1.0, tile_size: int = 16, eps: float = 1e-6,
                 max_elements: int = 2**22) -> None:
        super().__init__()
        self.image_size = image_size
        self.sigma = sigma
        self.tile_size = tile_size
        self.eps = eps
        self.max_elements = max_elements

    def forward(self, verts2d: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return soft_silhouette(verts2d, faces, self.image_size, self.sigma, self.tile_size,
                               self.eps, self.max_elements)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, sigma={self.sigma}, tile_size={self.tile_size}"

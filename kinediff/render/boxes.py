"""Face bounding boxes in pixels and the (face, pixel) pairs inside them: the culling step that
the z-buffer rasterizer and the soft silhouette rasterizer share.

Pixel convention: (x, y) in pixels, pixel (i, j) centred at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import torch

__all__ = ["box_pixels", "face_pixel_boxes"]


def face_pixel_boxes(tris_xy: torch.Tensor, h: int, w: int, margin: float = 0.0,
                     keep: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pixels whose centres lie in each face's bounding box grown by ``margin`` pixels.

    Shape: tris_xy (B, F, 3, 2) pixels; keep (B, F) bool or None (faces to drop count 0 pixels;
    non-finite faces always do). Returns, flattened over (B, F): first column j0, first row i0,
    box width and pixel count, all long (B * F,).
    """
    tris_xy = tris_xy.detach()
    lo = tris_xy.amin(2) - margin  # (B, F, 2)
    hi = tris_xy.amax(2) + margin
    j0 = torch.ceil(lo[..., 0] - 0.5).clamp(0, w).long()
    j1 = torch.floor(hi[..., 0] - 0.5).clamp(-1, w - 1).long()
    i0 = torch.ceil(lo[..., 1] - 0.5).clamp(0, h).long()
    i1 = torch.floor(hi[..., 1] - 0.5).clamp(-1, h - 1).long()
    bw, bh = (j1 - j0 + 1).clamp_min(0), (i1 - i0 + 1).clamp_min(0)
    valid = torch.isfinite(tris_xy).flatten(2).all(-1)
    if keep is not None:
        valid = valid & keep
    count = torch.where(valid, bw * bh, 0)
    return j0.flatten(), i0.flatten(), bw.flatten(), count.flatten()


def box_pixels(j0: torch.Tensor, i0: torch.Tensor, width: torch.Tensor, count: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (box, pixel) pair of boxes from :func:`face_pixel_boxes` (or a slice of them).

    Returns owner (P,) (the box's index in the given tensors), px (P,) columns and py (P,) rows,
    long, with P = count.sum().
    """
    owner = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
    k = torch.arange(owner.numel(), device=count.device) - (torch.cumsum(count, 0) - count)[owner]
    w_o = width[owner]
    return owner, j0[owner] + k % w_o, i0[owner] + torch.div(k, w_o, rounding_mode="floor")

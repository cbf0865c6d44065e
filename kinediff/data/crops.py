"""Square crops around a person box, with the crop's camera intrinsics.

Everything that feeds PostureHMR (the data sets, ``kinediff predict``) crops the same way: the box
centre, the longer box side times ``scale`` (1.2 by default: SynthBody's people fill 65-90 % of
their crop, about 1 / 1.2 on average), resampled to S x S by ``grid_sample`` with zero padding
where the square leaves the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CROP_SCALE", "box_to_square", "crop_intrinsics", "crop_square"]

CROP_SCALE = 1.2


def box_to_square(box: tuple[float, ...] | list[float], scale: float = CROP_SCALE
                  ) -> tuple[float, float, float]:
    """(x, y, w, h) box in pixels -> (centre x, centre y, side) of the square crop."""
    if len(box) != 4:
        raise ValueError(f"box must be (x, y, w, h), got {box}")
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be positive, got {box}")
    return x + w / 2, y + h / 2, max(w, h) * scale


def crop_square(image: torch.Tensor, cx: float, cy: float, side: float, size: int) -> torch.Tensor:
    """Resample the square of ``side`` pixels centred at (cx, cy) to (C, size, size) (bilinear,
    zeros outside the image). Shape: image (C, H, W) float -> (C, size, size)."""
    if image.dim() != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
    _, h, w = image.shape
    if side <= 0:
        raise ValueError(f"side must be positive, got {side}")
    # output pixel centre (j + 0.5) maps to x = cx - side/2 + (j + 0.5) side / size
    lin = (torch.arange(size, dtype=torch.float64) + 0.5) * side / size - side / 2
    xs = (cx + lin) / w * 2 - 1  # align_corners=False normalised coordinates
    ys = (cy + lin) / h * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None].to(image)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[0]


def crop_intrinsics(K: torch.Tensor, cx: float, cy: float, side: float, size: int) -> torch.Tensor:
    """Intrinsics of the crop from the full image's K (3, 3): a shift then a scale."""
    s = size / side
    out = K.clone().to(torch.float64)
    out[0, 2] -= cx - side / 2
    out[1, 2] -= cy - side / 2
    out[:2] *= s
    return out.to(K.dtype)

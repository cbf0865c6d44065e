"""Cameras: pinhole projection, the translation that places a mesh in an image, square person
crops with their intrinsics, the intrinsics of an uncalibrated image, and intrinsics from the
focal lengths and principal point that annotation files store.

Frames and units: camera frame x right, y down, z forward, metres; pixel (i, j) has its centre at
(x, y) = (j + 0.5, i + 0.5); intrinsics K (3, 3) in pixels. Everything that feeds PostureHMR (the
data sets, ``kinediff predict``) crops the same way: the box centre, the longer box side times
``scale`` (:data:`CROP_SCALE`, 1.2: SynthBody's people fill 65-90 % of their crop, about 1 / 1.2
on average), resampled to S x S by ``grid_sample`` with zero padding where the square leaves the
image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kinediff.core.checks import check_array, check_number

__all__ = ["CROP_SCALE", "box_to_square", "camera_matrix", "crop_intrinsics", "crop_square",
           "default_intrinsics", "fit_translation", "project_points"]

#: The side of a person's square crop over the longer side of its box.
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


def project_points(points: torch.Tensor, K: torch.Tensor, transl: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """Pinhole projection of camera-frame points (x right, y down, z forward, metres).

    Shape: points (B, N, 3), K (B, 3, 3) or (3, 3), transl (B, 3) or None -> (B, N, 2) pixels.
    Points at z <= 0 get non-finite coordinates clamped to a large value.
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (B, N, 3), got {tuple(points.shape)}")
    if transl is not None:
        points = points + transl[:, None]
    uvw = points @ K.to(points).transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:].clamp_min(1e-6)


def fit_translation(points: torch.Tensor, pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The camera translation that best projects 3D points onto given pixels (least squares).

    With t = (tx, ty, tz), each point gives two equations linear in t:
    f_x (X + tx) - (u - c_x)(Z + tz) = 0 and f_y (Y + ty) - (v - c_y)(Z + tz) = 0.
    Used to place a predicted (root-relative) mesh in an image. Shape: points (B, N, 3),
    pixels (B, N, 2), K (B, 3, 3) or (3, 3) -> (B, 3).
    """
    if points.dim() != 3 or pixels.shape != points.shape[:2] + (2,):
        raise ValueError(f"points (B, N, 3) and pixels (B, N, 2) must agree; got "
                         f"{tuple(points.shape)} and {tuple(pixels.shape)}")
    b, n = points.shape[:2]
    K = K.to(points).expand(b, 3, 3)
    fx, fy, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
    du, dv = pixels[..., 0] - cx, pixels[..., 1] - cy
    zeros = torch.zeros_like(du)
    rows_u = torch.stack([fx.expand(-1, n), zeros, -du], -1)  # (B, N, 3)
    rows_v = torch.stack([zeros, fy.expand(-1, n), -dv], -1)
    a = torch.cat([rows_u, rows_v], 1).double()
    rhs = torch.cat([du * points[..., 2] - fx * points[..., 0],
                     dv * points[..., 2] - fy * points[..., 1]], 1).double()
    return torch.linalg.lstsq(a, rhs[..., None]).solution[..., 0].to(points.dtype)


def default_intrinsics(height: int, width: int, focal: float | None = None) -> torch.Tensor:
    """(3, 3) intrinsics of an image without a calibration: focal length ``focal`` pixels
    (default: the longer side, a 53-degree field of view across it), principal point at the
    image centre."""
    f = float(max(height, width)) if focal is None else check_number(focal, "focal", 0.0,
                                                                        low_open=True, what="pixels")
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def camera_matrix(focal: Any, princpt: Any, where: str,
                  keys: tuple[str, str] = ("focal", "princpt")) -> np.ndarray:
    """K (3, 3) float64 from focal lengths (fx, fy) in pixels (positive) and a principal point
    (cx, cy) in pixels, both finite, as annotation files store them (COCO-style ``cam_param``,
    Human3.6M's ``f`` / ``c``).

    Raises ``ValueError`` naming ``where`` (file and record) and the key (``keys``):
    ``"<where>: key 'focal' must hold positive focal lengths, got [0.0, 500.0]"`` or
    :func:`~kinediff.core.checks.check_array`'s.
    """
    f = check_array(focal, (2,), where, keys[0], exact=True, finite=True)
    if not (f > 0).all():
        raise ValueError(f"{where}: key {keys[0]!r} must hold positive focal lengths, got {f.tolist()}")
    c = check_array(princpt, (2,), where, keys[1], exact=True, finite=True)
    return np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1.0]])

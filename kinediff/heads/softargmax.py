"""Differentiable 2D soft-argmax: centre of mass of a softmax over each heatmap."""

from __future__ import annotations

import torch

from kinediff.core.checks import check_number

__all__ = ["soft_argmax_2d"]


def soft_argmax_2d(heatmaps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Expected pixel position under softmax(heatmap / temperature).

    Pixel (i, j) has its centre at (x, y) = (j + 0.5, i + 0.5), in heatmap pixels.

    Shape: heatmaps (B, K, H, W) -> (B, K, 2) as (x, y).
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must have shape (B, K, H, W), got {tuple(heatmaps.shape)}")
    check_number(temperature, "temperature", 0.0, low_open=True)
    b, k, h, w = heatmaps.shape
    # float32 at least (bf16 heatmaps under autocast), float64 kept
    work = torch.promote_types(heatmaps.dtype, torch.float32)
    prob = torch.softmax(heatmaps.reshape(b, k, h * w).to(work) / temperature, dim=-1).view(b, k, h, w)
    xs = torch.arange(w, device=heatmaps.device, dtype=prob.dtype) + 0.5
    ys = torch.arange(h, device=heatmaps.device, dtype=prob.dtype) + 0.5
    x = (prob.sum(2) * xs).sum(-1)
    y = (prob.sum(3) * ys).sum(-1)
    return torch.stack([x, y], dim=-1)

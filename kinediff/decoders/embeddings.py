"""Step and vertex-position embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SinusoidalStepEmbedding", "VertexPositionEmbedding", "sinusoidal_embedding"]


def sinusoidal_embedding(steps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sin/cos features of integer (or real) steps.

    Shape: steps (B,) -> (B, dim); dim must be even.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=steps.device,
                                                             dtype=torch.float32) / half)
    angles = steps.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class SinusoidalStepEmbedding(nn.Module):
    """Sinusoidal features of the step k followed by a 2-layer MLP (SiLU). Shape: (B,) -> (B, dim)."""

    def __init__(self, dim: int, max_period: float = 10000.0) -> None:
        super().__init__()
        self.dim = dim
        self.max_period = max_period
        self.inp = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        if steps.dim() != 1:
            raise ValueError(f"steps must have shape (B,), got {tuple(steps.shape)}")
        feats = sinusoidal_embedding(steps, self.dim, self.max_period)
        return self.out(torch.nn.functional.silu(self.inp(feats.to(self.inp.weight.dtype))))


class VertexPositionEmbedding(nn.Module):
    """A learned embedding per vertex (token), added to the tokens. Shape: (B, N, dim) -> same."""

    def __init__(self, num_vertices: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_vertices, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.weight.shape:
            raise ValueError(f"expected (B, {self.weight.shape[0]}, {self.weight.shape[1]}), "
                             f"got {tuple(x.shape)}")
        return x + self.weight.to(x.dtype)

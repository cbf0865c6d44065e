"""``GraphormerRegressor``: the one-shot baseline (the "k = 1" comparison): template tokens plus the
condition go through a Graphormer encoder once and come out as the mesh, MeshGraphormer-style."""

from __future__ import annotations

import torch
from torch import nn

from kinediff.decoders.embeddings import VertexPositionEmbedding
from kinediff.decoders.graphormer import GraphormerEncoder

__all__ = ["GraphormerRegressor"]


class GraphormerRegressor(nn.Module):
    """One pass from the coarse template and the condition to the coarse mesh.

    Args:
        adjacency: (N, N) coarse mesh graph. template: (N, 3) coarse template (the start).
        dim, ffn_dim, num_layers, num_heads, cond_dim, dropout: as :class:`M2PDecoder`.

    Shape: condition (B, N, cond_dim) -> mesh (B, N, 3) = template + predicted offsets.
    """

    template: torch.Tensor

    def __init__(self, adjacency: torch.Tensor, template: torch.Tensor, dim: int = 128,
                 ffn_dim: int = 512, num_layers: int = 4, num_heads: int = 4, cond_dim: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        n = int(adjacency.shape[0])
        if template.shape != (n, 3):
            raise ValueError(f"template must have shape ({n}, 3), got {tuple(template.shape)}")
        self.num_vertices, self.cond_dim = n, cond_dim
        self.register_buffer("template", template.detach().float().clone())
        self.embed = nn.Linear(3 + cond_dim, dim)
        self.position = VertexPositionEmbedding(n, dim)
        self.encoder = GraphormerEncoder(dim, num_layers, num_heads, ffn_dim, adjacency, dropout)
        last = nn.Linear(dim, 3)
        nn.init.zeros_(last.weight)  # starts at the template
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), last)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        n = self.num_vertices
        if condition.dim() != 3 or condition.shape[1:] != (n, self.cond_dim):
            raise ValueError(f"condition must have shape (B, {n}, {self.cond_dim}), "
                             f"got {tuple(condition.shape)}")
        template = self.template.to(condition.dtype).expand(condition.shape[0], -1, -1)
        tokens = self.position(self.embed(torch.cat([template, condition], dim=-1)))
        return template + self.head(self.encoder(tokens))

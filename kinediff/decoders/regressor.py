"""``GraphormerRegressor``: the one-shot baseline (the "k = 1" comparison): template tokens plus the
condition go through a Graphormer encoder once and come out as the mesh, MeshGraphormer-style."""

from __future__ import annotations

import torch
from torch import nn

from kinediff.core.config import Configurable
from kinediff.core.pretrained import Pretrained
from kinediff.decoders.embeddings import VertexPositionEmbedding
from kinediff.decoders.graphormer import (
    ConditionWidth,
    Depth,
    Dropout,
    FeedForward,
    GraphormerEncoder,
    Heads,
    Width,
    check_head_split,
)

__all__ = ["GraphormerRegressor"]


class GraphormerRegressor(Configurable, Pretrained, nn.Module):
    """One pass from the coarse template and the condition to the coarse mesh.

    Args:
        adjacency: (N, N) coarse mesh graph. template: (N, 3) coarse template (the start). Both
            objects passed in, not part of the config.
        dim, ffn_dim, num_layers, num_heads, cond_dim, dropout: as :class:`~kinediff.decoders.
            M2PDecoder` (the same names and limits).

    Configurable (:mod:`kinediff.core.config`): ``regressor.config`` holds the sizes;
    ``GraphormerRegressor.from_config(config, adjacency=..., template=...)`` builds it again.

    Shape: condition (B, N, cond_dim) -> mesh (B, N, 3) = template + predicted offsets.
    """

    config_objects = ("adjacency", "template")
    derived_state = ("template",)
    template: torch.Tensor

    def __init__(self, adjacency: torch.Tensor, template: torch.Tensor, dim: Width = 128,
                 ffn_dim: FeedForward = 512, num_layers: Depth = 4, num_heads: Heads = 4,
                 cond_dim: ConditionWidth = 2, dropout: Dropout = 0.0) -> None:
        super().__init__()
        c = self.config
        n = int(adjacency.shape[0])
        if template.shape != (n, 3):
            raise ValueError(f"template must have shape ({n}, 3), got {tuple(template.shape)}")
        self.num_vertices, self.cond_dim = n, c.cond_dim
        self.register_buffer("template", template.detach().float().clone())
        self.embed = nn.Linear(3 + c.cond_dim, c.dim)
        self.position = VertexPositionEmbedding(n, c.dim)
        self.encoder = GraphormerEncoder(c.dim, c.num_layers, c.num_heads, c.ffn_dim, adjacency,
                                         c.dropout)
        last = nn.Linear(c.dim, 3)
        nn.init.zeros_(last.weight)  # starts at the template
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Linear(c.dim, c.dim), nn.GELU(), last)

    @classmethod
    def check_config(cls, config) -> None:
        check_head_split(config)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        n = self.num_vertices
        if condition.dim() != 3 or condition.shape[1:] != (n, self.cond_dim):
            raise ValueError(f"condition must have shape (B, {n}, {self.cond_dim}), "
                             f"got {tuple(condition.shape)}")
        template = self.template.to(condition.dtype).expand(condition.shape[0], -1, -1)
        tokens = self.position(self.embed(torch.cat([template, condition], dim=-1)))
        return template + self.head(self.encoder(tokens))

"""Graphormer layers: self-attention, a graph residual block on the mesh tokens, feed-forward; and
the sizes of the decoders built from them (:class:`~kinediff.decoders.M2PDecoder`,
:class:`~kinediff.decoders.GraphormerRegressor`), with their limits."""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from kinediff.core.checks import Int, Number
from kinediff.decoders.graph import GraphResBlock

__all__ = ["ConditionWidth", "Depth", "Dropout", "FeedForward", "GraphormerEncoder",
           "GraphormerLayer", "Heads", "Width", "check_head_split"]

# The decoders' size limits: 16 times the paper's widths (128, 512), 12 times its depth (4), 64
# heads; the largest decoder they allow has about 2.4 billion parameters (10 GB in float32),
# beyond any training budget for this model, so a saved config asking for more is a typo or a
# damaged file, refused before anything is allocated.
#: Token width (the paper's 128).
Width = Annotated[int, Int(1, 2048)]
#: Feed-forward width (the paper's 512).
FeedForward = Annotated[int, Int(1, 8192)]
#: Graphormer layers (4).
Depth = Annotated[int, Int(1, 48)]
#: Attention heads (4); must divide the width (:func:`check_head_split`).
Heads = Annotated[int, Int(1, 64)]
#: Dropout probability in [0, 1).
Dropout = Annotated[float, Number(0.0, 1.0, high_open=True)]
#: The condition's width per vertex: 2 for a 2D mesh, an image feature's length otherwise (at
#: most 4 times the paper's 2048).
ConditionWidth = Annotated[int, Int(1, 8192)]


def check_head_split(config: Any) -> None:
    """Refuse a decoder config whose ``dim`` the ``num_heads`` do not divide (``ValueError``)."""
    if config.dim % config.num_heads:
        raise ValueError(f"dim ({config.dim}) must be divisible by num_heads ({config.num_heads})")


class GraphormerLayer(nn.Module):
    """Post-LN Graphormer layer: x = LN(x + MHA(x)); mesh tokens += graph residual block;
    x = LN(x + FFN(x)). The mesh tokens are the *last* N tokens (extra tokens come first).

    Args:
        dim: token width. num_heads: attention heads (dim divisible by it). ffn_dim: feed-forward
        width. adjacency: (N, N) mesh graph. dropout: attention and feed-forward dropout.

    Shape: (B, T, dim) -> (B, T, dim), T >= N.
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, adjacency: torch.Tensor,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.num_vertices = int(adjacency.shape[0])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.graph = GraphResBlock(dim, adjacency)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        if t < self.num_vertices:
            raise ValueError(f"expected at least {self.num_vertices} tokens, got {t}")
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        x = self.norm1(x + self.proj(att.transpose(1, 2).reshape(b, t, d)))
        n = self.num_vertices
        x = torch.cat([x[:, :t - n], self.graph(x[:, t - n:])], dim=1)
        return self.norm2(x + self.ffn(x))


class GraphormerEncoder(nn.Module):
    """A stack of :class:`GraphormerLayer`; extra (non-mesh) tokens may precede the mesh tokens.

    Shape: (B, T, dim) -> (B, T, dim).
    """

    def __init__(self, dim: int, num_layers: int, num_heads: int, ffn_dim: int,
                 adjacency: torch.Tensor, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GraphormerLayer(dim, num_heads, ffn_dim, adjacency, dropout)
                                    for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

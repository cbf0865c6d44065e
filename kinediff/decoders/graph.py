"""Graph convolution on a mesh and the Graphormer graph residual block.

``graph_conv`` computes A (X W) + b with a sparse A as gather / scatter over A's non-zeros
(message passing): batched without a loop, any dtype (bfloat16 autocast included), any device,
and ``torch.compile``-able. A is usually the hierarchy's row-normalised (A + I).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GraphConv", "GraphResBlock", "graph_conv", "sparse_to_edges"]


def sparse_to_edges(adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(rows, cols, values, n) of a square sparse (or dense) adjacency matrix."""
    if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) matrix, got {tuple(adjacency.shape)}")
    a = adjacency.coalesce() if adjacency.is_sparse else adjacency.to_sparse().coalesce()
    rows, cols = a.indices()
    # copies, not views into the sparse tensor's storage (torch.compile cannot trace those)
    return rows.clone(), cols.clone(), a.values().clone(), int(adjacency.shape[0])


def graph_conv(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
               weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A (X W) + b, with A given by its non-zeros (rows, cols, values).

    Shape:
        - x: (B, N, C_in).
        - rows, cols, values: (nnz,) of the (N, N) matrix A.
        - weight: (C_in, C_out); bias: (C_out,).
        - output: (B, N, C_out).
    """
    support = x @ weight  # (B, N, C_out)
    messages = support[:, cols] * values.to(support.dtype)[None, :, None]  # (B, nnz, C_out)
    out = support.new_zeros(support.shape).index_add_(1, rows, messages)
    return out if bias is None else out + bias


class GraphConv(nn.Module):
    """Graph convolution A (X W) + b over a fixed mesh graph.

    Args:
        in_channels, out_channels: feature sizes.
        adjacency: (N, N) sparse or dense matrix, e.g. ``MeshHierarchy.adjacency(-1)``.
        bias: add a learned bias.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor,
                 bias: bool = True) -> None:
        super().__init__()
        rows, cols, values, n = sparse_to_edges(adjacency)
        self.num_nodes = n
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("values", values.float(), persistent=False)
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        bound = 1.0 / math.sqrt(in_channels)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, N, C_in) -> (B, N, C_out)."""
        if x.dim() != 3 or x.shape[1] != self.num_nodes or x.shape[2] != self.weight.shape[0]:
            raise ValueError(f"GraphConv expects (B, {self.num_nodes}, {self.weight.shape[0]}), "
                             f"got {tuple(x.shape)}")
        return graph_conv(x, self.rows, self.cols, self.values, self.weight.to(x.dtype),
                          None if self.bias is None else self.bias.to(x.dtype))


class GraphResBlock(nn.Module):
    """x + [LN -> ReLU -> Linear C->C/2 -> LN -> ReLU -> GraphConv C/2->C/2 -> LN -> ReLU ->
    Linear C/2->C] (MeshGraphormer's graph residual block).

    Shape: (B, N, C) -> (B, N, C).
    """

    def __init__(self, channels: int, adjacency: torch.Tensor) -> None:
        super().__init__()
        half = channels // 2
        self.norm1 = nn.LayerNorm(channels)
        self.lin1 = nn.Linear(channels, half)
        self.norm2 = nn.LayerNorm(half)
        self.conv = GraphConv(half, half, adjacency)
        self.norm3 = nn.LayerNorm(half)
        self.lin2 = nn.Linear(half, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin1(torch.relu(self.norm1(x)))
        h = self.conv(torch.relu(self.norm2(h)))
        return x + self.lin2(torch.relu(self.norm3(h)))

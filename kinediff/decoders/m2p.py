"""``M2PDecoder``: the reverse-process network F_alpha of the paper (Fig. 4, eq. 5).

Per vertex, concat(3D coarse mesh M_k, 2D mesh M_0^2d) -> linear embedding -> + step embedding +
learned position embedding -> L Graphormer layers -> MLP head -> Delta M (so that
M_{k-1} = M_k + Delta M). The linear embedding is split into its 3D part and its condition part,
so the condition's contribution is computed once per image and reused over the T steps.

The paper gives "embedding and transformer channels 128 and 512" and T = 10. kinediff reads the
widths as token width ``dim=128`` with feed-forward width ``ffn_dim=512``, with 4 layers and 4
heads (Mesh Graphormer's per block), each kinediff's choice (the paper is silent), see the class
doc; the other reading, token width 512, is ``M2PDecoder(adjacency, dim=512, ffn_dim=2048)``.
The decoder does not depend on T: the step embedding is sinusoidal in the step, and whoever runs
the reverse process (:func:`~kinediff.forward.reverse_process`) holds the schedule and its T.
"""

from __future__ import annotations

import torch
from torch import nn

from kinediff.core.config import Configurable
from kinediff.core.pretrained import Pretrained
from kinediff.decoders.embeddings import SinusoidalStepEmbedding, VertexPositionEmbedding
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
from kinediff.forward.base import ForwardProcess
from kinediff.forward.sampling import reverse_process

__all__ = ["M2PDecoder"]


class M2PDecoder(Configurable, Pretrained, nn.Module):
    """Mesh-to-posture decoder: predicts M_{k-1} - M_k from M_k, the condition and the step k.

    Args:
        adjacency: (N, N) graph of the coarse mesh (``MeshHierarchy.adjacency(-1)``); N = 431.
            An object passed in, not part of the config.
        dim: token width (128). ffn_dim: feed-forward width (512). The paper's "embedding and
            transformer channels are kept at 128 and 512", read as these two widths, is
            kinediff's choice (the paper is silent): it does not say which number is which; the
            other reading is ``dim=512, ffn_dim=2048``.
        num_layers: Graphormer layers (4). num_heads: attention heads (4, must divide ``dim``).
            Both kinediff's choice (the paper is silent): Mesh Graphormer's per encoder block,
            the design the paper's tokens follow [25].
        cond_dim: the condition's width per vertex (2 for the 2D mesh; another width for image
            features).
        dropout: attention and feed-forward dropout in [0, 1) (0, kinediff's choice (the paper
            is silent): it mentions none).
        Limits: see :mod:`kinediff.decoders.graphormer`.

    Configurable (:mod:`kinediff.core.config`): ``decoder.config`` holds every argument but
    ``adjacency``; ``M2PDecoder.from_config(config, adjacency=...)`` builds it again.

    Shape:
        mesh3d (B, N, 3), mesh2d (B, N, cond_dim), step (B,) integers -> (B, N, 3).

    Example:
        >>> import torch
        >>> from kinediff.decoders import M2PDecoder
        >>> decoder = M2PDecoder(torch.eye(5), dim=16, ffn_dim=32, num_layers=1, num_heads=2)
        >>> mesh3d, mesh2d = torch.rand(3, 5, 3), torch.rand(3, 5, 2)
        >>> decoder(mesh3d, step=torch.tensor([10, 4, 1]), condition=decoder.encode_condition(mesh2d)).shape
        torch.Size([3, 5, 3])
    """

    config_objects = ("adjacency",)

    def __init__(self, adjacency: torch.Tensor, dim: Width = 128, ffn_dim: FeedForward = 512,
                 num_layers: Depth = 4, num_heads: Heads = 4, cond_dim: ConditionWidth = 2,
                 dropout: Dropout = 0.0) -> None:
        super().__init__()
        c = self.config
        self.num_vertices = int(adjacency.shape[0])
        self.embed_mesh = nn.Linear(3, c.dim)
        self.embed_cond = nn.Linear(c.cond_dim, c.dim)
        self.step_embedding = SinusoidalStepEmbedding(c.dim)
        self.position = VertexPositionEmbedding(self.num_vertices, c.dim)
        self.encoder = GraphormerEncoder(c.dim, c.num_layers, c.num_heads, c.ffn_dim, adjacency,
                                         c.dropout)
        last = nn.Linear(c.dim, 3)
        nn.init.zeros_(last.weight)  # an untrained decoder moves nothing
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Linear(c.dim, c.dim), nn.GELU(), last)

    @classmethod
    def check_config(cls, config) -> None:
        check_head_split(config)

    def encode_condition(self, mesh2d: torch.Tensor) -> torch.Tensor:
        """The condition's part of the embedding (+ position), computed once per image.

        Shape: (B, N, cond_dim) -> (B, N, dim).
        """
        n, cd = self.num_vertices, self.config.cond_dim
        if mesh2d.dim() != 3 or mesh2d.shape[1:] != (n, cd):
            raise ValueError(f"mesh2d must have shape (B, {n}, {cd}), got {tuple(mesh2d.shape)}")
        return self.position(self.embed_cond(mesh2d))

    def forward(self, mesh3d: torch.Tensor, mesh2d: torch.Tensor | None = None,
                step: torch.Tensor | None = None, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Delta M for one reverse step; pass ``condition=encode_condition(mesh2d)`` to reuse it."""
        n = self.num_vertices
        if mesh3d.dim() != 3 or mesh3d.shape[1:] != (n, 3):
            raise ValueError(f"mesh3d must have shape (B, {n}, 3), got {tuple(mesh3d.shape)}")
        b = mesh3d.shape[0]
        if condition is None:
            if mesh2d is None:
                raise ValueError("give mesh2d or a precomputed condition")
            condition = self.encode_condition(mesh2d)
        if condition.shape != (b, n, self.config.dim):
            raise ValueError(f"condition must have shape ({b}, {n}, {self.config.dim}), "
                             f"got {tuple(condition.shape)}")
        if step is None or step.shape != (b,):
            raise ValueError(f"step must have shape ({b},), got "
                             f"{None if step is None else tuple(step.shape)}")
        tokens = self.embed_mesh(mesh3d) + condition + self.step_embedding(step)[:, None]
        return self.head(self.encoder(tokens))

    @torch.no_grad()
    def reverse(self, mesh_t: torch.Tensor, mesh2d: torch.Tensor, schedule: ForwardProcess,
                return_trajectory: bool = False) -> torch.Tensor:
        """Run the reverse process from M_T over ``schedule.timesteps`` (eq. 5), the condition
        encoded once (:func:`~kinediff.forward.reverse_process`).

        Args:
            mesh_t: (B, N, 3) starting mesh (the coarse template for posture schedules).
            mesh2d: (B, N, cond_dim) condition.
            schedule: a :class:`~kinediff.forward.ForwardProcess` (its ``step`` is applied); a
                posture schedule must have the T this decoder was trained for.
            return_trajectory: also return every intermediate mesh.

        Returns:
            (B, N, 3) M_0, or (B, T + 1, N, 3) with index t = M_t when ``return_trajectory``.
        """
        condition = self.encode_condition(mesh2d)
        return reverse_process(lambda mesh, step: self(mesh, step=step, condition=condition),
                               schedule, mesh_t, return_trajectory=return_trajectory)

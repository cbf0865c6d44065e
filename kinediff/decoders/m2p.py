"""``M2PDecoder``: the reverse-process network F_alpha of the paper (Fig. 4, eq. 5).

Per vertex, concat(3D coarse mesh M_k, 2D mesh M_0^2d) -> linear embedding -> + step embedding +
learned position embedding -> L Graphormer layers -> MLP head -> Delta M (so that
M_{k-1} = M_k + Delta M). The linear embedding is split into its 3D part and its condition part,
so the condition's contribution is computed once per image and reused over the T steps.

Paper defaults: "embedding and transformer channels 128 and 512", T = 10. kinediff reads that as
token width ``dim=128`` with feed-forward width ``ffn_dim=512`` and 4 layers (MeshGraphormer's
depth per block) — the default; the other reading, token width 512, is ``M2PConfig(dim=512,
ffn_dim=2048)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import nn

from kinediff.core.config import ConfigMixin
from kinediff.decoders.embeddings import SinusoidalStepEmbedding, VertexPositionEmbedding
from kinediff.decoders.graphormer import GraphormerEncoder

__all__ = ["M2PConfig", "M2PDecoder"]


@dataclass
class M2PConfig(ConfigMixin):
    """Sizes of :class:`M2PDecoder` (a :class:`~kinediff.core.config.ConfigMixin`: dict, JSON and
    directory round trips, unknown fields refused).

    ``num_steps`` is the T the decoder is trained for: :meth:`M2PDecoder.reverse` refuses a
    posture schedule with another number of steps (its step embeddings would see steps it never
    trained on); a noise schedule's DDIM may take any number."""

    dim: int = 128
    ffn_dim: int = 512
    num_layers: int = 4
    num_heads: int = 4
    num_steps: int = 10
    cond_dim: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        # the same limits as DecoderConfig's (a config read from a file is checked before any
        # weight is allocated); cond_dim is bounded like an image-feature width
        from kinediff.decoders.config import DecoderConfig  # it builds M2PConfigs itself
        from kinediff.forward.config import MAX_STEPS

        DecoderConfig(dim=self.dim, ffn_dim=self.ffn_dim, num_layers=self.num_layers,
                      num_heads=self.num_heads, dropout=self.dropout)
        for name, most in (("num_steps", MAX_STEPS), ("cond_dim", 8192)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 1 <= value <= most:
                raise ValueError(f"{name} must be an integer in [1, {most}], got {value!r}")


class M2PDecoder(nn.Module):
    """Mesh-to-posture decoder: predicts M_{k-1} - M_k from M_k, the condition and the step k.

    Args:
        adjacency: (N, N) graph of the coarse mesh (``MeshHierarchy.adjacency(-1)``); N = 431.
        dim, ffn_dim, num_layers, num_heads, num_steps, cond_dim, dropout: see :class:`M2PConfig`
            (cond_dim = 2 for the 2D mesh; another width for image features).
        config: an :class:`M2PConfig` instead of the keyword sizes.

    Shape:
        mesh3d (B, N, 3), mesh2d (B, N, cond_dim), step (B,) integers in [1, num_steps]
        -> (B, N, 3).

    Example:
        >>> import torch
        >>> from kinediff.decoders import M2PDecoder
        >>> decoder = M2PDecoder(torch.eye(5), dim=16, ffn_dim=32, num_layers=1, num_heads=2)
        >>> mesh3d, mesh2d = torch.rand(3, 5, 3), torch.rand(3, 5, 2)
        >>> decoder(mesh3d, step=torch.tensor([10, 4, 1]), condition=decoder.encode_condition(mesh2d)).shape
        torch.Size([3, 5, 3])
    """

    def __init__(self, adjacency: torch.Tensor, dim: int = 128, ffn_dim: int = 512,
                 num_layers: int = 4, num_heads: int = 4, num_steps: int = 10, cond_dim: int = 2,
                 dropout: float = 0.0, config: M2PConfig | None = None) -> None:
        super().__init__()
        self.config = config or M2PConfig(dim, ffn_dim, num_layers, num_heads, num_steps, cond_dim,
                                          dropout)
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
    def reverse(self, mesh_t: torch.Tensor, mesh2d: torch.Tensor, schedule,
                return_trajectory: bool = False) -> torch.Tensor:
        """Run the reverse process from M_T over ``schedule.timesteps`` (eq. 5).

        Raises:
            ValueError: a posture schedule whose ``num_steps`` is not the decoder's.

        Args:
            mesh_t: (B, N, 3) starting mesh (the coarse template for posture schedules).
            mesh2d: (B, N, cond_dim) condition, encoded once.
            schedule: a :class:`~kinediff.forward.ForwardProcess` (its ``step`` is applied).
            return_trajectory: also return every intermediate mesh.

        Returns:
            (B, N, 3) M_0, or (B, T + 1, N, 3) with index t = M_t when ``return_trajectory``.
        """
        if getattr(schedule, "fixed_reverse_steps", True) and \
                schedule.num_steps != self.config.num_steps:
            raise ValueError(f"this decoder was built for T = {self.config.num_steps} reverse steps "
                             f"(M2PConfig.num_steps) but the schedule takes {schedule.num_steps}; "
                             f"build the schedule with num_steps={self.config.num_steps}")
        condition = self.encode_condition(mesh2d)
        meshes = [mesh_t]
        mesh = mesh_t
        values = getattr(schedule, "timestep_values", None)  # a user's schedule may lack them
        for t in (values if values is not None else [int(t) for t in schedule.timesteps.tolist()]):
            step = torch.full((mesh.shape[0],), t, device=mesh.device, dtype=torch.long)
            mesh = schedule.step(self(mesh, step=step, condition=condition), t, mesh)
            meshes.append(mesh)
        return torch.stack(meshes[::-1], dim=1) if return_trajectory else mesh

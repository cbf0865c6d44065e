"""``MeshUpsampler``: learned coarse -> full up-sampling (431 -> 1723 -> 6890), as MeshGraphormer
does it (dense layers along the vertex axis), initialised from the hierarchy's barycentric U so
that an untrained up-sampler already maps the coarse template close to the full one."""

from __future__ import annotations

import torch
from torch import nn

from kinediff.core.config import Configurable
from kinediff.core.pretrained import Pretrained

__all__ = ["MeshUpsampler"]


class MeshUpsampler(Configurable, Pretrained, nn.Module):
    """Dense layers along the vertex axis from the coarsest hierarchy level to level 0.

    Args:
        hierarchy: a :class:`~kinediff.mesh.MeshHierarchy`; one layer per level step. An object
            passed in: the up-sampler has no other option (its config is empty).

    Shape: (B, N_coarse, C) -> (B, N_full, C).
    """

    config_objects = ("hierarchy",)

    def __init__(self, hierarchy) -> None:
        super().__init__()
        self.sizes = hierarchy.sizes
        layers = []
        for level in range(len(self.sizes) - 1, 0, -1):
            u = hierarchy.upsampling_matrix(level).float()  # (n_{l-1}, n_l)
            layer = nn.Linear(u.shape[1], u.shape[0])
            with torch.no_grad():
                layer.weight.copy_(u)
                layer.bias.zero_()
            layers.append(layer)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.sizes[-1]:
            raise ValueError(f"expected (B, {self.sizes[-1]}, C), got {tuple(x.shape)}")
        # vertex coordinates in the layers' dtype, autocast or not (bfloat16 would round a
        # vertex 1 m out by up to 4 mm)
        with torch.autocast(x.device.type, enabled=False):
            dtype = self.layers[0].weight.dtype if len(self.layers) else x.dtype
            x = x.to(dtype).transpose(1, 2)  # (B, C, N)
            for layer in self.layers:
                x = layer(x)
            return x.transpose(1, 2)

"""``VertexLinearSchedule``: the "VL" baseline of Table 3, vertex-wise linear interpolation
M_t = (1 - s) M_0 + s M_T between the target and the template (no skeleton: bones stretch)."""

from __future__ import annotations

from typing import Any

import torch

from kinediff.forward.alphas import AlphaLike
from kinediff.forward.fk import FKSchedule, template_mesh

__all__ = ["VertexLinearSchedule"]


class VertexLinearSchedule(FKSchedule):
    """Vertex-wise linear forward process, with FKSchedule's calls and template.

    Args:
        body: body model; num_steps: T; alpha: progress schedule (paper: linear);
        template_orientation, root_path: as in :class:`FKSchedule` (with "heading" the template
            end is turned by each sample's ``heading``).
    """

    def __init__(self, body, num_steps: int = 10, alpha: AlphaLike = "linear",
                 template_orientation: Any = None, root_path: str = "geodesic") -> None:
        super().__init__(body, num_steps, alpha, "paper", template_orientation,
                         root_path=root_path)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg.pop("blend")
        return cfg

    def _meshes(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                heading: torch.Tensor | None = None) -> torch.Tensor:
        target = self.body(pose, betas).vertices  # (B, V, 3), validates the inputs
        end = self._end_orientation(heading, target.shape[0])
        template = template_mesh(self.body, end if heading is not None else end[0])  # (B|1, V, 3)
        return target[:, None] + s[..., None, None] * (template.expand_as(target) - target)[:, None]

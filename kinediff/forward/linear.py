"""``VertexLinearSchedule``: the "VL" baseline of Table 3, vertex-wise linear interpolation
M_t = (1 - s) M_0 + s M_T between the target and the template (no skeleton: bones stretch)."""

from __future__ import annotations

from typing import Any

import torch

from kinediff.forward.alphas import AlphaLike
from kinediff.forward.posture import PostureSchedule

__all__ = ["VertexLinearSchedule"]


class VertexLinearSchedule(PostureSchedule):
    """Vertex-wise linear forward process: a sibling of :class:`~kinediff.forward.FKSchedule`
    with the same calls and the same template end.

    Args:
        body: body model; num_steps: T; alpha: progress schedule (paper: linear);
        template_orientation, root_path: as in :class:`~kinediff.forward.FKSchedule` (with
            "heading" the template end is turned by each sample's ``heading``).
    """

    def __init__(self, body, num_steps: int = 10, alpha: AlphaLike = "linear",
                 template_orientation: Any = None, root_path: str = "geodesic") -> None:
        super().__init__(body, num_steps, alpha, template_orientation, root_path)

    def meshes_at(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                  heading: torch.Tensor | None = None) -> torch.Tensor:
        """(1 - s) M_0 + s M_T (B, M, V, 3) at progress values s (B, M)."""
        target = self.body(pose, betas).vertices  # (B, V, 3), validates the inputs
        template = self.template.meshes(heading, target.shape[0])  # (B, V, 3)
        return target[:, None] + s[..., None, None] * (template - target)[:, None]

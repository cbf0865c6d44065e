"""``VertexLinearSchedule``: the "VL" baseline of Table 3, vertex-wise linear interpolation
M_t = (1 - s) M_0 + s M_T between the target and the template (no skeleton: bones stretch)."""

from __future__ import annotations

import torch

from kinediff.forward.alphas import Progress
from kinediff.forward.base import NumSteps
from kinediff.forward.posture import PostureSchedule
from kinediff.forward.template import RootPath, TemplateOrientation

__all__ = ["VertexLinearSchedule"]


class VertexLinearSchedule(PostureSchedule):
    """Vertex-wise linear forward process: a sibling of :class:`~kinediff.forward.FKSchedule`
    with the same calls and the same template end.

    Args:
        body: body model; num_steps: T; alpha: progress schedule (paper: linear);
        template_orientation, root_path: as in :class:`~kinediff.forward.FKSchedule` (with
            "heading" the template end is turned by each sample's ``heading``).
    """

    def __init__(self, body, num_steps: NumSteps = 10, alpha: Progress = "linear",
                 template_orientation: TemplateOrientation = None,
                 root_path: RootPath = "geodesic") -> None:
        c = self.config
        super().__init__(body, c.num_steps, c.alpha, c.template_orientation, c.root_path)

    def meshes_at(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                  heading: torch.Tensor | None = None) -> torch.Tensor:
        """(1 - s) M_0 + s M_T (B, M, V, 3) at progress values s (B, M)."""
        target = self.body(pose, betas).vertices  # (B, V, 3), validates the inputs
        template = self.template.meshes(heading, target.shape[0])  # (B, V, 3)
        return target[:, None] + s[..., None, None] * (template - target)[:, None]

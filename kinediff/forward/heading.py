"""The heading: a body's turn about the camera's vertical axis, estimated from its 2D mesh.

Why FK needs it. The paper's FK path turns the root along the geodesic from the target's
orientation R_0 to one fixed template orientation R_T. No choice of path can be continuous in R_0
for every heading: the loop of headings psi = 0 .. 2 pi is a full turn, the non-contractible loop of
SO(3), and a path family continuous in R_0 with a fixed end would contract it. With the geodesic the
break sits at psi = +-pi (people seen from behind): two targets a few degrees apart turn opposite
ways and their intermediate meshes lie metres apart. ``FKSchedule(root_path="heading")`` removes the
break where people stand: M_T is the template turned to the heading psi estimated from the 2D mesh
(:func:`estimate_heading`), so the root only has to cover the estimate's error and the tilt, far
from pi. The same estimate is used in training and at inference.

Frames: camera frame (x right, y down, z forward); a heading psi turns by the rotation
R_y(psi) = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]] about the camera's y axis, applied on the
left of the template orientation: R_T(psi) = R_y(psi) R_T.
"""

from __future__ import annotations

import torch

from kinediff.core.checks import value_checks_enabled

__all__ = ["TORSO_JOINTS", "estimate_heading", "heading_matrix", "heading_of", "torso_weights"]

#: SMPL joints whose skinned vertices turn with the root: pelvis, spine1, spine2, spine3.
TORSO_JOINTS = (0, 3, 6, 9)


def heading_matrix(heading: torch.Tensor) -> torch.Tensor:
    """R_y(psi), the turn by ``heading`` (radians) about the camera's vertical axis.

    Shape: (*,) -> (*, 3, 3).
    """
    c, s = heading.cos(), heading.sin()
    zero, one = torch.zeros_like(heading), torch.ones_like(heading)
    return torch.stack([torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1),
                        torch.stack([-s, zero, c], -1)], -2)


def heading_of(orientation: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The heading psi of a root ``orientation`` (*, 3, 3) relative to ``reference`` (3, 3): the
    angle of the turn about the camera's y axis in the swing-twist split of
    ``orientation @ reference.T`` (the exact value, for tests and analysis). Shape: -> (*,), in
    (-pi, pi]."""
    rel = orientation @ reference.transpose(-1, -2)
    return torch.atan2(rel[..., 0, 2] - rel[..., 2, 0], rel[..., 0, 0] + rel[..., 2, 2])


def torso_weights(skinning_weights: torch.Tensor, joints: tuple[int, ...] = TORSO_JOINTS,
                  threshold: float = 0.5) -> torch.Tensor:
    """Per-vertex weights (N,) for :func:`estimate_heading`: 1 where the vertex's skinning weight
    on ``joints`` exceeds ``threshold`` (vertices that turn with the root), else 0.

    Shape: skinning_weights (N, J) -> (N,), in their dtype.

    Raises:
        ValueError: no vertex passes the threshold.
    """
    w = (skinning_weights[:, list(joints)].sum(-1) > threshold).to(skinning_weights.dtype)
    if not bool(w.any()):
        raise ValueError(f"no vertex has more than {threshold} of its skinning weight on joints "
                         f"{joints}")
    return w


def estimate_heading(mesh2d: torch.Tensor, template: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
    """The heading psi that best turns ``template`` onto ``mesh2d``, in closed form.

    Weak perspective: the image x of a vertex of the template turned by psi is, up to scale s and
    offset, x cos(psi) + z sin(psi). A weighted least-squares fit of u = a x + b z + c to the 2D
    mesh's image x gives (a, b) = s (cos psi, sin psi), so psi = atan2(b, a). Vertex
    correspondence makes front and back views distinct (left and right swap sides). Only the x
    coordinate is used; the image y carries no heading. Limbs move with the posture: pass
    :func:`torso_weights` (on SynthBody with GT 2D meshes plus 1 px noise: median error 9 deg,
    largest 37 deg over 256 crops; all vertices: median 21 deg, largest 176 deg).

    Args:
        mesh2d: (B, N, 2) the 2D mesh (pixels, or any centred and scaled version of them).
        template: (N, 3) the template mesh in the camera frame at heading 0 (the schedule's M_T).
        weights: (N,) non-negative vertex weights, not all zero.

    Raises:
        ValueError: wrong shapes, or negative or all-zero weights (a value check,
            :func:`kinediff.value_checks`).

    Returns:
        (B,) headings in radians, in (-pi, pi]; continuous in mesh2d wherever (a, b) != 0. A 2D
        mesh whose image x coordinates do not vary (a mesh collapsed to a point, as an untrained
        2D stage's, once centred) carries no heading: (a, b) = (0, 0) gives 0, the template's
        own heading.
    """
    if mesh2d.dim() != 3 or mesh2d.shape[-1] != 2:
        raise ValueError(f"mesh2d must have shape (B, N, 2), got {tuple(mesh2d.shape)}")
    n = mesh2d.shape[1]
    if template.shape != (n, 3) or weights.shape != (n,):
        raise ValueError(f"template must have shape ({n}, 3) and weights ({n},) to match mesh2d; "
                         f"got {tuple(template.shape)} and {tuple(weights.shape)}")
    if value_checks_enabled() and (bool((weights < 0).any()) or not bool(weights.sum() > 0)):
        raise ValueError("weights must be non-negative and not all zero")
    # float32 at least, and elementwise sums rather than matmuls, so that autocast (bf16 on CUDA)
    # leaves the fit alone
    dtype = torch.promote_types(mesh2d.dtype, torch.float32)
    with torch.autocast(mesh2d.device.type, enabled=False):
        w = weights.to(mesh2d.device, dtype) / weights.to(dtype).sum()
        x = mesh2d[..., 0].to(dtype)
        u = x - (w * x).sum(-1, keepdim=True)  # (B, N)
        xz = template[:, [0, 2]].to(mesh2d.device, dtype)
        xz = xz - (w[:, None] * xz).sum(0)  # (N, 2), weighted-centred
        # normal equations G (a, b) = r of the 2-parameter fit (the centring absorbs the offset);
        # G is positive definite, so (a, b) has the direction of adj(G) r, which is all atan2 needs
        g00, g01, g11 = (w * xz[:, 0] ** 2).sum(), (w * xz[:, 0] * xz[:, 1]).sum(), \
            (w * xz[:, 1] ** 2).sum()
        r0, r1 = (w * u * xz[:, 0]).sum(-1), (w * u * xz[:, 1]).sum(-1)  # (B,)
        n, d = g00 * r1 - g01 * r0, g11 * r0 - g01 * r1
        # no spread along the image x axis: no heading (atan2 of two zeros is 0 or pi by their signs)
        return torch.where((n == 0) & (d == 0), torch.zeros_like(d), torch.atan2(n, d))

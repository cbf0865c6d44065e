"""``FKSchedule``: the paper's kinematics-based forward process (§3.2, eq. 2-4).

With s = alpha(t / T) (linear in the paper), the mesh M_t is a skinned body whose
- joint rotations move along the geodesic from the identity: theta_t = (1 - s) theta (axis-angle
  first wrapped to angles in [-pi, pi], so the path is the short one and continuous near pi);
- root orientation moves along the geodesic from the target's R_0 to the template's R_T:
  R_t = R_0 exp(s log(R_0^T R_T)); R_T defaults to pi about x (upright, facing the camera). With
  ``root_path="heading"`` (kinediff's, not the paper's) the template is first turned about the
  camera's vertical axis to a per-sample heading psi (estimated from the 2D mesh, see
  :mod:`kinediff.forward.heading`): R_T(psi) = R_y(psi) R_T, so the root's turn stays far from pi
  for people seen from behind, where the paper's path breaks;
- shape moves linearly: beta_t = (1 - s) beta, so the rest joints J_t follow (eq. 2, 4);
- rest vertices are, with ``blend="paper"`` (eq. 3), T + (1 - s)(B_S(beta) + B_P(theta)), or with
  ``blend="exact"``, T + B_S(beta_t) + B_P(theta_t), so every M_t is a true SMPL mesh.
M_0 = body(theta, beta) and M_T = the template in the template orientation, exactly.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch

from kinediff.body import kinematics as kin
from kinediff.body import skinning as lbs
from kinediff.body.blendshapes import blend_offsets, pose_features, rest_shapes, shape_offsets
from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.core.checks import OneOf, check_choice
from kinediff.forward.alphas import Progress
from kinediff.forward.base import NumSteps
from kinediff.forward.posture import PostureSchedule
from kinediff.forward.template import RootPath, TemplateOrientation

__all__ = ["BLENDS", "FKSchedule", "wrap_axis_angle"]

#: FK's rest-vertex blends: "paper" (eq. 3) and "exact" (every M_t a true SMPL mesh).
BLENDS = ("paper", "exact")


def wrap_axis_angle(axis_angle: torch.Tensor) -> torch.Tensor:
    """The same rotations with angles wrapped into [-pi, pi] along the same axis line.

    Shape: (*, 3) -> (*, 3). Differentiable away from angles that are odd multiples of pi.
    """
    angle = axis_angle.norm(dim=-1, keepdim=True)
    wrapped = angle - 2 * math.pi * torch.round(angle / (2 * math.pi))
    scale = torch.where(angle > math.pi, wrapped / angle.clamp_min(1e-12), torch.ones_like(angle))
    return axis_angle * scale


class FKSchedule(PostureSchedule):
    """The paper's FK forward process over a :class:`~kinediff.body.BodyModel`.

    Args:
        body: the body model (its dtype and device are followed).
        num_steps: T (paper: 10).
        alpha: "linear" (paper), "cosine", "sigmoid", or a monotone callable r -> s with s(0) = 0,
            s(1) = 1, applied to r = t / T.
        blend: "paper" (eq. 3) or "exact" (every M_t a true SMPL mesh of (theta_t, beta_t)).
        template_orientation: root orientation of M_T: None (pi about x: upright, facing the camera,
            in the camera frame), axis-angle (3,) or a rotation matrix (3, 3).
        backend: skinning backend, "auto", "torch" or "numba", as in
            :func:`~kinediff.body.linear_blend_skinning` (how, not what: not part of the config,
            ``config_runtime``);
            both blends take the numba kernels with "auto" where they apply (CPU, no gradients,
            ``kinediff[fast]`` installed). Except with "torch", the exact blend forms its B (T + 1)
            rest shapes as one (B (T + 1), V, 3) tensor (one GEMM, as large as its result) before
            skinning them; the paper blend, and the exact one with "torch", form them inside the
            skinning, chunk by chunk.
        root_path: "geodesic" (the paper) or "heading": every call then takes ``heading`` (B,),
            radians, and M_T is the template turned by it about the camera's vertical axis (see
            :mod:`kinediff.forward.heading`).

    Configurable (:mod:`kinediff.core.config`): ``schedule.config`` holds every argument but
    ``body`` and ``backend``; ``FKSchedule.from_config(config, body=body)`` builds it again.

    Shapes: pose (B, 24, 3) axis-angle or (B, 24, 3, 3); betas (B, K); t (B,) integers or an int;
    heading (B,) radians; meshes (B, V, 3); trajectory (B, T + 1, V, 3) with index t holding M_t.

    Example:
        >>> import torch
        >>> from kinediff.body import BodyModel
        >>> from kinediff.forward import FKSchedule
        >>> schedule = FKSchedule(BodyModel.synthetic(), num_steps=10)
        >>> pose = torch.zeros(2, 24, 3)
        >>> schedule.trajectory(pose, torch.zeros(2, 10)).shape  # index t holds M_t
        torch.Size([2, 11, 6890, 3])
    """

    config_runtime = ("backend",)

    def __init__(self, body, num_steps: NumSteps = 10, alpha: Progress = "linear",
                 blend: Annotated[str, OneOf(*BLENDS)] = "paper",
                 template_orientation: TemplateOrientation = None,
                 root_path: RootPath = "geodesic",
                 backend: str = "auto") -> None:
        c = self.config
        super().__init__(body, c.num_steps, c.alpha, c.template_orientation, c.root_path)
        check_choice(backend, "backend", lbs.SKINNING_BACKENDS)
        self.backend = backend
        self.blend = c.blend

    # -- inputs -------------------------------------------------------------------------------

    def _inputs(self, pose: torch.Tensor, betas: torch.Tensor | None):
        body = self.body
        rot = body.rotations(pose)  # validates shape, dtype, device, finiteness
        if pose.dim() == 4:
            aa = matrix_to_axis_angle(rot)
        else:
            aa = wrap_axis_angle(pose.reshape(rot.shape[0], body.num_joints, 3))
        return aa, rot, body.prepare_betas(betas, rot.shape[0])

    # -- the process --------------------------------------------------------------------------

    def _skeleton(self, aa: torch.Tensor, rot0: torch.Tensor, betas: torch.Tensor, s: torch.Tensor,
                  end: torch.Tensor):
        """Joint rotations (B, M, 24, 3, 3) and rest joints (B, M, 24, 3) at progress s (B, M);
        ``end`` (B, 3, 3) is each sample's template orientation R_T."""
        body = self.body
        c = (1.0 - s)[..., None, None]  # (B, M, 1, 1)
        # non-root joints: geodesic from the identity, theta_t = (1 - s) theta
        rot_body = axis_angle_to_matrix(c * aa[:, None, 1:])  # (B, M, 23, 3, 3)
        # root: geodesic from R_0 to the template orientation R_T
        rel = matrix_to_axis_angle(rot0[:, 0].transpose(-1, -2) @ end)
        rot_root = rot0[:, None, 0] @ axis_angle_to_matrix(s[..., None] * rel[:, None])
        rots = torch.cat([rot_root[:, :, None], rot_body], dim=2)
        # shape: beta_t = (1 - s) beta, so the rest joints follow linearly (eq. 2, 4)
        joint_shape = shape_offsets(betas, body.joint_shapedirs)  # (B, 24, 3)
        return rots, body.joint_template + c * joint_shape[:, None]

    def meshes_at(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                  heading: torch.Tensor | None = None) -> torch.Tensor:
        """Meshes (B, M, V, 3) at progress values s (B, M) for each sample, in one batched pass."""
        body = self.body
        aa, rot0, betas = self._inputs(pose, betas)
        end = self.template.orientations(heading, aa.shape[0])
        rots, rest_joints = self._skeleton(aa, rot0, betas, s, end)
        fk = kin.forward_kinematics(rots, rest_joints, body.parent_list)
        if self.blend == "paper":
            # rest shapes T + (1 - s)(B_S + B_P(theta)) are formed inside the skinning, chunk by
            # chunk, never materialised: one (B, V, 3) offset field B_S(beta) + B_P(theta)
            delta = blend_offsets(betas, body.shapedirs, rot0, body.posedirs)
            return lbs.linear_blend_skinning_affine(body.v_template, delta, 1.0 - s, body.weights,
                                                    fk.skinning_transforms, backend=self.backend)
        # exact: every mesh is SMPL of (theta_t, beta_t), with rest shapes T + B_S(beta_t) + B_P(theta_t)
        if self.backend == "torch":
            # the blocked torch path forms each chunk's rest points, pose-corrective GEMM included,
            # in cache: T + (1 - s) B_S(beta) + B_P(theta_t)
            return lbs.linear_blend_skinning_affine(body.v_template, shape_offsets(betas, body.shapedirs),
                                                    1.0 - s, body.weights, fk.skinning_transforms,
                                                    body.posedirs, pose_features(rots), backend="torch")
        # otherwise all B * M rest shapes in one GEMM, skinned in one call (the numba kernel with
        # "auto" where it applies): a handful of large operations, where the chunked path makes
        # hundreds of small ones (each an OpenMP fork-join: on a busy machine, a wait for a
        # descheduled thread)
        b, m = s.shape
        n, nj, v = b * m, body.num_joints, body.num_vertices
        betas_t = ((1.0 - s)[..., None] * betas[:, None]).reshape(n, -1)  # beta_t = (1 - s) beta
        rest = rest_shapes(body.v_template, body.shapedirs, betas_t, rots.reshape(n, nj, 3, 3),
                           body.posedirs)
        out = lbs.linear_blend_skinning(rest, body.weights, fk.skinning_transforms.reshape(n, nj, 3, 4),
                                        backend=self.backend)
        return out.view(b, m, v, 3)

    def joints(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """Posed joints of the skeleton that drives M_t (FK of theta_t on J(beta_t)): (B, 24, 3).
        FK only: the vertex-linear path has no skeleton."""
        aa, rot0, betas = self._inputs(pose, betas)
        t = self._check_t(t, aa.shape[0], 0, aa.device)
        end = self.template.orientations(heading, aa.shape[0])
        rots, rest_joints = self._skeleton(aa, rot0, betas, self.progress(t)[:, None], end)
        return kin.forward_kinematics(rots, rest_joints, self.body.parent_list).joints[:, 0]

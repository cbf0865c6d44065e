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
from typing import Any

import torch

from kinediff.body import kinematics as kin
from kinediff.body import skinning as lbs
from kinediff.body.blendshapes import blend_offsets, pose_features, shape_offsets
from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.forward.alphas import AlphaLike, resolve_alpha
from kinediff.forward.base import PostureSchedule
from kinediff.forward.heading import heading_matrix

__all__ = ["ROOT_PATHS", "FKSchedule", "template_mesh", "wrap_axis_angle"]

#: The root paths: "geodesic" (the paper: one fixed template orientation) and "heading" (the
#: template turned to a per-sample heading that every call takes as ``heading=``).
ROOT_PATHS = ("geodesic", "heading")


def wrap_axis_angle(axis_angle: torch.Tensor) -> torch.Tensor:
    """The same rotations with angles wrapped into [-pi, pi] along the same axis line.

    Shape: (*, 3) -> (*, 3). Differentiable away from angles that are odd multiples of pi.
    """
    angle = axis_angle.norm(dim=-1, keepdim=True)
    wrapped = angle - 2 * math.pi * torch.round(angle / (2 * math.pi))
    scale = torch.where(angle > math.pi, wrapped / angle.clamp_min(1e-12), torch.ones_like(angle))
    return axis_angle * scale


def template_mesh(body, orientation: torch.Tensor) -> torch.Tensor:
    """The mean-shape template in rest pose with root orientation ``orientation``.

    Shape: (3, 3) -> (V, 3), or (B, 3, 3) -> (B, V, 3) (one template per orientation).
    """
    batched = orientation.dim() == 3
    rot = orientation.to(body.v_template)
    rot = rot if batched else rot[None]
    pose = torch.eye(3, dtype=rot.dtype, device=rot.device).repeat(rot.shape[0], 24, 1, 1)
    pose[:, 0] = rot
    verts = body(pose).vertices
    return verts if batched else verts[0]


def _orientation_matrix(value: Any, dtype=torch.float64) -> torch.Tensor:
    if value is None:
        return axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=dtype))
    value = torch.as_tensor(value, dtype=dtype)
    if value.shape == (3,):
        return axis_angle_to_matrix(value)
    if value.shape == (3, 3):
        if not torch.allclose(value @ value.T, torch.eye(3, dtype=dtype), atol=1e-5):
            raise ValueError("template_orientation matrix is not a rotation")
        return value
    raise ValueError(f"template_orientation must be None, axis-angle (3,) or a matrix (3, 3); "
                     f"got shape {tuple(value.shape)}")


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
            :func:`~kinediff.body.linear_blend_skinning` (how, not what: not part of the config).
        root_path: "geodesic" (the paper) or "heading": every call then takes ``heading`` (B,),
            radians, and M_T is the template turned by it about the camera's vertical axis (see
            :mod:`kinediff.forward.heading`).

    Shapes: pose (B, 24, 3) axis-angle or (B, 24, 3, 3); betas (B, K); t (B,) integers or an int;
    heading (B,) radians; meshes (B, V, 3); trajectory (B, T + 1, V, 3) with index t holding M_t.
    """

    def __init__(self, body, num_steps: int = 10, alpha: AlphaLike = "linear", blend: str = "paper",
                 template_orientation: Any = None, backend: str = "auto",
                 root_path: str = "geodesic") -> None:
        super().__init__(num_steps)
        if blend not in ("paper", "exact"):
            raise ValueError(f"blend must be 'paper' or 'exact', got {blend!r}")
        if root_path not in ROOT_PATHS:
            raise ValueError(f"root_path must be one of {ROOT_PATHS}, got {root_path!r}")
        self.root_path = root_path
        if backend not in lbs.SKINNING_BACKENDS:
            raise ValueError(f"backend must be one of {lbs.SKINNING_BACKENDS}, got {backend!r}")
        if backend == "numba" and blend == "exact":
            raise ValueError("backend='numba' skins the paper blend only: the exact blend's "
                             "per-step pose-corrective offsets run on the torch path")
        self.backend = backend
        self.body = body
        self.alpha_name = alpha if isinstance(alpha, str) else getattr(alpha, "__name__", "custom")
        self.alpha = resolve_alpha(alpha)
        self.blend = blend
        self._orientation = _orientation_matrix(template_orientation)

    def config(self) -> dict[str, Any]:
        cfg = {"num_steps": self.num_steps, "alpha": self.alpha_name, "blend": self.blend,
               "template_orientation": matrix_to_axis_angle(self._orientation).tolist()}
        if self.root_path != "geodesic":  # configs saved before root_path existed stay valid
            cfg["root_path"] = self.root_path
        return cfg

    @classmethod
    def _from_config(cls, config: dict[str, Any], body) -> FKSchedule:
        if body is None:
            raise ValueError("FKSchedule.from_dict needs the body model: from_dict(data, body=body)")
        if config.get("alpha") not in ("linear", "cosine", "sigmoid"):
            raise ValueError(f"cannot restore custom alpha {config.get('alpha')!r} from a config; "
                             f"build the schedule with the callable")
        return cls(body, **config)

    @property
    def template_orientation(self) -> torch.Tensor:
        """(3, 3) root orientation of M_T at heading 0, in the body's dtype and device."""
        return self._orientation.to(self.body.v_template)

    def _end_orientation(self, heading: torch.Tensor | None, batch: int) -> torch.Tensor:
        """R_T per sample (B, 3, 3): the template orientation, turned by ``heading`` when the root
        path is "heading" (which requires it; "geodesic" refuses it)."""
        base = self.template_orientation
        if self.root_path == "geodesic":
            if heading is not None:
                raise ValueError("heading is only read with root_path='heading'; this schedule's "
                                 "root path is 'geodesic' (the paper's fixed template orientation)")
            return base.expand(batch, 3, 3)
        if heading is None:
            raise ValueError("root_path='heading' needs heading= (B,) radians, e.g. "
                             "kinediff.forward.heading.estimate_heading(mesh2d, ...)")
        if not isinstance(heading, torch.Tensor) or heading.shape != (batch,) or \
                not heading.dtype.is_floating_point:
            raise ValueError(f"heading must be a float tensor of shape ({batch},), got "
                             f"{getattr(heading, 'shape', type(heading).__name__)}")
        return heading_matrix(heading.to(base)) @ base

    def progress(self, t: torch.Tensor) -> torch.Tensor:
        """s = alpha(t / T) for integer steps t (any shape), in the body's dtype."""
        return self.alpha(t.to(self.body.v_template.dtype) / self.num_steps)

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

    def _meshes(self, pose: torch.Tensor, betas: torch.Tensor | None, s: torch.Tensor,
                heading: torch.Tensor | None = None) -> torch.Tensor:
        """Meshes (B, M, V, 3) at progress values s (B, M) for each sample, in one batched pass."""
        body = self.body
        aa, rot0, betas = self._inputs(pose, betas)
        end = self._end_orientation(heading, aa.shape[0])
        rots, rest_joints = self._skeleton(aa, rot0, betas, s, end)
        fk = kin.forward_kinematics(rots, rest_joints, body.parent_list)
        # rest shapes are skinned chunk by chunk, never materialised: T + (1 - s)(B_S + B_P(theta))
        # for the paper blend, T + (1 - s) B_S + B_P(theta_t) for the exact one
        if self.blend == "paper":  # B_S(beta) + B_P(theta), one (B, V, 3) tensor
            delta = blend_offsets(betas, body.shapedirs, rot0, body.posedirs)
            return lbs.linear_blend_skinning_affine(body.v_template, delta, 1.0 - s, body.weights,
                                                    fk.skinning_transforms, backend=self.backend)
        shape_off = shape_offsets(betas, body.shapedirs)  # (B, V, 3)
        return lbs.linear_blend_skinning_affine(body.v_template, shape_off, 1.0 - s, body.weights,
                                                fk.skinning_transforms, body.posedirs,
                                                pose_features(rots), backend=self.backend)

    def meshes(self, pose: torch.Tensor, betas: torch.Tensor | None, t: torch.Tensor,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_t for several steps per sample in one batched pass: t (B, M) integers in [0, T]
        -> (B, M, V, 3)."""
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[0] != pose.shape[0]:
            raise ValueError(f"t must be an integer tensor of shape ({pose.shape[0]}, M), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
        flat = self._check_t(t.flatten(), t.numel(), 0, self.body.v_template.device)
        return self._meshes(pose, betas, self.progress(flat.view_as(t)), heading)

    def joints(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """Posed joints of the skeleton that drives M_t (FK of theta_t on J(beta_t)): (B, 24, 3)."""
        aa, rot0, betas = self._inputs(pose, betas)
        t = self._check_t(t, aa.shape[0], 0, aa.device)
        end = self._end_orientation(heading, aa.shape[0])
        rots, rest_joints = self._skeleton(aa, rot0, betas, self.progress(t)[:, None], end)
        return kin.forward_kinematics(rots, rest_joints, self.body.parent_list).joints[:, 0]

    def sample(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_t for a per-sample step t (the q of eq. 2). Shape: -> (B, V, 3)."""
        batch = pose.shape[0]
        t = self._check_t(t, batch, 0, self.body.v_template.device)
        return self._meshes(pose, betas, self.progress(t)[:, None], heading)[:, 0]

    def trajectory(self, pose: torch.Tensor, betas: torch.Tensor | None = None,
                   heading: torch.Tensor | None = None) -> torch.Tensor:
        """All T + 1 meshes in one batched pass. Shape: -> (B, T + 1, V, 3), index t = M_t."""
        steps = torch.arange(self.num_steps + 1, device=self.body.v_template.device)
        s = self.progress(steps).expand(pose.shape[0], -1)
        return self._meshes(pose, betas, s, heading)

    def target(self, pose: torch.Tensor, betas: torch.Tensor | None, t: Any,
               heading: torch.Tensor | None = None) -> torch.Tensor:
        """The label of eq. 7: M_{t-1} - M_t for t in [1, T]. Shape: -> (B, V, 3)."""
        t = self._check_t(t, pose.shape[0], 1, self.body.v_template.device)
        meshes = self._meshes(pose, betas, self.progress(torch.stack([t - 1, t], dim=1)), heading)
        return meshes[:, 0] - meshes[:, 1]

    def initial(self, batch_size: int, heading: torch.Tensor | None = None) -> torch.Tensor:
        """M_T, the template in the template orientation (turned by ``heading`` with the
        "heading" root path). Shape: -> (batch_size, V, 3)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        end = self._end_orientation(heading, batch_size)
        if heading is None:
            return template_mesh(self.body, end[0]).expand(batch_size, -1, -1).clone()
        return template_mesh(self.body, end)

"""The template end M_T of the posture paths: the mean-shape body in rest pose, in the template
orientation (pi about x by default: upright, facing the camera), turned per sample to a heading
with ``root_path="heading"``. Shared by :class:`~kinediff.forward.FKSchedule` and
:class:`~kinediff.forward.VertexLinearSchedule` (composition, not inheritance)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch

from kinediff.body.rotations import axis_angle_to_matrix
from kinediff.core.checks import OneOf, Rule, check_choice
from kinediff.forward.heading import heading_matrix

__all__ = ["ROOT_PATHS", "Orientation", "RootPath", "TemplateEnd", "TemplateOrientation", "default_template_orientation",
           "orientation_matrix", "template_mesh"]

#: The root paths: "geodesic" (the paper: one fixed template orientation) and "heading" (the
#: template turned to a per-sample heading that every call takes as ``heading=``).
ROOT_PATHS = ("geodesic", "heading")


def default_template_orientation(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(3, 3) pi about x: the paper's template orientation (upright, facing the camera, in the
    camera frame with y down)."""
    return axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=dtype))


def orientation_matrix(value: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A template orientation as a (3, 3) rotation: None (the default), axis-angle (3,) or a
    rotation matrix (3, 3) (checked)."""
    if value is None:
        return default_template_orientation(dtype)
    value = torch.as_tensor(value, dtype=dtype)
    if value.shape == (3,):
        return axis_angle_to_matrix(value)
    if value.shape == (3, 3):
        if not torch.allclose(value @ value.T, torch.eye(3, dtype=dtype), atol=1e-5):
            raise ValueError("template_orientation matrix is not a rotation")
        return value
    raise ValueError(f"template_orientation must be None, axis-angle (3,) or a matrix (3, 3); "
                     f"got shape {tuple(value.shape)}")


def template_mesh(body, orientation: torch.Tensor) -> torch.Tensor:
    """The mean-shape template in rest pose with root orientation ``orientation``.

    Shape: (3, 3) -> (V, 3), or (B, 3, 3) -> (B, V, 3) (one template per orientation).
    """
    batched = orientation.dim() == 3
    rot = orientation.to(body.v_template)
    rot = rot if batched else rot[None]
    pose = torch.eye(3, dtype=rot.dtype, device=rot.device).repeat(rot.shape[0], body.num_joints,
                                                                   1, 1)
    pose[:, 0] = rot
    verts = body(pose).vertices
    return verts if batched else verts[0]


@dataclass(frozen=True)
class Orientation(Rule):
    """The config rule of a template orientation: None (the default), axis-angle (3,) or a rotation
    matrix (3, 3), given as numbers, a list, a numpy array or a tensor; kept as None or as nested
    tuples of floats (exact: float64 holds every float32 and float64 value), so that the config is
    JSON and compares by value."""

    def __call__(self, value: Any, name: str) -> Any:
        if value is None:
            return None
        try:
            orientation_matrix(value)  # checked: a rotation
        except (TypeError, RuntimeError) as err:
            raise ValueError(f"{name} must be None, axis-angle (3,) or a rotation matrix (3, 3), "
                             f"got {value!r}") from err
        except ValueError as err:
            raise ValueError(str(err).replace("template_orientation", name, 1)) from None
        array = torch.as_tensor(value, dtype=torch.float64).tolist()
        return tuple(tuple(row) if isinstance(row, list) else row for row in array)


class TemplateEnd:
    """M_T of a posture path over ``body``.

    Args:
        body: the body model (its dtype and device are followed).
        template_orientation: None, axis-angle (3,) or a rotation matrix (3, 3) (see
            :func:`orientation_matrix`).
        root_path: "geodesic" (one orientation) or "heading" (turned per sample by ``heading``).
    """

    def __init__(self, body, template_orientation: Any = None, root_path: str = "geodesic") -> None:
        check_choice(root_path, "root_path", ROOT_PATHS)
        self.body = body
        self.root_path = root_path
        self.matrix = orientation_matrix(template_orientation)  # float64, the config's value

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cast", None)  # a copy on the body's device, made again on first use
        return state

    @property
    def orientation(self) -> torch.Tensor:
        """(3, 3) root orientation of M_T at heading 0, in the body's dtype and device.

        Copied once per device and dtype (and per value of ``matrix``), not on every call: a copy
        from host memory to a GPU waits for the GPU's queue."""
        ref = self.body.v_template
        cast = self.__dict__.get("_cast")
        if cast is None or cast[0] is not self.matrix or cast[1] != (ref.device, ref.dtype):
            with torch.inference_mode(False):  # a normal tensor, usable later with gradients
                cast = (self.matrix, (ref.device, ref.dtype), self.matrix.to(ref))
            self._cast = cast
        return cast[2]

    def orientations(self, heading: torch.Tensor | None, batch: int) -> torch.Tensor:
        """R_T per sample (B, 3, 3): the template orientation, turned by ``heading`` (B,) radians
        when the root path is "heading" (which requires it; "geodesic" refuses it)."""
        base = self.orientation
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

    def meshes(self, heading: torch.Tensor | None, batch: int) -> torch.Tensor:
        """M_T per sample (B, V, 3) (one skinning pass without a heading, expanded)."""
        end = self.orientations(heading, batch)
        if heading is None:
            return template_mesh(self.body, end[0]).expand(batch, -1, -1)
        return template_mesh(self.body, end)


#: The annotation of a posture path's ``template_orientation``.
TemplateOrientation = Annotated[Any, Orientation()]
#: The annotation of a posture path's ``root_path``.
RootPath = Annotated[str, OneOf(*ROOT_PATHS)]


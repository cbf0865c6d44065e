""":func:`fit_smpl`: SMPL parameters (pose, shape, translation) for meshes of a body's topology.

A mesh recovery model such as PostureHMR answers vertices; animation, retargeting and most
downstream tools want SMPL parameters. The fit has two stages, both batched over the meshes:

1. a closed-form start (:mod:`kinediff.fit.analytic`): joints regressed from the mesh, each joint's
   rotation from its vertices and its child joints (weighted Kabsch), then shape and translation by
   linear least squares;
2. a few Levenberg-Marquardt iterations on the vertex error (:mod:`kinediff.fit.refine`), on a
   subset of vertices that covers every joint (:mod:`kinediff.fit.subset`).

The answer is scored on the whole mesh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from kinediff.body import BodyModel, BodySet, matrix_to_axis_angle
from kinediff.core.checks import check_int, check_like, check_tensor
from kinediff.fit.analytic import local_rotations, part_rotations, solve_shape_translation
from kinediff.fit.refine import FitState, refine
from kinediff.fit.subset import body_subset

__all__ = ["FitResult", "fit_smpl"]


@dataclass
class FitResult:
    """What :func:`fit_smpl` returns.

    Attributes:
        pose: (B, J, 3) axis-angle, radians (joint 0: global orientation).
        betas: (B, K) shape coefficients.
        transl: (B, 3) translation, metres: ``body(pose, betas).vertices + transl[:, None]`` is the fit.
        vertices: (B, V, 3) the fitted mesh (from ``rotmats``), metres.
        error: (B,) mean vertex distance between the fitted and the given mesh, metres.
        rotmats: (B, J, 3, 3) the same pose as rotation matrices (exact; ``pose`` is converted
            from them).
        iterations: Levenberg-Marquardt iterations run (the most over the genders' groups).
    """

    pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    vertices: torch.Tensor
    error: torch.Tensor
    rotmats: torch.Tensor
    iterations: int


def _check_vertices(vertices: object, body: BodyModel) -> torch.Tensor:
    check_tensor(vertices, "vertices")
    assert isinstance(vertices, torch.Tensor)
    nv = body.num_vertices
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, {nv}, 3), got {tuple(vertices.shape)}")
    if vertices.shape[0] == 0:
        raise ValueError("vertices holds no mesh (B = 0); give at least one")
    if vertices.shape[1] != nv:
        raise ValueError(f"vertices has {vertices.shape[1]} vertices per mesh but the body "
                         f"({body.name}) has {nv}; fit meshes of the body's own topology")
    if not vertices.is_floating_point():
        raise ValueError(f"vertices must be floating point, got {vertices.dtype}")
    check_like(vertices, "vertices", body.v_template, owner="body")
    bad = ~torch.isfinite(vertices).flatten(1).all(1)
    if bool(bad.any()):
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(f"vertices contains NaN or infinite values (meshes {rows[:10]}"
                         f"{' ...' if len(rows) > 10 else ''})")
    return vertices


@torch.no_grad()
def _fit_one_body(vertices: torch.Tensor, body: BodyModel, iterations: int,
                  per_joint: int | None) -> FitResult:
    parents = body.parent_list
    # fitted about each mesh's centroid, put back in the translation: float32 keeps its precision
    # for meshes far from the origin (camera frames)
    centre = vertices.mean(1, keepdim=True)
    given, vertices = vertices, vertices - centre
    sub = body_subset(body, per_joint)
    target = vertices.index_select(1, sub.index).transpose(1, 2).contiguous()  # (B, 3, N)
    joints = body.J_regressor @ vertices
    glob, observed = part_rotations(vertices, body.v_template, body.weights, joints,
                                    body.joint_template, parents)
    rotmats = local_rotations(glob, parents, observed)
    betas, transl = solve_shape_translation(sub, target, rotmats)
    state, done = refine(sub, target, FitState(rotmats, betas, transl), iterations)
    fitted = body(state.rotmats, state.betas, state.transl).vertices + centre
    error = (fitted - given).norm(dim=-1).mean(-1)
    return FitResult(matrix_to_axis_angle(state.rotmats), state.betas, state.transl + centre[:, 0],
                     fitted, error, state.rotmats, done)


def fit_smpl(vertices: torch.Tensor, body: BodyModel | BodySet | Mapping[str, BodyModel], *,
             genders: Sequence[str] | None = None, iterations: int = 6,
             per_joint: int | None = 40) -> FitResult:
    """SMPL pose, shape and translation whose mesh matches the given vertices.

    Finds, for each mesh, ``pose``, ``betas`` and ``transl`` with
    ``body(pose, betas).vertices + transl[:, None]`` close to ``vertices[b]``: a closed-form start
    and a few Levenberg-Marquardt iterations (see :mod:`kinediff.fit`), batched over the meshes, on
    the body's device and dtype.

    Args:
        vertices: (B, V, 3) meshes of the body's topology (V = ``body.num_vertices``), metres, on
            the body's device and in its dtype.
        body: a :class:`~kinediff.body.BodyModel`, or one body per gender (a
            :class:`~kinediff.body.BodySet` or a mapping gender -> ``BodyModel``): each mesh is then
            fitted with its own gender's model.
        genders: (B,) "neutral" / "male" / "female", one per mesh; needed with a gendered body.
        iterations: the most Levenberg-Marquardt iterations (0: the closed-form start only); the
            fit stops earlier once every mesh has settled.
        per_joint: the refinement iterates on up to this many vertices per joint (the vertices each
            joint moves most; ``None``: all vertices).

    Returns:
        :class:`FitResult` with pose (B, J, 3), betas (B, K), transl (B, 3), the fitted vertices
        (B, V, 3) and the per-mesh mean vertex error (B,) in metres.

    Raises:
        TypeError: ``vertices`` is not a tensor, or ``body`` not a body.
        ValueError: a shape other than (B, V, 3), a vertex count other than the body's, NaN or
            infinite values, a dtype or device other than the body's, a gendered body without
            ``genders`` (or a gender it has no model for), bad ``iterations`` / ``per_joint``.

    Example:
        >>> import torch
        >>> from kinediff.body import BodyModel
        >>> from kinediff.fit import fit_smpl
        >>> body = BodyModel.synthetic()
        >>> pose = torch.zeros(2, 24, 3)
        >>> pose[:, 18, 1] = -1.0  # the left elbow bent
        >>> mesh = body(pose, torch.randn(2, 10) * 0.5).vertices + torch.tensor([0.1, 0.2, 3.0])
        >>> fit = fit_smpl(mesh, body)
        >>> bool((fit.error < 1e-3).all())  # under a millimetre
        True
    """
    check_int(iterations, "iterations", 0)
    if per_joint is not None:
        check_int(per_joint, "per_joint", what="or None")
    bodies = BodySet.of(body) if not isinstance(body, BodyModel) else BodySet(body)
    if not bodies.gendered:
        return _fit_one_body(_check_vertices(vertices, bodies.reference), bodies.reference,
                             iterations, per_joint)
    vertices = _check_vertices(vertices, bodies.reference)
    if genders is None or isinstance(genders, str) or len(genders) != vertices.shape[0]:
        got = "none" if genders is None else (repr(genders) if isinstance(genders, str)
                                               else f"{len(genders)}")
        raise ValueError(f"a gendered body needs genders, one per mesh ({vertices.shape[0]}); "
                         f"got {got}")
    groups: dict[str, list[int]] = {}
    for i, gender in enumerate(genders):
        groups.setdefault(gender, []).append(i)
    parts = []
    for gender, rows in groups.items():
        model = bodies.for_gender(gender, "fit_smpl")
        index = torch.tensor(rows, device=vertices.device)
        parts.append((index, _fit_one_body(_check_vertices(vertices.index_select(0, index), model),
                                           model, iterations, per_joint)))
    return _scatter(parts, vertices.shape[0])


def _scatter(parts: list[tuple[torch.Tensor, FitResult]], batch: int) -> FitResult:
    """One :class:`FitResult` from the results of groups of rows (index, result)."""
    fields = ("pose", "betas", "transl", "vertices", "error", "rotmats")
    out = {}
    for name in fields:
        first = getattr(parts[0][1], name)
        full = first.new_empty((batch,) + tuple(first.shape[1:]))
        for index, res in parts:
            full[index] = getattr(res, name)
        out[name] = full
    return FitResult(**out, iterations=max(res.iterations for _, res in parts))

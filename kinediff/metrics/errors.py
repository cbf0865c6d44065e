"""Per-sample 3D errors: MPJPE, PA-MPJPE (similarity Procrustes), MPVE, in the input's units.

Root (pelvis) alignment belongs to the evaluation protocol; ``mpjpe`` takes an optional joint index
``root`` and ``mpve`` optional (B, 1, 3) root positions of each side to subtract first.

Inputs, for every function here: torch tensors of floating dtype on one device (anything else is
refused with an error naming the argument). The errors are computed in the inputs' common dtype,
at least float32: float16 / bfloat16 inputs are computed (and returned) in float32, a float32 and a
float64 input in float64 — the dtype of the result. NaN or infinite coordinates are refused
(``ValueError`` naming the argument) while kinediff's value checks are on
(:func:`kinediff.value_checks`, the default); with them off nothing looks for them: such a sample's
MPJPE / MPVE is NaN (or infinite), and PA-MPJPE's SVD may raise torch's own error.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from kinediff.core.checks import check_finite, check_pair_shape, check_shape, check_tensor

__all__ = ["mpjpe", "mpve", "pa_mpjpe", "root_align", "similarity_procrustes"]


def metric_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype a metric computes in: the tensors' promoted dtype, at least float32."""
    dtype = torch.float32
    for x in tensors:
        dtype = torch.promote_types(dtype, x.dtype)
    return dtype


def check_points(tensors: Sequence[torch.Tensor], names: Sequence[str]) -> None:
    """Raise unless every tensor is a floating-point ``torch.Tensor`` on the first one's device.

    Messages: ``"pred must be a torch.Tensor, got ndarray"`` (``TypeError``), ``"gt must be a
    floating-point tensor, got torch.int64"`` (``TypeError``), ``"gt is on cuda:0 but pred is on
    cpu"`` (``ValueError``).
    """
    for x, name in zip(tensors, names):
        check_tensor(x, name)
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    for x, name in zip(tensors[1:], names[1:]):
        if x.device != tensors[0].device:
            raise ValueError(f"{name} is on {x.device} but {names[0]} is on {tensors[0].device}")


def _prepare(pred: torch.Tensor, gt: torch.Tensor, what: str = "point"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """pred and gt checked ((B, N, 3) each, N >= 1, floating, one device, finite) and cast to
    :func:`metric_dtype`."""
    check_points((pred, gt), ("pred", "gt"))
    check_pair_shape(pred, gt, ("B", "N", 3))
    if pred.shape[1] == 0:
        raise ValueError(f"pred and gt must hold at least one {what} (N >= 1), got shape "
                         f"{tuple(pred.shape)}")
    check_finite(pred, "pred")
    check_finite(gt, "gt")
    dtype = metric_dtype(pred, gt)
    return pred.to(dtype), gt.to(dtype)


def _joint_index(root: object, n: int) -> int:
    """``root`` as an index in [0, n): an integer (not a bool) in [-n, n)."""
    if isinstance(root, bool) or not isinstance(root, numbers.Integral):
        shown = f" {root!r}" if isinstance(root, (bool, float, str)) else ""
        raise TypeError(f"root must be a joint index (an int) or None, got "
                        f"{type(root).__name__}{shown}")
    if not -n <= int(root) < n:
        raise ValueError(f"root must be a joint index in [{-n}, {n - 1}] for {n} joints, got {root}")
    return int(root) % n


def root_align(x: torch.Tensor, root: int | torch.Tensor) -> torch.Tensor:
    """Subtract the root: an index into N (negative counts from the end), or (B, 1, 3) positions.

    Shape: x (B, N, 3), root an int in [-N, N) or (B, 1, 3) -> (B, N, 3), in the promoted dtype of
    ``x`` and ``root``.
    """
    check_points((x,), ("x",))
    check_shape(x, "x", ("B", "N", 3))
    if isinstance(root, torch.Tensor):
        check_points((x, root), ("x", "root"))
        check_shape(root, "root", (x.shape[0], 1, 3))
        return x - root
    index = _joint_index(root, x.shape[1])
    return x - x[:, index:index + 1]


def _procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """:func:`similarity_procrustes` of inputs already checked and cast."""
    mu_p, mu_g = pred.mean(1, keepdim=True), gt.mean(1, keepdim=True)
    p, g = pred - mu_p, gt - mu_g
    cov = p.transpose(1, 2) @ g  # (B, 3, 3)
    u, s, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    fix = torch.ones_like(s)
    fix[:, -1] = d
    rot = u @ torch.diag_embed(fix) @ vh  # p @ rot ~ g
    var = p.square().sum((1, 2))
    scale = (s * fix).sum(-1) / var.clamp_min(torch.finfo(pred.dtype).tiny)
    scale = torch.where(var > 0, scale, torch.zeros_like(scale))
    return scale[:, None, None] * (p @ rot) + mu_g


def similarity_procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """pred aligned to gt by the least-squares similarity (scale, rotation, translation) per sample.

    Umeyama's solution with the reflection fix (det R = +1). Degenerate inputs (all points of pred
    equal) give scale 0, i.e. every point at gt's centroid, without NaN. Computed in the inputs'
    dtype promoted to at least float32 (the SVD has no half-precision kernels).

    Shape: (B, N, 3) x2, N >= 1 -> (B, N, 3).
    """
    return _procrustes(*_prepare(pred, gt))


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int | None = None) -> torch.Tensor:
    """Mean per-joint position error (B,), optionally after subtracting joint ``root`` (an index in
    [-N, N), negative counting from the end) from both.

    Dtypes: float16, bfloat16 and mixed float32 / float64 inputs are promoted to their common
    dtype, at least float32 (the module docstring); NaN / infinite coordinates are refused (a value
    check).

    Shape: pred, gt (B, N, 3), N >= 1 -> (B,). Raises ``TypeError`` for a ``root`` that is not an
    integer (a bool, a float, a tensor: subtracting the same positions from both sides would change
    nothing; :func:`mpve` takes each side's root positions) and ``ValueError`` for one out of range.
    """
    pred, gt = _prepare(pred, gt, "joint")
    if root is not None:
        index = _joint_index(root, pred.shape[1])
        pred, gt = pred - pred[:, index:index + 1], gt - gt[:, index:index + 1]
    return (pred - gt).norm(dim=-1).mean(-1)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after similarity Procrustes alignment of pred to gt, per sample.

    Dtypes: float16, bfloat16 and mixed float32 / float64 inputs are promoted to their common
    dtype, at least float32 (the module docstring); NaN / infinite coordinates are refused (a value
    check).

    Shape: (B, N, 3) x2, N >= 1 -> (B,).
    """
    pred, gt = _prepare(pred, gt, "joint")
    return (_procrustes(pred, gt) - gt).norm(dim=-1).mean(-1)


def mpve(pred: torch.Tensor, gt: torch.Tensor,
         root: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean per-vertex error (B,), optionally after subtracting (B, 1, 3) root positions (the
    pelvis regressed from each mesh) from pred and gt respectively: pass ``(root_pred, root_gt)``.

    Shape: pred, gt (B, V, 3), V >= 1; root_pred, root_gt (B, 1, 3) -> (B,).
    """
    pred, gt = _prepare(pred, gt, "vertex")
    if root is not None:
        if not isinstance(root, (tuple, list)) or len(root) != 2:
            raise TypeError(f"root must be a pair (root_pred, root_gt) of (B, 1, 3) tensors or "
                            f"None, got {type(root).__name__}")
        root_pred, root_gt = root
        check_points((pred, root_pred, root_gt), ("pred", "root_pred", "root_gt"))
        for value, name in ((root_pred, "root_pred"), (root_gt, "root_gt")):
            check_shape(value, name, (pred.shape[0], 1, 3))
            check_finite(value, name)
        dtype = metric_dtype(pred, root_pred, root_gt)
        pred, gt = pred.to(dtype) - root_pred.to(dtype), gt.to(dtype) - root_gt.to(dtype)
    return (pred - gt).norm(dim=-1).mean(-1)

"""Levenberg-Marquardt refinement of pose, shape and translation on the vertex error, batched.

Each iteration solves, for every sample at once, the damped normal equations

    (J^T J + lambda (diag(J^T J) + eps)) step = -J^T r

with the Jacobian J of :mod:`kinediff.fit.jacobian` and the residual r = mesh - target on the
vertex subset; a step is kept per sample only where it lowers that sample's error, and each sample's
damping lambda falls after a kept step and rises after a refused one (``torch.where`` over the
batch, no Python loop over samples).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from kinediff.body import axis_angle_to_matrix
from kinediff.fit.jacobian import normal_equations
from kinediff.fit.subset import BodySubset, pose_subset

__all__ = ["FitState", "refine"]

#: Damping: the first lambda, its factors after a kept / a refused step, and its bounds.
LAMBDA_START, LAMBDA_DOWN, LAMBDA_UP = 1e-3, 0.3, 10.0
LAMBDA_MIN, LAMBDA_MAX = 1e-7, 1e7
#: eps of the damping term, relative to the mean of diag(J^T J) (keeps ill-posed directions, such as
#: the twist of a symmetric part, from an unbounded step).
DAMPING_FLOOR = 1e-6


class FitState(NamedTuple):
    """Parameters of the fit. rotmats (B, J, 3, 3), betas (B, K), transl (B, 3)."""

    rotmats: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor


def _normal_equations(sub: BodySubset, state: FitState, target: torch.Tensor):
    """(J^T J (B, P, P), J^T r (B, P), cost (B,) = mean squared vertex error)."""
    posed = pose_subset(sub, *state)
    resid = posed.vertices - target  # (B, 3, N)
    h, g = normal_equations(sub, posed, state.rotmats, resid)
    return h, g, resid.square().sum((1, 2)) / sub.num_vertices


def _apply(state: FitState, step: torch.Tensor) -> FitState:
    b, nj = state.rotmats.shape[:2]
    k = state.betas.shape[1]
    turn = axis_angle_to_matrix(step[:, :3 * nj].reshape(b, nj, 3))
    return FitState(state.rotmats @ turn, state.betas + step[:, 3 * nj:3 * nj + k],
                    state.transl + step[:, 3 * nj + k:])


def refine(sub: BodySubset, target: torch.Tensor, state: FitState, iterations: int = 6,
           rtol: float = 1e-4, atol: float = 1e-12) -> tuple[FitState, int]:
    """Levenberg-Marquardt on the subset's mean squared vertex error.

    Args:
        sub: the vertex subset (:func:`~kinediff.fit.subset.body_subset`).
        target: (B, 3, N) the given mesh on the subset's vertices (vertices last), metres.
        state: the start (:class:`FitState`).
        iterations: the most iterations.
        rtol, atol: a sample has settled once a step of its was kept and lowered its mean squared
            error by at most ``rtol`` of it plus ``atol`` (square metres), or that error is below
            ``atol``; it is left as it is from then on (so its fit does not depend on the rest of
            the batch), and the loop stops once every sample has settled (one device sync per
            iteration to check).

    Returns:
        (the refined state, the number of iterations run).
    """
    h, g, cost = _normal_equations(sub, state, target)
    lam = torch.full_like(cost, LAMBDA_START)
    settled = cost <= atol  # settled samples are frozen: a sample's fit never depends on the others
    eye = torch.eye(h.shape[-1], dtype=h.dtype, device=h.device)
    done = 0
    for done in range(1, iterations + 1):
        if bool(settled.all()):
            done -= 1
            break
        diag = torch.diagonal(h, dim1=-2, dim2=-1)
        floor = DAMPING_FLOOR * diag.mean(-1, keepdim=True)
        damped = h + lam[:, None, None] * torch.diag_embed(diag + floor) + floor[..., None] * eye
        # solve_ex: a sample whose system fails to solve gets a step that its cost then refuses,
        # instead of an error for the whole batch
        step = -torch.linalg.solve_ex(damped, g)[0]
        trial = _apply(state, step)
        h_new, g_new, cost_new = _normal_equations(sub, trial, target)
        keep = (cost_new < cost) & ~settled
        state = FitState(*(torch.where(keep.view(-1, *[1] * (new.dim() - 1)), new, old)
                           for new, old in zip(trial, state)))
        gain = torch.where(keep, cost - cost_new, torch.zeros_like(cost))
        h = torch.where(keep[:, None, None], h_new, h)
        g = torch.where(keep[:, None], g_new, g)
        cost = torch.where(keep, cost_new, cost)
        lam = torch.where(keep, lam * LAMBDA_DOWN, lam * LAMBDA_UP).clamp(LAMBDA_MIN, LAMBDA_MAX)
        settled = settled | (keep & (gain <= rtol * cost + atol)) | (cost <= atol)
    return state, done

"""Metrics: invariances, bounds, an independent scipy reference, hand-worked values, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation
from tolerances import atol_for

from kinediff.metrics import mpjpe, mpve, pa_mpjpe, similarity_procrustes

seeds = st.integers(0, 2**31 - 1)


def _pair(seed, n=14, noise=0.05):
    gen = torch.Generator().manual_seed(seed)
    gt = torch.randn(3, n, 3, generator=gen, dtype=torch.float64) * 0.3
    pred = gt + torch.randn(3, n, 3, generator=gen, dtype=torch.float64) * noise
    return pred, gt


@given(seeds, st.floats(0.2, 5.0))
def test_pa_mpjpe_is_invariant_to_similarity_transforms_of_the_prediction(seed, scale):
    pred, gt = _pair(seed)
    rot = torch.as_tensor(Rotation.random(random_state=seed % 2**32).as_matrix())
    shift = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    moved = scale * pred @ rot.T + shift
    assert torch.allclose(pa_mpjpe(moved, gt), pa_mpjpe(pred, gt), atol=1e-9)


@given(seeds)
def test_procrustes_error_is_at_most_the_root_aligned_error(seed):
    # Procrustes minimises the squared error over similarities, and root alignment is one of them
    pred, gt = _pair(seed, noise=0.2)
    aligned = similarity_procrustes(pred, gt)
    root_pred, root_gt = pred - pred[:, :1], gt - gt[:, :1]
    sq_pa = (aligned - gt).square().sum(-1).mean(-1)
    sq_root = (root_pred - root_gt).square().sum(-1).mean(-1)
    assert torch.all(sq_pa <= sq_root + 1e-12)


@given(seeds)
def test_zero_for_identical_inputs_and_symmetry(seed):
    _, gt = _pair(seed)
    for metric in (mpjpe, pa_mpjpe, mpve):
        assert torch.allclose(metric(gt, gt), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    pred, gt = _pair(seed)
    assert torch.equal(mpjpe(pred, gt), mpjpe(gt, pred))
    assert torch.equal(mpve(pred, gt), mpve(gt, pred))


@given(seeds)
def test_matches_an_independent_scipy_reference(seed):
    pred, gt = _pair(seed, noise=0.1)
    ours = pa_mpjpe(pred, gt).numpy()
    for b in range(3):
        a, g = pred[b].numpy(), gt[b].numpy()
        a0, g0 = a - a.mean(0), g - g.mean(0)
        rot, sv_sum = orthogonal_procrustes(a0, g0)
        assert np.linalg.det(rot) > 0  # small noise: no reflection, so the two solutions agree
        s = sv_sum / (a0**2).sum()
        ref = np.linalg.norm(s * a0 @ rot + g.mean(0) - g, axis=1).mean()
        assert abs(ours[b] - ref) < 1e-6


def test_hand_worked_values():
    gt = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]])
    pred = gt + torch.tensor([0.0, 0.0, 0.5])  # every point 0.5 too far along z
    assert float(mpjpe(pred, gt)) == pytest.approx(0.5)
    assert float(mpjpe(pred, gt, root=0)) == pytest.approx(0.0)
    assert float(pa_mpjpe(pred, gt)) == pytest.approx(0.0, abs=atol_for(gt, ulps=128))
    # one point off by (3, 4, 0): mean error 5 / 4
    off = gt.clone()
    off[0, 1] += torch.tensor([3.0, 4.0, 0.0])
    assert float(mpve(off, gt)) == pytest.approx(1.25)
    # a mirror image cannot be undone by a rotation: PA-MPJPE stays positive
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0])
    assert float(pa_mpjpe(mirrored, gt)) > 0.1
    # twice as large and rotated 90 degrees about z: PA-MPJPE is 0, MPJPE is not
    rot = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    big = 2 * gt @ rot.T
    assert float(pa_mpjpe(big, gt)) == pytest.approx(0.0, abs=atol_for(big, ulps=128))
    assert float(mpjpe(big, gt)) > 1.0


def test_degenerate_prediction_is_stable():
    gt = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    collapsed = torch.zeros(2, 5, 3)
    value = pa_mpjpe(collapsed, gt)
    centroid_error = (gt - gt.mean(1, keepdim=True)).norm(dim=-1).mean(-1)
    assert torch.isfinite(value).all() and torch.allclose(value, centroid_error, atol=1e-6)


def test_units_follow_the_input():
    pred, gt = _pair(1)
    assert torch.allclose(pa_mpjpe(pred * 1000, gt * 1000), pa_mpjpe(pred, gt) * 1000)
    assert math.isclose(float(mpjpe(pred * 1000, gt * 1000)[0]), float(mpjpe(pred, gt)[0]) * 1000,
                        rel_tol=1e-12)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"must both have shape \(B, N, 3\)"):
        mpjpe(torch.zeros(2, 14, 3), torch.zeros(2, 17, 3))
    with pytest.raises(ValueError, match=r"must both have shape \(B, N, 3\)"):
        pa_mpjpe(torch.zeros(14, 3), torch.zeros(14, 3))

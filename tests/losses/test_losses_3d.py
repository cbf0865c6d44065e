"""3D losses: zero at the target, hand-worked values, masks without NaN, weights, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.losses import (
    Loss3DWeights,
    edge_loss,
    joint_l1,
    joint_mse,
    keypoint_2d_l1,
    loss_3d,
    normal_loss,
    posture_loss,
    vertex_l1,
)

TRI = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
FACE = torch.tensor([[0, 1, 2]])


@given(st.integers(0, 2**31 - 1))
def test_every_loss_is_zero_at_the_target_and_positive_elsewhere(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 10, 3, generator=gen, dtype=torch.float64)
    y = x + 0.1 * torch.randn(3, 10, 3, generator=gen, dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [5, 6, 7]])
    for fn in (posture_loss, vertex_l1, joint_l1, joint_mse):
        assert float(fn(x, x)) == 0.0 and float(fn(y, x)) > 0
    assert float(edge_loss(x, x, faces)) == pytest.approx(0.0, abs=1e-12)
    assert float(normal_loss(x, x, faces)) == pytest.approx(0.0, abs=1e-7)


def test_hand_worked_normal_and_edge_values():
    lifted = TRI.clone()
    lifted[0, 2] = torch.tensor([0.0, 0.0, 1.0])  # the third vertex leaves the GT plane z = 0
    # edges of the prediction: (1,0,0) in plane; (-1,0,1)/sqrt2 and (0,0,-1) against normal (0,0,1)
    expected = (0.0 + 2**-0.5 + 1.0) / 3
    assert float(normal_loss(lifted, TRI, FACE)) == pytest.approx(expected)
    # GT edge lengths 1, sqrt2, 1; predicted 1, sqrt2, 1 (a rotation of the triangle): edge loss 0
    assert float(edge_loss(lifted, TRI, FACE)) == pytest.approx(0.0, abs=1e-7)
    stretched = TRI * 2
    assert float(edge_loss(stretched, TRI, FACE)) == pytest.approx((1 + 2**0.5 + 1) / 3)


def test_masks_select_samples_and_empty_masks_give_zero():
    pred = torch.zeros(2, 4, 3)
    gt = torch.zeros(2, 4, 3)
    gt[1] += 1.0
    assert float(vertex_l1(pred, gt, torch.tensor([True, False]))) == 0.0
    assert float(vertex_l1(pred, gt, torch.tensor([False, True]))) == pytest.approx(3.0)
    none = torch.tensor([False, False])
    for value in (vertex_l1(pred, gt, none), joint_mse(pred, gt, none), posture_loss(pred, gt, mask=none),
                  normal_loss(pred, gt, FACE, none)):
        assert torch.isfinite(value) and float(value) == 0.0


def test_keypoints_use_visibility():
    pred = torch.zeros(1, 3, 2)
    gt = torch.tensor([[[1.0, 1.0, 1.0], [5.0, 5.0, 0.0], [0.0, 2.0, 1.0]]])  # middle one invisible
    assert float(keypoint_2d_l1(pred, gt)) == pytest.approx((2.0 + 2.0) / 2)
    hidden = gt.clone()
    hidden[..., 2] = 0
    assert float(keypoint_2d_l1(pred, hidden)) == 0.0


def test_step_weights_and_multilevel_vertices(body32, cache_dir):
    pred, gt = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    w = torch.tensor([1.0, 0.0, 0.0])
    assert float(posture_loss(pred, gt, torch.tensor([1, 2]), w)) == pytest.approx(3.0 / 2)
    with pytest.raises(ValueError, match="step_weights need the step"):
        posture_loss(pred, gt, step_weights=w)
    from kinediff.mesh import MeshHierarchy

    h = MeshHierarchy.from_body(body32, cache_dir=cache_dir)
    v = body32.v_template[None]
    assert float(vertex_l1(v + 0.01, v, hierarchy=h, level_weights=(1.0, 1.0, 1.0))) == pytest.approx(
        0.09, rel=1e-4)


def test_loss_3d_combines_the_terms():
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(2, 3, 3, generator=gen)
    out = loss_3d(v, v + 0.1, v + 0.1, v, v, v, FACE, weights=Loss3DWeights(vertex=1.0))
    expected = out["posture"] + out["vertex"] + 0.1 * out["joint"] + 0.1 * out["normal"] \
        + 0.01 * out["edge"]
    assert torch.allclose(out["total"], expected)
    assert Loss3DWeights().to_dict() == {"class": "Loss3DWeights", "posture": 1.0, "vertex": 0.1,
                                         "joint": 0.1, "normal": 0.1, "edge": 0.01}


def test_shape_errors():
    with pytest.raises(ValueError, match=r"vertex_l1: pred and gt must both have shape \(B, N, 3\)"):
        vertex_l1(torch.zeros(1, 4, 3), torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=r"mask must have shape \(1,\)"):
        joint_l1(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3), torch.tensor([True, False]))


def test_gradients_are_finite_even_for_degenerate_meshes():
    pred = torch.zeros(2, 3, 3, requires_grad=True)  # every edge has zero length
    gt = TRI.repeat(2, 1, 1)
    out = loss_3d(pred, gt, pred, gt, pred, gt, FACE, mask=torch.tensor([True, False]))
    out["total"].backward()
    assert torch.isfinite(out["total"]) and torch.isfinite(pred.grad).all()
    assert torch.count_nonzero(pred.grad[1]) == 0  # the masked-out sample gets no gradient

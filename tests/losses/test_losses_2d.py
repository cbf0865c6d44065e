"""The trimap IoU loss on 2D masks and rendered silhouettes: band widths, analytic values, bounds,
gradients towards the ground truth, and the combined 2D loss."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.losses import TrimapIoULoss, loss_2d, soft_iou, trimap, trimap_iou_loss
from kinediff.render import soft_silhouette

SQUARE_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _square(x0, y0, x1, y1, dtype=torch.float64):
    return torch.tensor([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=dtype)


def test_trimap_band_has_the_width_asked_for():
    m = torch.zeros(1, 40, 40)
    m[0, 10:30, 10:30] = 1
    for width in (1, 2, 3, 6):
        row = trimap(m, width)[0, 20]
        assert int(row.sum()) == 2 * width  # both the left and the right edge
        assert int(row[:20].sum()) == width


def test_loss_analytic_value_for_offset_squares():
    a = torch.zeros(1, 40, 40)
    a[0, 0:10, 0:10] = 1
    b = torch.zeros(1, 40, 40)
    b[0, 0:10, 5:15] = 1
    # IoU = 50 / 150; band of b (1 px out, 1 in, clipped at the image top): P.C = 28, G.C = 36,
    # their intersection 18, union 46
    assert float(soft_iou(a, b)) == pytest.approx(1 / 3)
    assert float(TrimapIoULoss(2)(a, b)) == pytest.approx(2 - 1 / 3 - 18 / 46)


masks = st.integers(0, 2**31 - 1).map(
    lambda s: torch.rand(2, 24, 24, generator=torch.Generator().manual_seed(s)))


@given(masks, masks)
def test_loss_bounds_symmetry_and_zero(p, g):
    loss = trimap_iou_loss(p, g, 3)
    assert torch.all(loss >= 0) and torch.all(loss <= 2)
    c = trimap(g, 3)
    assert torch.allclose(trimap_iou_loss(p, g, 3, band=c), trimap_iou_loss(g, p, 3, band=c))
    assert torch.allclose(trimap_iou_loss(p, p, 3), torch.zeros(2), atol=1e-6)


def test_empty_masks_do_not_give_nan():
    empty = torch.zeros(1, 16, 16)
    some = torch.zeros(1, 16, 16)
    some[0, 4:8, 4:8] = 1
    assert float(TrimapIoULoss(2)(empty, empty)) == 0.0
    value = TrimapIoULoss(2)(some, empty)
    assert torch.isfinite(value) and float(value) == pytest.approx(1.0)  # band of an empty GT is empty


@given(st.floats(2.0, 8.0), st.floats(-8.0, -2.0))
def test_moving_towards_the_gt_decreases_the_loss(dx, dy):
    gt = _square(12.0, 12.0, 36.0, 30.0)
    faces = SQUARE_FACES
    gt_mask = soft_silhouette(gt, faces, 48, 0.0)
    offset = torch.tensor([dx, dy], dtype=torch.float64)
    far = trimap_iou_loss(soft_silhouette(gt + offset, faces, 48, 1.0), gt_mask, 4)
    near = trimap_iou_loss(soft_silhouette(gt + 0.5 * offset, faces, 48, 1.0), gt_mask, 4)
    assert float(near) < float(far)


def test_loss_2d_combines_render_and_l1():
    gt = _square(12.0, 12.0, 36.0, 30.0)
    pred = (gt + 2.0).requires_grad_()
    value = loss_2d(pred, gt, SQUARE_FACES, 48, width=4, l1_weight=0.1)
    value.backward()
    assert value.item() > 0.2 and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        loss_2d(pred[:, :3], gt, SQUARE_FACES, 48)


def test_mask_shape_errors():
    with pytest.raises(ValueError, match=r"masks must have shape \(B, H, W\)"):
        trimap(torch.zeros(16, 16), 2)
    with pytest.raises(ValueError, match="mask shapes differ"):
        soft_iou(torch.zeros(1, 8, 8), torch.zeros(1, 8, 9))
    with pytest.raises(ValueError, match=r"width must be an integer >= 1 \(pixels\), got 0"):
        TrimapIoULoss(0)

"""Robustness of the trimap render loss's inputs (marker ``robust``, harness :mod:`robust`): masks
outside [0, 1], NaN, integer masks and band widths refused naming what is wrong."""

from __future__ import annotations

import pytest
import torch
from robust import NAN, expect, refusal

from kinediff.losses import trimap_iou_loss

pytestmark = pytest.mark.robust


def test_trimap_loss_refuses_masks_outside_the_unit_interval():
    gt = torch.zeros(1, 16, 16)
    gt[:, 4:12, 4:12] = 1.0
    with pytest.raises(ValueError, match=r"masks must hold values in \[0, 1\], got values in \[0, 255\]"):
        trimap_iou_loss(gt * 255, gt, width=2)
    with pytest.raises(ValueError, match="masks contains NaN"):
        trimap_iou_loss(torch.where(gt > 0, torch.nan, gt), gt, width=2)
    with pytest.raises(TypeError, match="masks must be floating-point"):
        trimap_iou_loss(gt.to(torch.uint8), gt, width=2)
    with pytest.raises(ValueError, match=r"width must be an integer >= 1 \(pixels\), got 2.5"):
        trimap_iou_loss(gt, gt, width=2.5)  # type: ignore[arg-type]
    assert float(trimap_iou_loss(gt, gt, width=2)) == 0.0


def _mask(value: float = 1.0, nan: bool = False) -> torch.Tensor:
    m = torch.zeros(1, 16, 16)
    m[:, 4:12, 4:12] = value
    if nan:
        m[0, 6, 6] = NAN
    return m


#: name -> (pred, gt, width, what the message names)
TRIMAP_FAULTS = {
    "gt:0_255": (_mask(), _mask(255.0), 2, [("gt", "mask")]),
    "gt:nan": (_mask(), _mask(nan=True), 2, [("gt", "mask")]),
    "width:zero": (_mask(), _mask(), 0, [("width",)]),
}


@pytest.mark.parametrize("case", TRIMAP_FAULTS)
def test_a_bad_trimap_loss_input_is_refused_naming_it(case):
    pred, gt, width, names = TRIMAP_FAULTS[case]
    expect(refusal(lambda: trimap_iou_loss(pred, gt, width), names))

"""Crops and camera fitting (:mod:`kinediff.core.camera`): a crop and its intrinsics see the same
rays, and the fitted translation reprojects points onto their pixels."""

from __future__ import annotations

import pytest
import torch

from kinediff.core.camera import (
    box_to_square,
    crop_intrinsics,
    crop_square,
    default_intrinsics,
    fit_translation,
    project_points,
)


def test_fit_translation_recovers_the_camera_translation():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(3, 50, 3, generator=g, dtype=torch.float64) * 0.5
    transl = torch.tensor([[0.1, -0.2, 4.0], [0.0, 0.3, 6.0], [-0.4, 0.0, 3.0]], dtype=torch.float64)
    K = torch.tensor([[500.0, 0, 128], [0, 500, 128], [0, 0, 1]], dtype=torch.float64)
    pixels = project_points(points, K, transl)
    torch.testing.assert_close(fit_translation(points, pixels, K), transl)
    with pytest.raises(ValueError, match="must agree"):
        fit_translation(points, pixels[:, :10], K)


def test_crop_and_its_intrinsics_agree():
    image = torch.zeros(3, 100, 160)
    image[:, 40, 70] = 1.0  # a bright pixel centred at (70.5, 40.5)
    cx, cy, side = box_to_square((50, 20, 40, 50))
    crop = crop_square(image, cx, cy, side, 60)
    K = torch.tensor([[200.0, 0, 80], [0, 200, 50], [0, 0, 1]], dtype=torch.float64)
    Kc = crop_intrinsics(K, cx, cy, side, 60)
    # the ray through the full-image pixel lands on the same point in the crop
    ray = torch.linalg.solve(K, torch.tensor([70.5, 40.5, 1.0], dtype=torch.float64))
    uv = (Kc @ ray)[:2] / (Kc @ ray)[2]
    peak = torch.nonzero(crop[0] == crop[0].max())[0]
    assert abs(float(uv[0]) - (int(peak[1]) + 0.5)) < 1.0 and abs(float(uv[1]) - (int(peak[0]) + 0.5)) < 1.0
    with pytest.raises(ValueError, match="positive"):
        box_to_square((0, 0, 0, 5))


def test_default_intrinsics_take_a_positive_focal_length():
    K = default_intrinsics(120, 160)
    assert K.tolist() == [[160.0, 0.0, 80.0], [0.0, 160.0, 60.0], [0.0, 0.0, 1.0]]
    assert default_intrinsics(120, 160, focal=500)[0, 0] == 500.0
    for focal in (0, float("inf"), True):
        with pytest.raises(ValueError, match=r"^focal must be a finite number > 0 \(pixels\), got"):
            default_intrinsics(120, 160, focal=focal)

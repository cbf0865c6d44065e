"""The 2D stage: backbones, soft-argmax, keypoint choice, C fitting, weight loading, errors."""

from __future__ import annotations

import pytest
import torch

from kinediff.core.conventions import farthest_point_sampling, keypoint_regressor
from kinediff.heads import HRNetMeshHead, fit_coefficients, load_backbone_weights, soft_argmax_2d


@pytest.mark.parametrize("backbone", ["hrnet_w18_small", "hrnet_w32", "hrnet_w48"])
def test_shapes_for_each_backbone(backbone):
    torch.manual_seed(0)
    head = HRNetMeshHead(backbone).eval()
    with torch.no_grad():
        out = head(torch.randn(1, 3, 256, 256))
    assert out["heatmaps"].shape == (1, 81, 64, 64)
    assert out["points"].shape == (1, 81, 2) and out["mesh2d"].shape == (1, 431, 2)
    assert torch.all((out["points"] >= 0) & (out["points"] <= 256))


def test_soft_argmax_recovers_a_gaussian_peak_to_sub_pixel_accuracy():
    h = w = 64
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    centres = torch.tensor([[20.3, 31.7], [45.9, 12.2], [32.0, 32.0]])
    logits = torch.stack([-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 2.0**2) for cx, cy in centres])
    found = soft_argmax_2d(logits[None].double())[0]
    assert (found - centres.double()).abs().max() < 1e-3


def test_fit_coefficients_reproduces_the_meshes_it_was_fitted_on():
    gen = torch.Generator().manual_seed(0)
    true_c = torch.rand(431, 81, generator=gen, dtype=torch.float64)
    points = torch.randn(60, 81, 2, generator=gen, dtype=torch.float64) * 50
    meshes = true_c @ points
    c = fit_coefficients(points, meshes)
    assert torch.allclose(c @ points, meshes, atol=1e-6)
    with pytest.raises(ValueError, match="must agree in N and D"):
        fit_coefficients(points[:5], meshes)


def test_keypoint_choice(body32):
    reg = keypoint_regressor(body32)
    assert reg.shape == (81, 6890)
    assert torch.allclose(reg.sum(1), torch.ones(81), atol=1e-5)
    markers = reg[17:].argmax(1)
    assert len(torch.unique(markers)) == 64
    idx = farthest_point_sampling(body32.v_template.double().numpy(), 8)
    assert len(set(idx.tolist())) == 8


def test_load_backbone_weights_strips_prefixes(tmp_path):
    torch.manual_seed(0)
    head = HRNetMeshHead("hrnet_w18_small")
    state = {f"module.{k}": v.clone() + 1.0 for k, v in head.backbone.state_dict().items()
             if v.is_floating_point()}
    torch.save(state, tmp_path / "w.pth")
    report = load_backbone_weights(head.backbone, tmp_path / "w.pth")
    assert report.num_loaded == len(state)
    key = next(iter(state))[len("module."):]
    assert torch.equal(head.backbone.state_dict()[key], state["module." + key])
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="no tensor matches"):
        load_backbone_weights(head.backbone, tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="no HRNet weights"):
        load_backbone_weights(head.backbone, tmp_path / "missing.pth")


def test_bad_input():
    head = HRNetMeshHead("hrnet_w18_small")
    with pytest.raises(ValueError, match="crops must be square"):
        head(torch.zeros(1, 3, 256, 192))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, S, S\)"):
        head(torch.zeros(3, 256, 256))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        soft_argmax_2d(torch.zeros(1, 1, 4, 4), temperature=0.0)

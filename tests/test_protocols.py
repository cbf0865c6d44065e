"""Protocols and the evaluator: index maps, pelvis alignment, regressor checks, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kinediff.metrics import (
    GRAPHORMER_3DPW,
    H36M_P2,
    PROTOCOLS,
    SPIN_3DPW,
    Evaluator,
    load_regressor,
    synthetic_h36m_regressor,
)


def _one_hot_regressor(v: int = 20) -> torch.Tensor:
    """Joint j of the 17 sits exactly on vertex j (a fixture where the maps can be read off)."""
    reg = torch.zeros(17, v)
    reg[torch.arange(17), torch.arange(17)] = 1.0
    return reg


def test_index_maps_and_pelvis_on_a_fixture():
    verts = torch.arange(20, dtype=torch.float32)[None, :, None].repeat(1, 1, 3)  # vertex k at (k,k,k)
    reg = _one_hot_regressor()
    j14, pelvis = GRAPHORMER_3DPW.joints(verts, reg)
    assert j14[0, :, 0].tolist() == [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
    assert pelvis[0, 0, 0].item() == 0.0  # regressed H36M joint 0
    j14, pelvis = SPIN_3DPW.joints(verts, reg)
    assert j14[0, :, 0].tolist() == [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
    assert pelvis[0, 0, 0].item() == pytest.approx((4 + 1) / 2)  # mid-hip of the 14 (R hip 4, L hip 1)


def test_alignment_removes_a_global_shift():
    gen = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 20, 3, generator=gen)
    out = GRAPHORMER_3DPW.evaluate(gt + torch.tensor([1.0, -2.0, 0.5]), gt, _one_hot_regressor())
    for key in ("mpve", "mpjpe", "pa_mpjpe"):
        assert torch.allclose(out[key], torch.zeros(2), atol=1e-5)


def test_wrong_regressor_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"needs a \(17, 20\) H36M joint regressor"):
        GRAPHORMER_3DPW.joints(torch.zeros(1, 20, 3), torch.zeros(14, 20))
    np.save(tmp_path / "J_regressor_h36m.npy", np.zeros((24, 6890)))
    with pytest.raises(ValueError, match=r"expected a \(17, 6890\) joint regressor"):
        load_regressor(SPIN_3DPW, tmp_path)


def test_missing_regressor_names_the_file_and_where_it_lives(tmp_path):
    with pytest.raises(FileNotFoundError, match="J_regressor_h36m_correct.npy.*MeshGraphormer"):
        load_regressor(GRAPHORMER_3DPW)
    with pytest.raises(FileNotFoundError, match="J_regressor_h36m.npy.*SPIN"):
        load_regressor(SPIN_3DPW, tmp_path)


def test_regressor_from_a_file(tmp_path):
    np.save(tmp_path / "J_regressor_h36m_correct.npy", np.full((17, 30), 1 / 30))
    assert load_regressor(H36M_P2, tmp_path).shape == (17, 30)


def test_protocols_describe_themselves():
    assert "every 5th frame" in H36M_P2.describe() and "S9" in H36M_P2.describe()
    assert "every 64th frame" in H36M_P2.with_frame_step(64).describe()
    assert set(PROTOCOLS) == {"graphormer-3dpw", "spin-3dpw", "h36m-p2", "surreal"}
    assert "neutral" in GRAPHORMER_3DPW.describe() and "gendered" in SPIN_3DPW.describe()


def test_evaluator_on_the_synthetic_body(body32, tmp_path):
    reg = load_regressor(GRAPHORMER_3DPW, body=body32)
    assert torch.equal(reg, synthetic_h36m_regressor(body32))
    ev = Evaluator(GRAPHORMER_3DPW, reg, dataset="synthetic")
    gen = torch.Generator().manual_seed(1)
    pose = torch.randn(3, 24, 3, generator=gen) * 0.3
    gt = body32(pose).vertices
    ev.update(gt + 0.01 * torch.randn(gt.shape, generator=gen), gt)
    s = ev.summary()
    assert s["samples"] == 3 and 5.0 < s["mpve"] < 25.0  # 1 cm noise per axis: ~16 mm
    assert "synthetic" in ev.table() and "PA-MPJPE" in ev.table()
    paths = ev.save(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["dataset"] == "synthetic" and data["units"] == "mm" and len(data["per_joint"]) == 14
    assert paths["csv"].read_text().count("\n") == 4
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no samples"):
        Evaluator(GRAPHORMER_3DPW, reg, "synthetic").summary()


def test_measured_gt_joints_replace_the_regressed_ones():
    gen = torch.Generator().manual_seed(3)
    gt = torch.randn(2, 20, 3, generator=gen)
    reg = _one_hot_regressor()
    measured = gt[:, :17] + 0.05  # shifted joints: the pelvis alignment removes the shift
    out = H36M_P2.evaluate(gt, gt, reg, gt_joints17=measured)
    assert torch.allclose(out["mpjpe"], torch.zeros(2), atol=1e-6)
    moved = measured.clone()
    moved[:, 16] += 0.1  # R wrist (14-joint index 6) off by 10 cm
    out = H36M_P2.evaluate(gt, gt, reg, gt_joints17=moved)
    assert torch.allclose(out["per_joint"][:, 6], torch.full((2,), 0.1 * 3**0.5), atol=1e-6)
    assert torch.allclose(out["mpve"], torch.zeros(2))  # MPVE still compares the meshes
    with pytest.raises(ValueError, match=r"gt_joints17 must have shape \(2, 17, 3\)"):
        H36M_P2.evaluate(gt, gt, reg, gt_joints17=measured[:, :14])

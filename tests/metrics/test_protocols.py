"""Protocols and the evaluator.

Each protocol is checked against an independent re-computation written the way its source
repository's evaluation code does it (plain numpy / torch, from reading that code; the sources and
their functions are named in docs/metrics.md), on the same seeded random meshes and regressor:

- SPIN (nkolot/SPIN eval.py run_evaluation, utils/pose_utils.py reconstruction_error),
- VirtualMarker (virtualmarker/dataset/joints_dataset.py, utils/coord_utils.py rigid_align),
- I2L-MeshNet (data/Human36M/Human36M.py evaluate),
- MeshGraphormer (src/tools/run_gphmer_bodymesh.py run_validate and its error functions).

Then: index maps, pelvis alignment, regressor checks, argument checks, outputs.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from tolerances import atol_for

from kinediff.core.conventions import synthetic_h36m_regressor
from kinediff.metrics import (
    GRAPHORMER_3DPW,
    H36M_P2,
    PROTOCOLS,
    SPIN_3DPW,
    SURREAL,
    Evaluator,
    Protocol,
    load_regressor,
)

# ---- facts read off the sources --------------------------------------------------------------

# SPIN constants.py: its 17-joint regressor's rows to the 14 LSP joints
SPIN_H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
# MeshGraphormer src/modeling/data/config.py
GRAPHORMER_H36M_J17_TO_J14 = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
GRAPHORMER_J24_NAME = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "R_Wrist",
                       "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist", "Neck",
                       "Top_of_Head", "Pelvis", "Thorax", "Spine", "Jaw", "Head", "Nose", "L_Eye",
                       "R_Eye", "L_Ear", "R_Ear")
J24_TO_J14 = list(range(13)) + [18]  # SPIN and MeshGraphormer
# Pose2Mesh / I2L / VirtualMarker: H36M's own joint order (the measured joints' order) and the
# 14 evaluated joints (all but pelvis, torso and nose), in that order
H36M_NAMES = ("Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
              "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist")
H36M_EVAL_JOINT = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

SEEDS = (0, 1, 2)


def _case(seed: int, batch: int = 4, v: int = 60):
    """Seeded float64 GT and predicted meshes (B, V, 3) in metres, a sparse (17, V) regressor (each
    row convex weights on 5 vertices, like the real ones) and measured joints (B, 17, 3)."""
    g = torch.Generator().manual_seed(seed)
    reg = torch.zeros(17, v, dtype=torch.float64)
    for j in range(17):
        cols = torch.randperm(v, generator=g)[:5]
        w = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
        reg[j, cols] = w / w.sum()
    gt = 0.4 * torch.randn(batch, v, 3, generator=g, dtype=torch.float64)
    gt = gt + torch.tensor([0.1, -0.2, 3.0], dtype=torch.float64)  # a person 3 m in front
    shift = 0.2 * torch.randn(batch, 1, 3, generator=g, dtype=torch.float64)
    pred = gt + 0.05 * torch.randn(batch, v, 3, generator=g, dtype=torch.float64) + shift
    measured = torch.einsum("jv,bvc->bjc", reg, gt)
    measured = measured + 0.02 * torch.randn(measured.shape, generator=g, dtype=torch.float64)
    return pred, gt, reg, measured


# ---- Procrustes, as the sources write it ---------------------------------------------------------

def hmr_similarity_align(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """SPIN / MeshGraphormer ``compute_similarity_transform`` (after HMR), on (N, 3) points: works
    on 3 x N arrays, SVD of X1 X2^T, Z fixes det R, scale = tr(R K) / |X1|^2."""
    a, b = s1.T, s2.T
    mu_a, mu_b = a.mean(1, keepdims=True), b.mean(1, keepdims=True)
    xa, xb = a - mu_a, b - mu_b
    k = xa @ xb.T
    u, _, vh = np.linalg.svd(k)
    z = np.eye(3)
    z[2, 2] = np.sign(np.linalg.det(u @ vh))
    r = vh.T @ z @ u.T
    scale = np.trace(r @ k) / (xa ** 2).sum()
    return (scale * r @ a + (mu_b - scale * r @ mu_a)).T


def rigid_align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pose2Mesh / I2L-MeshNet / VirtualMarker ``rigid_align`` on (N, 3) points: covariance / N,
    reflection fixed by negating the last singular value and row of V^T, scale from var(A)."""
    ca, cb = a.mean(0), b.mean(0)
    h = (a - ca).T @ (b - cb) / len(a)
    u, s, vt = np.linalg.svd(h)
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:
        s[-1], vt[2] = -s[-1], -vt[2]
        r = vt.T @ u.T
    c = s.sum() / a.var(0).sum()
    return (c * r @ a.T).T + (cb - c * r @ ca)


# ---- each source's evaluation, re-done ----------------------------------------------------------

def spin_3dpw(pred_v: torch.Tensor, gt_v: torch.Tensor, reg: torch.Tensor):
    """SPIN eval.py, 3DPW branch: regress 17, pelvis = joint 0 *before* the 14-joint map, subtract;
    metres. Returns per-sample MPJPE, PA-MPJPE (B,) as numpy."""
    j_reg = reg[None].expand(pred_v.shape[0], -1, -1)
    gt_k = torch.matmul(j_reg, gt_v)
    gt_pelvis = gt_k[:, [0], :].clone()
    gt_k = gt_k[:, SPIN_H36M_TO_J14, :] - gt_pelvis
    pred_k = torch.matmul(j_reg, pred_v)
    pred_pelvis = pred_k[:, [0], :].clone()
    pred_k = pred_k[:, SPIN_H36M_TO_J14, :] - pred_pelvis
    err = torch.sqrt(((pred_k - gt_k) ** 2).sum(dim=-1)).mean(dim=-1).numpy()
    p, g = pred_k.numpy(), gt_k.numpy()
    aligned = np.stack([hmr_similarity_align(p[i], g[i]) for i in range(len(p))])
    return err, np.sqrt(((aligned - g) ** 2).sum(-1)).mean(-1)


def spin_h36m(pred_v: torch.Tensor, reg: torch.Tensor, measured: torch.Tensor):
    """SPIN eval.py, Human3.6M branch: GT = the measured joints put into the 24-joint layout by name
    and centred at their pelvis (datasets/preprocess/h36m.py), then J24_TO_J14; prediction as for
    3DPW. Returns per-sample MPJPE, PA-MPJPE as numpy."""
    s24 = torch.zeros(measured.shape[0], 24, 3, dtype=measured.dtype)
    centred = measured - measured[:, :1]
    for i, name in enumerate(H36M_NAMES):
        if name in GRAPHORMER_J24_NAME:
            s24[:, GRAPHORMER_J24_NAME.index(name)] = centred[:, i]
    gt_k = s24[:, J24_TO_J14]
    pred_k = torch.matmul(reg[None].expand(pred_v.shape[0], -1, -1), pred_v)
    pred_k = pred_k[:, SPIN_H36M_TO_J14] - pred_k[:, [0]]
    err = torch.sqrt(((pred_k - gt_k) ** 2).sum(dim=-1)).mean(dim=-1).numpy()
    p, g = pred_k.numpy(), gt_k.numpy()
    aligned = np.stack([hmr_similarity_align(p[i], g[i]) for i in range(len(p))])
    return err, np.sqrt(((aligned - g) ** 2).sum(-1)).mean(-1)


def virtualmarker(pred_v: torch.Tensor, gt_v: torch.Tensor, reg: torch.Tensor):
    """VirtualMarker JointsDataset: meshes in mm, 17 joints regressed, joint 0 subtracted, the 14
    eval joints; MPVE = meshes minus their regressed joint 0. Returns per-sample MPJPE, PA-MPJPE,
    MPVE (mm) and per-joint errors (B, 14) in eval-joint order, as numpy."""
    reg_np = reg.numpy()
    pred_mesh, gt_mesh = pred_v.numpy() * 1000.0, gt_v.numpy() * 1000.0
    pred_pose = np.stack([reg_np @ m for m in pred_mesh])
    gt_pose = np.stack([reg_np @ m for m in gt_mesh])
    pred_a = (pred_pose - pred_pose[:, :1])[:, H36M_EVAL_JOINT]
    gt_a = (gt_pose - gt_pose[:, :1])[:, H36M_EVAL_JOINT]
    per_joint = np.sqrt(np.square(pred_a - gt_a).sum(axis=2))
    aligned = np.array([rigid_align(pred_a[n], gt_a[n]) for n in range(len(pred_a))])
    pa = np.sqrt(np.square(aligned - gt_a).sum(axis=2)).mean(1)
    mesh_err = np.sqrt(np.square((pred_mesh - pred_pose[:, :1]) - (gt_mesh - gt_pose[:, :1]))
                       .sum(axis=2)).mean(1)
    return per_joint.mean(1), pa, mesh_err, per_joint


def i2l_h36m(pred_v: torch.Tensor, reg: torch.Tensor, measured: torch.Tensor):
    """I2L-MeshNet Human36M.evaluate: measured joints (mm) root-relative at joint 0, the eval
    joints; prediction regressed from the mesh (mm), root-relative. Returns MPJPE, PA-MPJPE (mm)."""
    reg_np = reg.numpy()
    mpjpe, pa = [], []
    for mesh, joints in zip(pred_v.numpy() * 1000.0, measured.numpy() * 1000.0):
        gt = (joints - joints[0, None])[H36M_EVAL_JOINT, :]
        out = reg_np @ mesh
        out = (out - out[0, None])[H36M_EVAL_JOINT, :]
        mpjpe.append(np.sqrt(np.sum((out - gt) ** 2, 1)).mean())
        pa.append(np.sqrt(np.sum((rigid_align(out, gt) - gt) ** 2, 1)).mean())
    return np.array(mpjpe), np.array(pa)


def graphormer(pred_v: torch.Tensor, gt_v: torch.Tensor, reg: torch.Tensor):
    """MeshGraphormer run_validate with GT joints regressed from the GT mesh (its 3DPW TSV holds
    SMPL-regressed joints instead, which this check cannot rebuild): MPVE = meshes minus their
    regressed H36M pelvis; MPJPE re-centred at the 14 joints' mid-hip
    (mean_per_joint_position_error). Returns per-sample MPJPE, PA-MPJPE, MPVE (metres)."""
    gt17 = torch.einsum("bik,ji->bjk", gt_v, reg)
    gt_pelvis = gt17[:, 0, :]
    gt_vertices = gt_v - gt_pelvis[:, None, :]
    gt_joints = gt17[:, GRAPHORMER_H36M_J17_TO_J14, :] - gt_pelvis[:, None, :]
    pred17 = torch.einsum("bik,ji->bjk", pred_v, reg)
    pred_pelvis = pred17[:, 0, :]
    pred_joints = pred17[:, GRAPHORMER_H36M_J17_TO_J14, :] - pred_pelvis[:, None, :]
    pred_vertices = pred_v - pred_pelvis[:, None, :]
    mpve = torch.sqrt(((pred_vertices - gt_vertices) ** 2).sum(dim=-1)).mean(dim=-1).numpy()
    g = gt_joints - ((gt_joints[:, 2, :] + gt_joints[:, 3, :]) / 2)[:, None, :]
    p = pred_joints - ((pred_joints[:, 2, :] + pred_joints[:, 3, :]) / 2)[:, None, :]
    mpjpe = torch.sqrt(((p - g) ** 2).sum(dim=-1)).mean(dim=-1).numpy()
    pj, gj = pred_joints.numpy(), gt_joints.numpy()
    aligned = np.stack([hmr_similarity_align(pj[i], gj[i]) for i in range(len(pj))])
    return mpjpe, np.sqrt(((aligned - gj) ** 2).sum(-1)).mean(-1), mpve


# ---- kinediff against each source ----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_spin_3dpw_matches_spin_eval(seed):
    pred, gt, reg, _ = _case(seed)
    out = SPIN_3DPW.evaluate(pred, gt, reg)
    ref_mpjpe, ref_pa = spin_3dpw(pred, gt, reg)
    np.testing.assert_allclose(out["mpjpe"].numpy(), ref_mpjpe, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["pa_mpjpe"].numpy(), ref_pa, rtol=0, atol=1e-6)
    # the check has teeth: centring at the mid-hip of the 14 (kinediff before this fix) moves
    # MPJPE by millimetres on these meshes
    midhip = replace(SPIN_3DPW, pelvis="hip_midpoint").evaluate(pred, gt, reg)["mpjpe"].numpy()
    assert np.abs(midhip - ref_mpjpe).max() > 1e-3


def test_spin_pelvis_is_joint0_taken_before_the_map():
    verts = torch.arange(20, dtype=torch.float32)[None, :, None].repeat(1, 1, 3)  # vertex k at (k,k,k)
    reg = torch.zeros(17, 20)
    reg[torch.arange(17), torch.arange(17)] = 1.0
    _j14, pelvis = SPIN_3DPW.joints(verts, reg)
    assert 0 not in SPIN_3DPW.joint_map and pelvis[0, 0, 0].item() == 0.0
    assert SPIN_3DPW.pelvis == "h36m_joint0"


@pytest.mark.parametrize("protocol", [GRAPHORMER_3DPW, SURREAL], ids=lambda p: p.name)
@pytest.mark.parametrize("seed", SEEDS)
def test_graphormer_3dpw_and_surreal_match_virtualmarker(protocol, seed):
    pred, gt, reg, _ = _case(seed)
    out = protocol.evaluate(pred, gt, reg)
    ref_mpjpe, ref_pa, ref_mpve, ref_joint = virtualmarker(pred, gt, reg)
    np.testing.assert_allclose(1000 * out["mpjpe"].numpy(), ref_mpjpe, rtol=0, atol=1e-6)
    np.testing.assert_allclose(1000 * out["pa_mpjpe"].numpy(), ref_pa, rtol=0, atol=1e-6)
    np.testing.assert_allclose(1000 * out["mpve"].numpy(), ref_mpve, rtol=0, atol=1e-6)
    # the same 14 joints in another order: kinediff's joint k is VirtualMarker's eval joint map[k]
    order = [H36M_EVAL_JOINT.index(j) for j in protocol.joint_map]
    np.testing.assert_allclose(1000 * out["per_joint"].numpy(), ref_joint[:, order], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_graphormer_mpve_and_midhip_mpjpe_match_meshgraphormer(seed):
    pred, gt, reg, _ = _case(seed)
    ref_mpjpe, ref_pa, ref_mpve = graphormer(pred, gt, reg)
    out = GRAPHORMER_3DPW.evaluate(pred, gt, reg)
    np.testing.assert_allclose(out["mpve"].numpy(), ref_mpve, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["pa_mpjpe"].numpy(), ref_pa, rtol=0, atol=1e-6)
    # MeshGraphormer's own MPJPE centring is a pelvis="hip_midpoint" variant; MPVE stays at joint 0
    midhip = replace(GRAPHORMER_3DPW, pelvis="hip_midpoint").evaluate(pred, gt, reg)
    np.testing.assert_allclose(midhip["mpjpe"].numpy(), ref_mpjpe, rtol=0, atol=1e-6)
    np.testing.assert_allclose(midhip["mpve"].numpy(), ref_mpve, rtol=0, atol=1e-6)


@pytest.mark.parametrize("frame_step", [5, 64])
@pytest.mark.parametrize("seed", SEEDS)
def test_h36m_p2_matches_i2l_against_measured_joints(seed, frame_step):
    pred, gt, reg, measured = _case(seed)
    protocol = H36M_P2.with_frame_step(frame_step)
    out = protocol.evaluate(pred, gt, reg, gt_joints17=measured)
    ref_mpjpe, ref_pa = i2l_h36m(pred, reg, measured)
    np.testing.assert_allclose(1000 * out["mpjpe"].numpy(), ref_mpjpe, rtol=0, atol=1e-6)
    np.testing.assert_allclose(1000 * out["pa_mpjpe"].numpy(), ref_pa, rtol=0, atol=1e-6)
    _, _, ref_mpve, _ = virtualmarker(pred, gt, reg)  # MPVE still compares the meshes
    np.testing.assert_allclose(1000 * out["mpve"].numpy(), ref_mpve, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_measured_joints_are_reduced_by_name_whatever_the_regressor(seed):
    # SPIN's regressor lists the left leg first; measured joints come in H36M's own order. SPIN
    # puts the measured joints into its 24-joint layout by name: kinediff must pick the same 14.
    pred, gt, reg, measured = _case(seed)
    out = SPIN_3DPW.evaluate(pred, gt, reg, gt_joints17=measured)
    ref_mpjpe, ref_pa = spin_h36m(pred, reg, measured)
    np.testing.assert_allclose(out["mpjpe"].numpy(), ref_mpjpe, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["pa_mpjpe"].numpy(), ref_pa, rtol=0, atol=1e-6)


def test_the_two_procrustes_styles_agree_with_kinediff_even_for_mirror_images():
    from kinediff.metrics import similarity_procrustes

    g = np.random.default_rng(5)
    for trial in range(20):
        gt = g.normal(size=(14, 3))
        pred = 1.3 * gt @ np.linalg.qr(g.normal(size=(3, 3)))[0] + g.normal(size=(1, 3))
        if trial % 2:
            pred = pred * np.array([-1.0, 1.0, 1.0])  # needs the reflection fix
        pred += 0.1 * g.normal(size=pred.shape)
        ours = similarity_procrustes(torch.as_tensor(pred)[None], torch.as_tensor(gt)[None])[0]
        np.testing.assert_allclose(ours.numpy(), hmr_similarity_align(pred, gt), atol=1e-9)
        np.testing.assert_allclose(ours.numpy(), rigid_align(pred, gt), atol=1e-9)


def test_evaluator_reports_the_protocol_in_millimetres():
    pred, gt, reg, _ = _case(7)
    ev = Evaluator(SPIN_3DPW, reg.float(), dataset="random")
    ev.update(pred.float(), gt.float())
    ref_mpjpe, ref_pa = spin_3dpw(pred, gt, reg)
    tol = 1000 * atol_for(gt, torch.float32, ulps=128)  # mm: float32 points at 3-4 m
    assert ev.summary()["mpjpe"] == pytest.approx(1000 * ref_mpjpe.mean(), abs=tol)
    assert ev.summary()["pa_mpjpe"] == pytest.approx(1000 * ref_pa.mean(), abs=tol)


# ---- conventions recorded on the protocols ------------------------------------------------------

def test_protocol_conventions():
    assert (GRAPHORMER_3DPW.regressor_file, GRAPHORMER_3DPW.gt_gender) == (
        "J_regressor_h36m_correct.npy", "neutral")
    assert (SPIN_3DPW.regressor_file, SPIN_3DPW.gt_gender) == ("J_regressor_h36m.npy", "gendered")
    assert (SURREAL.gt_gender, H36M_P2.gt_gender) == ("gendered", "neutral")
    assert all(p.pelvis == "h36m_joint0" for p in PROTOCOLS.values())
    assert H36M_P2.subjects == ("S9", "S11") and H36M_P2.camera == "frontal"
    assert H36M_P2.frame_step == 5 and H36M_P2.with_frame_step(64).frame_step == 64
    assert all(p.frame_step is None for p in (GRAPHORMER_3DPW, SPIN_3DPW, SURREAL))
    assert "SPIN" in SPIN_3DPW.source and "VirtualMarker" in GRAPHORMER_3DPW.source
    assert "I2L" in H36M_P2.source and "VirtualMarker" in SURREAL.source


def test_bad_protocol_arguments_are_refused():
    good = dict(name="x", regressor_file="J_regressor_h36m_correct.npy",
                joint_map=tuple(GRAPHORMER_3DPW.joint_map), pelvis="h36m_joint0", gt_gender="neutral")
    with pytest.raises(ValueError, match="pelvis must be .h36m_joint0. or .hip_midpoint., got"):
        Protocol(**{**good, "pelvis": "hips"})
    with pytest.raises(ValueError, match="gt_gender must be .neutral. or .gendered., got"):
        Protocol(**{**good, "gt_gender": "male"})
    with pytest.raises(ValueError, match="joint_map must be 14 indices"):
        Protocol(**{**good, "joint_map": (1, 2, 3)})
    with pytest.raises(ValueError, match="does not fit J_regressor_h36m_correct.npy.*never mix"):
        Protocol(**{**good, "joint_map": tuple(SPIN_3DPW.joint_map)})
    with pytest.raises(ValueError, match=r"frame_step must be an integer >= 1 \(or None\)"):
        H36M_P2.with_frame_step(0)
    custom = Protocol(**{**good, "regressor_file": "my_regressor.npy", "joint_map": list(range(1, 15))})
    assert custom.joint_map == tuple(range(1, 15))


# ---- maps, alignment, regressors, outputs -------------------------------------------------------

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
    assert pelvis[0, 0, 0].item() == 0.0  # regressed H36M joint 0, as SPIN's eval.py
    _, pelvis = replace(SPIN_3DPW, pelvis="hip_midpoint").joints(verts, reg)
    assert pelvis[0, 0, 0].item() == pytest.approx((4 + 1) / 2)  # mid-hip of the 14 (R hip 4, L hip 1)


def test_alignment_removes_a_global_shift():
    gen = torch.Generator().manual_seed(0)
    gt = torch.randn(2, 20, 3, generator=gen)
    for protocol in PROTOCOLS.values():
        out = protocol.evaluate(gt + torch.tensor([1.0, -2.0, 0.5]), gt, _one_hot_regressor())
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


def test_synthetic_regressor_follows_each_files_row_order(body32):
    gen = torch.Generator().manual_seed(4)
    verts = body32.v_template[None] + 0.01 * torch.randn(2, body32.num_vertices, 3, generator=gen)
    correct = load_regressor(GRAPHORMER_3DPW, body=body32)
    spin = load_regressor(SPIN_3DPW, body=body32)
    assert torch.equal(spin[[0, 4, 5, 6, 1, 2, 3]], correct[:7]) and torch.equal(spin[7:], correct[7:])
    # both protocols then name the same 14 joints (SPIN's map on SPIN's row order)
    assert torch.allclose(SPIN_3DPW.joints(verts, spin)[0], GRAPHORMER_3DPW.joints(verts, correct)[0])


def test_protocols_describe_themselves():
    assert "every 5th frame" in H36M_P2.describe() and "S9" in H36M_P2.describe()
    assert "every 64th frame" in H36M_P2.with_frame_step(64).describe()
    assert set(PROTOCOLS) == {"graphormer-3dpw", "spin-3dpw", "h36m-p2", "surreal"}
    assert "neutral" in GRAPHORMER_3DPW.describe() and "gendered" in SPIN_3DPW.describe()
    spin = SPIN_3DPW.describe()
    assert "H36M joint 0" in spin and "mid-hip" not in spin and "nkolot/SPIN eval.py" in spin
    assert "no MPVE" in spin  # SPIN's eval.py computes none: kinediff says so
    assert "mid-hip of the 14" in replace(SPIN_3DPW, pelvis="hip_midpoint").describe()
    for protocol in PROTOCOLS.values():
        assert "MPVE over all vertices minus each mesh's regressed H36M joint 0" in protocol.describe()


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

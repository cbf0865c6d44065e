"""CUDA against CPU: each component's output on a CUDA device equals its CPU output within float
tolerance (float32, TF32 off), gradients included where the component is trained through.

Marked ``cuda`` and skipped without a device; ``benchmarks/gpu_check.py`` runs them first
(``pytest -m cuda``). Each test builds its inputs on the CPU from a seed, runs the CPU component,
then a copy moved to the device, and compares the two.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from conftest import random_pose

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.data import SynthBody
from kinediff.decoders import GraphormerRegressor, M2PDecoder, MeshUpsampler
from kinediff.fit import fit_smpl
from kinediff.forward import FKSchedule, GaussianNoiseSchedule, TrainingBodies, VertexLinearSchedule
from kinediff.heads import HRNetMeshHead
from kinediff.losses import trimap, trimap_iou_loss, trimap_render_loss
from kinediff.mesh import MeshHierarchy
from kinediff.metrics import mpjpe, mpve, pa_mpjpe
from kinediff.render import soft_silhouette

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_float32():
    """TF32 off while a test runs (cuDNN convolutions use it by default from Ampere on): the
    comparisons are float32 against float32."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@pytest.fixture(scope="module")
def hierarchy(body32, cache_dir):
    return MeshHierarchy.from_body(body32, (4, 4, 4), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def batch(body32, cache_dir):
    """Four 64-pixel SynthBody samples (the tiny config's crops and 108-vertex 2D meshes)."""
    return SynthBody(4, seed=3, body=body32, image_size=64, mesh_factors=(4, 4, 4),
                     progress=False).batch(range(4))


def to_device(x: Any) -> Any:
    """A copy on CUDA, never the CPU object itself: tensors (detached), modules (deep copies),
    dicts of either."""
    if isinstance(x, torch.nn.Module):
        return copy.deepcopy(x).to(CUDA)
    if isinstance(x, torch.Tensor):
        return x.detach().to(CUDA, copy=True)
    if isinstance(x, dict):
        return {k: to_device(v) for k, v in x.items()}
    return x


def assert_matches(cuda_out: torch.Tensor, cpu_out: torch.Tensor, name: str, rel: float = 1e-5) -> None:
    """``cuda_out`` lives on CUDA and differs from ``cpu_out`` by at most ``rel`` times the CPU
    output's largest magnitude (at least 1)."""
    assert cuda_out.device.type == "cuda", f"{name} was computed on {cuda_out.device}, not CUDA"
    assert cuda_out.shape == cpu_out.shape, \
        f"{name}: shapes {tuple(cuda_out.shape)} and {tuple(cpu_out.shape)}"
    got = cuda_out.detach().cpu().to(cpu_out.dtype)
    scale = max(1.0, float(cpu_out.detach().abs().max())) if cpu_out.numel() else 1.0
    err = float((got - cpu_out.detach()).abs().max()) if cpu_out.numel() else 0.0
    assert err <= rel * scale, f"{name}: CUDA differs from CPU by {err:.3g} (allowed {rel * scale:.3g})"


def randomize(module: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """Seeded noise on every parameter (an untrained decoder's zero output layer included), so
    that outputs depend on every weight."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def gradient_matches(cuda_params, cpu_params, name: str, rel: float = 1e-3) -> None:
    """The concatenated gradients agree to ``rel`` of their norm."""
    pairs = [(a.grad, b.grad) for a, b in zip(cuda_params, cpu_params) if b.grad is not None]
    assert pairs, f"{name}: no gradients"
    assert all(a is not None and a.device.type == "cuda" for a, _ in pairs), f"{name}: CUDA grads missing"
    got = torch.cat([a.detach().cpu().flatten() for a, _ in pairs])
    want = torch.cat([b.detach().flatten() for _, b in pairs])
    err = float((got - want).norm())
    assert err <= rel * float(want.norm()), \
        f"{name}: gradient differs by {err:.3g} of norm {float(want.norm()):.3g}"


# -- body, schedules ----------------------------------------------------------------------------

def test_body_model_forward(body32):
    g = torch.Generator().manual_seed(0)
    pose, betas = random_pose(4, g, dtype=torch.float32), torch.randn(4, 10, generator=g)
    transl = torch.randn(4, 3, generator=g)
    ref = body32(pose, betas, transl)
    out = to_device(body32)(pose.to(CUDA), betas.to(CUDA), transl.to(CUDA))
    for name in ("vertices", "joints", "transforms", "rotmats"):
        assert_matches(getattr(out, name), getattr(ref, name), name)


@pytest.mark.parametrize("blend", ["paper", "exact"])
def test_fk_trajectory(body32, blend):
    g = torch.Generator().manual_seed(1)
    pose, betas = random_pose(3, g, dtype=torch.float32), torch.randn(3, 10, generator=g)
    ref = FKSchedule(body32, blend=blend).trajectory(pose, betas)
    out = FKSchedule(to_device(body32), blend=blend).trajectory(pose.to(CUDA), betas.to(CUDA))
    assert_matches(out, ref, f"FK trajectory ({blend})")


def test_heading_path_and_vertex_linear_trajectory(body32):
    g = torch.Generator().manual_seed(2)
    pose, betas = random_pose(3, g, dtype=torch.float32), torch.randn(3, 10, generator=g)
    heading = torch.rand(3, generator=g) * 6.0 - 3.0
    body = to_device(body32)
    ref = FKSchedule(body32, root_path="heading").trajectory(pose, betas, heading)
    out = FKSchedule(body, root_path="heading").trajectory(pose.to(CUDA), betas.to(CUDA), heading.to(CUDA))
    assert_matches(out, ref, "FK trajectory (heading root path)")
    ref = VertexLinearSchedule(body32).trajectory(pose, betas)
    assert_matches(VertexLinearSchedule(body).trajectory(pose.to(CUDA), betas.to(CUDA)), ref, "VL trajectory")


def test_training_example_draws_the_same_steps(body32, hierarchy):
    """Steps come from a CPU generator: the same on both devices, and so are inputs and labels."""
    g = torch.Generator().manual_seed(3)
    pose, betas = random_pose(3, g, dtype=torch.float32), torch.randn(3, 10, generator=g)
    verts = body32(pose, betas).vertices
    body, coarse = to_device(body32), to_device(hierarchy)
    ref = FKSchedule(body32).training_example(TrainingBodies(pose, betas, verts),
                                              torch.Generator().manual_seed(4), 3, hierarchy.downsample)
    out = FKSchedule(body).training_example(TrainingBodies(pose.to(CUDA), betas.to(CUDA), verts.to(CUDA)),
                                            torch.Generator().manual_seed(4), 3, coarse.downsample)
    assert torch.equal(out.steps.cpu(), ref.steps)
    for name in ("inputs", "labels", "labels_full", "target"):
        assert_matches(getattr(out, name), getattr(ref, name), f"training example {name}")


# -- decoders, heads --------------------------------------------------------------------------

def _m2p(hierarchy, num_steps: int = 10) -> M2PDecoder:
    torch.manual_seed(5)
    return randomize(M2PDecoder(hierarchy.adjacency(-1), dim=32, ffn_dim=64, num_layers=2,
                                num_heads=4, num_steps=num_steps), seed=5)


@pytest.mark.parametrize("process", ["fk", "noise"])
def test_m2p_forward_and_reverse(body32, hierarchy, process):
    n = hierarchy.sizes[-1]
    g = torch.Generator().manual_seed(6)
    mesh3d, mesh2d = torch.randn(4, n, 3, generator=g), torch.randn(4, n, 2, generator=g)
    steps = torch.tensor([10, 7, 3, 1])
    decoder = _m2p(hierarchy)
    device_decoder = to_device(decoder)
    with torch.no_grad():
        ref = decoder(mesh3d, mesh2d, step=steps)
        out = device_decoder(mesh3d.to(CUDA), mesh2d.to(CUDA), step=steps.to(CUDA))
        assert_matches(out, ref, "M2P forward", rel=1e-4)
        if process == "fk":
            schedules = FKSchedule(body32), FKSchedule(to_device(body32))
        else:
            schedules = tuple(GaussianNoiseSchedule(num_steps=10) for _ in range(2))
        ref = decoder.reverse(mesh3d, mesh2d, schedules[0], return_trajectory=True)
        out = device_decoder.reverse(mesh3d.to(CUDA), mesh2d.to(CUDA), schedules[1], return_trajectory=True)
    assert_matches(out, ref, f"M2P reverse ({process})", rel=1e-4)


def test_m2p_gradients(hierarchy):
    n = hierarchy.sizes[-1]
    g = torch.Generator().manual_seed(7)
    mesh3d, mesh2d = torch.randn(2, n, 3, generator=g), torch.randn(2, n, 2, generator=g)
    steps = torch.tensor([4, 9])
    decoder = _m2p(hierarchy)
    device_decoder = to_device(decoder)
    decoder(mesh3d, mesh2d, step=steps).square().sum().backward()
    device_decoder(mesh3d.to(CUDA), mesh2d.to(CUDA), step=steps.to(CUDA)).square().sum().backward()
    gradient_matches(list(device_decoder.parameters()), list(decoder.parameters()), "M2P")


def test_regressor_and_upsampler(body32, hierarchy):
    n = hierarchy.sizes[-1]
    template = hierarchy.downsample(body32.v_template[None])[0]
    torch.manual_seed(8)
    regressor = randomize(GraphormerRegressor(hierarchy.adjacency(-1), template, dim=32, ffn_dim=64,
                                              num_layers=2, num_heads=4), seed=8)
    upsampler = randomize(MeshUpsampler(hierarchy), seed=9, scale=0.01)
    g = torch.Generator().manual_seed(10)
    cond, coarse = torch.randn(3, n, 2, generator=g), torch.randn(3, n, 3, generator=g)
    with torch.no_grad():
        assert_matches(to_device(regressor)(cond.to(CUDA)), regressor(cond), "regressor", rel=1e-4)
        assert_matches(to_device(upsampler)(coarse.to(CUDA)), upsampler(coarse), "upsampler", rel=1e-4)
        assert_matches(to_device(hierarchy).upsample(coarse.to(CUDA)), hierarchy.upsample(coarse),
                       "barycentric upsample")


def test_hrnet_head_tiny(batch):
    torch.manual_seed(11)
    head = HRNetMeshHead("hrnet_w18_small", num_points=33, num_vertices=108, heatmap_size=16)
    with torch.no_grad():  # BatchNorm statistics of the crops, then eval mode on both devices
        head.train()(batch["image"])
    head.eval()
    device_head = to_device(head)
    ref = head(batch["image"])
    out = device_head(batch["image"].to(CUDA))
    for name in ("heatmaps", "points", "mesh2d", "features"):
        assert_matches(out[name], ref[name], f"HRNet head {name}", rel=1e-3)
    ref["mesh2d"].square().mean().backward()
    out["mesh2d"].square().mean().backward()
    gradient_matches(list(device_head.parameters()), list(head.parameters()), "HRNet head", rel=1e-2)


# -- rendering and losses ---------------------------------------------------------------------

def test_soft_silhouette_and_gradient(batch, hierarchy):
    faces = hierarchy.faces(-1)
    g = torch.Generator().manual_seed(12)
    weights = torch.rand(4, 64, 64, generator=g)
    verts = batch["mesh2d"].clone().requires_grad_(True)
    device_verts = to_device(batch["mesh2d"]).requires_grad_(True)
    ref = soft_silhouette(verts, faces, 64, sigma=0.5)
    out = soft_silhouette(device_verts, faces.to(CUDA), 64, sigma=0.5)
    assert_matches(out, ref, "soft silhouette", rel=1e-4)
    (ref * weights).sum().backward()
    (out * weights.to(CUDA)).sum().backward()
    assert_matches(device_verts.grad, verts.grad, "soft silhouette gradient", rel=1e-3)
    hard = soft_silhouette(device_verts.detach(), faces.to(CUDA), 64, sigma=0.0)
    differ = float((hard.cpu() - soft_silhouette(verts.detach(), faces, 64, sigma=0.0)).abs().mean())
    assert differ <= 1e-3, f"hard silhouettes differ in {differ:.2%} of the pixels"


def test_trimap_losses(batch, hierarchy):
    faces = hierarchy.faces(-1)
    gt = batch["mesh2d"]
    g = torch.Generator().manual_seed(13)
    pred = (gt + torch.randn(gt.shape, generator=g)).requires_grad_(True)
    device_pred = to_device(pred).requires_grad_(True)
    ref = trimap_render_loss(pred, gt, faces, 64, width=3, sigma=0.5)
    out = trimap_render_loss(device_pred, gt.to(CUDA), faces.to(CUDA), 64, width=3, sigma=0.5)
    assert_matches(out, ref, "trimap render loss", rel=1e-3)
    ref.sum().backward()
    out.sum().backward()
    assert_matches(device_pred.grad, pred.grad, "trimap render loss gradient", rel=1e-2)
    masks = batch["mask"]
    assert torch.equal(trimap(masks.to(CUDA), 3).cpu(), trimap(masks, 3)), "trimap bands differ"
    soft = torch.rand(masks.shape, generator=g)
    assert_matches(trimap_iou_loss(soft.to(CUDA), masks.to(CUDA), 3), trimap_iou_loss(soft, masks, 3),
                   "trimap IoU loss", rel=1e-5)


# -- PostureHMR -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model(body32, batch, cache_dir):
    """A tiny PostureHMR with non-trivial weights: C fitted on the batch, the decoder's output
    layer randomised (it starts at zero)."""
    torch.manual_seed(14)
    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    model.init_coefficients(batch)
    randomize(model.decoder.head, seed=14, scale=0.01)
    with torch.no_grad():
        model.train().head(batch["image"])
    return model.eval()


@pytest.mark.parametrize("stage", ["2d", "3d"])
def test_posturehmr_losses_and_gradients(model, batch, stage):
    cpu_model, device_model = copy.deepcopy(model), to_device(model)
    device_batch = to_device(batch)
    terms = {}
    for m, b in ((cpu_model, batch), (device_model, device_batch)):
        m.train_mode(stage)
        if stage == "2d":
            out = m.loss_2d(b)
        else:
            out = m.loss_3d(b, generator=torch.Generator().manual_seed(15), epoch=10)
        out["total"].backward()
        terms[m is device_model] = out
    for name, value in terms[False].items():
        assert_matches(terms[True][name], value, f"loss_{stage} {name}", rel=1e-3)
    trained = [p for group in cpu_model.parameter_groups(stage) for p in group["params"]]
    device_trained = [p for group in device_model.parameter_groups(stage) for p in group["params"]]
    gradient_matches(device_trained, trained, f"loss_{stage}", rel=1e-2)


def test_predict(model, batch):
    ref = model.predict(batch["image"], return_trajectory=True)
    out = to_device(model).predict(batch["image"].to(CUDA), return_trajectory=True)
    for name in ("vertices", "joints", "trajectory", "trajectory_coarse"):
        assert_matches(out[name], ref[name], f"predict {name}", rel=1e-4)
    assert_matches(out["mesh2d"], ref["mesh2d"], "predict mesh2d", rel=1e-4)


# -- fitting, metrics -------------------------------------------------------------------------

def test_fit_smpl(body32):
    g = torch.Generator().manual_seed(16)
    pose, betas = random_pose(3, g, scale=0.4, dtype=torch.float32), torch.randn(3, 10, generator=g) * 0.5
    vertices = body32(pose, betas).vertices + torch.tensor([0.1, -0.2, 3.0])
    ref = fit_smpl(vertices, body32)
    out = fit_smpl(vertices.to(CUDA), to_device(body32))
    assert_matches(out.vertices, ref.vertices, "fitted vertices", rel=1e-4)
    assert_matches(out.rotmats, ref.rotmats, "fitted rotations", rel=1e-2)
    assert float(out.error.max()) <= max(2e-5, 2 * float(ref.error.max()))


def test_metrics():
    g = torch.Generator().manual_seed(17)
    pred, gt = torch.randn(8, 14, 3, generator=g), torch.randn(8, 14, 3, generator=g)
    dp, dg = pred.to(CUDA), gt.to(CUDA)
    assert_matches(mpjpe(dp, dg, root=0), mpjpe(pred, gt, root=0), "mpjpe")
    assert_matches(pa_mpjpe(dp, dg), pa_mpjpe(pred, gt), "pa_mpjpe", rel=1e-4)
    roots = pred[:, :1], gt[:, :1]  # (root_pred, root_gt)
    assert_matches(mpve(dp, dg, root=(roots[0].to(CUDA), roots[1].to(CUDA))), mpve(pred, gt, root=roots),
                   "mpve")


def test_predict_and_a_3d_step_never_wait_for_the_device(body32, batch):
    # torch raises on any operation that synchronises the host with the device: with the value
    # checks off, predict and a 3D-stage step (forward and backward) must hold none (the 2D stage's
    # rasterizer reads its pair count back once per call, by design: docs/concepts.md)
    from kinediff import value_checks

    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(train_condition="gt"), to_device(body32)).cuda()
    data = {k: to_device(v) for k, v in batch.items()}
    model.predict(data["image"])  # warm-up: lazily built state, kernels loaded
    model.train_mode("3d")
    model.loss_3d(data)["total"].backward()
    model.eval()
    try:
        torch.cuda.set_sync_debug_mode("error")
        with value_checks(False):
            model.predict(data["image"])
            model.train_mode("3d")
            model.loss_3d(data)["total"].backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")

"""fit_smpl: SMPL parameters from meshes of the body's topology.

Round trips: a mesh made by the body from known pose, shape and translation is fitted and the fit
compared with what made it. On the synthetic body every joint moves vertices of its own and no
part is symmetric about its bone, so every joint's rotation is determined by the mesh and is
recovered; a body whose hands move no vertex (their weights handed to the wrists) has hand
rotations that only the tiny pose-corrective offsets see, and there only the mesh is compared.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kinediff.body import BodyModel, BodySet, axis_angle_to_matrix, synthetic_gendered_bodies
from kinediff.data.limits import root_orientation, sample_body_pose
from kinediff.fit import FitResult, fit_smpl
from kinediff.fit.jacobian import mesh_jacobian, normal_equations
from kinediff.fit.subset import body_subset, pose_subset


def _angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotation matrices (..., 3, 3), degrees."""
    rel = a.transpose(-1, -2) @ b
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))


def _sample(body: BodyModel, batch: int, seed: int, spread: float = 1.0, beta_scale: float = 1.5):
    """Pose within the joint limits, a root turned anywhere about the vertical and tilted, random
    shape and translation; the body's mesh of them."""
    gen = torch.Generator().manual_seed(seed)
    dtype = body.v_template.dtype
    pose = sample_body_pose(batch, gen, spread=spread, dtype=torch.float64)
    yaw, pitch, roll = (torch.rand(3, batch, generator=gen, dtype=torch.float64) * 2 - 1) * \
        torch.tensor([[math.pi], [0.4], [0.4]], dtype=torch.float64)
    root = root_orientation(yaw, pitch, roll)
    rotmats = axis_angle_to_matrix(pose)
    rotmats[:, 0] = root
    betas = torch.randn(batch, 10, generator=gen, dtype=torch.float64) * beta_scale
    transl = torch.randn(batch, 3, generator=gen, dtype=torch.float64) + torch.tensor([0, 0, 4.0])
    rotmats, betas, transl = (x.to(dtype) for x in (rotmats, betas, transl))
    with torch.no_grad():
        vertices = body(rotmats, betas, transl).vertices
    return rotmats, betas, transl, vertices


# -- round trips ----------------------------------------------------------------------------------

@settings(max_examples=5)
@given(seed=st.integers(0, 10**6), spread=st.sampled_from([0.3, 1.0]),
       beta_scale=st.sampled_from([0.0, 1.0, 2.5]))
def test_round_trip_float32(body32, seed, spread, beta_scale):
    rotmats, betas, transl, vertices = _sample(body32, 2, seed, spread, beta_scale)
    fit = fit_smpl(vertices, body32)
    assert isinstance(fit, FitResult)
    assert fit.pose.shape == (2, 24, 3) and fit.betas.shape == (2, 10) and fit.transl.shape == (2, 3)
    assert fit.vertices.shape == vertices.shape and fit.error.shape == (2,)
    assert all(x.dtype == torch.float32 for x in (fit.pose, fit.betas, fit.transl, fit.vertices))
    # the mesh: tens of micrometres at most (float32 rounding of a 4 m translation is ~0.2 um)
    assert float(fit.error.max()) < 2e-5
    assert torch.allclose(fit.error, (fit.vertices - vertices).norm(dim=-1).mean(-1))
    # the parameters that made it
    assert float(_angles_deg(fit.rotmats, rotmats).max()) < 0.2
    assert torch.allclose(fit.betas, betas, atol=0.02)
    assert torch.allclose(fit.transl, transl, atol=2e-4)
    # the returned axis-angle pose gives the same mesh through the body
    again = body32(fit.pose, fit.betas, fit.transl).vertices
    assert float((again - vertices).norm(dim=-1).max()) < 1e-4


def test_round_trip_float64_recovers_every_joint(body64):
    rotmats, betas, transl, vertices = _sample(body64, 8, seed=3)
    fit = fit_smpl(vertices, body64)
    assert fit.pose.dtype == torch.float64 and fit.vertices.dtype == torch.float64
    assert float(fit.error.max()) < 1e-6
    per_joint = _angles_deg(fit.rotmats, rotmats).amax(0)  # (24,)
    assert float(per_joint.max()) < 0.01, per_joint
    assert torch.allclose(fit.betas, betas, atol=1e-3)
    assert torch.allclose(fit.transl, transl, atol=1e-6)


def test_wide_poses_converge(body32):
    """Poses far outside the joint limits (about a radian per joint, any root) still converge."""
    gen = torch.Generator().manual_seed(7)
    pose = torch.randn(6, 24, 3, generator=gen) * 0.8
    pose[:, 0] = torch.randn(6, 3, generator=gen) * 2.0
    with torch.no_grad():
        vertices = body32(pose, torch.randn(6, 10, generator=gen)).vertices
    assert float(fit_smpl(vertices, body32).error.max()) < 2e-5


def test_far_from_the_origin(body32):
    """Fitted about the centroid: float32 meshes a kilometre away still fit to float32's rounding."""
    _, _, transl, vertices = _sample(body32, 2, seed=8)
    fit = fit_smpl(vertices + 1000.0, body32)
    assert float(fit.error.max()) < 2e-4  # float32 spacing at 1 km is 6e-5 m
    assert torch.allclose(fit.transl, transl + 1000.0, atol=1e-3)


def test_hands_without_vertices_are_ill_posed_but_the_mesh_is_not(body64):
    """Hands that move no vertex: their rotation only reaches the mesh through the pose
    correctives, so the fit leaves it near the start; the mesh still matches, and the joints that
    do move vertices are recovered."""
    data = body64.to_smpl_dict()
    weights = data["weights"].copy()
    for hand, wrist in ((22, 20), (23, 21)):
        weights[:, wrist] += weights[:, hand]
        weights[:, hand] = 0.0
    handless = BodyModel.from_dict(dict(data, weights=weights), dtype=torch.float64)
    rotmats, _betas, _transl, vertices = _sample(handless, 4, seed=11)
    fit = fit_smpl(vertices, handless)
    assert torch.isfinite(fit.pose).all()
    assert float(fit.error.max()) < 1e-4  # the hands' correctives: a few hundredths of a mm
    angles = _angles_deg(fit.rotmats, rotmats).amax(0)
    assert float(angles[:20].max()) < 0.1 and float(angles[20:22].max()) < 0.5, angles


def test_analytic_start_alone(body32):
    _, _, _, vertices = _sample(body32, 4, seed=5)
    start = fit_smpl(vertices, body32, iterations=0)
    assert start.iterations == 0
    assert float(start.error.max()) < 0.03  # centimetres, before any iteration
    assert float(fit_smpl(vertices, body32, iterations=2).error.max()) < float(start.error.min())


def test_all_vertices_subset(body32):
    _, _, _, vertices = _sample(body32, 2, seed=9)
    assert float(fit_smpl(vertices, body32, per_joint=None).error.max()) < 2e-5


# -- batches -------------------------------------------------------------------------------------

def test_batch_independence(body64):
    """A mesh's fit is the same alone and in a batch (each sample settles and freezes on its own)."""
    _, _, _, vertices = _sample(body64, 4, seed=21)
    together = fit_smpl(vertices, body64)
    for i in (2,):
        alone = fit_smpl(vertices[i:i + 1], body64)
        assert torch.allclose(alone.rotmats[0], together.rotmats[i], atol=1e-10)
        assert torch.allclose(alone.betas[0], together.betas[i], atol=1e-10)
        assert torch.allclose(alone.vertices[0], together.vertices[i], atol=1e-10)


def test_gendered_body_set(cache_dir, synthetic_path):
    """With one body per gender, each mesh is fitted with its own gender's model: the betas that
    made it come back (a neutral fit explains the same meshes with other betas)."""
    bodies = synthetic_gendered_bodies(cache_dir=cache_dir)
    genders = ["female", "male", "neutral", "male"]
    parts = [_sample(bodies[g], 1, seed=30 + i) for i, g in enumerate(genders)]
    vertices = torch.cat([p[3] for p in parts])
    betas = torch.cat([p[1] for p in parts])
    fit = fit_smpl(vertices, BodySet(bodies), genders=genders)  # a plain mapping goes the same way
    assert float(fit.error.max()) < 2e-5
    assert torch.allclose(fit.betas, betas, atol=0.02)
    neutral = fit_smpl(vertices, bodies["neutral"])
    assert float((neutral.betas - betas).abs().max()) > 0.5  # other gender, other betas
    with pytest.raises(ValueError, match="needs genders, one per mesh"):
        fit_smpl(vertices, bodies)
    with pytest.raises(ValueError, match="needs genders"):
        fit_smpl(vertices, bodies, genders=genders[:2])
    with pytest.raises(ValueError, match="unknown gender"):
        fit_smpl(vertices, bodies, genders=["other"] * 4)
    with pytest.raises(ValueError, match="a female record needs"):
        fit_smpl(vertices[:1], {"neutral": bodies["neutral"], "male": bodies["male"]},
                 genders=["female"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(body32):
    body = copy.deepcopy(body32).cuda()
    rotmats, _, _, vertices = _sample(body32, 4, seed=2)
    fit = fit_smpl(vertices.cuda(), body)
    assert fit.pose.device.type == "cuda" and float(fit.error.max()) < 2e-5
    assert float(_angles_deg(fit.rotmats.cpu(), rotmats).max()) < 0.2


# -- the Jacobian ----------------------------------------------------------------------------------

def _jacfwd(sub, rotmats, betas, transl):
    """The subset mesh's Jacobian by forward-mode autograd, one sample at a time."""
    def mesh(x, i):
        turn = axis_angle_to_matrix(x[:72].reshape(1, 24, 3))
        return pose_subset(sub, rotmats[i:i + 1] @ turn, betas[i:i + 1] + x[72:82],
                           transl[i:i + 1] + x[82:]).vertices[0].T.flatten()

    zero = rotmats.new_zeros(85)
    return torch.stack([torch.func.jacfwd(lambda x, i=i: mesh(x, i))(zero) for i in range(len(rotmats))])


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")  # torch.func's own import
def test_jacobian_matches_autograd(body64):
    """Exact but for the pose correctives' own change (left out): exact without them, close with."""
    rotmats, betas, transl, _ = _sample(body64, 2, seed=4)
    sub = body_subset(body64, per_joint=3)
    flat = dataclasses.replace(sub, posedirs=torch.zeros_like(sub.posedirs))
    jac = mesh_jacobian(flat, pose_subset(flat, rotmats, betas, transl), rotmats)
    assert torch.allclose(jac, _jacfwd(flat, rotmats, betas, transl), atol=1e-12)
    posed = pose_subset(sub, rotmats, betas, transl)
    jac, ref = mesh_jacobian(sub, posed, rotmats), _jacfwd(sub, rotmats, betas, transl)
    assert torch.allclose(jac[..., 72:], ref[..., 72:], atol=1e-12)  # shape, translation: exact
    assert float((jac - ref).abs().max()) < 0.02 * float(ref.abs().max())
    # the normal equations, formed without the Jacobian, equal J^T J and J^T r
    resid = torch.randn(2, 3, sub.num_vertices, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(0))
    h, g = normal_equations(sub, posed, rotmats, resid)
    r = resid.transpose(1, 2).reshape(2, -1, 1)
    assert torch.allclose(h, jac.transpose(1, 2) @ jac, atol=1e-10)
    assert torch.allclose(g, (jac.transpose(1, 2) @ r)[..., 0], atol=1e-10)


def test_subset_pose_equals_body(body64):
    rotmats, betas, transl, vertices = _sample(body64, 2, seed=6)
    sub = body_subset(body64, per_joint=10)
    posed = pose_subset(sub, rotmats, betas, transl)
    assert torch.allclose(posed.vertices.transpose(1, 2), vertices[:, sub.index], atol=1e-12)


# -- errors --------------------------------------------------------------------------------------

def test_errors(body32):
    good = body32(torch.zeros(2, 24, 3)).vertices
    with pytest.raises(TypeError, match="vertices must be a torch.Tensor"):
        fit_smpl(good.numpy(), body32)
    with pytest.raises(ValueError, match=r"vertices must have shape \(B, 6890, 3\), got \(6890, 3\)"):
        fit_smpl(good[0], body32)
    with pytest.raises(ValueError, match="vertices has 100 vertices per mesh but the body"):
        fit_smpl(good[:, :100], body32)
    with pytest.raises(ValueError, match="no mesh"):
        fit_smpl(good[:0], body32)
    bad = good.clone()
    bad[1, 5, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values \(meshes \[1\]\)"):
        fit_smpl(bad, body32)
    bad[1, 5, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        fit_smpl(bad, body32)
    with pytest.raises(ValueError, match=r"vertices is torch.float64 but the body's buffers are "
                                         r"torch.float32; call body.to\(torch.float64\)"):
        fit_smpl(good.double(), body32)
    with pytest.raises(ValueError, match="floating point"):
        fit_smpl(good.long(), body32)
    with pytest.raises(ValueError, match="iterations must be an integer >= 0"):
        fit_smpl(good, body32, iterations=-1)
    with pytest.raises(ValueError, match=r"per_joint must be an integer >= 1 \(or None\)"):
        fit_smpl(good, body32, per_joint=0)
    with pytest.raises(TypeError, match="body must be a BodyModel or a mapping"):
        fit_smpl(good, "smpl")


def test_docstring_example_runs(synthetic_path, cache_dir):
    import doctest

    tests = [t for t in doctest.DocTestFinder(recurse=False).find(fit_smpl, "fit_smpl") if t.examples]
    assert tests
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_fit_mesh_files(body32, tmp_path):
    """The proposed ``kinediff fit``: OBJ files of the body's topology in, ``<name>_smpl.npz`` out."""
    import numpy as np
    import trimesh

    from kinediff.apps.fit import fit_mesh_files

    _rotmats, _betas, _transl, vertices = _sample(body32, 2, seed=40)
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"person{i}.obj")
        trimesh.Trimesh(vertices[i].numpy(), body32.faces.numpy(), process=False).export(paths[-1])
    records = fit_mesh_files(paths, body32, out=tmp_path / "params", batch_size=1)
    assert [r["mesh"] for r in records] == [str(p) for p in paths]
    for i, rec in enumerate(records):
        data = np.load(rec["params"])
        assert data["pose"].shape == (24, 3) and data["betas"].shape == (10,)
        mesh = body32(torch.as_tensor(data["pose"])[None], torch.as_tensor(data["betas"])[None],
                      torch.as_tensor(data["transl"])[None]).vertices[0]
        assert float((mesh - vertices[i]).norm(dim=-1).mean()) < 1e-4 and rec["error_mm"] < 0.1
    trimesh.creation.box().export(tmp_path / "small.obj")
    with pytest.raises(ValueError, match="holds 8 vertices but the body has 6890"):
        fit_mesh_files([tmp_path / "small.obj"], body32)
    with pytest.raises(FileNotFoundError, match="no mesh file"):
        fit_mesh_files([tmp_path / "missing.obj"], body32)

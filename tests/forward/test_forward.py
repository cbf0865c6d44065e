"""Forward processes: endpoints, exactness, FK rigidity, monotone geodesics, DDPM/DDIM algebra."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff.body import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.core.conventions import SMPL_PARENTS
from kinediff.forward import (
    FKSchedule,
    GaussianNoiseSchedule,
    PostureSchedule,
    VertexLinearSchedule,
    resolve_alpha,
    wrap_axis_angle,
)

from ..conftest import random_pose

PAR = torch.tensor([max(p, 0) for p in SMPL_PARENTS])
seeds = st.integers(0, 2**31 - 1)


def _inputs(seed, batch=2, scale=0.8):
    gen = torch.Generator().manual_seed(seed)
    return random_pose(batch, gen, scale), torch.randn(batch, 10, generator=gen, dtype=torch.float64)


def _schedules(body):
    return [FKSchedule(body, blend="paper"), FKSchedule(body, blend="exact"),
            FKSchedule(body, alpha="cosine"), VertexLinearSchedule(body)]


@given(seeds)
def test_endpoints_of_every_schedule(body64, seed):
    pose, betas = _inputs(seed)
    target = body64(pose, betas).vertices
    for schedule in _schedules(body64):
        traj = schedule.trajectory(pose, betas)
        assert traj.shape == (2, 11, 6890, 3)
        assert (traj[:, 0] - target).abs().max() < 1e-5
        assert (traj[:, -1] - schedule.initial(2)).abs().max() < 1e-5


def test_template_is_upright_and_faces_the_camera(body64):
    m_t = FKSchedule(body64).initial(1)[0]
    rot = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    j0 = body64.joint_template[0]
    assert torch.allclose(m_t, (body64.v_template - j0) @ rot.T + j0, atol=1e-12)
    assert m_t[:, 1].max() - m_t[:, 1].min() > 1.5 and m_t[:, 1].argmin() != m_t[:, 1].argmax()


@given(seeds)
def test_exact_blend_gives_true_smpl_meshes(body64, seed):
    pose, betas = _inputs(seed, batch=1)
    schedule = FKSchedule(body64, blend="exact", alpha="sigmoid")
    traj = schedule.trajectory(pose, betas)
    rel = matrix_to_axis_angle(axis_angle_to_matrix(pose[:, 0]).transpose(-1, -2)
                               @ schedule.template_orientation)
    for t in range(11):
        s = float(schedule.progress(torch.tensor(t)))
        pose_t = pose * (1 - s)
        root = axis_angle_to_matrix(pose[:, 0]) @ axis_angle_to_matrix(s * rel)
        rot_t = torch.cat([root[:, None], axis_angle_to_matrix(pose_t[:, 1:])], 1)
        independent = body64(rot_t, betas * (1 - s)).vertices
        assert (traj[:, t] - independent).abs().max() < 1e-10


@given(seeds)
def test_fk_keeps_bones_rigid_and_vl_does_not(body64, seed):
    pose, betas = _inputs(seed, batch=1, scale=1.0)
    schedule = FKSchedule(body64)
    for t in range(11):
        s = float(schedule.progress(torch.tensor(t)))
        rest = body64.rest_joints(betas * (1 - s))
        posed = schedule.joints(pose, betas, t)
        assert torch.allclose((posed - posed[:, PAR]).norm(dim=-1),
                              (rest - rest[:, PAR]).norm(dim=-1), atol=1e-10)
    assert torch.allclose(schedule.joints(pose, betas, 0), body64(pose, betas).joints, atol=1e-12)
    # VL interpolates vertices: the elbow-to-wrist distance shrinks on a bent arm mid-way
    bent = torch.zeros(1, 24, 3, dtype=torch.float64)
    bent[0, 18] = torch.tensor([0.0, -2.5, 0.0], dtype=torch.float64)
    vl = VertexLinearSchedule(body64).trajectory(bent, None)[:, 5]
    fk = FKSchedule(body64).trajectory(bent, None)[:, 5]
    reg = body64.J_regressor
    forearm = lambda m: (reg[20] @ m[0] - reg[18] @ m[0]).norm()
    rest_len = (body64.joint_template[20] - body64.joint_template[18]).norm()
    assert abs(forearm(fk) - rest_len) < 2e-3
    assert forearm(vl) < rest_len - 0.02


@given(seeds)
def test_joint_angles_shrink_monotonically(body64, seed):
    pose, _ = _inputs(seed, batch=1, scale=2.5)  # angles beyond pi are wrapped first
    wrapped = wrap_axis_angle(pose)
    assert torch.allclose(axis_angle_to_matrix(wrapped), axis_angle_to_matrix(pose), atol=1e-10)
    schedule = FKSchedule(body64, alpha="cosine")
    angles = [((1 - float(schedule.progress(torch.tensor(t)))) * wrapped[:, 1:]).norm(dim=-1)
              for t in range(11)]
    for a, b in zip(angles, angles[1:]):
        assert torch.all(b <= a + 1e-12)
    assert float(angles[0].max()) <= math.pi + 1e-9


def test_root_path_near_pi_has_no_jump(body64):
    schedule = FKSchedule(body64)
    pose = torch.zeros(2, 24, 3, dtype=torch.float64)
    pose[0, 0] = torch.tensor([0.0, 0.0, math.pi - 1e-7], dtype=torch.float64)  # far from R_T
    pose[1, 0] = torch.tensor([math.pi - 1e-9, 0.0, 0.0], dtype=torch.float64)  # almost R_T
    traj = schedule.trajectory(pose, None)
    step = (traj[:, 1:] - traj[:, :-1]).norm(dim=-1).amax(dim=-1)  # (B, T)
    assert torch.all(step < 0.6)  # each of 10 steps moves a vertex by under 60 cm
    assert torch.all(step.amax(1) < 3 * step.median(1).values + 1e-6)  # evenly, no jump


@given(seeds)
def test_per_sample_t_equals_single_runs(body64, seed):
    pose, betas = _inputs(seed, batch=3)
    schedule = FKSchedule(body64)
    t = torch.tensor([0, 4, 10])
    together = schedule.sample(pose, betas, t)
    for i in range(3):
        alone = schedule.sample(pose[i:i + 1], betas[i:i + 1], int(t[i]))
        assert torch.allclose(together[i:i + 1], alone, atol=1e-12)


@pytest.mark.parametrize("blend", ["paper", "exact"])
def test_step_chain_reproduces_the_trajectory(body64, blend):
    pose, betas = _inputs(3)
    schedule = FKSchedule(body64, blend=blend)
    traj = schedule.trajectory(pose, betas)
    mesh = schedule.initial(2)
    for t in schedule.timesteps.tolist():
        mesh = schedule.step(schedule.target(pose, betas, t), t, mesh)
        assert torch.allclose(mesh, traj[:, t - 1], atol=1e-12)


def test_gradients_reach_pose_and_betas(body64):
    pose, betas = _inputs(5)
    pose.requires_grad_()
    betas.requires_grad_()
    FKSchedule(body64).target(pose, betas, torch.tensor([3, 7])).square().sum().backward()
    assert pose.grad.abs().sum() > 0 and betas.grad.abs().sum() > 0


def test_float32_follows_body(body32):
    pose = torch.zeros(1, 24, 3)
    pose[0, 16] = 0.5
    out = FKSchedule(body32).trajectory(pose, torch.zeros(1, 10))
    assert out.dtype == torch.float32


def test_config_round_trip(body64, tmp_path):
    schedule = FKSchedule(body64, num_steps=7, alpha="cosine", blend="exact",
                          template_orientation=torch.tensor([3.0, 0.1, 0.0]))
    again = PostureSchedule.from_config(PostureSchedule.load_config(schedule.save_config(tmp_path)),
                                        body=body64)
    assert isinstance(again, FKSchedule) and again.config == schedule.config
    assert torch.equal(again.template.matrix, schedule.template.matrix)  # exactly the same end
    noise = GaussianNoiseSchedule(num_steps=5, prediction="sample")
    assert GaussianNoiseSchedule.from_config(noise.config.to_dict()).config == noise.config
    with pytest.raises(ValueError, match="is a config of 'GaussianNoiseSchedule', not of PostureSchedule"):
        PostureSchedule.from_config(noise.config.to_dict())
    with pytest.raises(TypeError, match="needs a body model"):
        FKSchedule.from_config(schedule.config, body=None)


def test_ddpm_add_noise_closed_form():
    sched = GaussianNoiseSchedule()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 431, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(4, 431, 3, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[t]
    expected = abar.sqrt()[:, None, None] * x0 + (1 - abar).sqrt()[:, None, None] * eps
    assert torch.allclose(sched.add_noise(x0, eps, t), expected, atol=1e-12)


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "cosine"])
def test_ddim_with_true_model_reconstructs_x0(prediction, beta_schedule):
    sched = GaussianNoiseSchedule(beta_schedule=beta_schedule, prediction=prediction)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(2, 431, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(2, 431, 3, generator=gen, dtype=torch.float64)
    x = sched.add_noise(x0, eps, int(sched.timesteps[0]))
    for t in sched.timesteps.tolist():
        x = sched.step(sched.training_target(x0, eps), t, x)
    assert torch.allclose(x, x0, atol=1e-9)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda b: FKSchedule(b).sample(torch.zeros(2, 24, 3, dtype=torch.float64), None, 11),
         r"t must lie in \[0, 10\]"),
        (lambda b: FKSchedule(b).target(torch.zeros(2, 24, 3, dtype=torch.float64), None, 0),
         r"t must lie in \[1, 10\]"),
        (lambda b: FKSchedule(b).sample(torch.zeros(2, 24, 3, dtype=torch.float64), None,
                                        torch.tensor([1, 2, 3])), r"t must have shape \(2,\)"),
        (lambda b: FKSchedule(b).sample(torch.zeros(2, 24, 3, dtype=torch.float64), None,
                                        torch.tensor([0.5, 1.0])), "integer tensor"),
        (lambda b: FKSchedule(b).trajectory(torch.zeros(2, 23, 3, dtype=torch.float64)),
         r"pose must have shape"),
        (lambda b: FKSchedule(b, alpha=lambda r: 1 - r), "s\\(0\\) = 0"),
        (lambda b: FKSchedule(b, alpha=lambda r: r ** 2 - 0.5 * torch.sin(2 * math.pi * r)),
         "monotone"),
        (lambda b: FKSchedule(b, alpha="quadratic"), "alpha must be one of"),
        (lambda b: FKSchedule(b, blend="soft"), "blend must be"),
        (lambda b: FKSchedule(b, num_steps=0), r"num_steps must be an integer in \[1, 1000\], got 0"),
        (lambda b: FKSchedule(b, template_orientation=torch.zeros(4)), "template_orientation"),
        (lambda b: FKSchedule(b).step(torch.zeros(2, 10, 3), 1, torch.zeros(2, 11, 3)),
         r"both have shape \(B, V, 3\)"),
        (lambda b: GaussianNoiseSchedule(prediction="v"), "prediction must be"),
        (lambda b: GaussianNoiseSchedule(beta_schedule="exp"), "beta_schedule must be"),
        (lambda b: GaussianNoiseSchedule().add_noise(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3), 1000),
         r"t must lie in \[0, 999\]"),
    ],
)
def test_bad_input_is_reported(body64, make, message):
    with pytest.raises(ValueError, match=message):
        make(body64)


def test_noise_schedule_refuses_posture_calls():
    with pytest.raises(AttributeError, match="Use add_noise"):
        GaussianNoiseSchedule().trajectory(torch.zeros(1, 24, 3))


def test_resolve_alpha_accepts_a_valid_callable():
    fn = resolve_alpha(lambda r: r ** 2)
    assert float(fn(torch.tensor(0.5))) == 0.25


def _near_pi_roots(seed, batch=2):
    """Poses whose roots turn by [pi - 0.3, pi] about random axes (far from the template's)."""
    pose, betas = _inputs(seed, batch=batch)
    gen = torch.Generator().manual_seed(seed + 1)
    axis = torch.nn.functional.normalize(torch.randn(batch, 3, generator=gen, dtype=torch.float64), dim=-1)
    pose[:, 0] = axis * (math.pi - 0.3 * torch.rand(batch, 1, generator=gen, dtype=torch.float64))
    return pose, betas


@given(seeds)
def test_exact_blend_with_roots_near_pi_is_the_per_step_body(body64, seed):
    """Every M_t of the exact blend is the body of (theta_t, beta_t), also where the root's path to
    the template is long (roots near 180 deg), for every sample of a batch."""
    pose, betas = _near_pi_roots(seed)
    schedule = FKSchedule(body64, blend="exact")
    traj = schedule.trajectory(pose, betas)
    rot0 = axis_angle_to_matrix(pose[:, 0])
    rel = matrix_to_axis_angle(rot0.transpose(-1, -2) @ schedule.template_orientation)
    joints = wrap_axis_angle(pose[:, 1:])  # the short way round for angles past pi
    for t in range(11):
        s = t / 10
        root = rot0 @ axis_angle_to_matrix(s * rel)
        rot_t = torch.cat([root[:, None], axis_angle_to_matrix((1 - s) * joints)], 1)
        assert (traj[:, t] - body64(rot_t, (1 - s) * betas).vertices).abs().max() < 1e-10


def test_rest_shapes_are_template_plus_both_blend_shapes(body64):
    from kinediff.body.blendshapes import pose_offsets, rest_shapes, shape_offsets

    pose, betas = _inputs(7, batch=3)
    rots = axis_angle_to_matrix(pose)
    expected = (body64.v_template + shape_offsets(betas, body64.shapedirs)
                + pose_offsets(rots, body64.posedirs))
    got = rest_shapes(body64.v_template, body64.shapedirs, betas, rots, body64.posedirs)
    assert (got - expected).abs().max() < 1e-12
    with torch.no_grad():  # the no-gradient path writes into a fresh (huge-page) buffer
        assert torch.equal(rest_shapes(body64.v_template, body64.shapedirs, betas, rots, body64.posedirs),
                           got.detach())
    with pytest.raises(ValueError, match="must share N"):
        rest_shapes(body64.v_template, body64.shapedirs, betas[:2], rots, body64.posedirs)
    with pytest.raises(ValueError, match="v_template must have shape"):
        rest_shapes(body64.v_template[:-1], body64.shapedirs, betas, rots, body64.posedirs)


def test_exact_blend_gradients_match_the_per_step_body(body64):
    """The exact blend's autograd path: gradients of a trajectory's loss equal those through the
    body forward at each step."""
    pose, betas = _inputs(11, batch=1)
    pose.requires_grad_()
    FKSchedule(body64, blend="exact").trajectory(pose, betas)[:, 3:6].square().sum().backward()
    ours = pose.grad.clone()
    pose.grad = None
    schedule = FKSchedule(body64, blend="exact")
    rot0 = axis_angle_to_matrix(pose[:, 0])
    rel = matrix_to_axis_angle(rot0.transpose(-1, -2) @ schedule.template_orientation)
    loss = 0
    for t in range(3, 6):
        s = t / 10
        root = rot0 @ axis_angle_to_matrix(s * rel)
        rot_t = torch.cat([root[:, None], axis_angle_to_matrix((1 - s) * pose[:, 1:])], 1)
        loss = loss + body64(rot_t, (1 - s) * betas).vertices.square().sum()
    loss.backward()
    assert torch.allclose(ours, pose.grad, atol=1e-9) and ours.abs().sum() > 0


@pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                    reason="numba is not installed (pip install 'kinediff[fast]')")
def test_exact_blend_backends_agree(body64):
    pose, betas = _near_pi_roots(3, batch=3)
    with torch.no_grad():
        by_torch = FKSchedule(body64, blend="exact", backend="torch").trajectory(pose, betas)
        by_numba = FKSchedule(body64, blend="exact", backend="numba").trajectory(pose, betas)
    torch.testing.assert_close(by_numba, by_torch, atol=1e-12, rtol=0)


def test_schedule_used_in_inference_mode_still_gives_gradients(body32):
    """What a schedule keeps between calls (its template orientation cast to the body's dtype and
    device) is made outside inference mode: a later call with gradients can save it for backward."""
    schedule = FKSchedule(body32, blend="exact")
    pose, betas = (x.float() for x in _inputs(2))
    with torch.inference_mode():
        first = schedule.trajectory(pose, betas)
    pose.requires_grad_()
    again = schedule.trajectory(pose, betas)
    again.square().sum().backward()
    assert (first - again.detach()).abs().max() < 1e-5 and pose.grad.abs().sum() > 0


@pytest.mark.parametrize("where", ["x0", "noise"])
def test_forward_noising_refuses_nan(where):
    """NaN in a mesh or in the noise would become the training input and target unseen."""
    from kinediff.forward import GaussianNoiseSchedule

    schedule = GaussianNoiseSchedule()
    x0, noise = torch.zeros(2, 5, 3), torch.zeros(2, 5, 3)
    (x0 if where == "x0" else noise)[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=f"{where} contains NaN or infinite values \\(1 NaN"):
        schedule.add_noise(x0, noise, torch.tensor([3, 7]))

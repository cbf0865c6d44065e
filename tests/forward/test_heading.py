"""The heading root path: the estimate from a 2D mesh, the turned template, and the continuity the
paper's geodesic root path lacks for people seen from behind."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kinediff.body import axis_angle_to_matrix
from kinediff.data.limits import root_orientation
from kinediff.forward import FKSchedule, VertexLinearSchedule
from kinediff.forward.heading import (
    estimate_heading,
    heading_matrix,
    heading_of,
    torso_weights,
)

from ..conftest import random_pose

angles = st.floats(-math.pi, math.pi, allow_nan=False)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.atan2(a.sin(), a.cos())


def _upright(yaw: float, seed: int, pitch: float = 0.1, roll: float = -0.05) -> torch.Tensor:
    """(1, 24, 3) float64 pose: an upright body turned by ``yaw`` (0 = facing the camera) with a
    random posture of moderate angles."""
    from kinediff.body import matrix_to_axis_angle

    pose = random_pose(1, torch.Generator().manual_seed(seed), 0.3)
    t = torch.tensor([yaw], dtype=torch.float64)
    root = root_orientation(t, torch.full_like(t, pitch), torch.full_like(t, roll))
    pose[:, 0] = matrix_to_axis_angle(root)
    return pose


@given(angles)
def test_heading_matrix_is_the_turn_about_y(psi):
    expected = axis_angle_to_matrix(torch.tensor([0.0, psi, 0.0], dtype=torch.float64))
    assert torch.allclose(heading_matrix(torch.tensor(psi, dtype=torch.float64)), expected,
                          atol=1e-12)


@given(angles, angles)
def test_heading_of_recovers_a_pure_turn(psi, tilt):
    reference = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    rot = heading_matrix(torch.tensor(psi, dtype=torch.float64)) @ reference
    assert abs(float(_wrap(heading_of(rot, reference) - psi))) < 1e-9
    # a tilt about the camera's x axis after the turn changes the estimate smoothly, not the sign
    tilted = axis_angle_to_matrix(torch.tensor([0.2 * math.sin(tilt), 0.0, 0.0],
                                               dtype=torch.float64)) @ rot
    assert abs(float(_wrap(heading_of(tilted, reference) - psi))) < 0.05


@settings(max_examples=30)
@given(angles, st.floats(0.5, 4.0), st.floats(-50, 50))
def test_estimate_is_exact_on_a_weak_perspective_view(body64, psi, scale, offset):
    """Independent computation: turn the template by R_y(psi) (axis-angle (0, psi, 0)), project
    orthographically with a scale and an offset: the estimate returns psi."""
    schedule = FKSchedule(body64)
    template = schedule.initial(1)[0]
    turn = axis_angle_to_matrix(torch.tensor([0.0, psi, 0.0], dtype=torch.float64))
    mesh2d = scale * (template @ turn.T)[None, :, :2] + offset
    est = estimate_heading(mesh2d, template, torso_weights(body64.weights))
    assert abs(float(_wrap(est[0] - psi))) < 1e-6


def test_estimate_on_posed_bodies_is_close(body64):
    """On posed, tilted bodies the torso estimate is near the true heading for every yaw (the
    root path only has to cover its error, far from pi)."""
    schedule = FKSchedule(body64)
    template = schedule.initial(1)[0]
    w = torso_weights(body64.weights)
    errors = []
    for i, yaw in enumerate(torch.linspace(-math.pi, math.pi, 25)[:-1].tolist()):
        pose = _upright(yaw, seed=i)
        mesh = body64(pose).vertices
        est = estimate_heading(mesh[..., :2], template, w)
        truth = heading_of(axis_angle_to_matrix(pose[0, 0]), schedule.template_orientation)
        assert abs(float(_wrap(truth + yaw))) < 0.05  # the body's yaw turns the other way in
        errors.append(abs(float(_wrap(est[0] - truth))))  # the camera frame (y down)
    assert max(errors) < math.radians(45)  # 36 degrees here: spine twists move the torso


@pytest.mark.parametrize("make", [lambda b: FKSchedule(b, root_path="heading"),
                                  lambda b: FKSchedule(b, root_path="heading", blend="exact"),
                                  lambda b: VertexLinearSchedule(b, root_path="heading")])
def test_heading_path_endpoints(body64, make):
    schedule = make(body64)
    gen = torch.Generator().manual_seed(3)
    pose, betas = random_pose(3, gen, 0.6), torch.randn(3, 10, generator=gen, dtype=torch.float64)
    heading = torch.tensor([-3.0, 0.4, 3.1], dtype=torch.float64)
    traj = schedule.trajectory(pose, betas, heading)
    assert (traj[:, 0] - body64(pose, betas).vertices).abs().max() < 1e-9
    start = schedule.initial(3, heading)
    assert (traj[:, -1] - start).abs().max() < 1e-9
    # M_T is the template turned about the camera's vertical axis through the root joint
    plain = FKSchedule(body64).initial(1)[0]
    j0 = body64.joint_template[0]
    for i in range(3):
        turned = (plain - j0) @ heading_matrix(heading[i]).T + j0
        assert torch.allclose(start[i], turned, atol=1e-9)
    # the labels chain: stepping with the exact labels from M_T reproduces the path
    mesh = start
    for t in schedule.timesteps.tolist():
        mesh = schedule.step(schedule.target(pose, betas, t, heading), t, mesh)
    assert (mesh - traj[:, 0]).abs().max() < 1e-9
    assert torch.allclose(schedule.meshes(pose, betas, torch.tensor([[0, 10]] * 3), heading),
                          traj[:, [0, 10]], atol=1e-12)


def _middle(schedule, pose, heading=None):
    return schedule.sample(pose, None, 5, heading)


def test_heading_path_is_continuous_for_every_yaw_and_the_geodesic_is_not(body64):
    """Nearby targets (1 degree apart in yaw) give nearby intermediate meshes M_5 for every yaw
    with the heading root path (heading estimated from each target's own 2D view); the paper's
    geodesic path breaks at the back view (yaw near 180 degrees)."""
    heading_path, geodesic = FKSchedule(body64, root_path="heading"), FKSchedule(body64)
    template = heading_path.initial(1, torch.zeros(1, dtype=torch.float64))[0]
    w = torso_weights(body64.weights)
    gaps_heading, gaps_geodesic = [], []
    for yaw in torch.linspace(-math.pi, math.pi, 37).tolist():
        a, b = yaw - math.radians(0.5), yaw + math.radians(0.5)
        pa, pb = _upright(a, seed=1), _upright(b, seed=1)
        ha = estimate_heading(body64(pa).vertices[..., :2], template, w)
        hb = estimate_heading(body64(pb).vertices[..., :2], template, w)
        gaps_heading.append(float((_middle(heading_path, pa, ha) - _middle(heading_path, pb, hb))
                                  .norm(dim=-1).max()))
        gaps_geodesic.append(float((_middle(geodesic, pa) - _middle(geodesic, pb))
                                   .norm(dim=-1).max()))
    assert max(gaps_heading) < 0.05  # metres, for a 1-degree change of the target
    assert max(gaps_geodesic) > 0.5  # the paper's path: a jump at the back view


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: FKSchedule(b, root_path="spin"), "root_path must be .geodesic. or .heading., got .spin."),
        (lambda b: FKSchedule(b).sample(torch.zeros(2, 24, 3, dtype=torch.float64), None, 1,
                                        torch.zeros(2, dtype=torch.float64)),
         "only read with root_path='heading'"),
        (lambda b: FKSchedule(b, root_path="heading").sample(
            torch.zeros(2, 24, 3, dtype=torch.float64), None, 1), "needs heading="),
        (lambda b: FKSchedule(b, root_path="heading").initial(2, torch.zeros(3)),
         r"heading must be a float tensor of shape \(2,\)"),
        (lambda b: FKSchedule(b, root_path="heading").initial(2, torch.zeros(2, dtype=torch.long)),
         "float tensor"),
        (lambda b: FKSchedule(b).meshes(torch.zeros(2, 24, 3, dtype=torch.float64), None,
                                        torch.zeros(2, dtype=torch.long)),
         r"shape \(2, M\)"),
        (lambda b: FKSchedule(b).meshes(torch.zeros(2, 24, 3, dtype=torch.float64), None,
                                        torch.full((2, 2), 11)), r"t must lie in \[0, 10\]"),
        (lambda b: estimate_heading(torch.zeros(2, 5, 3), torch.zeros(5, 3), torch.ones(5)),
         r"mesh2d must have shape \(B, N, 2\)"),
        (lambda b: estimate_heading(torch.zeros(2, 5, 2), torch.zeros(4, 3), torch.ones(5)),
         r"template must have shape \(5, 3\)"),
        (lambda b: torso_weights(torch.zeros(6, 24)), "no vertex"),
        (lambda b: estimate_heading(torch.zeros(2, 5, 2), torch.zeros(5, 3), torch.zeros(5)),
         "not all zero"),
        (lambda b: estimate_heading(torch.zeros(2, 5, 2), torch.zeros(5, 3),
                                    torch.tensor([1.0, -1, 1, 1, 1])), "non-negative"),
    ],
)
def test_bad_input_is_reported(body64, call, message):
    with pytest.raises(ValueError, match=message):
        call(body64)


def test_heading_config_round_trip(body64, tmp_path):
    from kinediff.forward import PostureSchedule

    schedule = FKSchedule(body64, root_path="heading")
    again = PostureSchedule.from_config(PostureSchedule.load_config(schedule.save_config(tmp_path)),
                                        body=body64)
    assert again.root_path == "heading" and again.config == schedule.config
    assert FKSchedule(body64).config.root_path == "geodesic"


def test_estimate_is_float32_under_autocast_and_for_bf16_input(body32):
    """Mixed precision (bf16 autocast, as the Trainer uses on CUDA) leaves the fit in float32."""
    template = FKSchedule(body32).initial(1)[0]
    w = torso_weights(body32.weights)
    turn = axis_angle_to_matrix(torch.tensor([0.0, 2.5, 0.0]))
    mesh2d = 40 * (template @ turn.T)[None, :, :2] + 32
    exact = estimate_heading(mesh2d, template, w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = estimate_heading(mesh2d, template, w)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact)
    low = estimate_heading(mesh2d.bfloat16(), template, w)  # bf16 input: rounded, still close
    assert low.dtype == torch.float32 and abs(float(low[0]) - 2.5) < 0.02

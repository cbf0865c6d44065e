"""One Euro filters for video (kinediff.video): jitter, lag bound, frame-rate awareness, SO(3), errors."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.video import (
    OneEuroFilter,
    OneEuroParams,
    RotationOneEuroFilter,
    SMPLSmoother,
    frame_times,
    one_euro_alpha,
    ramp_lag,
    smooth_rotations,
    smooth_sequence,
    smooth_smpl,
    unwrap_axis_angle,
)

F64 = torch.float64


def body_motion(times: torch.Tensor, people: int = 2) -> torch.Tensor:
    """(T, P, 24, 3) axis-angle: each joint a sinusoid about its own fixed axis (0.2-0.8 rad, 0.3-1 Hz);
    the root's angle swings around pi (pi +- 0.8 rad at 0.4 Hz), so its axis-angle vector flips sign
    every time it passes pi."""
    g = torch.Generator().manual_seed(1)
    axes = torch.nn.functional.normalize(torch.randn(people, 24, 3, generator=g, dtype=F64), dim=-1)
    amp = 0.2 + 0.6 * torch.rand(people, 24, 1, generator=g, dtype=F64)
    freq = 0.3 + 0.7 * torch.rand(people, 24, 1, generator=g, dtype=F64)
    phase = 2 * math.pi * torch.rand(people, 24, 1, generator=g, dtype=F64)
    t = times.to(F64)[:, None, None, None]
    angle = amp * torch.sin(2 * math.pi * freq * t + phase)
    angle[:, :, 0] = math.pi + 0.8 * torch.sin(2 * math.pi * 0.4 * t[:, :, 0])
    return angle * axes


def grid(fps: float, seconds: float = 4.0) -> torch.Tensor:
    return torch.arange(round(seconds * fps) + 1, dtype=F64) / fps


def jitter(aa: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Each rotation times exp(n), n ~ N(0, sigma^2 I) rad: noise on the manifold."""
    n = sigma * torch.randn(aa.shape, generator=torch.Generator().manual_seed(seed), dtype=aa.dtype)
    return matrix_to_axis_angle(axis_angle_to_matrix(aa) @ axis_angle_to_matrix(n))


def geodesic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle (rad) between the rotations of two axis-angle tensors (..., 3)."""
    rel = axis_angle_to_matrix(a).transpose(-1, -2) @ axis_angle_to_matrix(b)
    return matrix_to_axis_angle(rel).norm(dim=-1)


def jerk_energy(aa: torch.Tensor) -> float:
    """Sum of squared third finite differences in time of the rotation matrices (continuous in SO(3),
    unlike axis-angle vectors)."""
    r = axis_angle_to_matrix(aa)
    return float(((r[3:] - 3 * r[2:-1] + 3 * r[1:-2] - r[:-3]) ** 2).sum())


# ---------------------------------------------------------------------------------------------------
# the filter itself, against the paper's definitions


def scalar_one_euro(xs, ts, min_cutoff, beta, d_cutoff):
    """The paper's filter on Python floats, one sample at a time (raw derivative), as a reference."""
    out, x_hat, dx_hat = [], None, 0.0
    for i, (x, t) in enumerate(zip(xs, ts)):
        if i == 0:
            x_hat = x
        else:
            te = t - ts[i - 1]
            a_d = 1.0 / (1.0 + (1.0 / (2 * math.pi * d_cutoff)) / te)
            dx_hat += a_d * ((x - xs[i - 1]) / te - dx_hat)
            cutoff = min_cutoff + beta * abs(dx_hat)
            a = 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / te)
            x_hat += a * (x - x_hat)
        out.append(x_hat)
    return out


def test_vector_filter_matches_the_papers_scalar_filter_on_irregular_times():
    g = torch.Generator().manual_seed(0)
    ts = torch.cat([torch.zeros(1, dtype=F64), (0.01 + 0.05 * torch.rand(59, generator=g, dtype=F64)).cumsum(0)])
    x = torch.sin(3 * ts)[:, None, None] * torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=F64) + \
        0.05 * torch.randn(60, 2, 2, generator=g, dtype=F64)
    out = smooth_sequence(x, timestamps=ts, min_cutoff=0.7, beta=0.4, d_cutoff=1.3)
    for i in range(2):
        for j in range(2):
            ref = scalar_one_euro(x[:, i, j].tolist(), ts.tolist(), 0.7, 0.4, 1.3)
            torch.testing.assert_close(out[:, i, j], torch.tensor(ref, dtype=F64), rtol=1e-12, atol=1e-12)
    assert one_euro_alpha(1.0, 1 / 30) == pytest.approx(1 / (1 + (1 / (2 * math.pi)) * 30))


def test_vector_mode_is_rotation_equivariant():
    """vector=True: one cutoff per 3-vector from its speed, so rotating the coordinates commutes."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 3, 3, generator=g, dtype=F64).cumsum(0) * 0.05
    q = axis_angle_to_matrix(torch.tensor([0.3, -1.1, 0.7], dtype=F64))
    a = smooth_sequence(x, fps=30, beta=2.0, vector=True) @ q.T
    b = smooth_sequence(x @ q.T, fps=30, beta=2.0, vector=True)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# (1) jitter: lower jerk, and the per-component axis-angle filter breaks where the manifold one does not


def test_jitter_is_filtered_to_lower_jerk():
    times = grid(30)
    clean = body_motion(times)
    noisy = jitter(clean, 0.03, seed=2)
    out = smooth_rotations(noisy, fps=30, min_cutoff=1.0, beta=1.0)
    # measured 22x (jerk 0.03 rad jitter -> filtered); stated factor 10
    assert jerk_energy(noisy) / jerk_energy(out) > 10.0
    # and still the motion: mean angle to the clean pose 0.084 rad (causal lag included)
    assert float(geodesic(out, clean).mean()) < 0.1

    transl = torch.stack([torch.sin(times), 0.3 * torch.cos(2 * times), 0.1 * times], -1)
    noisy_t = transl + 0.01 * torch.randn(transl.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
    out_t = smooth_sequence(noisy_t, fps=30, min_cutoff=1.0, beta=1.0, vector=True)

    def third(x):
        return float(((x[3:] - 3 * x[2:-1] + 3 * x[1:-2] - x[:-3]) ** 2).sum())

    assert third(noisy_t) / third(out_t) > 10.0


def test_per_component_axis_angle_filter_fails_across_pi_and_the_manifold_filter_does_not():
    times = grid(30)
    clean = body_motion(times)
    noisy = jitter(clean, 0.03, seed=2)
    manifold = smooth_rotations(noisy, fps=30, min_cutoff=1.0, beta=0.3)
    per_component = smooth_sequence(noisy, fps=30, min_cutoff=1.0, beta=0.3)   # the wrong way
    root_manifold = geodesic(manifold, clean)[:, :, 0]
    root_components = geodesic(per_component, clean)[:, :, 0]
    # the axis-angle vector jumps from about pi n to -pi n at the wrap: filtering its components drags
    # the root through the identity, 2.5 rad off; on the manifold the worst frame is 0.37 rad off
    assert float(root_components.max()) > 2.0
    assert float(root_manifold.max()) < 0.5


# ---------------------------------------------------------------------------------------------------
# (2) lag: a constant angular velocity lags by |w| / (2 pi (min_cutoff + beta |w|)), never more than
# |w| / (2 pi min_cutoff)


@pytest.mark.parametrize("min_cutoff, beta", [(1.0, 0.0), (0.5, 0.8), (2.0, 3.0)])
def test_constant_velocity_rotation_lags_by_the_documented_bound(min_cutoff, beta):
    omega, axis = 4.0, torch.nn.functional.normalize(torch.tensor([1.0, 2.0, -0.5], dtype=F64), dim=0)
    g = torch.Generator().manual_seed(6)
    # irregular times, 20-60 ms apart: the steady state is the same at every interval
    ts = torch.cat([torch.zeros(1, dtype=F64), (0.02 + 0.04 * torch.rand(299, generator=g, dtype=F64)).cumsum(0)])
    truth = (omega * ts)[:, None] * axis          # angle well past pi, over and over
    out = smooth_rotations(truth, timestamps=ts, min_cutoff=min_cutoff, beta=beta)
    lag = geodesic(out, truth)
    steady = lag[ts > 5.0]                        # > 20 time constants of the slowest cutoff
    expected = ramp_lag(omega, min_cutoff, beta)
    torch.testing.assert_close(steady, torch.full_like(steady, expected), rtol=1e-6, atol=1e-9)
    assert float(lag.max()) <= omega / (2 * math.pi * min_cutoff) + 1e-9   # transient included
    # the filtered rotation trails the measurement: it sits at an earlier angle about the same axis
    behind = matrix_to_axis_angle(axis_angle_to_matrix(out[-1]).T @ axis_angle_to_matrix(truth[-1]))
    torch.testing.assert_close(behind, expected * axis, rtol=1e-6, atol=1e-9)


def test_vector_ramp_lag_and_the_papers_derivative_lags_no_more():
    ts = grid(60, 6.0)
    x = (2.5 * ts)[:, None]
    raw = smooth_sequence(x, fps=60, min_cutoff=1.0, beta=0.5)
    filtered = smooth_sequence(x, fps=60, min_cutoff=1.0, beta=0.5, derivative="filtered")
    assert float((x - raw)[-1]) == pytest.approx(ramp_lag(2.5, 1.0, 0.5), rel=1e-6)
    assert 0 < float((x - filtered)[-1]) < float((x - raw)[-1])
    aa = (2.5 * ts)[:, None] * torch.tensor([0.0, 0.6, 0.8], dtype=F64)
    rot = geodesic(smooth_rotations(aa, fps=60, min_cutoff=1.0, beta=0.5, derivative="filtered"), aa)[-1]
    assert 0 < float(rot) < ramp_lag(2.5, 1.0, 0.5)
    assert float(rot) == pytest.approx(float((x - filtered)[-1]), rel=1e-6)   # the scalar filter's lag


# ---------------------------------------------------------------------------------------------------
# (3) frame-rate awareness


def test_same_motion_at_30_and_60_fps_gives_the_same_trajectory():
    params = dict(min_cutoff=1.0, beta=1.0)
    at30 = smooth_rotations(body_motion(grid(30)), fps=30, **params)
    at60 = smooth_rotations(body_motion(grid(60)), fps=60, **params)
    told_30 = smooth_rotations(body_motion(grid(60)), fps=30, **params)   # a per-frame filter's view
    diff = geodesic(at30, at60[::2])
    effect = geodesic(at30, body_motion(grid(30)))
    # measured: 30 vs 60 fps at most 0.014 rad apart; the filter moves poses by up to 0.24 rad, and the
    # same 60 fps frames filtered as if at 30 fps end up 0.10 rad from the 30 fps result
    assert float(diff.max()) < 0.02
    assert float(diff.max()) < 0.1 * float(effect.max())
    assert float(geodesic(at30, told_30[::2]).max()) > 5 * float(diff.max())


def test_irregular_timestamps_follow_the_regular_result():
    """30 fps frames plus extra frames at random times in between: the 30 fps frames come out as
    from the regular 30 fps sequence, to within the 30-vs-60 fps tolerance."""
    base = grid(30)
    g = torch.Generator().manual_seed(7)
    extra = (base[:-1] + (0.2 + 0.6 * torch.rand(len(base) - 1, generator=g, dtype=F64)) / 30)
    extra = extra[torch.rand(len(extra), generator=g) < 0.5]
    ts, order = torch.sort(torch.cat([base, extra]))
    irregular = smooth_rotations(body_motion(ts), timestamps=ts, min_cutoff=1.0, beta=1.0)
    regular = smooth_rotations(body_motion(base), fps=30, min_cutoff=1.0, beta=1.0)
    keep = order < len(base)
    assert float(geodesic(irregular[keep], regular).max()) < 0.02


# ---------------------------------------------------------------------------------------------------
# (4) valid, continuous rotations


def test_outputs_are_rotations_continuous_across_the_pi_wrap():
    times = grid(30)
    clean = body_motion(times)
    noisy = jitter(clean, 0.05, seed=8)
    out = smooth_rotations(noisy, fps=30, min_cutoff=1.0, beta=1.0)
    assert float(out.norm(dim=-1).max()) <= math.pi + 1e-9          # canonical axis-angle
    # root vectors jump at the wrap (canonical form), the rotations do not: measured largest frame-to-
    # frame step 0.23 rad over all joints (the jittered input's 0.37), 0.16 rad for the root
    steps = geodesic(out[1:], out[:-1])
    assert float(steps.max()) < float(geodesic(noisy[1:], noisy[:-1]).max())
    assert float(steps[:, :, 0].max()) < 0.2
    assert float((out[1:, :, 0] - out[:-1, :, 0]).norm(dim=-1).max()) > 5.0
    unwrapped = unwrap_axis_angle(out)
    assert float((unwrapped[1:] - unwrapped[:-1]).norm(dim=-1).max()) < float(steps.max()) + 1e-6
    assert float(geodesic(unwrapped, out).max()) < 1e-6
    assert float(unwrapped[:, :, 0].norm(dim=-1).max()) > math.pi + 0.5   # past pi, no jump


def test_float32_state_stays_orthonormal_over_a_long_stream():
    f = RotationOneEuroFilter(min_cutoff=0.5, beta=0.5)
    g = torch.Generator().manual_seed(9)
    for i in range(500):
        r = f.step_matrix(axis_angle_to_matrix(torch.randn(2, 24, 3, generator=g)), i / 30)
    eye = torch.eye(3).expand_as(r)
    torch.testing.assert_close(r.transpose(-1, -2) @ r, eye, atol=2e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(2, 24), atol=2e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------
# SMPL parameters: batch == streaming, people independent, numpy in numpy out


def test_smooth_smpl_streaming_batch_and_people():
    times = grid(30, 1.0)
    g = torch.Generator().manual_seed(10)
    pose = jitter(body_motion(times, people=3), 0.03, seed=11)
    betas = torch.randn(3, 10, generator=g, dtype=F64) + 0.1 * torch.randn(len(times), 3, 10, generator=g, dtype=F64)
    transl = torch.randn(len(times), 3, 3, generator=g, dtype=F64).cumsum(0) * 0.02
    kw = dict(min_cutoff=1.0, beta=0.7, betas_params=OneEuroParams(0.1), transl_params=OneEuroParams(1.5, 2.0))
    out = smooth_smpl(pose, betas, transl, fps=30, **kw)
    assert out.pose.shape == pose.shape and out.betas.shape == betas.shape and out.transl.shape == transl.shape

    smoother = SMPLSmoother(**kw)
    live = [smoother.step(float(t), pose[i], betas[i], transl[i]) for i, t in enumerate(times)]
    torch.testing.assert_close(torch.stack([s.pose for s in live]), out.pose, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(torch.stack([s.betas for s in live]), out.betas, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.stack([s.transl for s in live]), out.transl, rtol=1e-12, atol=1e-12)

    alone = smooth_smpl(pose[:, 1], betas[:, 1], transl[:, 1], fps=30, **kw)   # (T, 24, 3): one person
    for a, b in zip(alone, out):
        torch.testing.assert_close(a, b[:, 1], rtol=1e-9, atol=1e-9)

    as_np = smooth_smpl(pose.numpy(), transl=transl.numpy(), timestamps=times.numpy(), **kw)
    assert isinstance(as_np.pose, np.ndarray) and as_np.betas is None
    np.testing.assert_allclose(as_np.transl, out.transl.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# (5) errors


def test_errors_name_the_argument():
    pose = torch.zeros(5, 24, 3)
    with pytest.raises(ValueError, match="strictly increasing: timestamps\\[2\\]"):
        smooth_smpl(pose, timestamps=[0.0, 0.1, 0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="strictly increasing: timestamps\\[3\\]"):
        frame_times(4, timestamps=[0.0, 0.2, 0.3, 0.25])
    with pytest.raises(ValueError, match="timestamps must have shape \\(5,\\)"):
        smooth_smpl(pose, timestamps=[0.0, 0.1])
    with pytest.raises(ValueError, match="finite"):
        frame_times(2, timestamps=[0.0, float("nan")])
    with pytest.raises(ValueError, match="exactly one of fps"):
        smooth_smpl(pose)
    with pytest.raises(ValueError, match="exactly one of fps"):
        smooth_smpl(pose, fps=30, timestamps=range(5))
    with pytest.raises(ValueError, match=r"fps must be a finite number > 0 \(a frame rate\)"):
        smooth_smpl(pose, fps=0)
    with pytest.raises(ValueError, match="pose must have shape \\(T, J, 3\\) or \\(T, P, J, 3\\)"):
        smooth_smpl(torch.zeros(5, 72), fps=30)
    with pytest.raises(ValueError, match="pose must have shape"):
        smooth_smpl(torch.zeros(5, 2, 1, 24, 3), fps=30)
    with pytest.raises(ValueError, match="transl must have shape \\(T, 3\\)"):
        smooth_smpl(pose, transl=torch.zeros(5, 2), fps=30)
    with pytest.raises(ValueError, match="betas must have shape \\(T, P, N\\)"):
        smooth_smpl(torch.zeros(5, 2, 24, 3), betas=torch.zeros(5, 10), fps=30)
    with pytest.raises(ValueError, match=r"min_cutoff must be a finite number > 0 \(a frequency in Hz\), got 0"):
        OneEuroFilter(min_cutoff=0.0)
    with pytest.raises(ValueError, match=r"d_cutoff must be a finite number > 0 \(a frequency in Hz\), got -1"):
        RotationOneEuroFilter(d_cutoff=-1.0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got -0.1"):
        smooth_smpl(pose, fps=30, beta=-0.1)
    with pytest.raises(ValueError, match=r"min_cutoff must be a finite number > 0 \(a frequency in Hz\), got nan"):
        OneEuroParams(min_cutoff=float("nan"))
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got inf"):
        OneEuroParams(beta=float("inf"))
    with pytest.raises(ValueError, match="derivative must be 'raw' or 'filtered'"):
        smooth_smpl(pose, fps=30, derivative="central")
    with pytest.raises(TypeError, match="transl_params must be a OneEuroParams"):
        smooth_smpl(pose, transl=torch.zeros(5, 3), fps=30, transl_params=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="axis_angle must have shape \\(\\*, 3\\)"):
        RotationOneEuroFilter()(torch.zeros(24, 4), 0.0)


def test_streaming_errors_leave_the_filter_usable():
    f = RotationOneEuroFilter()
    f(torch.zeros(24, 3), 0.0)
    with pytest.raises(ValueError, match="strictly increasing: got t=0.0 after t=0.0"):
        f(torch.zeros(24, 3), 0.0)
    with pytest.raises(ValueError, match="started on \\(24, 3, 3\\); call reset\\(\\)"):
        f(torch.zeros(2, 24, 3), 0.1)
    f(torch.zeros(24, 3), 0.1)   # both refusals left the state alone

    s = SMPLSmoother()
    s.step(0.0, torch.zeros(24, 3), transl=torch.zeros(3))
    with pytest.raises(ValueError, match="strictly increasing"):
        s.step(-0.5, torch.zeros(24, 3), transl=torch.zeros(3))
    with pytest.raises(ValueError, match="differ from the first frame's"):
        s.step(0.1, torch.zeros(24, 3))
    with pytest.raises(ValueError, match="transl must have shape \\(3\\)"):
        s.step(0.1, torch.zeros(24, 3), transl=torch.zeros(2, 3))
    out = s.step(0.1, torch.zeros(24, 3), transl=torch.ones(3))
    assert out.transl.shape == (3,)
    s.reset()
    assert s.step(0.0, torch.zeros(2, 24, 3)).pose.shape == (2, 24, 3)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        OneEuroFilter()([1.0], 0.0)
    with pytest.raises(ValueError, match="t must be a finite time"):
        OneEuroFilter()(torch.zeros(3), float("inf"))


@pytest.mark.parametrize("obj", [OneEuroFilter, SMPLSmoother, smooth_smpl], ids=lambda o: o.__qualname__)
def test_docstring_examples_run(obj):
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(obj, obj.__qualname__) if t.examples]
    assert tests, f"{obj.__qualname__} has no Example: block"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0

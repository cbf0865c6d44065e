"""The one reverse loop (kinediff.forward.reverse_process): eq. 5 step by step, the rollout's
per-sample stop, the DDIM loop, and every user of it (predict, rollout training, M2PDecoder.reverse)
running it; and the heading of a 2D mesh that has none."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.forward import GaussianNoiseSchedule, VertexLinearSchedule, estimate_heading, reverse_process
from kinediff.posturehmr import DEGENERATE_RADIUS_PX


class Recorder:
    """A denoiser that moves each mesh by a fixed function of the step, recording its calls."""

    def __init__(self) -> None:
        self.steps: list[list[int]] = []

    def __call__(self, mesh: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        assert step.dtype == torch.long and step.shape == (mesh.shape[0],)
        self.steps.append(step.tolist())
        return 0.01 * step[:, None, None].to(mesh) * torch.ones_like(mesh) + 0.1 * mesh.sin()


@settings(max_examples=25, deadline=None)
@given(stop=st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_the_loop_is_eq5_and_stops_each_sample_at_its_step(body64, stop):
    schedule = VertexLinearSchedule(body64, num_steps=6)
    start = torch.randn(len(stop), 5, 3, generator=torch.Generator().manual_seed(len(stop)),
                        dtype=torch.float64)
    denoise = Recorder()
    path = reverse_process(denoise, schedule, start, return_trajectory=True)
    assert path.shape == (len(stop), 7, 5, 3) and torch.equal(path[:, 6], start)
    mesh = start
    for t in range(6, 0, -1):  # eq. 5, one step at a time
        mesh = mesh + Recorder()(mesh, torch.full((len(stop),), t))
        assert torch.equal(path[:, t - 1], mesh)
    assert [s[0] for s in denoise.steps] == [6, 5, 4, 3, 2, 1]
    # rollout: every sample runs steps 6 .. 2 whatever its stop (a fixed count), moving only while
    # its stop lies below the step, so index s holds its own M_s for s in [stop, T]
    counted = Recorder()
    rolled = reverse_process(counted, schedule, start, stop=torch.tensor(stop), return_trajectory=True)
    assert len(counted.steps) == 5 and rolled.shape == path.shape
    for i, t in enumerate(stop):
        for s in range(t, 7):
            torch.testing.assert_close(rolled[i, s], path[i, s], rtol=0, atol=0)
    assert torch.equal(reverse_process(Recorder(), schedule, start), path[:, 0])


def test_the_ddim_loop_is_the_schedules_steps():
    schedule = GaussianNoiseSchedule(num_steps=4, prediction="sample")
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x0 = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    seen = []

    def denoise(mesh, step):
        seen.append(int(step[0]))
        return x0

    out = reverse_process(denoise, schedule, x)
    mesh = x
    for t in schedule.timestep_values:
        mesh = schedule.step(x0, t, mesh)
    assert seen == list(schedule.timestep_values) == [750, 500, 250, 0]
    assert torch.equal(out, mesh) and torch.allclose(out, x0)  # DDIM with the true x0 lands on it


def test_predict_rollouts_and_the_decoder_run_the_same_loop(body32, cache_dir, monkeypatch):
    import kinediff.posturehmr.model as model_module
    from kinediff.decoders import m2p

    calls = []

    def counting(denoise, schedule, start, **kw):
        calls.append(kw.get("stop") is not None)
        return reverse_process(denoise, schedule, start, **kw)

    monkeypatch.setattr(m2p, "reverse_process", counting)
    monkeypatch.setattr(model_module, "reverse_process", counting)
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(train_condition="gt"), body32)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    model.eval().predict(images)
    assert calls == [False]
    mesh2d = torch.rand(2, model.num_coarse, 2) * 60
    cond, _ = model.condition(images, mesh2d=mesh2d)
    start = model.hierarchy.downsample(model.template(2, model.heading(cond)))
    model._rollout(start, torch.tensor([3, 7]), model.decoder.encode_condition(cond))
    assert calls == [False, True]


def test_a_2d_mesh_collapsed_to_a_point_has_no_posture_and_no_heading(body32, cache_dir):
    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    n = model.num_coarse
    for point in (0.0, 31.7, 1e4):  # the rounding of its mean would otherwise be blown up
        mesh2d = torch.full((2, n, 2), point) + DEGENERATE_RADIUS_PX / 10 * torch.rand(2, n, 2)
        cond = model._normalise(mesh2d)
        assert torch.equal(cond, torch.zeros_like(cond))
        assert torch.equal(model.heading(cond), torch.zeros(2))
    spread = torch.rand(2, n, 2, generator=torch.Generator().manual_seed(3)) * 40
    cond = model._normalise(spread)
    radius = cond.square().sum(-1).mean(1).sqrt()
    torch.testing.assert_close(radius, torch.ones(2))  # unit RMS radius otherwise
    # the estimate itself: no spread along the image x axis, heading 0 (not atan2(0, -0) = pi)
    flat = torch.zeros(1, n, 2)
    flat[..., 1] = torch.linspace(-1, 1, n)
    assert float(estimate_heading(flat, model.heading_template, model.heading_weights)) == 0.0

"""The forward processes' shared interface: training examples, predict_original, the split between
every forward process and the posture paths, and VL as FK's sibling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kinediff.forward import (
    FKSchedule,
    ForwardProcess,
    GaussianNoiseSchedule,
    NotAPosturePath,
    PostureSchedule,
    TemplateEnd,
    TrainingBodies,
    VertexLinearSchedule,
    default_template_orientation,
)
from kinediff.mesh import MeshHierarchy

from ..conftest import random_pose

seeds = st.integers(0, 2**31 - 1)


@pytest.fixture(scope="module")
def hierarchy(body64, cache_dir):
    return MeshHierarchy.from_body(body64, cache_dir=cache_dir).double()


def _target(body, seed, batch=3, heading=None):
    gen = torch.Generator().manual_seed(seed)
    pose = random_pose(batch, gen, 0.8)
    betas = torch.randn(batch, 10, generator=gen, dtype=torch.float64)
    return TrainingBodies(pose, betas, body(pose, betas).vertices, heading)


def _posture(body):
    return [FKSchedule(body), FKSchedule(body, blend="exact", alpha="cosine"), VertexLinearSchedule(body),
            FKSchedule(body, root_path="heading"), VertexLinearSchedule(body, root_path="heading")]


@settings(max_examples=10, deadline=None)
@given(seeds, st.sampled_from([None, 1, 3]))
def test_posture_training_example_is_the_path(body64, seed, k):
    for schedule in _posture(body64):
        heading = (torch.rand(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
                   * 2 * math.pi if schedule.root_path == "heading" else None)
        target = _target(body64, seed, heading=heading)
        ex = schedule.training_example(target, torch.Generator().manual_seed(seed), k)
        reps = schedule.num_steps if k is None else k
        assert ex.repeats == reps and ex.loss_steps == schedule.num_steps
        assert ex.inputs.shape == ex.labels.shape == ex.labels_full.shape == (3 * reps, 6890, 3)
        steps = ex.steps.view(3, reps)
        assert steps.min() >= 1 and steps.max() <= schedule.num_steps
        assert all(len(set(row.tolist())) == reps for row in steps)  # distinct per sample
        for i in range(3):  # entries are ordered sample by sample
            for j in range(reps):
                t = int(steps[i, j])
                one = slice(i, i + 1)
                h = None if heading is None else heading[one]
                m_t = schedule.sample(target.pose[one], target.betas[one], t, h)[0]
                m_prev = schedule.sample(target.pose[one], target.betas[one], t - 1, h)[0]
                assert torch.allclose(ex.inputs[i * reps + j], m_t, atol=1e-10)
                assert torch.allclose(ex.labels[i * reps + j], m_prev, atol=1e-10)
        assert torch.equal(ex.target, ex.labels - ex.inputs)
        # the decoder's perfect output gives back the label, through the same step as inference
        assert torch.allclose(schedule.predict_original(ex.target, ex.inputs, ex.steps), ex.labels)
        assert torch.allclose(schedule.step(ex.target, ex.steps, ex.inputs), ex.labels)


def test_posture_training_example_projects_and_replaces(body64, hierarchy):
    schedule = FKSchedule(body64)
    target = _target(body64, 0)
    ex = schedule.training_example(target, torch.Generator().manual_seed(0), 2, hierarchy.downsample)
    assert ex.inputs.shape == (6, 431, 3) and ex.labels_full.shape == (6, 6890, 3)
    assert torch.allclose(ex.labels, hierarchy.downsample(ex.labels_full))
    own = torch.tensor([1, 4])
    new = ex.with_inputs(own, torch.zeros(2, 431, 3, dtype=torch.float64))
    assert torch.equal(new.inputs[own], torch.zeros(2, 431, 3, dtype=torch.float64))
    assert torch.equal(new.target[own], ex.labels[own])  # the step back from the new input
    assert torch.equal(new.inputs[0], ex.inputs[0]) and torch.equal(ex.inputs, ex.inputs.clone())


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
def test_noise_training_example_and_predict_original(body64, prediction):
    schedule = GaussianNoiseSchedule(prediction=prediction)
    target = _target(body64, 1)
    ex = schedule.training_example(target, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)  # the documented draws: t, then the noise
    t = torch.randint(0, 1000, (3,), generator=gen)
    noise = torch.randn(target.vertices.shape, generator=gen).to(target.vertices)
    assert torch.equal(ex.steps, t) and ex.repeats == 1 and ex.loss_steps == 1
    assert torch.equal(ex.inputs, schedule.add_noise(target.vertices, noise, t))
    assert torch.equal(ex.labels, target.vertices) and torch.equal(ex.labels_full, target.vertices)
    assert torch.equal(ex.target, noise if prediction == "epsilon" else target.vertices)
    # a perfect output stands for x0, whichever the parameterisation (the closed form of DDPM)
    assert torch.allclose(schedule.predict_original(ex.target, ex.inputs, ex.steps), target.vertices,
                          atol=1e-8)
    # with_inputs leaves the noise process's target alone
    assert torch.equal(ex.with_inputs(torch.tensor([0]), ex.inputs[:1] * 0).target, ex.target)


def test_every_process_is_a_forward_process_and_only_paths_are_posture_schedules(body64):
    fk, vl, noise = FKSchedule(body64), VertexLinearSchedule(body64), GaussianNoiseSchedule()
    assert all(isinstance(s, ForwardProcess) for s in (fk, vl, noise))
    assert isinstance(fk, PostureSchedule) and isinstance(vl, PostureSchedule)
    assert not isinstance(noise, PostureSchedule)
    assert not isinstance(vl, FKSchedule) and not hasattr(vl, "joints")  # VL has no skeleton
    for name in ("sample", "trajectory", "target", "meshes", "meshes_at", "joints"):
        assert not hasattr(noise, name)
        with pytest.raises(NotAPosturePath, match="Use add_noise"):
            getattr(noise, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        noise.nothing  # noqa: B018
    assert issubclass(NotAPosturePath, AttributeError)


def test_fk_and_vl_share_one_template_end(body64):
    for root_path in ("geodesic", "heading"):
        fk, vl = FKSchedule(body64, root_path=root_path), VertexLinearSchedule(body64, root_path=root_path)
        heading = torch.tensor([0.3, -2.0], dtype=torch.float64) if root_path == "heading" else None
        assert torch.equal(fk.initial(2, heading), vl.initial(2, heading))
        end = TemplateEnd(body64, root_path=root_path)
        assert torch.equal(end.meshes(heading, 2), fk.initial(2, heading))
    assert torch.equal(TemplateEnd(body64).orientation, default_template_orientation())


def test_template_end_refuses_bad_input(body64):
    with pytest.raises(ValueError, match="root_path must be .geodesic. or .heading., got .spiral."):
        TemplateEnd(body64, root_path="spiral")
    with pytest.raises(ValueError, match="root_path must be 'geodesic' or 'heading', got 'spiral'"):
        FKSchedule(body64, root_path="spiral")
    with pytest.raises(ValueError, match="needs heading="):
        TemplateEnd(body64, root_path="heading").orientations(None, 2)
    with pytest.raises(ValueError, match="only read with root_path='heading'"):
        TemplateEnd(body64).orientations(torch.zeros(2, dtype=torch.float64), 2)
    with pytest.raises(ValueError, match="not a rotation"):
        TemplateEnd(body64, torch.ones(3, 3))


def test_the_base_refuses_a_missing_body_and_path(body64):
    with pytest.raises(TypeError, match="needs a body model"):
        PostureSchedule(10)
    with pytest.raises(NotImplementedError, match="must define meshes_at"):
        PostureSchedule(body64).trajectory(torch.zeros(1, 24, 3, dtype=torch.float64))


def test_vl_config_round_trip_without_fk_fields(body64, tmp_path):
    vl = VertexLinearSchedule(body64, num_steps=6, alpha="cosine", root_path="heading")
    assert "blend" not in vl.config.field_names()
    again = ForwardProcess.from_config(ForwardProcess.load_config(vl.save_config(tmp_path)),
                                       body=body64)
    assert type(again) is VertexLinearSchedule and again.config == vl.config
    assert repr(again) == ("VertexLinearSchedule(num_steps=6, alpha='cosine', "
                           "template_orientation=None, root_path='heading')")

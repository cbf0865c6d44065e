"""GPU readiness checked on the CPU: the hot paths hold no host synchronisation (each compiles as
one graph: ``torch.compile(fullgraph=True)`` fails on ``.item()``, ``bool(tensor)``, a loop over a
tensor's values or a data-dependent shape), bf16 autocast keeps the losses, the value-check switch,
and the pieces that replace the CPU paths under the compiler (dense skinning, the rasterizer as
one custom operator).

The graphs are captured with the "eager" backend: what breaks a graph is decided while Dynamo
captures it, before any backend runs, and inductor's C++ compilation takes minutes per model on
this machine (benchmarks/gpu_check.py compiles for real on a GPU).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch
from tolerances import atol_for

from kinediff import PostureHMR, PostureHMRConfig, value_checks, value_checks_enabled
from kinediff.body import linear_blend_skinning
from kinediff.body.skinning import linear_blend_skinning_affine
from kinediff.data.sample import collate
from kinediff.data.synthetic import SynthBody
from kinediff.forward import FKSchedule, GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.render import soft_silhouette
from kinediff.training import Trainer

EAGER = {"backend": "eager", "fullgraph": True}


@pytest.fixture(scope="module")
def tiny_batch(body32, cache_dir):
    cfg = PostureHMRConfig.tiny()
    data = SynthBody(6, seed=3, body=body32, image_size=cfg.image_size, mesh_factors=cfg.mesh_factors)
    return collate([data[i] for i in range(6)])


def _model(body, seed: int = 0, **kw) -> PostureHMR:
    """A tiny model whose decoder moves meshes (an untrained one outputs exactly zero: its last
    layer starts at zero, which would make any comparison of the 3D stage trivially equal)."""
    torch.manual_seed(seed)
    model = PostureHMR(PostureHMRConfig.tiny(**kw), body)
    head = getattr(model.decoder, "head", None)
    if head is not None:
        torch.nn.init.normal_(head[-1].weight, std=0.02)
    return model


def _loss(model: PostureHMR, batch, stage: str, fn=None):
    """The stage's terms with fixed randomness (the 3D stage draws steps, noise and rollouts)."""
    model.train_mode(stage)
    fn = fn or model.loss
    torch.manual_seed(7)
    return fn(batch, stage, None)


@pytest.mark.parametrize(("stage", "kw"), [
    ("2d", {}),
    ("3d", {}),  # FK, heading root path, rollout training (the tiny preset's)
    ("3d", {"schedule": {"class": "VertexLinearSchedule", "root_path": "geodesic"}}),
    ("3d", {"schedule": {"class": "GaussianNoiseSchedule", "prediction": "sample"}}),
    ("3d", {"decoder": {"class": "GraphormerRegressor"}}),
])
def test_a_training_step_compiles_as_one_graph(body32, tiny_batch, stage, kw):
    model = _model(body32, **kw)
    compiled = torch.compile(model.loss, **EAGER)  # a graph break raises here
    eager_terms = _loss(model, tiny_batch, stage)
    eager_grads = torch.autograd.grad(eager_terms["total"], [p for p in model.parameters()
                                                             if p.requires_grad], allow_unused=True)
    terms = _loss(model, tiny_batch, stage, compiled)
    grads = torch.autograd.grad(terms["total"], [p for p in model.parameters() if p.requires_grad],
                                allow_unused=True)
    assert set(terms) == set(eager_terms)
    for key in terms:
        torch.testing.assert_close(terms[key], eager_terms[key], rtol=1e-5,
                                   atol=atol_for(eager_terms[key], ulps=256))
    for g, e in zip(grads, eager_grads):
        assert (g is None) == (e is None)
        if g is not None:
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))


@pytest.mark.parametrize("kw", [{}, {"schedule": {"class": "GaussianNoiseSchedule", "prediction": "sample"}}, {"decoder": {"class": "GraphormerRegressor"}}])
def test_predict_compiles_as_one_graph(body32, tiny_batch, kw):
    model = _model(body32, **kw).eval()
    images = tiny_batch["image"]
    want = model.predict(images, return_trajectory=True, generator=torch.Generator().manual_seed(1))
    model.compiled = EAGER  # what PostureHMR(compile=...) sets
    got = model.predict(images, return_trajectory=True, generator=torch.Generator().manual_seed(1))
    for key in ("vertices", "joints", "trajectory"):
        torch.testing.assert_close(got[key], want[key])


def test_schedules_and_rasterizer_compile_as_one_graph(body32):
    torch.manual_seed(0)
    pose, betas = torch.randn(3, 24, 3) * 0.5, torch.randn(3, 10)
    for schedule in (FKSchedule(body32), FKSchedule(body32, blend="exact"),
                     VertexLinearSchedule(body32)):
        torch.testing.assert_close(torch.compile(schedule.trajectory, **EAGER)(pose, betas),
                                   schedule.trajectory(pose, betas))
    noise = GaussianNoiseSchedule(num_steps=5)
    x, out = torch.randn(2, 7, 3), torch.randn(2, 7, 3)
    t = torch.tensor([800, 800])
    torch.testing.assert_close(torch.compile(noise.step, **EAGER)(out, t, x), noise.step(out, t, x))
    verts = (torch.rand(2, 30, 2) * 28 + 2).requires_grad_(True)
    faces = torch.randint(0, 30, (40, 3))
    mask = torch.compile(lambda v: soft_silhouette(v, faces, 32, 0.7), **EAGER)(verts)
    (grad,) = torch.autograd.grad(mask.square().sum(), verts)
    want = soft_silhouette(verts, faces, 32, 0.7)
    (want_grad,) = torch.autograd.grad(want.square().sum(), verts)
    torch.testing.assert_close(mask, want)
    torch.testing.assert_close(grad, want_grad)


def test_the_rasterizer_operator_passes_torch_opcheck():
    # schema, fake (meta) implementation, autograd registration and its backward against finite
    # differences, as torch.library checks every custom operator
    torch.manual_seed(0)
    verts = (torch.rand(1, 6, 2, dtype=torch.float64) * 6 + 1).requires_grad_(True)
    faces = torch.randint(0, 6, (4, 3))
    torch.library.opcheck(torch.ops.kinediff.soft_coverage_sum.default,
                          (verts, faces, 8, 8, 0.8, 1e-6, 50))
    torch.autograd.gradcheck(lambda v: torch.ops.kinediff.soft_coverage_sum(
        v, faces, 8, 8, 0.8, 1e-6, 37), (verts,))  # several chunks


@pytest.mark.parametrize("batch_shape", [(5,), (2, 3)])
def test_dense_skinning_equals_the_blocked_cpu_path(body64, batch_shape):
    # the dense form runs under torch.compile and on GPUs; the blocked one on the CPU
    torch.manual_seed(1)
    body = body64
    n = int(torch.tensor(batch_shape).prod())
    tf = torch.randn(*batch_shape, body.num_joints, 3, 4, dtype=torch.float64)
    rest = body.v_template + 0.01 * torch.randn(*batch_shape, body.num_vertices, 3, dtype=torch.float64)
    blocked = linear_blend_skinning(rest, body.weights, tf, backend="torch")
    dense = torch.compile(lambda r, a: linear_blend_skinning(r, body.weights, a), **EAGER)(rest, tf)
    torch.testing.assert_close(dense, blocked)
    offsets = 0.01 * torch.randn(2, body.num_vertices, 3, dtype=torch.float64)
    coeffs = torch.rand(2, 3, dtype=torch.float64)
    tfs = torch.randn(2, 3, body.num_joints, 3, 4, dtype=torch.float64)
    feats = torch.randn(2, 3, body.posedirs.shape[0], dtype=torch.float64) * 0.1
    args = (body.v_template, offsets, coeffs, body.weights, tfs, body.posedirs, feats)
    blocked = linear_blend_skinning_affine(*args, backend="torch")
    dense = torch.compile(lambda *a: linear_blend_skinning_affine(*a), **EAGER)(*args)
    torch.testing.assert_close(dense, blocked)
    assert n > 0


@pytest.mark.parametrize("kw", [{}, {"schedule": {"class": "VertexLinearSchedule", "root_path": "geodesic"}},
                                {"schedule": {"class": "GaussianNoiseSchedule", "prediction": "sample"}}])
def test_bf16_autocast_keeps_the_losses_within_2_percent(body32, tiny_batch, kw):
    # the 3D stage conditioned on the GT 2D mesh: an untrained 2D head's mesh is noise, from which
    # the heading (a fit to the torso) is ill-conditioned and flips under any rounding
    model = _model(body32, train_condition="gt", **kw)
    for stage in ("2d", "3d"):
        full = _loss(model, tiny_batch, stage)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = _loss(model, tiny_batch, stage)
        for key, value in full.items():
            if float(value.detach().abs()) > 1e-6:
                rel = float((half[key].detach().float() - value.detach()).abs() / value.detach().abs())
                assert rel < 0.02, (stage, key, rel)


def test_trainer_turns_value_checks_off_in_its_steps_unless_asked(body32, tiny_batch, tmp_path,
                                                                   monkeypatch):
    data = [{k: v[i] for k, v in tiny_batch.items()} for i in range(4)]
    seen = []
    for check_values in (False, True):
        model = _model(body32)
        original = model.loss

        def spy(*args, original=original, **kwargs):
            seen.append(value_checks_enabled())
            return original(*args, **kwargs)

        monkeypatch.setattr(model, "loss", spy)
        trainer = Trainer(model, "2d", data, tmp_path / str(check_values), epochs=1, batch_size=2,
                          progress=False, tensorboard=False, check_values=check_values)
        trainer.fit()
    assert seen == [False, False, True, True]
    assert value_checks_enabled()


def test_a_compiled_trainer_takes_the_same_steps(body32, tiny_batch, tmp_path):
    # 5 samples in batches of 2: two batch sizes, which a compiled step takes without recompiling
    # on a symbolic batch size (the CPU draws of the steps cannot take one)
    data = [{k: v[i] for k, v in tiny_batch.items()} for i in range(5)]
    history = []
    for compile in (False, {"backend": "eager", "fullgraph": True}):
        model = _model(body32)
        trainer = Trainer(model, "3d", data, tmp_path / str(bool(compile)), epochs=1, batch_size=2,
                          progress=False, tensorboard=False, compile=compile)
        torch.manual_seed(0)
        history.append(trainer.fit())
    assert len(history[0]) == len(history[1]) >= 2
    for eager, compiled in zip(*history):
        for key in ("total", "posture", "grad_norm"):
            assert compiled[key] == pytest.approx(eager[key], rel=1e-4)


def test_value_checks_switch_is_scoped():
    assert value_checks_enabled()
    with value_checks(False):
        assert not value_checks_enabled()
        with value_checks(True):
            assert value_checks_enabled()
        assert not value_checks_enabled()
        other = []
        thread = threading.Thread(target=lambda: other.append(value_checks_enabled()))
        thread.start()
        thread.join()
        assert other == [True]  # another thread keeps its own setting
    assert value_checks_enabled()
    with pytest.raises(TypeError, match="enabled must be True or False"), \
            value_checks("no"):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="compile must be True, False or a dict"):
        PostureHMR(PostureHMRConfig.tiny(), None, compile="yes")  # type: ignore[arg-type]


def test_value_checks_off_skip_data_checks_only(body32):
    bad = torch.zeros(1, 24, 3)
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="pose contains NaN"):
        body32(bad)
    with value_checks(False):
        assert torch.isnan(body32(bad).vertices).any()  # used as given
        with pytest.raises(ValueError, match="pose must have shape"):  # shapes: always checked
            body32(torch.zeros(1, 23, 3))
    schedule = FKSchedule(body32)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 10\]"):
        schedule.step(torch.zeros(1, 6890, 3), torch.tensor([11]), torch.zeros(1, 6890, 3))
    with pytest.raises(ValueError, match=r"t must lie in \[1, 10\], got 0"), \
            value_checks(False):  # an int: always checked
        schedule.step(torch.zeros(1, 6890, 3), 0, torch.zeros(1, 6890, 3))


def test_noise_step_refuses_t_outside_its_timesteps():
    noise = GaussianNoiseSchedule(num_steps=10)
    x = torch.zeros(2, 5, 3)
    assert noise.timestep_values == tuple(int(t) for t in noise.timesteps)
    for t in (5, 950, -1, 1000):
        with pytest.raises(ValueError, match="t must"):
            noise.step(x, t, x)
    with pytest.raises(ValueError, match=r"members of the timesteps .* got \[901\]"):
        noise.step(x, torch.tensor([900, 901]), x)
    noise.step(x, torch.tensor([900, 800]), x)  # any members, per sample


def test_predict_refuses_integer_nan_and_out_of_range_images(body32):
    model = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    good = torch.rand(1, 3, 64, 64)
    with pytest.raises(TypeError, match=r"divide a uint8 image by 255"):
        model.predict((good * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="images contains NaN"):
        model.predict(torch.where(good > 0.5, torch.nan, good))
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\].*divid"):
        model.predict(good * 255)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 64, 64\)"):
        model.predict(good[:, :, :32])


def test_body_refuses_non_rotations_and_absurd_angles(body32):
    eye = torch.eye(3).repeat(1, 24, 1, 1)
    for bad, what in ((eye * 0, "pose\\[0, 5\\] is not a rotation"), (eye * 1.1, "is not a rotation"),
                      (eye * torch.tensor([1.0, 1.0, -1.0]), "is not a rotation")):
        if what.startswith("pose\\[0, 5"):
            bad = eye.clone()
            bad[0, 5] = 0
        with pytest.raises(ValueError, match=what):
            body32(bad)
    body32(eye)  # the identity, and rotations rounded in float32, pass
    huge = torch.zeros(1, 24, 3)
    huge[0, 2, 0] = 1e20
    with pytest.raises(ValueError, match="beyond MAX_ANGLE"):
        body32(huge)
    model = replace(PostureHMRConfig.tiny())
    assert model.image_size == 64


def test_a_copy_of_a_compiled_model_predicts_with_its_own_weights(body32):
    import copy
    import pickle

    model = PostureHMR(PostureHMRConfig.tiny(**{"schedule.root_path": "geodesic"}), body32, compile=EAGER).eval()
    images = torch.rand(2, 3, 64, 64)
    first = model.predict(images)["vertices"]
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.decoder.head[-1].parameters():
            p.add_(0.05)
    moved = twin.predict(images)["vertices"]
    twin.compiled = None
    torch.testing.assert_close(moved, twin.predict(images)["vertices"])
    assert not torch.allclose(moved, first)
    assert pickle.loads(pickle.dumps(model)).compiled == EAGER  # picklable after a compiled call


def test_non_finite_gradients_stop_a_step_before_the_weights(body32, tiny_batch, tmp_path):
    data = [{k: v[i] for k, v in tiny_batch.items()} for i in range(2)]
    model = _model(body32)
    trainer = Trainer(model, "2d", data, tmp_path, epochs=1, batch_size=2, progress=False,
                      tensorboard=False)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}  # (BatchNorm statistics
    param = next(p for p in model.head.parameters() if p.requires_grad)  # move in any forward)
    param.register_hook(lambda g: g * float("nan"))  # a finite loss with NaN gradients
    batch = collate(data)
    with pytest.raises(FloatingPointError, match="non-finite loss or gradients"):
        trainer.train_step(batch)
    assert all(torch.equal(v, before[k]) for k, v in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_dense_skinning_refuses_what_the_blocked_path_refuses(body64):
    tf = torch.randn(2, body64.num_joints, 3, 4, dtype=torch.float64)
    rest = body64.v_template.expand(2, -1, -1)
    compiled = torch.compile(lambda b: linear_blend_skinning(rest, body64.weights, tf, backend=b),
                             **EAGER)
    with pytest.raises(Exception, match="backend='numba' cannot skin these inputs"):
        compiled("numba")
    with pytest.raises(ValueError, match="backend must be .auto., .torch. or .numba., got"):
        linear_blend_skinning(rest, body64.weights, tf, backend="bogus")
    with pytest.raises(Exception, match="weights are torch.float32 but the transforms torch.float64"):
        torch.compile(lambda: linear_blend_skinning(rest, body64.weights.float(), tf), **EAGER)()

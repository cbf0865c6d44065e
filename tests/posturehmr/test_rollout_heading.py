"""PostureHMR's convergence options: the heading root path (``root_path``) and training on the
decoder's own rollouts (``rollout_share``), their defaults and the paper's settings."""

from __future__ import annotations

import pytest
import torch

from kinediff.data import SynthBody
from kinediff.decoders import GraphormerRegressor
from kinediff.forward import GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.forward.heading import estimate_heading, heading_of
from kinediff.posturehmr import PostureHMR, PostureHMRConfig, table3_configs
from kinediff.training.config import TrainConfig


@pytest.fixture(scope="module")
def data(body32, cache_dir):
    return SynthBody(8, seed=9, body=body32, image_size=64, mesh_factors=(4, 4, 4))


@pytest.fixture(scope="module")
def batch(data):
    return data.batch(range(8))


def tiny(paper_path: bool = False, **kw) -> PostureHMRConfig:
    train = {k: kw.pop(k) for k in TrainConfig.field_names() if k in kw}
    config = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=8, **train), render=None,
                                   train_condition="gt", **kw)
    return config.with_paper_path() if paper_path else config


def test_defaults_and_the_papers_path():
    c = PostureHMRConfig()
    assert (c.schedule.root_path, c.rollout_share) == ("heading", 0.5)
    paper = c.with_paper_path()
    assert (paper.schedule.root_path, paper.rollout_share) == ("geodesic", 0.0)
    for name, cfg in table3_configs().items():  # Table 3 is the paper's forward process
        if cfg.posture_path:
            assert (cfg.schedule.root_path, cfg.rollout_share) == ("geodesic", 0.0), name


@pytest.mark.parametrize(("kw", "message"), [
    (dict(condition="image_feature", decoder={"cond_dim": 64}), "image-feature condition has none"),
    (dict(rollout_share="0.5"), r"rollout_share must be a finite number in \[0, 1\), got '0.5'"),
    (dict(train={"grad_clip": True}), "grad_clip must be a finite number > 0, got True"),
    (dict(decoder=GraphormerRegressor.Config(dim=64), rollout_share=0.0),
     "rollout_share=0.0 has no effect here .*decoder GraphormerRegressor"),
    (dict(schedule={"root_path": "spin"}), "root_path must be 'geodesic' or 'heading', got 'spin'"),
    (dict(rollout_share=1.0), r"rollout_share must be a finite number in \[0, 1\), got 1.0"),
    (dict(rollout_share=-0.1), r"rollout_share must be a finite number in \[0, 1\)"),
    (dict(schedule=GaussianNoiseSchedule.Config(), rollout_share=0.2),
     "rollout_share=0.2 has no effect here .*GaussianNoiseSchedule"),
    (dict(schedule={"class": "GaussianNoiseSchedule", "root_path": "geodesic"}),
     r"unknown GaussianNoiseSchedule fields \['root_path'\]"),
])
def test_config_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        PostureHMRConfig.tiny(**kw)


def test_model_heading_is_the_estimate_on_its_condition(body32, batch):
    model = PostureHMR(tiny(), body32)
    cond, _ = model.condition(batch["image"].float(), mesh2d=batch["mesh2d"].float())
    heading = model.heading(cond)
    expected = estimate_heading(batch["mesh2d"].float(), model.heading_template,
                                model.heading_weights)
    torch.testing.assert_close(heading, expected)  # centring and scaling do not change it
    # close to the truth on GT 2D meshes of SynthBody (yaw +-180 degrees)
    truth = heading_of(model.body.rotations(batch["pose"].float())[:, 0],
                       model.schedule.template_orientation)
    err = torch.atan2((heading - truth).sin(), (heading - truth).cos()).abs()
    assert float(err.max()) < 0.8  # radians: far from pi, where the geodesic path breaks
    assert PostureHMR(tiny(paper_path=True), body32).heading(cond) is None


def test_rollout_is_the_decoders_own_reverse_process(body32, batch):
    torch.manual_seed(0)
    model = PostureHMR(tiny(), body32)
    with torch.no_grad():  # a decoder that moves (the untrained one's last layer is zero)
        for p in model.decoder.head.parameters():
            p.normal_(0, 0.02)
    cond, _ = model.condition(batch["image"].float(), mesh2d=batch["mesh2d"].float())
    enc = model.decoder.encode_condition(cond)
    start = model.hierarchy.downsample(model.template(8, model.heading(cond)))
    t = torch.tensor([10, 9, 7, 5, 3, 1, 1, 2])
    path = model._rollout(start, t, enc)
    assert path.shape == (8, 11, *start.shape[1:])
    for i in range(8):
        mesh = start[i:i + 1]
        torch.testing.assert_close(path[i:i + 1, 10], mesh)  # index T: the start itself
        for step in range(10, int(t[i]), -1):  # every M_s for s in [t, T] is the rollout's
            mesh = mesh + model.decoder(mesh, step=torch.tensor([step]), condition=enc[i:i + 1])
            torch.testing.assert_close(path[i:i + 1, step - 1], mesh, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", [
    dict(), dict(steps_per_sample=3), dict(schedule=VertexLinearSchedule.Config(root_path="heading")),
    dict(paper_path=True)])
def test_training_step_with_rollouts(body32, batch, overrides):
    torch.manual_seed(0)
    model = PostureHMR(tiny(**overrides), body32)
    with torch.no_grad():
        for p in model.decoder.head.parameters():
            p.normal_(0, 0.02)
    gen = torch.Generator().manual_seed(1)
    terms = model.loss_3d(batch, generator=gen, epoch=0)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    grads = [p.grad for p in model.decoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    again = PostureHMR(tiny(**overrides), body32)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.loss_3d(batch, generator=torch.Generator().manual_seed(1),
                                             epoch=0)["total"], terms["total"])  # seeded


def test_rollout_share_changes_the_inputs_not_the_labels_path(body32, batch):
    """With rollouts the posture label is the step from the decoder's own M_t back to the
    path's M_{t-1}; without, from the path's M_t: the two losses differ once the decoder moves."""
    torch.manual_seed(0)
    a = PostureHMR(tiny(rollout_share=0.5), body32)
    with torch.no_grad():
        for p in a.decoder.head.parameters():
            p.normal_(0, 0.05)
    b = PostureHMR(tiny(rollout_share=0.0), body32)
    b.load_state_dict(a.state_dict())
    la = a.loss_3d(batch, generator=torch.Generator().manual_seed(1), epoch=0)["posture"]
    lb = b.loss_3d(batch, generator=torch.Generator().manual_seed(1), epoch=0)["posture"]
    assert not torch.allclose(la, lb)


def test_grad_clip_none_logs_the_norm_and_clips_nothing(body32, data, tmp_path):
    from kinediff.training import Trainer

    assert PostureHMRConfig().train.grad_clip is None and PostureHMRConfig.tiny().train.grad_clip == 100.0
    for bad in (0, -1.0, "1"):
        with pytest.raises(ValueError, match="grad_clip must be a finite number > 0"):
            TrainConfig.tiny(grad_clip=bad)
    runs = {}
    for clip in (None, 1e-6):
        torch.manual_seed(0)
        model = PostureHMR(tiny(grad_clip=clip), body32)
        rows = Trainer(model, "3d", data, tmp_path / str(clip), epochs=1, batch_size=8,
                       progress=False, tensorboard=False).fit()
        runs[clip] = (rows[0]["grad_norm"], model.decoder.head[-1].weight.detach().clone())
    assert runs[None][0] > 1e-3  # the norm is logged either way
    torch.testing.assert_close(runs[None][0], runs[1e-6][0])
    # Adam normalises the step, so compare against a clip that zeroes every gradient but eps:
    assert not torch.allclose(runs[None][1], runs[1e-6][1])


def test_a_checkpoint_resumes_into_the_model_its_config_describes(body32, data, tmp_path):
    """A checkpoint's config is compared as a config (not as a string): the JSON written in another
    key order resumes; another config is refused."""
    import json

    from kinediff.training import Trainer

    cfg = tiny(paper_path=True)
    torch.manual_seed(0)
    trainer = Trainer(PostureHMR(cfg, body32), "3d", data, tmp_path, epochs=10, batch_size=8,
                      max_steps=1, progress=False, tensorboard=False)
    trainer.fit()
    ckpt = torch.load(trainer.checkpoint_path, weights_only=True)
    saved = json.loads(ckpt["config"])
    ckpt["config"] = json.dumps(dict(reversed(list(saved.items()))))
    torch.save(ckpt, trainer.checkpoint_path)
    again = Trainer(PostureHMR(PostureHMRConfig.from_json(ckpt["config"]), body32), "3d", data,
                    tmp_path, epochs=10, batch_size=8, max_steps=2, progress=False,
                    tensorboard=False)
    assert again.resume() and again.step == 1
    other = Trainer(PostureHMR(tiny(), body32), "3d", data, tmp_path, epochs=10, batch_size=8,
                    progress=False, tensorboard=False)
    with pytest.raises(ValueError, match="different PostureHMRConfig"):
        other.resume()


@pytest.mark.parametrize("per_sample", [1, 3])
def test_with_rollouts_puts_each_chosen_samples_own_rollout_in(body32, batch, per_sample):
    """Each chosen entry's input is its own sample's reverse process run alone from the template
    down to the entry's step (one entry per sample: only the chosen samples are rolled out; more:
    the whole batch is), and no other entry changes."""
    from kinediff.forward import TrainingBodies

    torch.manual_seed(0)
    model = PostureHMR(tiny(steps_per_sample=per_sample), body32)
    with torch.no_grad():
        for p in model.decoder.head.parameters():
            p.normal_(0, 0.02)
    cond, _ = model.condition(batch["image"].float(), mesh2d=batch["mesh2d"].float())
    heading = model.heading(cond)
    gt = model.ground_truth(batch)
    example = model.schedule.training_example(
        TrainingBodies(batch["pose"].float(), batch["betas"].float(), gt["vertices"], heading),
        generator=torch.Generator().manual_seed(2), steps_per_sample=per_sample,
        project=model.hierarchy.downsample)
    enc = model.decoder.encode_condition(cond)
    count = 4 * per_sample - 1
    out = model._with_rollouts(example, enc, heading, count, torch.Generator().manual_seed(3))
    own = torch.randperm(8 * per_sample, generator=torch.Generator().manual_seed(3))[:count]
    changed = sorted(int(e) for e in own)
    same = [e for e in range(8 * per_sample) if e not in changed]
    torch.testing.assert_close(out.inputs[same], example.inputs[same], rtol=0, atol=0)
    for entry in changed:
        i, t = entry // per_sample, int(example.steps[entry])
        mesh = model.hierarchy.downsample(model.template(1, heading[i:i + 1]))
        for step in range(model.schedule.num_steps, t, -1):
            mesh = mesh + model.decoder(mesh, step=torch.tensor([step]), condition=enc[i:i + 1])
        torch.testing.assert_close(out.inputs[entry], mesh[0], atol=1e-5, rtol=1e-5)

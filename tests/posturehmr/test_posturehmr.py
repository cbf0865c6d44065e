"""PostureHMR: configs, Table 3 rows, training steps, prediction, checkpoints and resume."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from kinediff.data import SynthBody
from kinediff.posturehmr import TABLE3_ROWS, PostureHMR, PostureHMRConfig, table3_configs
from kinediff.training import (
    EpochBatchSampler,
    Trainer,
    evaluate,
    load_checkpoint,
    load_model_weights,
    model_weights,
)
from kinediff.training.config import TrainConfig


@pytest.fixture(scope="module")
def data(body32, cache_dir):
    return SynthBody(24, seed=5, body=body32, image_size=64, mesh_factors=(4, 4, 4))


@pytest.fixture(scope="module")
def batch(data):
    return data.batch(range(8))


def tiny(**kw) -> PostureHMRConfig:
    train = {k: kw.pop(k) for k in TrainConfig.field_names() if k in kw}
    return PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=8, **train), **kw)


# -- config -----------------------------------------------------------------------------------------

def test_config_defaults_are_the_papers_and_round_trip():
    c = PostureHMRConfig()
    assert (c.schedule.num_steps, c.head.num_points, c.decoder.dim, c.decoder.ffn_dim,
            c.render_weight) == (10, 81, 128, 512, 10.0)
    t = c.train
    assert (t.lr_backbone, t.lr_2d, t.lr_3d, t.epochs, t.lr_decay_epoch) == (1e-3, 5e-4, 5e-5, 40, 30)
    assert c.mesh_factors == (4, 4) and c.image_size == 256 and c.head.heatmap_size == 64
    for cfg in (c, PostureHMRConfig.tiny()):
        assert PostureHMRConfig.from_json(cfg.to_json()) == cfg


def test_table3_rows_change_only_their_fields():
    base = PostureHMRConfig.tiny()
    configs = table3_configs(base, cond_dim=64)
    assert list(configs) == list(TABLE3_ROWS)
    row_fields = {"schedule", "condition", "decoder", "render", "rollout_share"}
    for name, cfg in configs.items():
        changed = {f.name for f in fields(cfg) if getattr(cfg, f.name) != getattr(base, f.name)}
        assert changed <= row_fields, name
        assert cfg.decoder.replace(cond_dim=2) == base.decoder, name  # the sizes are the base's
        assert (cfg.schedule.class_name, cfg.condition, cfg.render is not None) == (
            TABLE3_ROWS[name]["schedule"], TABLE3_ROWS[name]["condition"], TABLE3_ROWS[name]["render"])


def test_config_errors():
    with pytest.raises(ValueError, match="schedule must name its class under 'class'"):
        PostureHMRConfig.from_dict({"schedule": {"class": "diffusion"}})
    with pytest.raises(ValueError, match=r"unknown PostureHMR fields \['num_step'\]"):
        PostureHMRConfig.from_dict({"num_step": 10})
    with pytest.raises(ValueError, match="multiple of head.heatmap_size"):
        PostureHMRConfig(image_size=250)
    with pytest.raises(ValueError, match=r"loss_weights: unknown Loss3DWeights fields \['vertices'\]"):
        PostureHMRConfig(loss_weights={"vertices": 1.0})


# -- training steps -----------------------------------------------------------------------------------

ROWS = [*TABLE3_ROWS, "regressor"]


@pytest.mark.parametrize("row", ROWS)
def test_each_table3_config_trains_and_reduces_its_loss(row, body32, batch):
    cfg = (tiny(decoder={"class": "GraphormerRegressor"}) if row == "regressor"
           else table3_configs(tiny(), cond_dim=64)[row])
    torch.manual_seed(0)
    model = PostureHMR(cfg, body32)
    for stage in model.stages():
        opt = torch.optim.Adam(model.parameter_groups(stage))

        def loss() -> torch.Tensor:
            torch.manual_seed(1)  # the same steps and noise every time: a fixed objective
            return model.train_mode(stage).loss(batch, stage)["total"]

        first = loss()
        assert torch.isfinite(first)
        for _ in range(6):
            opt.zero_grad()
            loss().backward()
            opt.step()
        assert float(loss().detach()) < float(first.detach()), (row, stage)


def test_3d_stage_leaves_the_frozen_2d_stage_alone(body32, batch):
    model = PostureHMR(tiny(), body32)
    names = {id(p) for g in model.parameter_groups("3d") for p in g["params"]}
    assert not any(id(p) in names for p in model.head.parameters())
    model.train_mode("3d")
    assert model.decoder.training and not model.head.training
    with pytest.raises(ValueError, match="no 2D stage"):
        PostureHMR(tiny().with_condition("image_feature", 64), body32).parameter_groups("2d")


# -- prediction -------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", [{}, {"class": "GaussianNoiseSchedule", "prediction": "sample"}])
def test_predict_shapes_and_trajectory_starts_at_the_template(schedule, body32, batch):
    model = PostureHMR(tiny(schedule=schedule), body32)
    out = model.predict(batch["image"][:2], return_trajectory=True,
                        generator=torch.Generator().manual_seed(0))
    T = model.config.schedule.num_steps
    assert out["vertices"].shape == (2, 6890, 3) and out["joints"].shape == (2, 24, 3)
    assert out["trajectory"].shape == (2, T + 1, 6890, 3) and out["mesh2d"].shape == (2, 108, 2)
    torch.testing.assert_close(out["trajectory"][:, 0], out["vertices"])
    if not schedule:  # FK: the template turned to the heading estimated from the 2D mesh
        heading = model.heading(model.condition(batch["image"][:2])[0])
        template = model.hierarchy.downsample(model.schedule.initial(2, heading))
        torch.testing.assert_close(out["trajectory_coarse"][:, T], template)
    with pytest.raises(ValueError, match="images must have shape"):
        model.predict(torch.zeros(1, 3, 32, 32))


def test_init_coefficients_fits_the_2d_mesh(body32, batch):
    model = PostureHMR(tiny(), body32)
    model.init_coefficients(batch)
    gt = model.ground_truth(batch)
    fitted = model.head.coefficients @ gt["points"]
    assert (fitted - gt["mesh2d"]).norm(dim=-1).mean() < 1.0  # pixels, on 64-pixel crops


# -- trainer, checkpoints, resume -------------------------------------------------------------------

def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    a = EpochBatchSampler(10, 4, seed=1, epoch=2).batches()
    assert a == EpochBatchSampler(10, 4, seed=1, epoch=2).batches() and len(a) == 2
    assert a != EpochBatchSampler(10, 4, seed=1, epoch=3).batches()
    assert list(EpochBatchSampler(10, 4, seed=1, epoch=2, skip=1)) == a[1:]
    ranks = [list(EpochBatchSampler(10, 4, 1, 2, rank=r, world_size=2)) for r in (0, 1)]
    assert [r0 + r1 for r0, r1 in zip(*ranks)] == a  # each global batch split over the ranks
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        EpochBatchSampler(10, 3, world_size=2)


def _trainer(model, data, out, **kw):
    return Trainer(model, "3d", data, out, epochs=2, batch_size=8, progress=False,
                   tensorboard=False, **kw)


def test_resume_is_bit_identical(body32, data, batch, tmp_path):
    cfg = tiny(train_condition="gt", condition_noise_px=1.0)
    torch.manual_seed(0)
    straight = PostureHMR(cfg, body32)
    _trainer(straight, data, tmp_path / "a").fit()
    torch.manual_seed(0)
    first = PostureHMR(cfg, body32)
    _trainer(first, data, tmp_path / "b", max_steps=4, checkpoint_every=1).fit()  # mid-epoch 2
    torch.manual_seed(123)  # whatever happens between runs must not matter
    resumed = PostureHMR(cfg, body32)
    trainer = _trainer(resumed, data, tmp_path / "b")
    assert trainer.resume() and (trainer.epoch, trainer.batch_in_epoch, trainer.step) == (1, 1, 4)
    trainer.fit()
    for (name, a), b in zip(model_weights(straight).items(), model_weights(resumed).values()):
        assert torch.equal(a, b), name
    torch.manual_seed(7)
    la = straight.train_mode("3d").loss_3d(batch)["total"]
    torch.manual_seed(7)
    lb = resumed.train_mode("3d").loss_3d(batch)["total"]
    assert torch.equal(la, lb)
    rows = (tmp_path / "b" / "3d_log.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 and rows[0].startswith("step,epoch,lr")


def test_checkpoint_errors(body32, data, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable kinediff checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    small = PostureHMR(tiny(), body32)
    wide = PostureHMR(tiny(decoder={"dim": 32, "ffn_dim": 64}), body32)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_model_weights(small, model_weights(wide))
    trainer = _trainer(small, data, tmp_path / "c", max_steps=1)
    trainer.fit()
    other = _trainer(PostureHMR(tiny(lr_3d=1e-4), body32), data, tmp_path / "c")
    with pytest.raises(ValueError, match="different PostureHMRConfig"):
        other.resume()
    with pytest.raises(ValueError, match="trains stages"):
        Trainer(PostureHMR(tiny().with_condition("image_feature", 64), body32), "2d", data, tmp_path)


def test_evaluate_scores_every_sample(body32, data):
    model = PostureHMR(tiny(), body32)
    ev = evaluate(model, data, batch_size=10, progress=False, label="synthetic")
    summary = ev.summary()
    assert summary["samples"] == len(data) and summary["mpve"] > 0
    gt = evaluate(model, data, batch_size=10, progress=False, condition="gt").summary()
    assert gt["samples"] == len(data)


def test_progress_bar_counts_steps(body32, data, tmp_path, capsys):
    model = PostureHMR(tiny(train_condition="gt", render=None), body32)
    Trainer(model, "3d", data, tmp_path, epochs=10**6, batch_size=8, max_steps=4, progress=True,
            tensorboard=False).fit()
    err = capsys.readouterr().err
    assert "stage 3d" in err and "4/4" in err and "step" in err
    assert "/1000000" not in err  # the bar counts steps of the budget, not epochs


def test_a_float64_body_with_float32_networks_is_a_clear_error(body64):
    """A float64 body: the networks are built in torch's default float32; predict and loss say
    what to do instead of failing inside a convolution, and .double() runs end to end."""
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(), body64).eval()
    images = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="body is torch.float64 but its networks are torch.float32: "
                                         "call model.double\\(\\)"):
        model.predict(images)
    with pytest.raises(ValueError, match="call model.double"):
        model.loss({}, "3d")
    out = model.double().predict(images)
    assert out["vertices"].dtype == torch.float64

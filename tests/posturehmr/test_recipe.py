"""The paper's recipe as configured: loss weights and units as documented (VirtualMarker's), the
coefficient matrix learned once, and no option that silently does nothing."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from tolerances import atol_for

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.forward import FKSchedule, GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.losses import Loss3DWeights, loss_3d
from kinediff.training import TrainConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "posturehmr.md"


# -- loss weights and units ----------------------------------------------------------------------

def _documented_weights() -> dict[str, float]:
    """``field -> default`` from the loss-weight table of docs/posturehmr.md."""
    text = DOCS.read_text()
    table = text[text.index("| term | config field | default |"):]
    table = table[:table.index("\n\n")]
    out = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        match = re.fullmatch(r'`(\w+)(?:\.(\w+))?`', cells[1])
        assert match, row
        key = match.group(2) or match.group(1)
        out[key] = float(cells[2])
    return out


def test_config_weights_are_the_ones_the_docs_state():
    documented = _documented_weights()
    c = PostureHMRConfig()
    actual = {"render_weight": c.render_weight, "point_weight": c.point_weight,
              "mesh2d_weight": c.mesh2d_weight, "edge_loss_start": c.edge_loss_start,
              **asdict(c.loss_weights)}
    assert documented == actual
    assert asdict(Loss3DWeights()) == {k: documented[k] for k in asdict(Loss3DWeights())}


def test_loss_3d_has_virtualmarkers_units():
    """Each term written out as VirtualMarker computes it (millimetres, means over every point and
    coordinate) and eq. 7 as written (squared norm over the mesh, summed over T steps)."""
    g = torch.Generator().manual_seed(0)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    pred_d, tgt_d = torch.randn(4, 5, 3, generator=g) * 0.02, torch.randn(4, 5, 3, generator=g) * 0.02
    pv, gv = torch.randn(4, 4, 3, generator=g) * 0.3, torch.randn(4, 4, 3, generator=g) * 0.3
    pj, gj = torch.randn(4, 6, 3, generator=g), torch.randn(4, 6, 3, generator=g)
    out = loss_3d(pred_d, tgt_d, pv, gv, pj, gj, faces, posture_steps=10)
    posture = 10 * ((pred_d - tgt_d) ** 2).sum((1, 2)).mean()
    vertex = (1000 * pv - 1000 * gv).abs().mean()
    joint = (1000 * pj - 1000 * gj).abs().mean()

    def lengths(v):
        t = v[:, faces]
        return torch.stack([(t[:, :, 1] - t[:, :, 0]).norm(dim=-1), (t[:, :, 2] - t[:, :, 1]).norm(
            dim=-1), (t[:, :, 0] - t[:, :, 2]).norm(dim=-1)], -1)

    edge = (1000 * lengths(pv) - 1000 * lengths(gv)).abs().mean()
    for key, want in (("posture", posture), ("vertex", vertex), ("joint", joint), ("edge", edge)):
        torch.testing.assert_close(out[key], want, msg=key)
    w = Loss3DWeights()
    total = posture + w.vertex * vertex + w.joint * joint + w.normal * out["normal"] + w.edge * edge
    torch.testing.assert_close(out["total"], total)
    without_edge = loss_3d(pred_d, tgt_d, pv, gv, pj, gj, faces, posture_steps=10, edge=False)
    torch.testing.assert_close(without_edge["total"], total - w.edge * edge)
    torch.testing.assert_close(without_edge["edge"], edge)  # still reported
    with pytest.raises(ValueError, match="posture_steps"):
        loss_3d(pred_d, tgt_d, pv, gv, pj, gj, faces, posture_steps=0)
    with pytest.raises(ValueError, match="length_scale"):
        loss_3d(pred_d, tgt_d, pv, gv, pj, gj, faces, length_scale=0.0)


@pytest.fixture(scope="module")
def tiny_model(body32, cache_dir):
    torch.manual_seed(0)
    return PostureHMR(PostureHMRConfig.tiny(train_condition="gt", condition_noise_px=1.0), body32)


@pytest.fixture(scope="module")
def batch():
    from kinediff.data import SynthBody

    return SynthBody(4, seed=5, image_size=64, mesh_factors=(4, 4, 4), progress=False).batch(
        range(4))


def test_the_joint_term_is_on_the_keypoints(tiny_model, body32):
    m = tiny_model
    k = m.config.head.num_points
    assert m.loss_regressor.shape == (k, m.hierarchy.sizes[-1])  # tiny: on the coarse level
    full = m.hierarchy.upsample(m.hierarchy.downsample(body32.v_template[None]), 0)
    # regressing the coarse mesh = regressing its barycentric up-sampling with the K keypoints
    coarse = m.hierarchy.downsample(body32.v_template[None])
    want = m.keypoint_weights @ full[0]
    torch.testing.assert_close(m.loss_regressor @ coarse[0], want, atol=atol_for(want, ulps=256), rtol=0)


def test_the_posture_term_sums_eq7_over_the_path(tiny_model, batch):
    """With every step drawn, the posture term is eq. 7 exactly: the sum over the T steps of the
    squared residual over the mesh (an untrained decoder predicts 0)."""
    from dataclasses import replace

    m = tiny_model
    # rollout_share=0: eq. 7's labels are the path's own steps (with rollouts a share of the
    # inputs are the decoder's meshes; tests/posturehmr/test_rollout_heading.py covers those)
    every = PostureHMR(replace(m.config, steps_per_sample=None, rollout_share=0.0), m.body)
    every.load_state_dict(m.state_dict())
    terms = every.loss_3d(batch, generator=torch.Generator().manual_seed(0))
    sched = every.schedule
    T = sched.num_steps
    with torch.no_grad():
        # the path ends at the template turned to the heading of the condition the loss drew
        # (its first draw: the GT 2D mesh's noise)
        gt = every.ground_truth(batch)
        noise = torch.randn(gt["mesh2d"].shape, generator=torch.Generator().manual_seed(0))
        cond, _ = every.condition(batch["image"].float(), gt["mesh2d"] + noise)
        heading = every.heading(cond)
        assert heading is not None  # the default root path
        traj = sched.trajectory(batch["pose"], batch["betas"], heading)  # (B, T + 1, V, 3)
        coarse = every.hierarchy.downsample(traj.flatten(0, 1)).view(4, T + 1, -1, 3)
    deltas = coarse[:, :-1] - coarse[:, 1:]  # M_{k-1} - M_k for k = 1..T
    want = deltas.square().sum((1, 2, 3)).mean()  # an untrained decoder's output is 0
    torch.testing.assert_close(terms["posture"], want, rtol=1e-4, atol=1e-6)


def test_the_edge_term_starts_at_edge_loss_start(tiny_model, batch):
    m = tiny_model
    start = m.config.edge_loss_start
    gen = lambda: torch.Generator().manual_seed(3)
    before = m.loss_3d(batch, generator=gen(), epoch=start - 1)
    after = m.loss_3d(batch, generator=gen(), epoch=start)
    w = m.config.loss_weights
    torch.testing.assert_close(after["total"] - before["total"], w.edge * after["edge"])
    assert float(after["edge"].detach()) > 0


def test_the_trainer_passes_the_epoch_with_its_offset(tiny_model, batch, tmp_path, monkeypatch):
    from kinediff.data import SynthBody
    from kinediff.training import Trainer

    seen = []
    original = PostureHMR.loss

    def spy(self, b, stage, epoch=None):
        seen.append(epoch)
        return original(self, b, stage, epoch)

    monkeypatch.setattr(PostureHMR, "loss", spy)
    from kinediff.training import engine

    evaluated = []
    original_evaluate = engine.evaluate

    def evaluate_spy(*args, **kwargs):
        evaluated.append(kwargs)
        return original_evaluate(*args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", evaluate_spy)
    from kinediff.metrics import SPIN_3DPW

    data = SynthBody(4, seed=6, image_size=64, mesh_factors=(4, 4, 4), progress=False)
    trainer = Trainer(tiny_model, "3d", data, tmp_path, epochs=2, batch_size=4, progress=False,
                      tensorboard=False, epoch_offset=40, eval_set=data, eval_every=2,
                      eval_protocol=SPIN_3DPW, eval_body=tiny_model.body)
    trainer.fit()
    assert seen == [40, 41]
    assert len(evaluated) == 1 and evaluated[0]["protocol"] is SPIN_3DPW
    assert evaluated[0]["body"] is tiny_model.body and trainer.evaluations[0]["epoch"] == 2
    with pytest.raises(ValueError, match=r"^epoch_offset must be an integer >= 0, got -1$"):
        Trainer(tiny_model, "3d", data, tmp_path, epoch_offset=-1)
    # the overrides are checked by the config's own rules
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 1, got 0$"):
        Trainer(tiny_model, "3d", data, tmp_path, epochs=0)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer in \[1, 65536\], got 2.5$"):
        Trainer(tiny_model, "3d", data, tmp_path, batch_size=2.5)
    with pytest.raises(ValueError, match=r"^condition must be 'predicted' or 'gt', got 'GT'$"):
        engine.evaluate(tiny_model, data, condition="GT", progress=False)


# -- "paper" means the paper ------------------------------------------------------------------

#: The paper's model and recipe, field by field, written from its text (PostureHMR, §3-4): §3.1 "The
#: number of output points is 431"; §4.2 "cropping ... 256x256", "HRNet-W48 ... the size of the
#: heatmap is 64x64", "the initial output number of the 2D points is 81", "T is set to 10",
#: "embedding and transformer channels are kept at 128 and 512", "431 vertices and the refined
#: mesh contains 6890" (factors 4, 4), "40 epochs", "0.001 for backbone, 5e-4 for 2D mesh
#: recovery and 5e-5 for 3D posture transformation", "reduced by half after 30 epochs", "the
#: weight of the rendering loss is set to 10"; §3.2 eq. 2-4 (linear interpolation, the template
#: as the path's end: one orientation, the geodesic root path; the rest shape blended as eq. 3);
#: eq. 7 (trained on the path's own M_k: no rollouts; every k); the 2D mesh as the condition from
#: the frozen 2D stage; the losses on the full mesh.
PAPER_RECIPE = {
    "image_size": 256, "mesh_factors": (4, 4), "head.backbone": "hrnet_w48",
    "head.heatmap_size": 64, "head.num_points": 81, "head.num_vertices": 431,
    "schedule.class_name": "FKSchedule", "schedule.num_steps": 10, "schedule.alpha": "linear",
    "schedule.root_path": "geodesic", "schedule.blend": "paper",
    "schedule.template_orientation": None, "decoder.class_name": "M2PDecoder",
    "decoder.dim": 128, "decoder.ffn_dim": 512, "condition": "2d_mesh", "rollout_share": 0.0,
    "steps_per_sample": None, "train_condition": "predicted", "loss_level": 0,
    "render_weight": 10.0, "render_target": "mesh", "train.epochs": 40,
    "train.lr_backbone": 1e-3, "train.lr_2d": 5e-4, "train.lr_3d": 5e-5,
    "train.lr_decay_epoch": 30, "train.lr_decay": 0.5, "train.grad_clip": None,
}


def _field(config, dotted: str):
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


@pytest.mark.parametrize("key", sorted(PAPER_RECIPE))
def test_the_paper_preset_is_the_papers_recipe_field_by_field(key):
    from kinediff.apps.jobs import preset_config

    assert _field(PostureHMRConfig.paper(), key) == PAPER_RECIPE[key]
    assert _field(preset_config("paper"), key) == PAPER_RECIPE[key]


def test_the_paper_preset_is_kinediffs_default_with_the_papers_path():
    paper, kinediff = PostureHMRConfig.paper(), PostureHMRConfig()
    assert paper == kinediff.with_paper_path() == PostureHMRConfig.paper().with_paper_path()
    differ = {k: (v, paper.to_dict().get(k)) for k, v in kinediff.to_dict().items()
              if paper.to_dict().get(k) != v}
    assert sorted(differ) == ["rollout_share", "schedule"]
    assert (kinediff.schedule.root_path, kinediff.rollout_share) == ("heading", 0.5)
    assert kinediff.schedule.replace(root_path="geodesic") == paper.schedule
    assert PostureHMRConfig.paper(train={"epochs": 3}).train.epochs == 3  # changes as tiny's


LABEL = "kinediff's choice (the paper is silent)"


def _documented_choices() -> list[list[str]]:
    """The rows of docs/posturehmr.md "What the paper leaves open"."""
    text = DOCS.read_text()
    table = text[text.index("| choice | config field | value | labelled in |"):]
    table = table[:table.index("\n\n")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in table.splitlines()[2:]]


def test_what_the_paper_leaves_open_is_labelled_and_configured_as_documented():
    import ast
    import importlib

    from kinediff.posturehmr import table3_configs

    rows = _documented_choices()
    assert len(rows) >= 15
    baseline = table3_configs()["Baseline"]
    for choice, field, value, where, reason in rows:
        assert reason, choice
        if field != "—":
            path = field.strip("`")
            if path.startswith("Baseline: "):
                configs = [baseline]
                path = path.removeprefix("Baseline: ")
            else:
                configs = [PostureHMRConfig.paper(), PostureHMRConfig()]
            for config in configs:
                assert _field(config, path) == ast.literal_eval(value), (choice, config)
        module, _, name = where.strip("`").rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            obj = importlib.import_module(where.strip("`"))
        doc = " ".join((obj.__doc__ or "").split())
        assert LABEL in doc, (choice, where)
        if field != "—":  # the docstring names the option it labels
            assert path.rsplit(".", 1)[-1] in doc or value.strip("'") in doc, (choice, where)


# -- the coefficient matrix C is learned once ---------------------------------------------------

def test_coefficients_are_initialised_once_and_kept_through_fine_tuning(body32, tmp_path,
                                                                      monkeypatch):
    from kinediff.apps.reproduce import train_phases
    from kinediff.data import SynthBody
    from kinediff.training import Trainer

    torch.manual_seed(0)
    cfg = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=4))
    kw = dict(image_size=64, mesh_factors=cfg.mesh_factors, progress=False)
    phases = [("pretrain", SynthBody(8, seed=7, **kw)), ("target", SynthBody(8, seed=8, **kw))]
    inits, starts, ends = [], [], []
    original_init, original_fit = PostureHMR.init_coefficients, Trainer.fit

    def init_spy(self, *args, **kwargs):
        inits.append(1)
        return original_init(self, *args, **kwargs)

    def fit_spy(self, resume=False):
        starts.append((self.out_dir.name, self.stage, self.model.head.coefficients.detach().clone()))
        out = original_fit(self, resume)
        ends.append((self.out_dir.name, self.stage, self.model.head.coefficients.detach().clone()))
        return out

    monkeypatch.setattr(PostureHMR, "init_coefficients", init_spy)
    monkeypatch.setattr(Trainer, "fit", fit_spy)
    model = PostureHMR(cfg, body32)
    train_phases(model, phases, tmp_path / "run", epochs=1, max_steps=1, progress=False)
    assert len(inits) == 1
    assert [s[:2] for s in starts] == [("pretrain", "2d"), ("pretrain", "3d"), ("target", "2d"),
                                       ("target", "3d")]
    # the fine-tuning's 2D stage starts from the C the pre-training learned, not a fresh fit
    assert not torch.equal(starts[0][2], ends[0][2])  # the 2D stage did change C
    assert torch.equal(starts[2][2], ends[1][2])
    # resuming the run, or starting from a checkpoint, fits nothing
    inits.clear()
    train_phases(PostureHMR(cfg, body32), phases, tmp_path / "run", epochs=1, max_steps=1,
                 resume=True, progress=False)
    train_phases(PostureHMR(cfg, body32), phases[:1], tmp_path / "other", epochs=1, max_steps=1,
                 start_checkpoint=str(tmp_path / "run" / "target" / "3d_last.pt"), progress=False)
    assert inits == []


# -- options that cannot apply are refused; those that could not work now do -------------------

def test_options_that_cannot_apply_are_refused():
    # a process's options exist only in its own config
    with pytest.raises(ValueError, match=r"unknown VertexLinearSchedule fields \['blend'\]"):
        PostureHMRConfig.from_dict({"schedule": {"class": "VertexLinearSchedule", "blend": "exact"}})
    with pytest.raises(ValueError, match=r"unknown FKSchedule fields \['prediction'\]"):
        PostureHMRConfig().update({"schedule.prediction": "epsilon"})
    with pytest.raises(ValueError, match="condition_noise_px=1.0 has no effect here "
                                         r"\(train_condition='predicted'\)"):
        PostureHMRConfig(condition_noise_px=1.0)
    with pytest.raises(ValueError, match="rollout_share=0.0 has no effect here .*only a posture "
                                         "path with the M2P decoder is rolled out"):
        PostureHMRConfig(schedule=GaussianNoiseSchedule.Config(), rollout_share=0.0)
    with pytest.raises(ValueError, match="alpha must be one of"):
        FKSchedule.Config(alpha="scaled_linear")
    with pytest.raises(ValueError, match="beta_schedule must be 'linear', 'scaled_linear' or 'cosine'"):
        GaussianNoiseSchedule.Config(beta_schedule="sigmoid")
    with pytest.raises(ValueError, match="render_target must be 'mesh' or 'mask'"):
        PostureHMRConfig(render_target="silhouette")
    with pytest.raises(ValueError, match="edge_loss_start must be an integer >= 0"):
        PostureHMRConfig(edge_loss_start=-1)


def test_the_noise_schedules_betas_are_its_own_field(body32, cache_dir):
    cosine = GaussianNoiseSchedule.Config(beta_schedule="cosine", prediction="sample")
    model = PostureHMR(PostureHMRConfig.tiny(schedule=cosine), body32)
    expected = GaussianNoiseSchedule(num_steps=10, num_train_steps=1000, beta_schedule="cosine",
                                     prediction="sample")
    torch.testing.assert_close(model.schedule.alphas_cumprod, expected.alphas_cumprod)
    assert model.schedule.config == cosine == expected.config
    linear = PostureHMR(PostureHMRConfig.tiny(schedule=GaussianNoiseSchedule.Config()), body32)
    assert not torch.allclose(linear.schedule.alphas_cumprod, expected.alphas_cumprod)


def test_table3_rows_keep_what_their_schedule_reads():
    from kinediff import table3_configs

    base = PostureHMRConfig.tiny(schedule=FKSchedule.Config(blend="exact", alpha="cosine"))
    rows = table3_configs(base, cond_dim=64)
    s = {name: row.schedule for name, row in rows.items()}
    assert s["Baseline"] == GaussianNoiseSchedule.Config(prediction="sample")
    assert s["Baseline + VL"] == VertexLinearSchedule.Config(alpha="cosine")  # the paper's root path
    assert s["Baseline + FK"] == FKSchedule.Config(blend="exact", alpha="cosine")
    noisy = table3_configs(PostureHMRConfig.tiny(schedule=GaussianNoiseSchedule.Config(
        prediction="epsilon", beta_schedule="cosine")), cond_dim=64)
    s = {name: row.schedule for name, row in noisy.items()}
    assert s["Baseline"] == GaussianNoiseSchedule.Config(prediction="epsilon", beta_schedule="cosine")
    assert s["Baseline + FK"] == FKSchedule.Config()
    for name, row in rows.items():
        feature = row.condition == "image_feature"
        assert row.decoder.cond_dim == (64 if feature else 2), name
        assert (row.render is not None) == name.endswith("render"), name
        assert row.rollout_share == (0.5 if name == "Baseline" else 0.0), name
        assert (row.head, row.train, row.image_size) == (base.head, base.train, base.image_size)


def test_the_h36m_protocol_selects_the_test_set(body32, tmp_path):
    from kinediff.data import Human36M
    from kinediff.data.h36m import protocol_selection
    from kinediff.metrics import GRAPHORMER_3DPW, H36M_P2
    from kinediff.testing import write_h36m

    assert protocol_selection(H36M_P2) == {"subjects": (9, 11), "camera": 4, "frame_step": 5}
    assert protocol_selection(H36M_P2.with_frame_step(64))["frame_step"] == 64
    with pytest.raises(ValueError, match="selects no Human3.6M subjects"):
        protocol_selection(GRAPHORMER_3DPW)
    write_h36m(tmp_path, body32, 9, frames=(0, 5, 10, 64), cameras=(1, 4), seed=2)
    write_h36m(tmp_path, body32, 11, frames=(0, 64), cameras=(4,), seed=3)
    kw = dict(body=body32, image_size=32, mesh_factors=(4, 4, 4))
    p2 = Human36M(tmp_path, "test", protocol=H36M_P2, **kw)
    assert sorted((r.extra["subject"], r.extra["camera"], r.extra["frame"]) for r in p2.records) \
        == [(9, 4, 0), (9, 4, 5), (9, 4, 10), (11, 4, 0)]
    i2l = Human36M(tmp_path, "test", protocol=H36M_P2.with_frame_step(64), **kw)
    assert sorted(r.extra["frame"] for r in i2l.records) == [0, 0, 64, 64]
    assert len(Human36M(tmp_path, "test", protocol=H36M_P2, subjects=(11,), **kw)) == 1
    every_camera = replace(H36M_P2, camera=None)
    assert {r.extra["camera"] for r in Human36M(tmp_path, "test", protocol=every_camera,
                                                **kw).records} == {1, 4}
    with pytest.raises(ValueError, match="selects the test split"):
        Human36M(tmp_path, "train", protocol=H36M_P2, **kw)
    with pytest.raises(ValueError, match="format='coco' holds the selection"):
        Human36M(tmp_path, "test", protocol=H36M_P2, format="coco", **kw)


def test_a_saved_config_without_a_format_version_is_refused(tmp_path):
    """Saved configs carry a format version; one without (kinediff 0.1 was never released, so
    nothing migrates) or from a newer format says what to do."""
    data = json.loads(PostureHMRConfig.tiny().to_json())
    assert data["format_version"] == 1 and data["class"] == "PostureHMR" and "kinediff_version" in data
    path = tmp_path / "config.json"
    path.write_text(json.dumps({k: v for k, v in data.items() if k != "format_version"}))
    with pytest.raises(ValueError, match=f"{path} has no format_version: .* write the config again"):
        PostureHMRConfig.load(path)
    path.write_text(json.dumps({**data, "format_version": 99, "kinediff_version": "9.0"}))
    with pytest.raises(ValueError, match=r"format_version 99 \(written by kinediff 9.0\).*upgrade kinediff"):
        PostureHMRConfig.load(tmp_path)

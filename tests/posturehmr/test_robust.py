"""Robustness of PostureHMR's configs, model folders and ``predict`` (marker ``robust``, harness
:mod:`robust`): configs refuse absurd sizes and bad values with one clear error naming the field,
before anything is allocated, while the paper's config, the presets and Table 3 load unchanged; a
damaged model folder is named; a full disk leaves nothing half-written."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from robust import NAN, expect, refusal

import kinediff.core.pretrained
from kinediff import PostureHMR, PostureHMRConfig
from kinediff.decoders import GraphormerRegressor, M2PDecoder
from kinediff.forward import MAX_STEPS, MAX_TRAIN_STEPS, FKSchedule, GaussianNoiseSchedule
from kinediff.heads import MAX_HEATMAP_SIZE, MAX_POINTS, HRNetMeshHead
from kinediff.posturehmr import TABLE3_ROWS, table3_configs
from kinediff.posturehmr.config import MAX_IMAGE_SIZE
from kinediff.posturehmr.pretrained import load_pretrained_folder

pytestmark = pytest.mark.robust

# ---- configs: sane limits and types -----------------------------------------------------------

#: (component, field, largest allowed value, the config's path in a PostureHMRConfig)
INTEGER_LIMITS = [
    (HRNetMeshHead, "num_points", MAX_POINTS, "head"),
    (HRNetMeshHead, "heatmap_size", MAX_HEATMAP_SIZE, "head"),
    (M2PDecoder, "dim", 2048, "decoder"), (M2PDecoder, "ffn_dim", 8192, "decoder"),
    (M2PDecoder, "num_layers", 48, "decoder"), (M2PDecoder, "num_heads", 64, "decoder"),
    (M2PDecoder, "cond_dim", 8192, None),
    (GraphormerRegressor, "dim", 2048, None), (GraphormerRegressor, "num_layers", 48, None),
    (FKSchedule, "num_steps", MAX_STEPS, "schedule"),
    (GaussianNoiseSchedule, "num_train_steps", MAX_TRAIN_STEPS, None),
]


@pytest.mark.parametrize("kind, name, limit, path", INTEGER_LIMITS)
@given(too_big=st.integers(1, 10**12))
def test_nested_sizes_above_their_limit_are_refused_at_the_limit_accepted(kind, name, limit, path,
                                                                           too_big):
    value = limit + too_big
    with pytest.raises(ValueError, match=rf"{name} must be an integer in \[\d+, {limit}\].*got {value}"):
        kind.Config(**{name: value})
    if path is not None:  # also from a saved model config (how a checkpoint or a model is read)
        data = json.loads(PostureHMRConfig().to_json())
        data[path][name] = value
        with pytest.raises(ValueError, match=rf"{path}.{name} must be an integer in \[\d+, {limit}\]"):
            PostureHMRConfig.from_json(json.dumps(data))
    extra = {"dim": limit} if name == "num_heads" else {}  # num_heads must divide dim
    extra.update({"num_train_steps": limit} if name == "num_steps" and kind is GaussianNoiseSchedule
                 else {})
    assert getattr(kind.Config(**{name: limit}, **extra), name) == limit


@pytest.mark.parametrize("kind, name, limit, path", INTEGER_LIMITS)
@pytest.mark.parametrize("value", [True, 8.0, "8", None, [8], math.nan])
def test_nested_sizes_of_another_type_are_refused(kind, name, limit, path, value):
    with pytest.raises(ValueError, match=f"{name} must be an integer in .*, got"):
        kind.Config(**{name: value})


@pytest.mark.parametrize("field, value, message", [
    ("image_size", MAX_IMAGE_SIZE + 64, r"image_size must be an integer in \[1, 4096\], got 4160"),
    ("image_size", 0, r"image_size must be an integer in \[1, 4096\], got 0"),
    ("image_size", -64, "got -64"),
    ("image_size", "256", "image_size must be an integer .*got '256'"),
    ("image_size", 256.0, "image_size must be an integer .*got 256.0"),
    ("image_size", True, "image_size must be an integer .*got True"),
    ("image_size", 250, "image_size .250. must be a multiple of head.heatmap_size .64."),
    ("mesh_factors", (1, 4), r"mesh_factors\[0\] must be an integer in \[2, 64\], got 1"),
    ("mesh_factors", (4, 65), r"mesh_factors\[1\] must be an integer in \[2, 64\], got 65"),
    ("mesh_factors", (4.5, 4), r"mesh_factors\[0\] must be an integer in \[2, 64\], got 4.5"),
    ("mesh_factors", (True, 4), r"mesh_factors\[0\] must be an integer in \[2, 64\], got True"),
    ("mesh_factors", (), r"mesh_factors must be 1 to 4 integer decimation factors, got \[\]"),
    ("mesh_factors", (2,) * 5, r"mesh_factors must be 1 to 4 integer decimation factors"),
    ("mesh_factors", (64, 64), r"mesh_factors \[64, 64\] leave a 6890-vertex body 2 coarse vertices"),
    ("render", {"class": "TrimapRenderLoss", "width": 0}, r"render.width must be an integer >= 1 \(pixels\)"),
    ("render", {"class": "TrimapRenderLoss", "width": 10**7},
     r"render.width \(10000000\) and render.sigma \(1.0\) must not exceed image_size \(256\)"),
    ("render", {"class": "TrimapRenderLoss", "width": 2.5}, "render.width must be an integer"),
    ("render", {"class": "TrimapRenderLoss", "sigma": 0.0}, r"render.sigma must be a finite number > 0, got 0.0"),
    ("render", {"class": "TrimapRenderLoss", "sigma": math.nan}, "render.sigma must be a finite number"),
    ("render", {"class": "TrimapRenderLoss", "sigma": 1000.0},
     r"render.sigma \(1000.0\) must not exceed image_size \(256\)"),
    ("render", "yes", "render must be a config of TrimapRenderLoss"),
    ("render_weight", math.nan, "render_weight must be a finite number >= 0, got nan"),
    ("render_weight", -1.0, "render_weight must be a finite number >= 0, got -1.0"),
    ("point_weight", math.inf, "point_weight must be a finite number >= 0, got inf"),
    ("mesh2d_weight", "100", "mesh2d_weight must be a finite number >= 0, got '100'"),
    ("mesh2d_weight", True, "mesh2d_weight must be a finite number >= 0, got True"),
    ("rollout_share", 1.0, r"rollout_share must be a finite number in \[0, 1\), got 1.0"),
    ("rollout_share", math.nan, "rollout_share must be a finite number"),
    ("loss_weights", {"vertex": math.nan}, r"loss_weights.vertex must be a finite number >= 0, got nan"),
    ("loss_weights", {"edge": -0.1}, r"loss_weights.edge must be a finite number >= 0"),
    ("loss_weights", {"joint": "0.1"}, r"loss_weights.joint must be a finite number"),
    ("loss_weights", [1.0], "loss_weights must be a config of Loss3DWeights .*got list"),
    ("loss_weights", {"vertices": 1.0}, r"unknown Loss3DWeights fields \['vertices'\]"),
    ("edge_loss_start", True, "edge_loss_start must be an integer >= 0, got True"),
    ("edge_loss_start", -1, "edge_loss_start must be an integer >= 0"),
    ("loss_level", 3, r"loss_level must name a level of the 3-level hierarchy, in \[-3, 2\], got 3"),
    ("loss_level", -4, r"loss_level must name a level of the 3-level hierarchy, in \[-3, 2\]"),
    ("loss_level", "0", "loss_level must be an integer"),
    ("steps_per_sample", 0, r"steps_per_sample must be an integer in \[1, 1000\]"),
    ("steps_per_sample", 1001, r"steps_per_sample must be an integer in \[1, 1000\]"),
    ("steps_per_sample", 2.5, "steps_per_sample must be an integer"),
])
def test_model_config_values_are_checked(field, value, message):
    with pytest.raises(ValueError, match=message):
        PostureHMRConfig(**{field: value})
    data = json.loads(PostureHMRConfig().to_json())
    data[field] = list(value) if isinstance(value, tuple) else value
    with pytest.raises(ValueError, match=message):  # a saved config is checked the same way
        PostureHMRConfig.from_json(json.dumps(data))


@pytest.mark.parametrize("value", [4, "44", None, {4: 4}])
def test_mesh_factors_that_are_no_list_are_a_type_error(value):
    with pytest.raises(TypeError, match="mesh_factors must be a list of 1 to 4 integer decimation "
                                        "factors, got"):
        PostureHMRConfig(mesh_factors=value)
    with pytest.raises(ValueError, match="bad PostureHMR config: mesh_factors must be a list"):
        PostureHMRConfig.from_dict({"mesh_factors": value})


def test_condition_noise_and_the_noise_process_steps_are_checked():
    with pytest.raises(ValueError, match=r"condition_noise_px must be a finite number >= 0, got -1.0"):
        PostureHMRConfig(train_condition="gt", condition_noise_px=-1.0)
    with pytest.raises(ValueError, match=r"condition_noise_px must lie in \[0, image_size = 256\], "
                                         r"got 300.0"):
        PostureHMRConfig(train_condition="gt", condition_noise_px=300)
    with pytest.raises(ValueError, match="condition_noise_px must be a finite number"):
        PostureHMRConfig(train_condition="gt", condition_noise_px=math.nan)
    assert PostureHMRConfig(train_condition="gt", condition_noise_px=256).condition_noise_px == 256.0
    with pytest.raises(ValueError, match=r"schedule.num_steps \(50\) must not exceed "
                                         r"num_train_steps \(20\)"):
        PostureHMRConfig.from_dict({"schedule": {"class": "GaussianNoiseSchedule", "num_steps": 50,
                                                 "num_train_steps": 20}})
    assert PostureHMRConfig(schedule=GaussianNoiseSchedule.Config(num_steps=20, num_train_steps=20))


@given(st.integers(1, 4).flatmap(lambda n: st.lists(st.integers(2, 64), min_size=n, max_size=n)))
def test_every_mesh_factor_list_within_the_limits_is_judged_by_its_coarse_size(factors):
    count = 6890
    for factor in factors:
        count = math.ceil(count / factor)
    if count >= 4:
        config = PostureHMRConfig(mesh_factors=factors, loss_level=-1)
        assert config.mesh_factors == tuple(factors)
    else:
        with pytest.raises(ValueError, match=f"leave a 6890-vertex body {count} coarse vertices"):
            PostureHMRConfig(mesh_factors=factors)


def test_numpy_numbers_are_read_as_python_numbers():
    config = PostureHMRConfig(image_size=np.int64(128), mesh_factors=np.array([4, 4]),
                              render_weight=np.float32(2.5), loss_level=np.int64(-1),
                              steps_per_sample=np.int16(2)).update({"render.width": np.int32(4)})
    assert type(config.image_size) is int and config.mesh_factors == (4, 4)
    assert type(config.render_weight) is float and config.render_weight == 2.5
    assert (config.render.width, config.loss_level, config.steps_per_sample) == (4, -1, 2)
    assert type(config.render.width) is int
    assert PostureHMRConfig.from_json(config.to_json()) == config


# ---- what must keep loading -------------------------------------------------------------------

def test_the_paper_config_presets_and_table3_load_unchanged(tmp_path):
    configs = [PostureHMRConfig(), PostureHMRConfig.tiny(),
               *table3_configs().values(), *table3_configs(PostureHMRConfig.tiny(), 64).values()]
    assert len(configs) == 2 + 2 * len(TABLE3_ROWS)
    for i, config in enumerate(configs):
        assert PostureHMRConfig.from_dict(config.to_dict()) == config
        assert PostureHMRConfig.load(config.save(tmp_path / str(i))) == config
    paper = PostureHMRConfig()
    assert (paper.image_size, paper.mesh_factors, paper.head.num_points, paper.decoder.dim,
            paper.schedule.num_steps, paper.render_weight) == (256, (4, 4), 81, 128, 10, 10.0)


def test_load_pretrained_refuses_an_absurd_config_before_building_the_model(tmp_path):
    good = json.loads(PostureHMRConfig.tiny().to_json())
    changes = {"num_points": {"head": {**good["head"], "num_points": 200_000_000}},
               "dim": {"decoder": {**good["decoder"], "dim": 1 << 20}},
               "image_size": {"image_size": 1 << 20},
               "num_steps": {"schedule": {**good["schedule"], "num_steps": 10**6}}}
    for name, change in changes.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**good, **change}))
        (folder / "model.safetensors").write_bytes(b"")
        (folder / "body.json").write_text("{}")
        with pytest.raises(ValueError, match=f"{name} must be"):
            load_pretrained_folder(folder, body=None)  # the config is read and refused first


@pytest.mark.parametrize(("kw", "message"), [
    (dict(dim=10**6), r"dim must be an integer in \[1, 2048\], got 1000000"),
    (dict(cond_dim=0), r"cond_dim must be an integer in \[1, 8192\]"),
    (dict(cond_dim=10**6), r"cond_dim must be an integer in \[1, 8192\]"),
    (dict(cond_dim="2"), "cond_dim must be an integer"),
    (dict(num_heads=3), "divisible by num_heads"),
])
def test_m2p_config_limits(kw, message):
    with pytest.raises(ValueError, match=message):
        M2PDecoder.Config(**kw)


def test_a_config_file_with_an_absurd_value_is_refused_naming_the_file(tmp_path):
    data = json.loads(PostureHMRConfig.tiny().to_json())
    data["head"]["num_points"] = 200_000_000
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{path}: head.num_points must be an integer"):
        PostureHMRConfig.load(path)


def test_a_head_with_more_markers_than_vertices_is_refused_before_building(body32):
    cfg = PostureHMRConfig.tiny()
    data = json.loads(cfg.to_json())
    big = PostureHMRConfig.from_json(json.dumps({**data, "head": {**data["head"], "num_points": 6907}}))
    with pytest.raises(ValueError, match="markers but the body has"):
        PostureHMR(big, _few_vertices(body32))


def _few_vertices(body):
    """A stand-in body reporting fewer vertices than the config's markers (the check reads
    ``num_vertices`` before anything is built from the body's arrays)."""
    class Few:
        num_vertices = 100

        def __getattr__(self, name):
            return getattr(body, name)

    return Few()


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_nothing_half_written(body32, tmp_path, monkeypatch):
    model = PostureHMR(PostureHMRConfig.tiny(), body32)
    monkeypatch.setattr(kinediff.core.pretrained, "save_file", _full_disk)
    with pytest.raises(OSError, match=rf"No space left on device writing {tmp_path / 'model'}"):
        model.save_pretrained(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []  # no temporary folder left
    monkeypatch.undo()
    cfg = PostureHMRConfig.tiny()
    cfg.save(tmp_path)
    before = (tmp_path / "config.json").read_text()
    monkeypatch.setattr(Path, "write_text", _full_disk)
    with pytest.raises(OSError, match="writing .*config.json"):
        PostureHMRConfig.tiny(image_size=32).save(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "config.json").read_text() == before  # the old file kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_predict_refuses_a_non_finite_mesh2d_naming_it(body32):
    model = PostureHMR(PostureHMRConfig.tiny(), body32).eval()
    mesh2d = torch.full((1, model.num_coarse, 2), 30.0)
    mesh2d[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match=r"mesh2d contains NaN or infinite values \(0 NaN, 1 infinite\)"):
        model.predict(torch.rand(1, 3, 64, 64), mesh2d=mesh2d)


def test_predict_refuses_a_2d_mesh_of_another_vertex_count_naming_it(fixtures):
    mesh2d = torch.full((2, 50, 2), 32.0)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

    def call():
        with torch.no_grad():
            return fixtures.model.predict(images, mesh2d=mesh2d)

    expect(refusal(call, [("mesh2d",)]))


def _nan_weights(path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 10)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = NAN
    save_file(tensors, str(path), metadata=metadata)


#: the file spoilt -> how
PRETRAINED_FAULTS = {
    "model.safetensors": _nan_weights,
    "body.json": lambda path: path.write_text("{{"),
}


@pytest.mark.parametrize("target", PRETRAINED_FAULTS)
def test_a_spoilt_model_folder_is_refused_naming_the_file(fixtures, target):
    folder = fixtures.copy_of(fixtures.model_dir, "pretrained")
    PRETRAINED_FAULTS[target](folder / target)
    expect(refusal(lambda: PostureHMR.from_pretrained(folder, fixtures.body), [Path(target)]))

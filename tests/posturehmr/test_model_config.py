"""PostureHMRConfig: each component's own config nested, typed and naming its class; the model
built from them; round trips; the rules across fields; ``--set`` overrides."""

from __future__ import annotations

import json
import pickle
from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.apps.jobs import with_overrides
from kinediff.decoders import GraphormerRegressor, M2PDecoder
from kinediff.forward import FKSchedule, GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.heads import HRNetMeshHead
from kinediff.losses import Loss3DWeights, TrimapRenderLoss
from kinediff.training import TrainConfig

NESTED = {"head": HRNetMeshHead, "schedule": FKSchedule, "decoder": M2PDecoder,
          "render": TrimapRenderLoss}


def test_each_component_is_configured_by_its_own_config():
    config = PostureHMRConfig()
    for name, component in NESTED.items():
        assert type(getattr(config, name)) is component.Config, name
    assert type(config.loss_weights) is Loss3DWeights and type(config.train) is TrainConfig
    # no option of a component is also a field of the composition
    own = {f.name for f in fields(PostureHMRConfig)}
    for kind in (HRNetMeshHead, FKSchedule, VertexLinearSchedule, GaussianNoiseSchedule,
                 M2PDecoder, GraphormerRegressor, TrimapRenderLoss):
        assert not own & set(kind.Config.field_names()), kind
    assert config.schedule == FKSchedule.Config(root_path="heading")


def test_nested_configs_round_trip_and_are_frozen(tmp_path):
    config = PostureHMRConfig.tiny(schedule=VertexLinearSchedule.Config(num_steps=6, alpha="cosine"),
                                   decoder={"dim": 32}, head={"num_points": 40})
    assert config.schedule == VertexLinearSchedule.Config(num_steps=6, alpha="cosine")
    assert config.decoder == M2PDecoder.Config(dim=32, ffn_dim=128, num_layers=2, num_heads=4)
    assert config.head == HRNetMeshHead.Config(backbone="hrnet_w18_small", heatmap_size=16,
                                               num_points=40, num_vertices=108)
    data = config.to_dict()
    assert data["class"] == "PostureHMR" and data["schedule"]["class"] == "VertexLinearSchedule"
    assert data["schedule"]["num_steps"] == 6 and "num_steps" not in data
    assert PostureHMRConfig.from_dict(data) == config
    assert PostureHMRConfig.load(config.save(tmp_path)) == config
    assert PostureHMR.load_config(tmp_path) == config
    assert pickle.loads(pickle.dumps(config)) == config
    for nested in (config, config.head, config.schedule, config.decoder, config.render, config.train):
        with pytest.raises(FrozenInstanceError):
            nested.image_size = 3  # type: ignore[misc]
        assert type(nested).from_dict(nested.to_dict()) == nested


def test_the_model_is_built_from_the_nested_configs(body32, cache_dir):
    config = PostureHMRConfig.tiny(schedule={"num_steps": 4}, decoder={"dim": 32})
    model = PostureHMR(config, body32)
    assert model.config is config
    assert model.schedule.config == config.schedule and model.schedule.num_steps == 4
    assert model.decoder.config == config.decoder == M2PDecoder.Config(dim=32, ffn_dim=128,
                                                                       num_layers=2, num_heads=4)
    assert model.head.config == config.head and model.render_loss.config == config.render
    assert model.head.to_heatmaps.out_channels == config.head.num_points
    features = PostureHMRConfig.tiny().with_condition("image_feature", 48)
    assert features.decoder.cond_dim == 48 and features.schedule.root_path == "geodesic"
    assert PostureHMR(features, body32).feature.out_features == 48
    regressor = PostureHMR(config.replace(decoder=GraphormerRegressor.Config(dim=32)), body32)
    assert isinstance(regressor.decoder, GraphormerRegressor)
    assert PostureHMR.from_config(config, body=body32).config == config
    with pytest.raises(AttributeError):
        model.config = config  # type: ignore[misc]


def test_the_head_must_have_the_hierarchys_coarse_vertex_count(body32, cache_dir):
    config = PostureHMRConfig.tiny(mesh_factors=(4, 4))
    with pytest.raises(ValueError, match=r"head.num_vertices \(108\) must be the hierarchy's coarse "
                                         r"vertex count, 431 for mesh_factors \[4, 4\]"):
        PostureHMR(config, body32)


@pytest.mark.parametrize("changes, message", [
    ({"head.num_points": 17}, r"head.num_points must be an integer in \[18, 6907\] \(17 joints and the markers\), got 17"),
    ({"head.heatmap_size": 0}, r"head.heatmap_size must be an integer in \[1, 1024\], got 0"),
    ({"head.pretrained": 3}, "pretrained must be a file path, got 3"),
    ({"schedule.num_steps": 0}, r"num_steps must be an integer in \[1, 1000\], got 0"),
    ({"schedule.num_steps": 2.5}, r"num_steps must be an integer in \[1, 1000\], got 2.5"),
    ({"schedule.blend": "smooth"}, "blend must be 'paper' or 'exact', got 'smooth'"),
    ({"schedule.alpha": "quadratic"}, "alpha must be one of"),
    ({"decoder.dim": 30}, r"dim \(30\) must be divisible by num_heads \(4\)"),
    ({"decoder.dropout": 1.0}, r"dropout must be a finite number in \[0, 1\), got 1.0"),
    ({"decoder.num_layers": True}, r"num_layers must be an integer in \[1, 48\], got True"),
    ({"decoder.width": 3}, r"unknown M2PDecoder fields \['width'\]"),
    ({"decoder.cond_dim": 64}, "decoder.cond_dim must be 2 with condition='2d_mesh'"),
    ({"condition": "image_feature"}, "schedule.root_path='heading' estimates each sample's heading"),
    ({"image_size": 100}, r"image_size \(100\) must be a multiple of head.heatmap_size \(16\)"),
    ({"mesh_factors": [64, 64, 64]}, "leave a 6890-vertex body 1 coarse vertices"),
    ({"mesh_factors": "44"}, "mesh_factors must be a list of 1 to 4 integer decimation factors"),
    ({"loss_level": 4}, r"loss_level must name a level of the 4-level hierarchy, in \[-4, 3\]"),
    ({"render.width": 65}, r"render.width \(65\) and render.sigma \(0.5\) must not exceed image_size"),
    ({"render.sigma": 0}, r"sigma must be a finite number > 0, got 0"),
    ({"loss_weights.edge": -1}, r"edge must be a finite number >= 0, got -1"),
    ({"train.epochs": 0}, r"epochs must be an integer in \[1, 10000\], got 0"),
    ({"schedule": {"class": "NoSuchSchedule"}}, "schedule must name its class under 'class', one of"),
    ({"schedule": 3}, ("schedule must be a config of FKSchedule or VertexLinearSchedule or "
                      "GaussianNoiseSchedule")),
])
def test_config_errors_name_the_field(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PostureHMRConfig.tiny().update(changes)


def test_numpy_numbers_and_paths_are_accepted_and_positional_fields_refused(tmp_path):
    config = PostureHMRConfig.tiny(image_size=np.int64(128), mesh_factors=np.array([4, 4, 4]),
                                   head={"pretrained": tmp_path / "w.pth", "num_points": np.int32(40)},
                                   decoder={"dropout": np.float32(0.25)})
    assert type(config.image_size) is int and config.mesh_factors == (4, 4, 4)
    assert config.head.pretrained == str(tmp_path / "w.pth") and type(config.head.num_points) is int
    assert config.decoder.dropout == 0.25 and type(config.decoder.dropout) is float
    with pytest.raises(TypeError):
        PostureHMRConfig(256)  # type: ignore[misc]


def test_with_paper_path_and_with_condition():
    base = PostureHMRConfig.tiny()
    paper = base.with_paper_path()
    assert paper.schedule == FKSchedule.Config() and paper.rollout_share == 0.0
    assert paper.replace(schedule=base.schedule, rollout_share=0.5) == base
    noise = base.replace(schedule=GaussianNoiseSchedule.Config())
    assert noise.with_paper_path() == noise  # no posture path to change
    features = base.with_condition("image_feature", 32)
    assert (features.condition, features.decoder.cond_dim, features.schedule.root_path) == \
        ("image_feature", 32, "geodesic")
    back = features.with_condition("2d_mesh")
    assert back.decoder.cond_dim == 2 and back.schedule.root_path == "geodesic"


def test_set_overrides_reach_the_nested_configs():
    base = PostureHMRConfig.tiny()
    changed = with_overrides(base, ["schedule.num_steps=5", "decoder.dim=32", "head.num_points=40",
                                    'decoder={"num_layers": 3}', "loss_level=0"])
    assert changed.schedule.num_steps == 5 and changed.schedule.root_path == "heading"
    assert changed.decoder == base.decoder.replace(dim=32, num_layers=3)
    assert changed.head.num_points == 40 and changed.train == base.train and changed.loss_level == 0
    noise = with_overrides(base, ['schedule={"class": "GaussianNoiseSchedule", "prediction": "sample"}',
                                  "schedule.num_steps=20"])
    assert noise.schedule == GaussianNoiseSchedule.Config(num_steps=20, prediction="sample")
    with pytest.raises(ValueError, match=r"unknown HRNetMeshHead fields \['dim'\]"):
        with_overrides(base, ["head.dim=3"])
    with pytest.raises(ValueError, match=r"unknown PostureHMR fields \['num_steps'\]"):
        with_overrides(base, ["num_steps=5"])
    with pytest.raises(ValueError, match="PostureHMR.image_size is not a nested config"):
        with_overrides(base, ["image_size.x=5"])
    with pytest.raises(ValueError, match="--set takes KEY=VALUE"):
        with_overrides(base, ["image_size"])


def test_the_json_file_is_what_the_docs_show(tmp_path):
    text = PostureHMRConfig.tiny().to_json()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert {"format_version", "kinediff_version", "class", "schedule", "train"} <= set(data)
    assert data["render"] == {"class": "TrimapRenderLoss", "width": 3, "sigma": 0.5, "backend": "torch"}

"""PostureHMRConfig's nested component configs (issue 17): each option written once, round trips,
the components built from them, and kinediff 0.1's flat names for one release."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import FrozenInstanceError, asdict, replace

import pytest

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.apps.jobs import with_overrides
from kinediff.decoders import DecoderConfig, M2PConfig
from kinediff.forward import ScheduleConfig
from kinediff.heads import HeadConfig
from kinediff.posturehmr import MOVED_FIELDS, NESTED_CONFIGS
from kinediff.training import TrainConfig


def test_no_option_is_written_twice():
    top = set(PostureHMRConfig.__dataclass_fields__)
    seen: dict[str, str] = {}
    for group, kind in NESTED_CONFIGS.items():
        for name in kind.__dataclass_fields__:
            assert name not in top, f"{name} is both a top-level field and in {group}"
            assert name not in seen, f"{name} is in {seen.get(name)} and {group}"
            seen[name] = group
    assert seen == MOVED_FIELDS
    # the decoder's T and condition width are derived, not stored
    assert not {"num_steps", "cond_dim"} & set(DecoderConfig.__dataclass_fields__)


def test_nested_configs_round_trip_and_are_frozen(tmp_path):
    config = PostureHMRConfig.tiny(schedule="vl", schedule_config={"num_steps": 6, "alpha": "cosine"},
                                   decoder_config={"dim": 32}, head={"num_points": 40})
    assert config.schedule_config == ScheduleConfig(num_steps=6, alpha="cosine")
    assert config.decoder_config == DecoderConfig(dim=32, ffn_dim=128, num_layers=2, num_heads=4)
    assert config.head == HeadConfig(backbone="hrnet_w18_small", heatmap_size=16, num_points=40)
    data = config.to_dict()
    assert data["schedule_config"]["num_steps"] == 6 and "num_steps" not in data
    assert PostureHMRConfig.from_dict(data) == config
    assert PostureHMRConfig.from_config(config.save_config(tmp_path)) == config
    for nested in (config.head, config.schedule_config, config.decoder_config):
        with pytest.raises(FrozenInstanceError):
            nested.num_steps = 3  # type: ignore[misc]
        assert type(nested).from_dict(nested.to_dict()) == nested


def test_the_model_is_built_from_the_nested_configs(body32, cache_dir):
    config = PostureHMRConfig.tiny(schedule_config={"num_steps": 4}, decoder_config={"dim": 32})
    model = PostureHMR(config, body32)
    assert model.schedule.num_steps == 4
    assert model.decoder.config == M2PConfig(dim=32, ffn_dim=128, num_layers=2, num_heads=4,
                                             num_steps=4, cond_dim=2, dropout=0.0)
    assert model.head.to_heatmaps.out_channels == config.head.num_points
    features = PostureHMRConfig.tiny(condition="image_feature", feature_dim=48)
    assert features.cond_dim == 48 and PostureHMR(features, body32).decoder.config.cond_dim == 48


@pytest.mark.parametrize("kind, data, message", [
    (HeadConfig, {"num_points": 17}, "num_points must exceed the 17 joints"),
    (HeadConfig, {"heatmap_size": 0}, "heatmap_size must be a positive integer"),
    (HeadConfig, {"pretrained": 3}, "pretrained must be a file path"),
    (ScheduleConfig, {"num_steps": 0}, "num_steps must be a positive integer"),
    (ScheduleConfig, {"num_steps": 2.5}, "num_steps must be a positive integer"),
    (ScheduleConfig, {"blend": "smooth"}, "blend must be one of"),
    (ScheduleConfig, {"alpha": "quadratic"}, "alpha must be one of"),
    (ScheduleConfig, {"noise_prediction": "v"}, "noise_prediction must be one of"),
    (DecoderConfig, {"dim": 30, "num_heads": 4}, r"dim \(30\) must be divisible by num_heads \(4\)"),
    (DecoderConfig, {"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
    (DecoderConfig, {"num_layers": True}, "num_layers must be a positive integer"),
    (DecoderConfig, {"width": 3}, r"unknown DecoderConfig fields \['width'\]"),
])
def test_nested_config_errors(kind, data, message):
    with pytest.raises(ValueError, match=message):
        kind.from_dict(data)
    with pytest.raises(ValueError, match=message):  # also through the model config
        PostureHMRConfig.from_dict({{HeadConfig: "head", ScheduleConfig: "schedule_config",
                                     DecoderConfig: "decoder_config"}[kind]: data})


def test_a_nested_config_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError, match="head must be a HeadConfig or a dict of its fields"):
        PostureHMRConfig(head=DecoderConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule_config must be a ScheduleConfig"):
        PostureHMRConfig(schedule_config=[10])  # type: ignore[arg-type]


def test_the_01_flat_names_still_work_with_a_warning():
    with pytest.warns(DeprecationWarning, match="moved to PostureHMRConfig.schedule_config") as rec:
        config = PostureHMRConfig(num_steps=5, alpha="cosine")
    assert rec[0].filename == __file__  # the user's line
    assert config.schedule_config == ScheduleConfig(num_steps=5, alpha="cosine")
    with pytest.warns(DeprecationWarning, match="moved to PostureHMRConfig.decoder_config") as rec:
        again = replace(config, dim=64, num_heads=2)
    assert rec[0].filename == __file__
    assert again.decoder_config == DecoderConfig(dim=64, num_heads=2)
    assert again.schedule_config == config.schedule_config  # replace keeps the rest
    with pytest.warns(DeprecationWarning, match="PostureHMRConfig.num_points moved to "
                                                "PostureHMRConfig.head.num_points"):
        assert config.num_points == 81
    with pytest.warns(DeprecationWarning, match="setting PostureHMRConfig.backbone"):
        again.backbone = "hrnet_w32"
    assert again.head.backbone == "hrnet_w32" and config.head.backbone == "hrnet_w48"
    with pytest.warns(DeprecationWarning, match=r"PostureHMRConfig.tiny\(num_points=...\)"):
        tiny = PostureHMRConfig.tiny(num_points=40)
    assert tiny.head == HeadConfig(backbone="hrnet_w18_small", heatmap_size=16, num_points=40)
    # the flat names are checked as before: an option that cannot apply is still refused
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="blend='exact' has no "
                                                                          "effect with schedule='vl'"):
        PostureHMRConfig(schedule="vl", blend="exact")


def test_flat_configs_on_disk_load_without_a_warning():
    config = PostureHMRConfig.tiny(schedule_config={"num_steps": 6}, decoder_config={"dim": 32})
    flat = {k: v for k, v in config.to_dict().items() if k not in NESTED_CONFIGS}
    for group in NESTED_CONFIGS:
        flat.update(getattr(config, group).to_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PostureHMRConfig.from_dict(flat) == config
    # a flat field is the newer word where both are given
    mixed = {**config.to_dict(), "num_steps": 3}
    assert PostureHMRConfig.from_dict(mixed).schedule_config.num_steps == 3


def test_configs_pickled_before_the_nesting_unpickle():
    config = PostureHMRConfig.tiny(schedule_config={"num_steps": 6})
    assert pickle.loads(pickle.dumps(config)) == config
    old_state = {k: v for k, v in asdict(config).items() if k not in NESTED_CONFIGS}
    for group in ("head", "schedule_config", "decoder_config"):
        old_state.update(asdict(getattr(config, group)))
    old_state["train"] = config.train  # the pre-nesting development release had train nested
    revived = PostureHMRConfig.__new__(PostureHMRConfig)
    revived.__setstate__(old_state)
    assert revived == config


def test_set_overrides_reach_the_nested_configs():
    base = PostureHMRConfig.tiny()
    changed = with_overrides(base, ["schedule_config.num_steps=5", "dim=32", "head.num_points=40",
                                    'decoder_config={"num_layers": 3}', "schedule=vl"])
    assert changed.schedule_config.num_steps == 5 and changed.schedule == "vl"
    assert changed.decoder_config == replace(base.decoder_config, dim=32, num_layers=3)
    assert changed.head.num_points == 40 and changed.train == TrainConfig.tiny()
    with pytest.raises(ValueError, match="unknown HeadConfig field 'dim'"):
        with_overrides(base, ["head.dim=3"])
    with pytest.raises(ValueError, match="takes a JSON object of ScheduleConfig fields"):
        with_overrides(base, ["schedule_config=5"])


def test_a_later_config_is_never_taken_for_a_01_one():
    """A nested config without root_path / render_target is not kinediff 0.1's: no paper path
    and no 0.1 resets are applied to it."""
    data = PostureHMRConfig(schedule="vl").to_dict()
    del data["root_path"], data["rollout_share"]
    loaded = PostureHMRConfig.from_dict(data)
    assert (loaded.root_path, loaded.rollout_share) == ("auto", 0.5)
    noisy = PostureHMRConfig(schedule="noise", schedule_config={"alpha": "cosine"}).to_dict()
    del noisy["render_target"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PostureHMRConfig.from_dict(noisy).schedule_config.alpha == "cosine"


def test_paths_and_numpy_numbers_are_accepted_and_positional_fields_refused(tmp_path):
    import numpy as np

    head = HeadConfig(pretrained=tmp_path / "w.pth", num_points=np.int64(40))
    assert head.pretrained == str(tmp_path / "w.pth") and type(head.num_points) is int
    decoder = DecoderConfig(dim=np.int32(32), dropout=np.float32(0.25))
    assert type(decoder.dim) is int and decoder.dropout == 0.25
    assert ScheduleConfig(num_steps=np.int64(5)).num_steps == 5
    with pytest.raises(TypeError):
        PostureHMRConfig(256, "hrnet_w48")  # type: ignore[misc]
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="schedule_config must be "
                                                                          "a ScheduleConfig"):
        PostureHMRConfig(num_steps=5, schedule_config=3)  # type: ignore[arg-type]

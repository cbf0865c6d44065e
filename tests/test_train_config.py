"""TrainConfig: training apart from the model config, and kinediff 0.1's flat training fields
still accepted for one release."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import pytest

from kinediff.apps.jobs import with_overrides
from kinediff.posturehmr import PostureHMRConfig
from kinediff.training import TrainConfig
from kinediff.training.config import TRAIN_FIELDS


def test_presets_are_the_papers_and_the_tiny_ones():
    assert TrainConfig() == TrainConfig(1e-3, 5e-4, 5e-5, 40, 30, 0.5, 32, None)
    assert PostureHMRConfig().train == TrainConfig()
    assert PostureHMRConfig.tiny().train == TrainConfig.tiny()
    assert TrainConfig.tiny() == TrainConfig(1e-3, 1e-3, 3e-3, 8, 6, 0.5, 32, 100.0)
    assert set(TRAIN_FIELDS) & {f for f in PostureHMRConfig().to_dict()} == set()


@pytest.mark.parametrize("change, message", [
    (dict(lr_3d=0.0), "lr_3d must be a positive number"),
    (dict(lr_decay=-1.0), "lr_decay must be a positive number"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(lr_decay_epoch=-1), "lr_decay_epoch must be a non-negative integer"),
    (dict(grad_clip=0), "grad_clip must be a positive number or None"),
    (dict(grad_clip="1"), "grad_clip must be a positive number or None"),
])
def test_bad_values_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change)


def test_the_model_config_round_trips_with_its_training(tmp_path):
    config = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=8))
    assert config.to_dict()["train"]["batch_size"] == 8
    assert PostureHMRConfig.from_json(config.to_json()) == config
    config.save_config(tmp_path)
    assert PostureHMRConfig.from_config(tmp_path) == config
    assert replace(config, schedule="vl").train == config.train


def test_a_01_config_with_flat_training_fields_loads_without_a_warning():
    config = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=8, lr_3d=1e-4))
    flat = {k: v for k, v in config.to_dict().items() if k != "train"}
    flat.update(config.train.to_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PostureHMRConfig.from_dict(flat) == config
        assert PostureHMRConfig.from_json(json.dumps(flat)) == config


def test_the_01_keywords_and_reads_still_work_with_a_warning():
    with pytest.warns(DeprecationWarning, match=r"PostureHMRConfig\(batch_size=...\) or replace") as rec:
        config = PostureHMRConfig(batch_size=8)
    assert rec[0].filename == __file__  # the user's line
    with pytest.warns(DeprecationWarning, match="moved to PostureHMRConfig.train") as rec:
        again = replace(config, batch_size=4)  # 0.1's idiom, through dataclasses.replace
    assert rec[0].filename == __file__ and again.train.batch_size == 4
    with pytest.warns(DeprecationWarning, match="setting PostureHMRConfig.epochs"):
        again.epochs = 2
    assert again.train.epochs == 2 and config.train.epochs == 40
    assert config.train.batch_size == 8 and config.train.lr_3d == 5e-5
    with pytest.warns(DeprecationWarning, match=r"PostureHMRConfig.tiny\(lr_3d=...\)"):
        tiny = PostureHMRConfig.tiny(lr_3d=1e-4)
    assert tiny.train == TrainConfig.tiny(lr_3d=1e-4)
    with pytest.warns(DeprecationWarning, match="PostureHMRConfig.batch_size moved to "
                                                "PostureHMRConfig.train.batch_size"):
        assert config.batch_size == 8
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="grad_clip must be"):
        PostureHMRConfig(grad_clip=-1.0)


def test_set_overrides_route_training_fields():
    base = PostureHMRConfig.tiny()
    changed = with_overrides(base, ["batch_size=8", "train.lr_3d=0.001", "schedule=vl"])
    assert changed.train == TrainConfig.tiny(batch_size=8, lr_3d=1e-3) and changed.schedule == "vl"
    # a train={...} object changes only the fields it names (the tiny recipe stays)
    assert with_overrides(base, ['train={"batch_size": 4}']).train == TrainConfig.tiny(batch_size=4)
    with pytest.raises(ValueError, match="unknown TrainConfig field 'schedule'"):
        with_overrides(base, ["train.schedule=vl"])
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['foo'\]"):
        with_overrides(base, ['train={"foo": 1}'])


def test_train_configs_are_frozen_and_tiny_takes_a_dict():
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        TrainConfig().batch_size = 4  # type: ignore[misc]
    assert PostureHMRConfig.tiny(train={"batch_size": 8}).train == TrainConfig.tiny(batch_size=8)
    with pytest.raises(ValueError, match="train must be a TrainConfig or a dict"):
        PostureHMRConfig.from_dict({"batch_size": 8, "train": [1]})

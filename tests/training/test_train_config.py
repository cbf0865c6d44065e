"""TrainConfig: training apart from the model config, nested in it as ``train``."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from kinediff.apps.jobs import with_overrides
from kinediff.forward import VertexLinearSchedule
from kinediff.posturehmr import PostureHMRConfig
from kinediff.training import TrainConfig


def test_presets_are_the_papers_and_the_tiny_ones():
    assert TrainConfig() == TrainConfig(lr_backbone=1e-3, lr_2d=5e-4, lr_3d=5e-5, epochs=40,
                                        lr_decay_epoch=30, lr_decay=0.5, batch_size=32,
                                        grad_clip=None)
    assert PostureHMRConfig().train == TrainConfig()
    assert PostureHMRConfig.tiny().train == TrainConfig.tiny()
    assert TrainConfig.tiny() == TrainConfig(lr_backbone=1e-3, lr_2d=1e-3, lr_3d=3e-3, epochs=8,
                                             lr_decay_epoch=6, lr_decay=0.5, batch_size=32,
                                             grad_clip=100.0)
    assert not set(TrainConfig.field_names()) & set(PostureHMRConfig.field_names())


@pytest.mark.parametrize("change, message", [
    (dict(lr_3d=0.0), "lr_3d must be a finite number > 0, got 0.0"),
    (dict(lr_decay=-1.0), "lr_decay must be a finite number > 0, got -1.0"),
    (dict(lr_2d=float("inf")), "lr_2d must be a finite number > 0, got inf"),
    (dict(epochs=0), r"epochs must be an integer in \[1, 10000\], got 0"),
    (dict(epochs=4_000_000), r"epochs must be an integer in \[1, 10000\], got 4000000"),
    (dict(batch_size=2.5), r"batch_size must be an integer in \[1, 65536\], got 2.5"),
    (dict(lr_decay_epoch=-1), "lr_decay_epoch must be an integer >= 0, got -1"),
    (dict(grad_clip=0), "grad_clip must be a finite number > 0, got 0"),
    (dict(grad_clip="1"), "grad_clip must be a finite number > 0, got '1'"),
])
def test_bad_values_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**change)
    with pytest.raises(ValueError, match=message):  # also through the model config
        PostureHMRConfig.tiny(train=change)


def test_numpy_numbers_are_read_as_python_numbers():
    train = TrainConfig(epochs=np.int64(3), lr_3d=np.float32(0.5))
    assert (type(train.epochs), type(train.lr_3d), train.lr_3d) == (int, float, 0.5)


def test_the_model_config_round_trips_with_its_training(tmp_path):
    config = PostureHMRConfig.tiny(train=TrainConfig.tiny(batch_size=8))
    assert config.to_dict()["train"]["batch_size"] == 8
    assert PostureHMRConfig.from_json(config.to_json()) == config
    assert PostureHMRConfig.load(config.save(tmp_path)) == config
    assert config.replace(schedule=VertexLinearSchedule.Config()).train == config.train


def test_set_overrides_route_training_fields():
    base = PostureHMRConfig.tiny()
    changed = with_overrides(base, ["train.batch_size=8", "train.lr_3d=0.001"])
    assert changed.train == TrainConfig.tiny(batch_size=8, lr_3d=1e-3)
    # a train={...} object changes only the fields it names (the tiny recipe stays)
    assert with_overrides(base, ['train={"batch_size": 4}']).train == TrainConfig.tiny(batch_size=4)
    with pytest.raises(ValueError, match=r"train: unknown TrainConfig fields \['schedule'\]"):
        with_overrides(base, ["train.schedule=vl"])
    with pytest.raises(ValueError, match=r"train: unknown TrainConfig fields \['foo'\]"):
        with_overrides(base, ['train={"foo": 1}'])


def test_train_configs_are_frozen_and_tiny_takes_a_dict():
    with pytest.raises(FrozenInstanceError):
        TrainConfig().batch_size = 4  # type: ignore[misc]
    assert PostureHMRConfig.tiny(train={"batch_size": 8}).train == TrainConfig.tiny(batch_size=8)
    with pytest.raises(ValueError, match="train must be a config of TrainConfig .*got list"):
        PostureHMRConfig.from_dict({"train": [1]})

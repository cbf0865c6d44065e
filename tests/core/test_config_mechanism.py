"""The one config mechanism (kinediff.core.config): every configurable component records its
constructor's arguments as a frozen, read-only config, is rebuilt by ``from_config(config,
**objects)``, and saves its config (and weights) the one way, stamped with a format version."""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import FrozenInstanceError
from typing import Annotated

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.core.checks import Int, Number, OneOf
from kinediff.core.config import FORMAT_VERSION, Config, Configurable, deprecate
from kinediff.core.pretrained import Pretrained
from kinediff.core.version import __version__
from kinediff.decoders import GraphormerRegressor, M2PDecoder, MeshUpsampler
from kinediff.forward import FKSchedule, ForwardProcess, GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.heads import HRNetMeshHead
from kinediff.losses import TrimapIoULoss, TrimapRenderLoss
from kinediff.mesh import MeshHierarchy
from kinediff.render import SoftSilhouetteRasterizer


@pytest.fixture(scope="module")
def hierarchy(body32, cache_dir):
    return MeshHierarchy.from_body(body32, (4, 4, 4), cache_dir=cache_dir)


def _components(body32, hierarchy):
    """(component, the objects it was built on) for every configurable component."""
    adjacency = hierarchy.adjacency(-1)
    template = torch.zeros(hierarchy.sizes[-1], 3)
    return [
        (FKSchedule(body32, num_steps=5, alpha="cosine", blend="exact", root_path="heading",
                    template_orientation=[3.0, 0.0, 0.0], backend="torch"), {"body": body32}),
        (VertexLinearSchedule(body32, num_steps=4), {"body": body32}),
        (GaussianNoiseSchedule(num_steps=5, num_train_steps=100, beta_schedule="cosine"), {}),
        (M2PDecoder(adjacency, dim=16, ffn_dim=32, num_layers=1, num_heads=2, cond_dim=3),
         {"adjacency": adjacency}),
        (GraphormerRegressor(adjacency, template, dim=16, ffn_dim=32, num_layers=1, num_heads=2),
         {"adjacency": adjacency, "template": template}),
        (MeshUpsampler(hierarchy), {"hierarchy": hierarchy}),
        (HRNetMeshHead("hrnet_w18_small", num_points=20, num_vertices=108, heatmap_size=16), {}),
        (SoftSilhouetteRasterizer((32, 48), sigma=0.5, backend="auto"), {}),
        (TrimapIoULoss(width=3), {}),
        (TrimapRenderLoss(width=2, sigma=0.25), {}),
        (PostureHMR(PostureHMRConfig.tiny(), body32), {"body": body32}),
    ]


def test_every_component_is_its_config(body32, hierarchy, tmp_path):
    for component, objects in _components(body32, hierarchy):
        kind = type(component)
        config = component.config
        assert isinstance(config, kind.Config) and type(config).component is kind
        assert config.class_name == kind.__name__
        with pytest.raises(AttributeError):
            component.config = config
        for name in config.field_names():
            with pytest.raises(FrozenInstanceError):
                setattr(config, name, None)
        # objects passed in are never part of the config
        assert not set(objects) & set(config.field_names())
        again = kind.from_config(config, **objects)
        assert type(again) is kind and again.config == config
        assert kind.from_config(config.to_dict(), **objects).config == config
        loaded = kind.load_config(component.save_config(tmp_path / kind.__name__))
        assert loaded == config and type(loaded) is type(config)
        saved = json.loads((tmp_path / kind.__name__ / "config.json").read_text())
        assert saved["format_version"] == FORMAT_VERSION and saved["kinediff_version"] == __version__
        assert saved["class"] == kind.__name__
        assert pickle.loads(pickle.dumps(config)) == config


def test_a_base_class_builds_whichever_process_a_config_names(body32):
    for config in (FKSchedule.Config(num_steps=3), VertexLinearSchedule.Config(),
                   GaussianNoiseSchedule.Config(prediction="sample")):
        built = ForwardProcess.from_config(config.to_dict(), body=body32)
        assert type(built).Config is type(config) and built.config == config
        assert config.build(body=body32, adjacency=None).config == config  # offered, not all taken
    with pytest.raises(TypeError, match="FKSchedule.from_config needs a config of FKSchedule"):
        FKSchedule.from_config(VertexLinearSchedule.Config(), body=body32)
    with pytest.raises(ValueError, match="is a config of 'M2PDecoder', not of ForwardProcess"):
        ForwardProcess.from_config({"class": "M2PDecoder"})


def test_runtime_options_are_not_config_and_pass_through(body32):
    fk = FKSchedule(body32, backend="torch")
    assert "backend" not in fk.config.field_names()
    assert FKSchedule.from_config(fk.config, body=body32, backend="torch").backend == "torch"
    with pytest.raises(ValueError, match="backend must be 'auto', 'torch' or 'numba', got 'cuda'"):
        FKSchedule(body32, backend="cuda")


def test_weights_save_and_load_the_one_way(body32, hierarchy, tmp_path):
    adjacency = hierarchy.adjacency(-1)
    template = torch.randn(hierarchy.sizes[-1], 3)
    torch.manual_seed(0)
    regressor = GraphormerRegressor(adjacency, template, dim=16, ffn_dim=32, num_layers=1,
                                    num_heads=2)
    with torch.no_grad():
        regressor.head[-1].weight.normal_()
    assert "template" not in regressor.learnt_state_dict()  # derived from the objects: never saved
    path = regressor.save_pretrained(tmp_path / "regressor")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    again = GraphormerRegressor.from_pretrained(path, adjacency=adjacency, template=template)
    cond = torch.randn(2, hierarchy.sizes[-1], 2)
    assert torch.equal(again(cond), regressor.eval()(cond)) and not again.training
    with pytest.raises(ValueError, match="is a config of 'GraphormerRegressor', not of M2PDecoder"):
        M2PDecoder.from_pretrained(path, adjacency=adjacency)
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        (path / "model.safetensors").unlink()
        GraphormerRegressor.from_pretrained(path, adjacency=adjacency, template=template)


def test_a_saved_config_is_stamped_and_checked(tmp_path):
    config = M2PDecoder.Config(dim=32)
    path = config.save(tmp_path / "decoder.json")
    data = json.loads(path.read_text())
    for broken, message in (
            ({k: v for k, v in data.items() if k != "format_version"}, "has no format_version"),
            ({**data, "format_version": FORMAT_VERSION + 1}, "upgrade kinediff"),
            ({**data, "format_version": "1"}, "format_version must be an integer >= 1, got .1."),
            ({**data, "width": 3}, r"unknown M2PDecoder fields \['width'\]"),
            ({**data, "class": "FKSchedule"}, "is a config of 'FKSchedule', not of 'M2PDecoder'"),
            ([1, 2], "a JSON list")):
        path.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=message) as info:
            M2PDecoder.Config.load(path)
        assert str(path) in str(info.value)  # every error names the file
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not a JSON config"):
        M2PDecoder.load_config(path)
    with pytest.raises(FileNotFoundError, match="no M2PDecoder config"):
        M2PDecoder.load_config(tmp_path / "missing")


def test_a_config_holding_a_callable_works_in_memory_but_is_not_saved(body32):
    def ease(r):
        return r * r

    fk = FKSchedule(body32, alpha=ease)
    assert fk.config.alpha is ease and FKSchedule.from_config(fk.config, body=body32).alpha is ease
    with pytest.raises(TypeError, match="not JSON serializable"):
        fk.config.to_json()


def test_update_and_replace():
    config = PostureHMRConfig.tiny()
    assert config.update({}) == config
    assert config.update({"train.batch_size": 8}).train.batch_size == 8
    assert config.update({"train": {"batch_size": 8}}) == config.update({"train.batch_size": 8})
    assert config.replace(render=None).render is None
    with pytest.raises(ValueError, match=r"unknown PostureHMR fields \['nope'\]"):
        config.replace(nope=1)
    with pytest.raises(ValueError, match=r"render: unknown TrimapRenderLoss fields \['nope'\]"):
        config.update({"render.nope": 1})


# -- the mechanism on a class of the test's own ----------------------------------------------------

class Widget(Configurable, Pretrained, nn.Module):
    """A component written the way kinediff's are."""

    config_objects = ("graph",)
    config_runtime = ("fast",)

    def __init__(self, graph, width: Annotated[int, Int(1, 64)] = 8,
                 mode: Annotated[str, OneOf("a", "b")] = "a",
                 rate: Annotated[float, Number(0.0, 1.0, high_open=True)] = 0.0,
                 fast: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(self.config.width, 2)
        self.fast = fast

    @classmethod
    def check_config(cls, config) -> None:
        if config.mode == "b" and config.width % 2:
            raise ValueError("mode 'b' needs an even width")


class Gadget(Widget):
    """A subclass without a constructor of its own: its own config class all the same."""


def test_a_component_of_ones_own():
    widget = Widget(None, width=np.int64(6), rate=np.float32(0.5), fast=True)
    assert widget.config == Widget.Config(width=6, mode="a", rate=0.5)
    assert type(widget.config.width) is int and type(widget.config.rate) is float
    assert repr(widget.config) == "Widget.Config(width=6, mode='a', rate=0.5)"
    gadget = Gadget("graph", width=4)
    assert type(gadget.config) is Gadget.Config and Gadget.Config is not Widget.Config
    assert type(Widget.from_config({"class": "Gadget", "width": 2}, graph=None)) is Gadget
    for kwargs, message in (({"width": 0}, r"width must be an integer in \[1, 64\], got 0"),
                            ({"width": True}, "width must be an integer"),
                            ({"width": 2.0}, "width must be an integer"),
                            ({"mode": "c"}, "mode must be 'a' or 'b', got 'c'"),
                            ({"rate": float("nan")}, "rate must be a finite number"),
                            ({"mode": "b", "width": 3}, "mode 'b' needs an even width")):
        with pytest.raises(ValueError, match=message):
            Widget(None, **kwargs)
        with pytest.raises(ValueError, match=message):
            Widget.Config(**kwargs)  # the same rules without building anything
    with pytest.raises(TypeError, match="unexpected keyword argument 'graph'"):
        Widget.Config(graph=1)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 64), mode=st.sampled_from(["a", "b"]),
       rate=st.floats(0.0, 1.0, exclude_max=True, allow_nan=False))
def test_configs_round_trip_through_json(width, mode, rate):
    if mode == "b" and width % 2:
        width += 1 if width < 64 else -1
    config = Widget.Config(width=width, mode=mode, rate=rate)
    assert Widget.Config.from_json(config.to_json()) == config
    assert Widget.Config.from_dict(config.to_dict()) == config
    assert hash(Widget.Config.from_dict(config.to_dict())) == hash(config)


def _old_name(removed_in: str) -> int:
    deprecate("old_name", removed_in, "use new_name")
    return 1


def test_deprecate_warns_then_refuses_to_outlive_its_release():
    with pytest.warns(DeprecationWarning, match="old_name is deprecated and goes in kinediff 99.0: "
                                                "use new_name") as record:
        assert _old_name("99.0") == 1
    assert record[0].filename == __file__ and record[0].lineno > 0  # the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match=f"was to be removed in kinediff 0.2; this is {__version__}"):
            _old_name("0.2")


def test_configs_are_dataclasses_of_config():
    for kind in (FKSchedule, M2PDecoder, HRNetMeshHead, TrimapRenderLoss, PostureHMR):
        assert issubclass(kind.Config, Config)

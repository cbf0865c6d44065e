"""kinediff.export.onnx: onnxruntime runs the exported graph to PyTorch's ``predict`` (1e-4 m) for
batch 1 and 2 from one dynamic-batch file; the trace-friendly module equals ``predict`` for the other
compositions; models that cannot export are refused before anything is written."""

import re

import numpy as np
import onnx
import onnxruntime  # noqa: F401
import onnxscript  # noqa: F401
import pytest
import torch
from tolerances import atol_for

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.decoders import GraphConv
from kinediff.export import InferenceGraph, export_onnx, onnx_outputs, onnx_session, run_onnx

#: Two reverse steps keep the trace short; the steps are unrolled alike for any T.
FAST = {"schedule.num_steps": 2}


def untrained_but_not_trivial(config, body, seed=0):
    """A tiny model whose random weights do move the mesh: the decoder's last layer starts at zero
    (it would return the template) and the head's C at 1/K (every 2D-mesh vertex at the mean
    point, a degenerate condition): both perturbed, seeded."""
    torch.manual_seed(seed)
    model = PostureHMR(config, body).eval()
    with torch.no_grad():
        last = model.decoder.head[-1]
        last.weight.normal_(0.0, 0.05)
        last.bias.normal_(0.0, 0.01)
        model.head.coefficients.add_(0.5 * torch.randn_like(model.head.coefficients))
    return model


@pytest.fixture(scope="module")
def exported(body32, tmp_path_factory):
    """The default tiny composition (FK, 2D-mesh condition, heading root path), exported with a
    dynamic batch from train mode (3D stage: the head frozen in eval)."""
    model = untrained_but_not_trivial(PostureHMRConfig.tiny(**FAST), body32)
    model.train_mode("3d")
    modes = [m.training for m in model.modules()]
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    assert [m.training for m in model.modules()] == modes  # put back as they were
    return model.eval(), path, onnx_session(path)


@pytest.mark.parametrize("batch", [1, 2])
def test_onnxruntime_equals_predict(exported, batch):
    model, _, session = exported
    images = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch))
    ref = model.predict(images)
    out = run_onnx(session, images)
    assert tuple(out) == ("vertices", "joints", "mesh2d")
    for key in out:
        assert out[key].shape == tuple(ref[key].shape)
        # float32 through different kernels: 1024 ulps of the largest value (mesh2d at 50 px was
        # once 1.1e-4 px off, a relative 2e-6, against a fixed atol of 1e-4)
        np.testing.assert_allclose(out[key], ref[key].numpy(), atol=atol_for(ref[key]), rtol=0,
                                   err_msg=key)
    # not trivial: the meshes moved away from the up-sampled template, and differ between images
    with torch.no_grad():
        template = model.upsampler(model.hierarchy.downsample(model.template(1)))
    assert float((ref["vertices"] - template).abs().max()) > 0.05
    if batch == 2:
        assert float((ref["vertices"][0] - ref["vertices"][1]).abs().max()) > 1e-3


def test_an_untrained_model_exports_what_it_predicts(body32, tmp_path):
    """The docs' example: an untrained tiny model, whose 2D mesh is collapsed to a point (C = 1/K:
    every vertex at the points' mean). Its heading is defined (0: no spread to read one from), and
    the graph runs the same heading estimate and reverse loop as predict, so the two agree."""
    torch.manual_seed(0)
    model = PostureHMR(PostureHMRConfig.tiny(**FAST), body32).eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cond, _ = model.condition(images)
    assert torch.equal(cond, torch.zeros_like(cond))
    assert torch.equal(model.heading(cond), torch.zeros(3))
    path = export_onnx(model, tmp_path / "untrained.onnx")
    out = run_onnx(path, images)
    ref = model.predict(images)
    for key in out:
        np.testing.assert_allclose(out[key], ref[key].numpy(), atol=atol_for(ref[key]), rtol=0,
                                   err_msg=key)


def test_the_file_is_one_valid_onnx_model(exported):

    _, path, _ = exported
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    assert [i.name for i in graph.input] == ["images"]
    assert [o.name for o in graph.output] == ["vertices", "joints", "mesh2d"]
    # no scatter: onnxruntime's multi-threaded ScatterND(add) races on repeated indices
    assert not {n.op_type for n in graph.node} & {"ScatterND", "ScatterElements", "Scatter"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # weights inside, no temporary


@pytest.mark.parametrize("change", [
    dict(schedule={"class": "VertexLinearSchedule", "root_path": "geodesic"}),  # no heading
    dict(decoder={"class": "GraphormerRegressor"}, features=True),  # one pass, no 2D mesh output
], ids=["vl-geodesic", "image-feature-regressor"])
def test_the_traced_module_equals_predict(body32, change):
    change = dict(change)
    config = PostureHMRConfig.tiny(**FAST, **{k: v for k, v in change.items() if k != "features"})
    if change.get("features"):
        config = config.with_condition("image_feature", 64)
    model = untrained_but_not_trivial(config, body32)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref = model.predict(images)
    graph = InferenceGraph(model)
    with torch.no_grad():
        out = graph(images)
    # the graph's decoder shares the model's weights; the model keeps its sparse graph convolutions
    assert {id(p) for p in graph.decoder.parameters()} == {id(p) for p in model.decoder.parameters()}
    assert any(isinstance(m, GraphConv) for m in model.decoder.modules())
    assert not any(isinstance(m, GraphConv) for m in graph.decoder.modules())
    assert onnx_outputs(model) == (("vertices", "joints") if "decoder" in change else
                                   ("vertices", "joints", "mesh2d"))
    for key, value in zip(onnx_outputs(model), out):
        torch.testing.assert_close(value, ref[key], atol=atol_for(ref[key]), rtol=0)


def test_models_that_cannot_export_are_refused(body32, body64, tmp_path):
    noise = PostureHMR(PostureHMRConfig.tiny(schedule={"class": "GaussianNoiseSchedule"}, **FAST),
                       body32).eval()
    message = ("the GaussianNoiseSchedule cannot be exported to ONNX: its reverse process starts from "
               "a random sample x_T ~ N(0, I), which a graph cannot draw reproducibly; export a model "
               "with a posture schedule (FKSchedule or VertexLinearSchedule) or the one-step "
               "GraphormerRegressor decoder")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        export_onnx(noise, tmp_path / "noise.onnx")
    fk = PostureHMR(PostureHMRConfig.tiny(**FAST), body64).double()  # body64: the session's own
    with pytest.raises(ValueError, match=re.escape("ONNX export takes a float32 model (the graph's "
                                                   "input is float32 images), got torch.float64: "
                                                   "export model.float()")):
        export_onnx(fk, tmp_path / "fk.onnx")
    with pytest.raises(ValueError, match=r"batch must be an integer >= 1 \(a batch size, or None for any\), got 0"):
        export_onnx(fk, tmp_path / "fk.onnx", batch=0)
    with pytest.raises(ValueError, match="opset must be 18 or later"):
        export_onnx(fk, tmp_path / "fk.onnx", opset=17)
    assert list(tmp_path.iterdir()) == []

"""Decoders: graph convolution against the dense reference, equivariance, M2P, up-sampler, regressor."""

from __future__ import annotations

import pytest
import torch
from tolerances import atol_for

from kinediff.decoders import (
    GraphConv,
    GraphormerEncoder,
    GraphormerRegressor,
    GraphResBlock,
    M2PDecoder,
    MeshUpsampler,
    SinusoidalStepEmbedding,
)
from kinediff.mesh import MeshHierarchy


@pytest.fixture(scope="module")
def hierarchy(body32, cache_dir):
    return MeshHierarchy.from_body(body32, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def adjacency(hierarchy):
    return hierarchy.adjacency(-1)


def _tiny(adjacency, **kw):
    torch.manual_seed(0)
    return M2PDecoder(adjacency, dim=16, ffn_dim=32, num_layers=1, num_heads=2, **kw)


def test_graph_conv_equals_dense_reference(adjacency):
    torch.manual_seed(0)
    conv = GraphConv(5, 7, adjacency).double()
    x = torch.randn(3, 431, 5, dtype=torch.float64)
    dense = adjacency.to_dense().double()
    expected = dense @ (x @ conv.weight) + conv.bias
    assert torch.allclose(conv(x), expected, atol=1e-12)


def test_permuting_the_batch_permutes_the_output(adjacency):
    torch.manual_seed(1)
    block = GraphResBlock(8, adjacency)
    enc = GraphormerEncoder(8, 2, 2, 16, adjacency)
    x = torch.randn(4, 431, 8)
    perm = torch.tensor([2, 0, 3, 1])
    for module in (block, enc):
        want = module(x[perm])
        assert torch.allclose(module(x)[perm], want, atol=atol_for(want, ulps=256), rtol=0)


def test_extra_tokens_pass_through_the_encoder(adjacency):
    torch.manual_seed(2)
    enc = GraphormerEncoder(8, 1, 2, 16, adjacency)
    out = enc(torch.randn(2, 14 + 431, 8))  # 14 joint tokens before the mesh tokens
    assert out.shape == (2, 445, 8)


def test_m2p_shapes_gradients_and_zero_initial_output(adjacency):
    dec = _tiny(adjacency)
    mesh3d = torch.randn(2, 431, 3, requires_grad=True)
    mesh2d = torch.randn(2, 431, 2)
    step = torch.tensor([1, 10])
    out = dec(mesh3d, mesh2d, step)
    assert out.shape == (2, 431, 3)
    assert torch.count_nonzero(out) == 0  # the zero-initialised head moves nothing yet
    torch.nn.init.normal_(dec.head[-1].weight, std=0.1)
    dec(mesh3d, mesh2d, step).square().sum().backward()
    assert mesh3d.grad.abs().sum() > 0
    assert all(p.grad is not None for p in dec.parameters() if p.requires_grad)


def test_cached_condition_equals_uncached(adjacency):
    dec = _tiny(adjacency)
    torch.nn.init.normal_(dec.head[-1].weight, std=0.1)
    mesh3d, mesh2d = torch.randn(3, 431, 3), torch.randn(3, 431, 2)
    step = torch.tensor([2, 5, 9])
    cond = dec.encode_condition(mesh2d)
    assert torch.equal(dec(mesh3d, mesh2d, step), dec(mesh3d, step=step, condition=cond))


def test_deterministic_under_a_seed(adjacency):
    a, b = _tiny(adjacency), _tiny(adjacency)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_state_dict_and_config_round_trip(adjacency, tmp_path):
    dec = _tiny(adjacency)
    again = M2PDecoder.from_config(M2PDecoder.Config.from_dict(dec.config.to_dict()),
                                   adjacency=adjacency)
    again.load_state_dict(dec.state_dict())
    x, c, k = torch.randn(1, 431, 3), torch.randn(1, 431, 2), torch.tensor([4])
    assert torch.equal(again(x, c, k), dec(x, c, k))
    with pytest.raises(ValueError, match=r"unknown M2PDecoder fields \['width'\]"):
        M2PDecoder.Config.from_dict({"width": 3})
    loaded = M2PDecoder.from_pretrained(dec.save_pretrained(tmp_path / "decoder"), adjacency=adjacency)
    assert loaded.config == dec.config and not loaded.training
    assert torch.equal(loaded(x, c, k), dec.eval()(x, c, k))


def test_paper_default_sizes(adjacency):
    cfg = M2PDecoder(adjacency).config
    assert (cfg.dim, cfg.ffn_dim, cfg.num_layers, cfg.num_heads, cfg.cond_dim) == (128, 512, 4, 4, 2)


def test_bfloat16_autocast_runs(adjacency):
    dec = _tiny(adjacency)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dec(torch.randn(1, 431, 3), torch.randn(1, 431, 2), torch.tensor([3]))
    assert out.shape == (1, 431, 3) and torch.isfinite(out.float()).all()


def test_untrained_upsampler_reproduces_the_template(body32, hierarchy):
    up = MeshUpsampler(hierarchy)
    full = body32.v_template[None]
    err = (up(hierarchy.downsample(full)) - full).norm(dim=-1)
    assert err.mean() < 5e-3 and err.max() < 3e-2  # the barycentric U's own error (3.7 / 23 mm)
    assert up(torch.randn(2, 431, 5)).shape == (2, 6890, 5)


def test_regressor_starts_at_the_template(hierarchy, adjacency, body32):
    template = hierarchy.downsample(body32.v_template[None])[0]
    reg = GraphormerRegressor(adjacency, template, dim=16, ffn_dim=32, num_layers=1, num_heads=2)
    out = reg(torch.randn(2, 431, 2))
    assert torch.allclose(out, template.expand(2, -1, -1))


def test_step_embedding_distinguishes_steps():
    emb = SinusoidalStepEmbedding(16)
    e = emb(torch.arange(1, 11))
    assert e.shape == (10, 16)
    assert torch.cdist(e, e).fill_diagonal_(1.0).min() > 1e-4


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d(torch.zeros(1, 430, 3), torch.zeros(1, 430, 2), torch.tensor([1])),
         r"mesh3d must have shape \(B, 431, 3\)"),
        (lambda d: d(torch.zeros(1, 431, 3), torch.zeros(1, 431, 3), torch.tensor([1])),
         r"mesh2d must have shape \(B, 431, 2\)"),
        (lambda d: d(torch.zeros(2, 431, 3), torch.zeros(2, 431, 2), torch.tensor([1])),
         r"step must have shape \(2,\)"),
        (lambda d: d(torch.zeros(1, 431, 3), step=torch.tensor([1])), "give mesh2d or"),
    ],
)
def test_bad_input(adjacency, call, message):
    with pytest.raises(ValueError, match=message):
        call(_tiny(adjacency))


def test_heads_must_divide_the_width(adjacency):
    with pytest.raises(ValueError, match=r"dim \(10\) must be divisible by num_heads \(4\)"):
        M2PDecoder(adjacency, dim=10, num_heads=4)


def test_graph_conv_rejects_wrong_vertex_count(adjacency):
    with pytest.raises(ValueError, match=r"GraphConv expects \(B, 431, 4\)"):
        GraphConv(4, 4, adjacency)(torch.zeros(1, 100, 4))


def test_modules_trace_as_one_graph_for_torch_compile(adjacency, hierarchy):
    # fullgraph=True fails on any graph break; the eager backend keeps the check fast
    dec = _tiny(adjacency)
    x, c, k = torch.randn(2, 431, 3), torch.randn(2, 431, 2), torch.tensor([1, 7])
    compiled = torch.compile(dec, backend="eager", fullgraph=True)
    assert torch.allclose(compiled(x, c, k), dec(x, c, k))
    up = MeshUpsampler(hierarchy)
    assert torch.allclose(torch.compile(up, backend="eager", fullgraph=True)(x), up(x))

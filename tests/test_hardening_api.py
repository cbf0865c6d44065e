"""Hardening (issue 21): the metrics, the evaluator, ``load_regressor`` and the model configs
refuse bad inputs with one clear error naming the argument (or file, or field), promote dtypes as
documented, and configs asking for absurd sizes are refused before anything is allocated — while
the paper's config, the presets and Table 3 load unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kinediff import PostureHMRConfig, value_checks
from kinediff.decoders import GraphormerRegressor, M2PDecoder
from kinediff.forward import MAX_STEPS, MAX_TRAIN_STEPS, FKSchedule, GaussianNoiseSchedule
from kinediff.heads import MAX_HEATMAP_SIZE, MAX_POINTS, HRNetMeshHead
from kinediff.metrics import (
    GRAPHORMER_3DPW,
    H36M_P2,
    SPIN_3DPW,
    Evaluator,
    load_regressor,
    mpjpe,
    mpve,
    pa_mpjpe,
    root_align,
    similarity_procrustes,
)
from kinediff.posturehmr import TABLE3_ROWS, table3_configs
from kinediff.posturehmr.config import MAX_IMAGE_SIZE

seeds = st.integers(0, 2**31 - 1)
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# the worst rounding of coordinates of about 1 (metres) in each dtype, as an error tolerance
TOLERANCE = {torch.float16: 5e-3, torch.bfloat16: 4e-2, torch.float32: 1e-5, torch.float64: 1e-10}


def _pair(seed: int, batch: int = 3, n: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gt = torch.randn(batch, n, 3, generator=gen, dtype=torch.float64) * 0.3
    return gt + 0.05 * torch.randn(batch, n, 3, generator=gen, dtype=torch.float64), gt


# ---- metrics: root ----------------------------------------------------------------------------

@given(seeds, st.integers(1, 30), st.data())
def test_mpjpe_root_is_any_index_in_range_negative_counting_from_the_end(seed, n, data):
    pred, gt = _pair(seed, n=n)
    root = data.draw(st.integers(-n, n - 1))
    k = root % n
    expected = ((pred - pred[:, k:k + 1]) - (gt - gt[:, k:k + 1])).norm(dim=-1).mean(-1)
    assert torch.allclose(mpjpe(pred, gt, root=root), expected, atol=1e-12)
    assert torch.allclose(root_align(pred, root), pred - pred[:, k:k + 1], atol=0)
    outside = data.draw(st.one_of(st.integers(n, 10**9), st.integers(-10**9, -n - 1)))
    for call in (lambda: mpjpe(pred, gt, root=outside), lambda: root_align(pred, outside)):
        with pytest.raises(ValueError, match=rf"root must be a joint index in \[{-n}, {n - 1}\] "
                                             rf"for {n} joints, got {outside}"):
            call()


@pytest.mark.parametrize("root, shown", [
    (True, "bool True"), (False, "bool False"), (1.0, "float 1.0"), ("0", "str '0'"),
    (torch.zeros(3, 1, 3), "Tensor"), ([0], "list"),
])
def test_mpjpe_root_of_another_type_is_refused(root, shown):
    pred, gt = _pair(0)
    with pytest.raises(TypeError, match=f"root must be a joint index \\(an int\\) or None, got {shown}"):
        mpjpe(pred, gt, root=root)
    assert torch.equal(mpjpe(pred, gt, root=np.int64(2)), mpjpe(pred, gt, root=2))  # numpy ints


def test_mpve_and_root_align_root_positions_are_checked():
    pred, gt = _pair(1)
    roots = (pred[:, :1], gt[:, :1])
    assert torch.allclose(mpve(pred, gt, roots), mpjpe(pred, gt, root=0), atol=1e-12)
    for root, kind in ((gt[:, :1], "Tensor"), (0, "int"), ((gt[:, :1],), "tuple")):
        with pytest.raises(TypeError, match=f"root must be a pair \\(root_pred, root_gt\\) of "
                                            f"\\(B, 1, 3\\) tensors or None, got {kind}"):
            mpve(pred, gt, root)
    with pytest.raises(ValueError, match=r"root_gt must have shape \(3, 1, 3\), got \(3, 2, 3\)"):
        mpve(pred, gt, (pred[:, :1], gt[:, :2]))
    with pytest.raises(TypeError, match="root_pred must be a floating-point tensor, got torch.int64"):
        mpve(pred, gt, (pred[:, :1].long(), gt[:, :1]))
    with pytest.raises(ValueError, match=r"root must have shape \(3, 1, 3\), got \(1, 3\)"):
        root_align(pred, gt[0, :1])
    with pytest.raises(ValueError, match=r"x must have shape \(B, N, 3\), got \(14, 3\)"):
        root_align(pred[0], 0)


# ---- metrics: dtypes, shapes, values -----------------------------------------------------------

METRICS = {
    "mpjpe": mpjpe, "pa_mpjpe": pa_mpjpe, "mpve": mpve,
    "similarity_procrustes": similarity_procrustes,
}


@given(seeds, st.sampled_from(FLOATS), st.sampled_from(FLOATS), st.sampled_from(sorted(METRICS)))
def test_metrics_compute_in_the_promoted_dtype_at_least_float32(seed, dtype_pred, dtype_gt, name):
    """float16 / bfloat16 are computed (and returned) in float32 — the SVD has no half kernels —
    and a float32 / float64 pair in float64; the values match float64's to the inputs' rounding."""
    pred, gt = _pair(seed)
    metric = METRICS[name]
    out = metric(pred.to(dtype_pred), gt.to(dtype_gt))
    assert out.dtype == torch.promote_types(torch.promote_types(dtype_pred, dtype_gt), torch.float32)
    reference = metric(pred.to(dtype_pred).double(), gt.to(dtype_gt).double())
    tol = 1e-5 if out.dtype == torch.float32 else 1e-10
    assert torch.allclose(out.double(), reference, atol=tol)
    # and the rounding of the inputs themselves stays within their precision
    coarse = max(TOLERANCE[dtype_pred], TOLERANCE[dtype_gt])
    assert torch.allclose(out.double(), metric(pred, gt), atol=coarse)


@given(seeds, st.sampled_from(sorted(METRICS)), st.booleans(), st.integers(0, 3 * 14 * 3 - 1),
       st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_coordinates_are_refused_naming_the_argument(seed, name, in_gt, index, value):
    pred, gt = _pair(seed)
    bad = (gt if in_gt else pred).clone()
    bad.view(-1)[index] = value
    args = (pred, bad) if in_gt else (bad, gt)
    which = "gt" if in_gt else "pred"
    count = "1 NaN, 0 infinite" if math.isnan(value) else "0 NaN, 1 infinite"
    with pytest.raises(ValueError, match=rf"{which} contains NaN or infinite values \({count}\)"):
        METRICS[name](*args)
    if name in ("mpjpe", "mpve"):  # value checks off: only that sample's error is NaN
        with value_checks(False):
            out = METRICS[name](*args)
        sample = index // (14 * 3)
        assert out[sample].isnan() or out[sample].isinf()
        assert torch.isfinite(torch.cat([out[:sample], out[sample + 1:]])).all()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_inputs_of_the_wrong_kind_are_refused(name):
    metric = METRICS[name]
    pred, gt = _pair(2)
    cases = [
        ((pred.numpy(), gt), TypeError, "pred must be a torch.Tensor, got ndarray"),
        ((pred, gt.tolist()), TypeError, "gt must be a torch.Tensor, got list"),
        ((pred.long(), gt), TypeError, "pred must be a floating-point tensor, got torch.int64"),
        ((pred, gt.bool()), TypeError, "gt must be a floating-point tensor, got torch.bool"),
        ((pred, gt.to("meta")), ValueError, "gt is on meta but pred is on cpu"),
        ((pred[:, :0], gt[:, :0]), ValueError,
         r"must hold at least one .* \(N >= 1\), got shape \(3, 0, 3\)"),
        ((pred[0], gt[0]), ValueError, r"pred and gt must both have shape \(B, N, 3\); got \(14, 3\)"),
        ((pred, gt[:, :13]), ValueError,
         r"must both have shape \(B, N, 3\); got \(3, 14, 3\) and \(3, 13, 3\)"),
        ((pred[..., :2], gt[..., :2]), ValueError, r"must both have shape \(B, N, 3\)"),
    ]
    for args, kind, message in cases:
        with pytest.raises(kind, match=message):
            metric(*args)


def test_an_empty_batch_gives_an_empty_result():
    pred, gt = _pair(3)
    for name in ("mpjpe", "pa_mpjpe", "mpve"):
        assert METRICS[name](pred[:0], gt[:0]).shape == (0,)


# ---- evaluator and protocols ------------------------------------------------------------------

def _meshes(seed: int, batch: int = 3, v: int = 20):
    gen = torch.Generator().manual_seed(seed)
    reg = torch.zeros(17, v)
    reg[torch.arange(17), torch.arange(17)] = 1.0
    gt = torch.randn(batch, v, 3, generator=gen)
    return gt + 0.01 * torch.randn(batch, v, 3, generator=gen), gt, reg


@given(seeds, st.sampled_from(FLOATS), st.sampled_from(FLOATS))
def test_evaluator_promotes_dtypes_and_keeps_float64_millimetres(seed, dtype_pred, dtype_gt):
    pred, gt, reg = _meshes(seed)
    pred, gt = pred.to(dtype_pred), gt.to(dtype_gt)
    ev = Evaluator(GRAPHORMER_3DPW, reg, "random")
    ev.update(pred, gt)
    reference = GRAPHORMER_3DPW.evaluate(pred.double(), gt.double(), reg)
    summary = ev.summary()
    for key in Evaluator.METRICS:  # millimetres, to the float32 computation's rounding
        assert summary[key] == pytest.approx(1000 * float(reference[key].mean()), abs=1e-3)


def test_evaluator_and_protocol_refuse_bad_inputs_naming_them():
    pred, gt, reg = _meshes(4)
    ev = Evaluator(GRAPHORMER_3DPW, reg, "random")
    nan_pred = pred.clone()
    nan_pred[1, 5, 2] = math.nan
    cases = [
        (lambda: ev.update(nan_pred, gt), ValueError,
         r"pred_vertices contains NaN or infinite values \(1 NaN"),
        (lambda: ev.update(pred, gt * math.inf), ValueError, "gt_vertices contains NaN or infinite values"),
        (lambda: ev.update(pred, gt, torch.full((3, 17, 3), math.nan)), ValueError,
         r"gt_joints17 contains NaN or infinite values \(153 NaN"),
        (lambda: ev.update(pred, gt, gt[:, :14]), ValueError,
         r"gt_joints17 must have shape \(3, 17, 3\), got \(3, 14, 3\)"),
        (lambda: ev.update(pred[0], gt[0]), ValueError,
         r"pred_vertices and gt_vertices must both have shape \(B, V, 3\); got \(20, 3\)"),
        (lambda: ev.update(pred, gt[:, :19]), ValueError,
         r"pred_vertices and gt_vertices must both have shape \(B, V, 3\); got \(3, 20, 3\) and \(3, 19"),
        (lambda: ev.update(pred[:, :19], gt[:, :19]), ValueError,
         r"graphormer-3dpw needs a \(17, 19\) H36M joint regressor .* got \(17, 20\)"),
        (lambda: ev.update(pred.numpy(), gt), TypeError, "pred_vertices must be a torch.Tensor"),
        (lambda: ev.update(pred.long(), gt.long()), TypeError,
         "pred_vertices must be a floating-point tensor, got torch.int64"),
        (lambda: GRAPHORMER_3DPW.joints(pred[0], reg), ValueError,
         r"vertices must have shape \(B, V, 3\), got \(20, 3\)"),
        (lambda: GRAPHORMER_3DPW.evaluate(pred, gt, reg.double().to("meta")), ValueError,
         "regressor is on meta but pred_vertices is on cpu"),
        (lambda: Evaluator("graphormer-3dpw", reg, "x"), TypeError,
         r"protocol must be a Protocol, e.g. PROTOCOLS\['graphormer-3dpw'\], got str"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg.numpy(), "x"), TypeError,
         "regressor must be a torch.Tensor, got ndarray"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg.T, "x"), ValueError,
         r"regressor must have shape \(17, V\).*got \(20, 17\) \(transposed\? pass regressor.T\)"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg[:14], "x"), ValueError,
         r"regressor must have shape \(17, V\)"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg * math.nan, "x"), ValueError,
         "regressor must hold finite weights; it has 340 NaN and 0 infinite entries"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg, None), TypeError, "dataset must be a label"),
        (lambda: Evaluator(GRAPHORMER_3DPW, reg, "x").per_joint(), ValueError, "no samples"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()
    assert ev.count == 0  # nothing was added by the refused batches


# ---- load_regressor ---------------------------------------------------------------------------

class _Body:
    """What load_regressor reads of a body: its name and vertex count."""

    def __init__(self, num_vertices: int, name: str = "smpl_neutral") -> None:
        self.num_vertices, self.name = num_vertices, name


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


GOOD = np.full((17, 6890), 1 / 6890)


def _with(value, index=(3, 5)):
    array = GOOD.copy()
    array[index] = value
    return array


def _npz_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, regressor=GOOD)
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"", "is empty: expected a .npy array"),
    (_npy_bytes(GOOD)[:1000], r"is not a readable .npy array of joint-regressor weights \(.*read"),
    (_npy_bytes(GOOD)[:128], r"is not a readable .npy array"),
    (b"17 6890\n0.1 0.2\n", "has no .npy header"),
    (_npz_bytes(), r"is a zip \(.npz\) archive, not a .npy array"),
    (_npy_bytes(np.array([{"a": 1}], dtype=object)), r"is not a readable .npy array.*allow_pickle"),
    (_npy_bytes(_with(np.nan)), "the joint regressor must hold finite weights; it has 1 NaN and 0 infinite"),
    (_npy_bytes(_with(-np.inf)), "it has 0 NaN and 1 infinite entries"),
    (_npy_bytes(GOOD.astype(np.int64)), "a joint regressor holds floating-point weights, got dtype int64"),
    (_npy_bytes(GOOD > 0), "floating-point weights, got dtype bool"),
    (_npy_bytes(GOOD.astype(np.complex64)), "floating-point weights, got dtype complex64"),
    (_npy_bytes(np.full((17, 6890), "a")), "floating-point weights, got dtype <U1"),
    (_npy_bytes(GOOD.T), r"expected a \(17, 6890\) joint regressor, got \(6890, 17\) \(a transposed"),
    (_npy_bytes(GOOD[0]), r"expected a \(17, 6890\) joint regressor, got \(6890,\)"),
    (_npy_bytes(GOOD[None]), r"expected a \(17, 6890\) joint regressor, got \(1, 17, 6890\)"),
    (_npy_bytes(np.float64(1.0)), r"expected a \(17, 6890\) joint regressor, got \(\)"),
    (_npy_bytes(np.zeros((17, 0))), r"expected a \(17, 6890\) joint regressor, got \(17, 0\)"),
    (_npy_bytes(np.zeros((24, 6890))), r"expected a \(17, 6890\) joint regressor, got \(24, 6890\)"),
])
def test_a_bad_regressor_file_is_refused_naming_it(tmp_path, content, message):
    path = tmp_path / "J_regressor_h36m_correct.npy"
    path.write_bytes(content)
    for source in (path, tmp_path, str(path)):  # the file, its folder, a string
        with pytest.raises(ValueError, match=f"{path}.*{message}|{message}.*{path}"):
            load_regressor(GRAPHORMER_3DPW, source)


@given(st.integers(18, 400), st.booleans())
def test_a_transposed_regressor_names_the_right_shape(tmp_path_factory, v, with_body):
    path = tmp_path_factory.mktemp("reg") / "J_regressor_h36m.npy"
    np.save(path, np.full((v, 17), 1.0 / v, dtype=np.float32))
    body = _Body(v) if with_body else None
    with pytest.raises(ValueError, match=rf"expected a \(17, {v}\) joint regressor, got \({v}, 17\) "
                                         r"\(a transposed regressor: save its .T\)"):
        load_regressor(SPIN_3DPW, path, body)
    np.save(path, np.full((17, v), 1.0 / v, dtype=np.float32))  # the right way round loads
    assert load_regressor(SPIN_3DPW, path, body).shape == (17, v)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_regressor_of_any_float_dtype_loads_as_float32(tmp_path, dtype):
    np.save(tmp_path / "J_regressor_h36m_correct.npy", GOOD.astype(dtype))
    reg = load_regressor(H36M_P2, tmp_path)
    assert reg.dtype == torch.float32 and torch.allclose(reg, torch.as_tensor(GOOD, dtype=torch.float32),
                                                         rtol=1e-3)


def test_a_regressor_for_another_body_and_bad_arguments_are_refused(tmp_path):
    path = tmp_path / "r.npy"
    np.save(path, np.full((17, 6000), 1 / 6000))
    with pytest.raises(ValueError, match=rf"{path}: expected a \(17, 6890\) joint regressor, got "
                                         r"\(17, 6000\); the body has 6890 vertices"):
        load_regressor(GRAPHORMER_3DPW, path, _Body(6890))
    assert load_regressor(GRAPHORMER_3DPW, path).shape == (17, 6000)  # without a body: any V
    with pytest.raises(TypeError, match=r"protocol must be a Protocol, e.g. PROTOCOLS\['spin-3dpw'\]"):
        load_regressor("spin-3dpw", path)
    with pytest.raises(TypeError, match="path must be a .npy file or a folder .* got int"):
        load_regressor(GRAPHORMER_3DPW, 3)
    with pytest.raises(FileNotFoundError, match="J_regressor_h36m_correct.npy.*MeshGraphormer"):
        load_regressor(GRAPHORMER_3DPW, tmp_path)


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


def test_load_pretrained_refuses_an_absurd_config_before_building_the_model(tmp_path, monkeypatch):
    from kinediff.posturehmr.pretrained import load_pretrained_folder

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

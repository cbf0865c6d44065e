"""Robustness of the metrics, the evaluator and ``load_regressor`` (marker ``robust``, harness
:mod:`robust`): bad inputs refused with one clear error naming the argument (or file), dtypes
promoted as documented, and the inputs the docstrings document accepting accepted and right."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from robust import Outcome, accepted_if_documented, enospc, expect, refusal, write_fault_verdict
from tolerances import atol_for

from kinediff import value_checks
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

pytestmark = pytest.mark.robust

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
        assert summary[key] == pytest.approx(1000 * float(reference[key].mean()),
                                             abs=1000 * atol_for(gt.double(), torch.float32, ulps=128))


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
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


GOOD = np.full((17, 6890), 1 / 6890)


def _with(value, index=(3, 5)):
    array = GOOD.copy()
    array[index] = value
    return array


def _npz_bytes() -> bytes:
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


# ---- accepted as documented -------------------------------------------------------------------

def _probe_pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn(2, 14, 3, generator=g), torch.randn(2, 14, 3, generator=g)


def test_a_negative_root_is_the_last_joint_as_documented():
    pred, gt = _probe_pair()
    expected = mpjpe(pred - pred[:, 13:14], gt - gt[:, 13:14])

    def accept(out) -> Outcome:
        return accepted_if_documented(mpjpe, ["negative"], bool(torch.allclose(out, expected)), "root=-1")

    expect(refusal(lambda: mpjpe(pred, gt, root=-1), [("root",)], accept), "ok")


DTYPE_WORDS = ("dtype", "float16", "promot", "precision")


@pytest.mark.parametrize("metric", [mpjpe, pa_mpjpe], ids=["mpjpe", "pa_mpjpe"])
@pytest.mark.parametrize("convert", [lambda p, g: (p.half(), g.half()), lambda p, g: (p, g.double())],
                         ids=["float16", "mixed_float32_float64"])
def test_the_dtypes_a_metric_documents_are_accepted_and_right(metric, convert):
    pred, gt = _probe_pair()
    reference = metric(pred, gt)

    def accept(out) -> Outcome:
        right = bool(torch.isfinite(out).all()) and bool(
            torch.allclose(out.double(), reference.double(), rtol=1e-2, atol=1e-3))
        return accepted_if_documented(metric, DTYPE_WORDS, right, str(out.dtype))

    expect(refusal(lambda: metric(*convert(pred, gt)), [("pred",)], accept), "ok")


def _probe_meshes(body) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    gt = body(torch.randn(2, 24, 3, generator=gen) * 0.3).vertices
    return gt + 0.01 * torch.randn(gt.shape, generator=gen), gt


@pytest.mark.parametrize("convert", [lambda p, g: (p.half(), g.half()), lambda p, g: (p, g.double())],
                         ids=["float16", "mixed_float32_float64"])
def test_the_dtypes_the_evaluator_documents_are_accepted_and_right(body32, convert):
    regressor = load_regressor(GRAPHORMER_3DPW, body=body32)
    pred, gt = _probe_meshes(body32)
    reference = Evaluator(GRAPHORMER_3DPW, regressor, "reference")
    reference.update(pred, gt)
    expected = reference.summary()

    def call():
        ev = Evaluator(GRAPHORMER_3DPW, regressor, "probe")
        ev.update(*convert(pred, gt))
        return ev.summary()

    def accept(out) -> Outcome:
        right = all(abs(out[k] - expected[k]) <= 0.05 * abs(expected[k]) + 0.05 for k in expected)
        return accepted_if_documented(Evaluator.update, DTYPE_WORDS, right, "the dtypes")

    expect(refusal(call, [("pred", "vertices")], accept), "ok")


# ---- a full disk ------------------------------------------------------------------------------

def test_a_full_disk_leaves_no_half_written_results(body32, tmp_path, monkeypatch):
    ev = Evaluator(GRAPHORMER_3DPW, load_regressor(GRAPHORMER_3DPW, body=body32), "probe")
    v = body32(torch.zeros(2, 24, 3)).vertices
    ev.update(v + 0.01, v)

    def write_text_fault(self, data, *args, **kwargs):
        with open(self, "w") as fh:
            fh.write(data[: max(1, len(data) // 2)])
        raise enospc()

    def call():
        with monkeypatch.context() as patch:
            patch.setattr(Path, "write_text", write_text_fault)
            ev.save(tmp_path)

    expect(write_fault_verdict(tmp_path, tmp_path / "results.json", call))

"""The skinning backends: each against the reference definition, the fused numba kernels
(kinediff[fast]) against the torch path, and which one ``backend="auto"`` takes."""

from __future__ import annotations

import importlib.util
import os
from functools import partial

import pytest
import torch

from kinediff.body import BodyModel, lbs_blocks, lbs_numba, skinning
from kinediff.body.rotations import axis_angle_to_matrix
from kinediff.body.skinning import (
    linear_blend_skinning,
    linear_blend_skinning_affine,
    linear_blend_skinning_reference,
)
from kinediff.forward import FKSchedule

# numba is in the [test] extra: these run in CI
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba is not installed (pip install 'kinediff[fast]')")


def _case(region_weights, influences: int, dtype, seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    v, j, b, m = 300, 24, 3, 4
    w = region_weights(v, j, influences, gen, dtype)
    rot = axis_angle_to_matrix(torch.randn(b, m, j, 3, generator=gen, dtype=dtype))
    tf = torch.cat([rot, torch.randn(b, m, j, 3, 1, generator=gen, dtype=dtype)], -1)
    base = torch.randn(v, 3, generator=gen, dtype=dtype)
    offsets = torch.randn(b, v, 3, generator=gen, dtype=dtype)
    coeffs = torch.rand(b, m, generator=gen, dtype=dtype)
    return w, tf, base, offsets, coeffs


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("influences", [1, 4, 24])
@pytest.mark.parametrize("backend", ["torch", pytest.param("numba", marks=needs_numba)])
def test_each_backend_equals_the_reference(backend, influences, dtype, tol, region_weights, monkeypatch):
    """Both skinning functions on each backend give what the einsum definition gives; the torch path
    in small blocks (one sample's meshes x 50 vertices, so many blocks and chunks), with and without
    gradients, and with the exact blend's per-mesh pose-corrective offsets."""
    monkeypatch.setattr(lbs_blocks, "skinning_blocks", lambda n, v, group, *args: (group, 50))
    w, tf, base, offsets, coeffs = _case(region_weights, influences, dtype)
    rest = base + coeffs[..., None, None] * offsets[:, None]  # (B, M, V, 3)
    reference = linear_blend_skinning_reference(rest, w, tf)
    close = partial(torch.testing.assert_close, atol=tol, rtol=tol)
    close(linear_blend_skinning(rest, w, tf, backend=backend), reference)
    close(linear_blend_skinning_affine(base, offsets, coeffs, w, tf, backend=backend), reference)
    if backend == "numba":  # no gradients, no pose-corrective term: the torch path's alone
        return
    close(linear_blend_skinning(rest.requires_grad_(), w, tf, backend=backend).detach(), reference)
    close(linear_blend_skinning_affine(base, offsets.clone().requires_grad_(), coeffs, w, tf,
                                       backend=backend).detach(), reference)
    gen = torch.Generator().manual_seed(8)
    posedirs = torch.randn(6, 3 * base.shape[0], generator=gen, dtype=dtype) * 0.1
    feats = torch.randn(*coeffs.shape, 6, generator=gen, dtype=dtype)
    posed_rest = rest.detach() + (feats @ posedirs).unflatten(-1, (-1, 3))
    reference = linear_blend_skinning_reference(posed_rest, w, tf)
    close(linear_blend_skinning_affine(base, offsets, coeffs, w, tf, posedirs, feats, backend=backend),
          reference)
    close(linear_blend_skinning_affine(base, offsets, coeffs, w, tf, posedirs, feats.requires_grad_(),
                                       backend=backend).detach(), reference)


@needs_numba
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("influences", [1, 3, 4, 24])
def test_numba_kernels_equal_the_torch_path(influences, dtype, tol, region_weights):
    w, tf, base, offsets, coeffs = _case(region_weights, influences, dtype)
    rest = base + coeffs[..., None, None] * offsets[:, None]  # (B, M, V, 3)
    for backend in ("torch", "numba"):
        assert skinning._use_numba(backend, w, (tf, rest)) == (backend == "numba")
    torch_pts = linear_blend_skinning(rest, w, tf, backend="torch")
    numba_pts = linear_blend_skinning(rest, w, tf, backend="numba")
    torch.testing.assert_close(numba_pts, torch_pts, atol=tol, rtol=tol)
    torch_aff = linear_blend_skinning_affine(base, offsets, coeffs, w, tf, backend="torch")
    numba_aff = linear_blend_skinning_affine(base, offsets, coeffs, w, tf, backend="numba")
    torch.testing.assert_close(numba_aff, torch_aff, atol=tol, rtol=tol)
    torch.testing.assert_close(numba_aff, torch_pts, atol=tol, rtol=tol)
    assert numba_aff.dtype == dtype and numba_pts.shape == rest.shape


@needs_numba
def test_numba_kernels_broadcast_like_the_torch_path(region_weights):
    w, tf, base, _, _ = _case(region_weights, 4, torch.float64)
    # one rest shape for every mesh, and one transform set for many rest shapes
    one = linear_blend_skinning(base, w, tf, backend="numba")
    torch.testing.assert_close(one, linear_blend_skinning(base, w, tf, backend="torch"))
    many = base + torch.randn(5, 1, 3, dtype=torch.float64)
    got = linear_blend_skinning(many, w, tf[0, 0], backend="numba")
    torch.testing.assert_close(got, linear_blend_skinning(many, w, tf[0, 0], backend="torch"))


@needs_numba
def test_auto_takes_numba_only_where_it_applies(monkeypatch, region_weights):
    calls = []
    real = lbs_numba.skin_affine

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(lbs_numba, "skin_affine", spy)
    w, tf, base, offsets, coeffs = _case(region_weights, 4, torch.float64)

    def run(**kw):
        calls.clear()
        out = linear_blend_skinning_affine(base, kw.pop("offsets", offsets), coeffs,
                                           kw.pop("w", w), tf, **kw)
        return out, bool(calls)

    assert run()[1]  # CPU, no gradient, 4 influences: numba
    out, used = run(offsets=offsets.clone().requires_grad_())
    assert not used and out.requires_grad  # gradients: the torch path
    with torch.no_grad():
        assert run(offsets=offsets.clone().requires_grad_())[1]  # no gradient recorded: numba
    dense = region_weights(300, 24, 24, torch.Generator().manual_seed(0))
    assert not run(w=dense)[1]  # 24 joints per vertex: the GEMM does better
    assert run(w=dense, backend="numba")[1]  # ... unless asked for
    feats = torch.zeros(3, 4, 6, dtype=torch.float64)
    posedirs = torch.zeros(6, 900, dtype=torch.float64)
    assert not run(posedirs=posedirs, pose_feats=feats)[1]  # pose term: torch
    assert not run(backend="torch")[1]
    monkeypatch.setattr(lbs_numba, "available", lambda: False)
    assert not run()[1]


@needs_numba
def test_backend_errors_say_why(monkeypatch, region_weights):
    w, tf, base, offsets, coeffs = _case(region_weights, 4, torch.float64)
    with pytest.raises(ValueError, match="backend must be .auto., .torch. or .numba., got"):
        linear_blend_skinning(base, w, tf, backend="cuda")
    with pytest.raises(ValueError, match="do not record gradients"):
        linear_blend_skinning_affine(base, offsets.requires_grad_(), coeffs, w, tf,
                                     backend="numba")
    with pytest.raises(ValueError, match="float32 or float64"):
        linear_blend_skinning(base.half(), w.half(), tf.half(), backend="numba")
    with pytest.raises(ValueError, match="exact blend"):
        linear_blend_skinning_affine(base, offsets.detach(), coeffs, w, tf,
                                     torch.zeros(6, 900, dtype=torch.float64),
                                     torch.zeros(3, 4, 6, dtype=torch.float64), backend="numba")
    monkeypatch.setattr(lbs_numba, "available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install 'kinediff\[fast\]'"):
        linear_blend_skinning(base, w, tf, backend="numba")


@needs_numba
def test_schedule_backends_give_the_same_trajectory():
    body = BodyModel.synthetic(0).double()
    gen = torch.Generator().manual_seed(5)
    pose = torch.randn(3, 24, 3, generator=gen, dtype=torch.float64) * 0.6
    betas = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        by_torch = FKSchedule(body, backend="torch").trajectory(pose, betas)
        by_numba = FKSchedule(body, backend="numba").trajectory(pose, betas)
    torch.testing.assert_close(by_numba, by_torch, atol=1e-12, rtol=0)
    with torch.no_grad():  # the exact blend takes either backend too
        ex_t = FKSchedule(body, blend="exact", backend="torch").trajectory(pose, betas)
        ex_n = FKSchedule(body, blend="exact", backend="numba").trajectory(pose, betas)
    torch.testing.assert_close(ex_n, ex_t, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="backend must be .auto., .torch. or .numba., got"):
        FKSchedule(body, backend="fast")


@needs_numba
def test_numba_keeps_torchs_thread_count():
    """numba's OpenMP pool, when it starts, sets the process's OpenMP thread count to all CPUs,
    which torch reads too: a user's OMP_NUM_THREADS=1 must survive the first numba skinning call
    (on numba's OpenMP threading layer, where the two meet), and numba's own count is left as
    found (its default: the pool starts inside the call)."""
    import subprocess
    import sys

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: all CPUs are one thread")
    code = ("import numba, torch\n"
            "from kinediff.body import lbs_numba\n"
            "w = torch.softmax(torch.randn(50, 4), 1)\n"
            "tf = torch.randn(8, 4, 12)\n"
            "out = torch.empty(8, 50, 3)\n"
            "lbs_numba.skin_points(torch.randn(8, 50, 3), w, tf, out)\n"
            "print(numba.threading_layer(), torch.get_num_threads(),\n"
            "      numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    env.update(OMP_NUM_THREADS="1", NUMBA_THREADING_LAYER="omp")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode and "threading layer" in done.stderr:
        pytest.skip("numba's OpenMP threading layer is not available here")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["omp", "1", "True"]

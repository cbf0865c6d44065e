"""The numba backend of :mod:`kinediff.body.skinning`: fused sparse skinning kernels (the optional
``kinediff[fast]`` extra; CPU, float32 / float64, no gradients).

Why a kernel of our own: the torch path (:mod:`kinediff.body.lbs_blocks`) needs three passes over
memory per mesh and vertex (a GEMM writing 12 blended numbers, multiply-adds reading them, a
transposing copy into the output) and its GEMM spans every joint of a chunk (about 12 on the SMPL
layout) where each vertex has at most four. These kernels do it in one pass: for each mesh (in
parallel) and vertex, the rest point is formed, moved by each of its few joints, weighted and
written straight into the output row, in order. No library offers this fusion (smplx's ``lbs``
materialises (N, V, 4, 4) blended transforms); numba compiles it without a C compiler.

numba is imported only when a kernel is first used (a heavy optional dependency); each dtype's
kernels are compiled on their first call and cached on disk (``cache=True``, numba's own cache
location rules).

Threads: the kernels run their meshes in parallel on numba's own thread pool (``prange``; its
size is ``NUMBA_NUM_THREADS``, all cores by default), on as many of its threads as torch uses
(``torch.get_num_threads()``: ``OMP_NUM_THREADS`` or ``torch.set_num_threads``). numba's OpenMP
threading layer sets the process's OpenMP thread count to its pool's size when the pool starts,
and torch's CPU operations read that same count, so each call puts torch's count back (and
numba's own, per calling thread): without that, ``OMP_NUM_THREADS=1`` became all cores after the
first skinning call. (A ``torch.set_num_threads`` from another thread during a kernel call is
undone by that restore.)
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any

import numpy as np
import torch

__all__ = ["available", "influences", "skin_affine", "skin_points", "sparse_weights", "supports"]


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether numba is installed and imports (tried once, on first need: the import takes a
    fraction of a second, and a broken install then means the torch path, not an error)."""
    if importlib.util.find_spec("numba") is None:
        return False
    try:  # numba, a heavy optional dependency, is imported on first need only
        import numba  # noqa: F401
    except ImportError:  # an install that does not import (e.g. built for another numpy)
        return False
    return True


@lru_cache(maxsize=1)
def _kernels() -> dict[str, Any]:
    """Compile-on-first-call kernels."""
    from numba import njit, prange  # heavy optional dependency: imported on first use

    @njit(fastmath=True, nogil=True, boundscheck=False, cache=True, inline="always")
    def move(a, idx, w, v, x0, x1, x2):  # pragma: no cover - runs compiled
        # sum_k w[v, k] A_{idx[v, k]} [x; 1] for one mesh's transforms a (J, 12), row-major 3x4;
        # the first joint starts the sums, so they stay in the arrays' dtype
        j = idx[v, 0]
        wk = w[v, 0]
        r0 = wk * (a[j, 0] * x0 + a[j, 1] * x1 + a[j, 2] * x2 + a[j, 3])
        r1 = wk * (a[j, 4] * x0 + a[j, 5] * x1 + a[j, 6] * x2 + a[j, 7])
        r2 = wk * (a[j, 8] * x0 + a[j, 9] * x1 + a[j, 10] * x2 + a[j, 11])
        for k in range(1, idx.shape[1]):
            j = idx[v, k]
            wk = w[v, k]
            r0 += wk * (a[j, 0] * x0 + a[j, 1] * x1 + a[j, 2] * x2 + a[j, 3])
            r1 += wk * (a[j, 4] * x0 + a[j, 5] * x1 + a[j, 6] * x2 + a[j, 7])
            r2 += wk * (a[j, 8] * x0 + a[j, 9] * x1 + a[j, 10] * x2 + a[j, 11])
        return r0, r1, r2

    @njit(parallel=True, fastmath=True, nogil=True, boundscheck=False, cache=True)
    def affine(tf, idx, w, base, off, coeff, out):  # pragma: no cover - runs compiled
        # tf (N, J, 12); idx, w (V, K); base (V, 3); off (B, V, 3); coeff (N,); out (N, V, 3);
        # mesh n belongs to sample n // (N // B), rest points base + coeff[n] off[b]
        per_sample = tf.shape[0] // off.shape[0]
        for n in prange(tf.shape[0]):
            a = tf[n]
            ob = off[n // per_sample]
            c = coeff[n]
            o = out[n]
            for v in range(idx.shape[0]):
                o[v, 0], o[v, 1], o[v, 2] = move(a, idx, w, v, base[v, 0] + c * ob[v, 0],
                                                 base[v, 1] + c * ob[v, 1], base[v, 2] + c * ob[v, 2])

    @njit(parallel=True, fastmath=True, nogil=True, boundscheck=False, cache=True)
    def points(tf, idx, w, pts, out):  # pragma: no cover - runs compiled
        # tf (N, J, 12); idx, w (V, K); pts (N, V, 3) rest points; out (N, V, 3)
        for n in prange(tf.shape[0]):
            a = tf[n]
            p = pts[n]
            o = out[n]
            for v in range(idx.shape[0]):
                o[v, 0], o[v, 1], o[v, 2] = move(a, idx, w, v, p[v, 0], p[v, 1], p[v, 2])

    return {"affine": affine, "points": points}


def influences(weights: torch.Tensor) -> int:
    """The most nonzero skinning weights of any vertex: K of the sparse form."""
    return int((weights != 0).sum(1).max()) if weights.numel() else 0


def sparse_weights(weights: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(V, J) weights as (joint indices uint32 (V, K), weights (V, K)) arrays, K =
    :func:`influences`; vertices with fewer joints are padded with weight 0 (joint 0). The indices
    are unsigned so that numba compiles no negative-index wraparound into the inner loop."""
    k = max(1, influences(weights))
    w, idx = weights.topk(k, dim=1)
    idx = torch.where(w != 0, idx, torch.zeros_like(idx))
    return idx.to(torch.int64).numpy().astype(np.uint32), w.contiguous().numpy()


def supports(*tensors: torch.Tensor) -> str | None:
    """Why these tensors cannot go through the kernels, or None if they can."""
    if any(t.device.type != "cpu" for t in tensors):
        return "the numba kernels run on CPU tensors only"
    if any(t.requires_grad for t in tensors) and torch.is_grad_enabled():
        return "the numba kernels do not record gradients"
    if tensors[0].dtype not in (torch.float32, torch.float64):
        return f"the numba kernels take float32 or float64, not {tensors[0].dtype}"
    return None


def _run(name: str, *arrays: np.ndarray) -> None:
    """Kernel ``name`` on ``arrays``, on as many numba threads as torch uses, leaving torch's
    thread count as it found it (the module docstring says why)."""
    import numba  # heavy optional dependency: imported on first use

    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _kernels()[name](*arrays)
    finally:  # both counts as found (torch's also when the kernel raised)
        numba.set_num_threads(numba_threads)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _np(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A contiguous numpy view (or copy, where dtype or layout differ) of a CPU tensor."""
    return t.detach().to(dtype).contiguous().numpy()


def skin_affine(base: torch.Tensor, offsets: torch.Tensor, coeffs: torch.Tensor,
                weights: torch.Tensor, transforms: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """LBS of rest shapes ``base + c * offsets`` into ``out``.

    Shape: base (V, 3); offsets (B, V, 3); coeffs (B, M); weights (V, J); transforms
    (B * M, J, 12); out (B * M, V, 3), contiguous, written and returned.
    """
    dtype = transforms.dtype
    idx, w = sparse_weights(weights.detach().to(dtype))
    _run("affine", _np(transforms, dtype), idx, w, _np(base, dtype), _np(offsets, dtype),
         _np(coeffs.reshape(-1), dtype), out.numpy())
    return out


def skin_points(points: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor,
                out: torch.Tensor) -> torch.Tensor:
    """LBS of explicit rest points into ``out``.

    Shape: points (N, V, 3); weights (V, J); transforms (N, J, 12); out (N, V, 3), contiguous,
    written and returned.
    """
    dtype = transforms.dtype
    idx, w = sparse_weights(weights.detach().to(dtype))
    _run("points", _np(transforms, dtype), idx, w, _np(points, dtype), out.numpy())
    return out

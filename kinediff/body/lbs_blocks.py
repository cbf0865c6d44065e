"""The torch backend of :mod:`kinediff.body.skinning`: blocked GEMMs behind
:func:`~kinediff.body.skinning.linear_blend_skinning` and
:func:`~kinediff.body.skinning.linear_blend_skinning_affine` (any device, gradients).

Written by hand because no library fuses what this does: blend the per-joint transforms with
sparse skinning weights and apply them to rest points that are themselves formed on the fly,
without ever materialising an (N, V, 12) or (N, V, J, ...) tensor. (smplx's ``lbs``
materialises the blended (N, V, 4, 4) transforms.)

Layout (CPU): meshes are processed in blocks of whole groups (a group being, e.g., the T + 1
meshes of one sample) and vertices in chunks, so that one block x chunk of blended transforms
(12 numbers per mesh and vertex) stays in the last-level cache; the sizes are in
:mod:`kinediff.body.tuning`. Inside a block x chunk, everything is laid out (mesh, row, vertex), so
every elementwise pass runs over contiguous runs of vertices.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from kinediff.body import tuning

__all__ = ["PointsFn", "empty_output", "skin", "skinning_blocks"]

#: ``points(n0, n1, v0, v1, buffer)`` -> the rest points of meshes n0:n1 and vertices v0:v1 as
#: (n1 - n0, 3, v1 - v0), written into ``buffer`` (1-D scratch of at least that many elements)
#: when one is given, and free to return a strided view instead.
PointsFn = Callable[[int, int, int, int, "torch.Tensor | None"], torch.Tensor]


def skinning_blocks(num_meshes: int, num_vertices: int, group: int, element_size: int,
                    device: torch.device, sizes: tuple[int, int] | None = None) -> tuple[int, int]:
    """(meshes per block, vertices per chunk) for :func:`skin`.

    On CPU, blocks hold whole groups of ``group`` meshes, about ``sizes[0]`` of them (default
    ``tuning.BLOCK_MESHES``), and chunks as many vertices as keep a block's blended transforms near
    ``sizes[1]`` bytes (default ``tuning.CACHE_BYTES``); other devices take everything at once.
    """
    if device.type != "cpu":
        return num_meshes, num_vertices
    block_meshes, cache_bytes = sizes or (tuning.BLOCK_MESHES, tuning.CACHE_BYTES)
    groups = max(1, min(num_meshes // group, block_meshes // group))
    block = min(num_meshes, groups * group)
    chunk = cache_bytes // (12 * element_size * block)
    return block, int(min(num_vertices, max(tuning.MIN_CHUNK_VERTICES, chunk)))


def empty_output(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor for a large CPU result, backed by transparent huge pages.

    A fresh result of tens of MB costs one page fault per 4 KB page on its first write. numpy asks
    the kernel for huge pages on large allocations (``madvise(MADV_HUGEPAGE)``, Linux; turned off
    by ``NUMPY_MADVISE_HUGEPAGE=0``), a fault per 2 MB page instead; PyTorch does the same only
    process-wide, with ``THP_MEM_ALLOC_ENABLE=1`` set before start. So float CPU results of
    ``tuning.HUGE_PAGE_MIN_BYTES`` (4 MB) and more are allocated by numpy and shared with torch
    (``torch.from_numpy``, no copy); other results, devices, dtypes and code being compiled get
    ``like.new_empty(shape)``. The time this saves is in ``docs/benchmarks.md``.

    Shape: ``shape`` -> a tensor of that shape with ``like``'s dtype and device.
    """
    dtypes = {torch.float32: np.float32, torch.float64: np.float64}
    if torch.compiler.is_compiling():  # numpy memory is opaque to torch.compile
        return like.new_empty(shape)
    size = like.element_size() * math.prod(shape)
    if like.device.type != "cpu" or like.dtype not in dtypes or size < tuning.HUGE_PAGE_MIN_BYTES:
        return like.new_empty(shape)
    return torch.from_numpy(np.empty(shape, dtype=dtypes[like.dtype]))


def _chunks(weights: torch.Tensor, step: int, sparse: bool) -> list[tuple[int, int, torch.Tensor | None]]:
    """Vertex chunks (v0, v1, joints): with ``sparse``, the joints that move the chunk's vertices
    (None where all do), else None."""
    v, nj = weights.shape
    moving = (weights != 0) if sparse else None
    out = []
    for v0 in range(0, v, step):
        v1 = min(v0 + step, v)
        joints = None
        if moving is not None:
            idx = moving[v0:v1].any(0).nonzero().flatten()
            if 0 < idx.numel() < nj:
                joints = idx
        out.append((v0, v1, joints))
    return out


def skin(weights: torch.Tensor, transforms: torch.Tensor, points: PointsFn, group: int = 1,
         needs_grad: bool = True, sizes: tuple[int, int] | None = None) -> torch.Tensor:
    """Linear blend skinning of N meshes: out[n, v] = sum_j w_vj A_nj [p_nv; 1].

    Per block x chunk one GEMM, (12 Nb, J) @ (J, Vc), gives the blended transforms as
    (Nb, 3, 4, Vc); three multiply-adds over (Nb, 3, Vc) apply them to the rest points; one
    transposing copy writes (Nb, Vc, 3) into the output.

    Without gradients on CPU the GEMM spans only the joints that move the chunk (skinning weights
    are sparse: SMPL moves a vertex with at most four joints, and neighbouring vertices share
    them), scratch buffers are reused across chunks (they stay in cache and cost no page faults),
    results go straight into a preallocated output (:func:`empty_output`). Otherwise an
    autograd-friendly loop over vertex chunks.

    Shape:
        - weights: (V, J).
        - transforms: (N, J, 12), the (3, 4) skinning transforms flattened row-major.
        - points: see :data:`PointsFn`; blocks are whole multiples of ``group`` meshes.
        - sizes: (meshes per block, bytes of blended transforms per block x chunk) on CPU; see
          :func:`skinning_blocks`.
        - output: (N, V, 3).
    """
    n, nj = transforms.shape[0], transforms.shape[1]
    v = weights.shape[0]
    if n % group:
        raise ValueError(f"{n} meshes are not whole groups of {group}")
    a = transforms.transpose(0, 1).reshape(nj, 12 * n)  # (J, 12 N): columns (mesh, row, col)
    # the fast path reads the weights' sparsity (nonzero: data-dependent shapes) and writes into
    # numpy-backed memory, neither of which torch.compile can trace without a graph break
    fast = transforms.device.type == "cpu" and not needs_grad and not torch.compiler.is_compiling()
    if not fast:  # one block of all meshes; chunks of ~4 MB of blended transforms on CPU
        _, step = skinning_blocks(n, v, n, transforms.element_size(), transforms.device,
                                  (n, tuning.WIDE_BLOCKS[1]))
        parts = []
        for v0, v1, _ in _chunks(weights, step, sparse=False):
            g = (a.T @ weights[v0:v1].T).view(n, 3, 4, v1 - v0)
            q = points(0, n, v0, v1, None)
            r = torch.addcmul(g[:, :, 3], g[:, :, 0], q[:, None, 0])
            r = r.addcmul(g[:, :, 1], q[:, None, 1]).addcmul(g[:, :, 2], q[:, None, 2])
            parts.append(r.transpose(1, 2))  # (N, Vc, 3) view
        return torch.cat(parts, dim=1)
    block, step = skinning_blocks(n, v, group, transforms.element_size(), transforms.device, sizes)
    out = empty_output((n, v, 3), transforms)
    chunks = _chunks(weights, step, sparse=True)
    g_buf, q_buf, r_buf = (transforms.new_empty(block * step * k) for k in (12, 3, 3))
    for n0 in range(0, n, block):
        n1 = min(n0 + block, n)
        nb = n1 - n0
        a_blk = a[:, 12 * n0:12 * n1]
        for v0, v1, joints in chunks:
            c = v1 - v0
            w = weights[v0:v1]
            if joints is not None:  # only the joints that move this chunk
                a_sel, w = a_blk.index_select(0, joints), w.index_select(1, joints)
            else:
                a_sel = a_blk
            g = torch.mm(a_sel.T, w.T, out=g_buf[:12 * nb * c].view(12 * nb, c)).view(nb, 3, 4, c)
            q = points(n0, n1, v0, v1, q_buf[:3 * nb * c])
            r = torch.addcmul(g[:, :, 3], g[:, :, 0], q[:, None, 0],
                              out=r_buf[:3 * nb * c].view(nb, 3, c))
            r.addcmul_(g[:, :, 1], q[:, None, 1]).addcmul_(g[:, :, 2], q[:, None, 2])
            out[n0:n1, v0:v1].copy_(r.transpose(1, 2))
    return out

"""The skinning's tuned sizes and thresholds, in one place.

Read at call time by the two backends of :mod:`kinediff.body.skinning`
(:mod:`kinediff.body.lbs_blocks`, :mod:`kinediff.body.lbs_numba`). None of these values changes
what skinning computes, only how fast: block sizes reorder the same sums (results agree to rounding;
``tests/body/test_kinematics.py`` checks chunked against unchunked), and ``backend="auto"`` chooses
between backends that agree to rounding (``tests/body/test_skinning_backends.py``).

The block sizes were chosen with ``python benchmarks/bench_forward.py`` (``FKSchedule.trajectory``,
T = 10, B = 64 and 256, float32, against a loop of smplx calls); the measurements behind them are in
``docs/benchmarks.md`` ("Skinning: block sizes, huge pages, threads"). Re-tune them with that script
on the machine that matters.
"""

from __future__ import annotations

__all__ = [
    "BLOCK_MESHES",
    "CACHE_BYTES",
    "HUGE_PAGE_MIN_BYTES",
    "MAX_AUTO_INFLUENCES",
    "MIN_CHUNK_VERTICES",
    "WIDE_BLOCKS",
]

# -- the torch path (kinediff.body.lbs_blocks): blocks of meshes x chunks of vertices, on CPU ------

#: Bytes of blended transforms (12 numbers per mesh and vertex) per block x chunk: small enough that
#: a block's part of the output stays in cache until its rows are complete, instead of being
#: fetched back from memory for every chunk.
CACHE_BYTES = 2_000_000
#: Meshes per block on CPU (rounded down to whole groups, at least one).
BLOCK_MESHES = 96
#: (meshes, bytes) per block where each rest point costs a GEMM of its own (the exact blend's
#: pose-corrective offsets, K = 207): larger blocks keep that GEMM efficient. The autograd path
#: takes all meshes at once, in vertex chunks of ``WIDE_BLOCKS[1]`` bytes.
WIDE_BLOCKS = (768, 4_000_000)
#: The smallest vertex chunk, however many meshes a block holds.
MIN_CHUNK_VERTICES = 64

#: Float CPU results of this many bytes and more are allocated through numpy, which asks the kernel
#: for transparent huge pages (:func:`kinediff.body.lbs_blocks.empty_output`): fewer page faults on
#: the first write of a large fresh result. Smaller results are plain torch tensors.
HUGE_PAGE_MIN_BYTES = 4 << 20

# -- the numba path (kinediff.body.lbs_numba) -----------------------------------------------------

#: The most joints per vertex for which ``backend="auto"`` takes the numba kernels (SMPL: 4); past
#: it, the GEMM of the torch path does the work with fewer wasted multiplies. Not a measured
#: crossover: set from the kernels' per-joint cost (bench_forward.py prints both paths' GFLOP/s and
#: the body's joints per vertex).
MAX_AUTO_INFLUENCES = 8

"""The skinning's tuned sizes and thresholds, in one place.

Private: the performance machinery of :mod:`kinediff.body.skinning`, read by its two backends
(``kinediff.body._lbs``, ``kinediff.body._lbs_numba``) at call time. None of these values changes
what skinning computes, only how fast: block sizes reorder the same sums (results agree to rounding;
``tests/body/test_kinematics.py`` checks chunked against unchunked), and ``backend="auto"`` chooses
between backends that agree to rounding (``tests/body/test_skinning_backends.py``).

The block sizes were chosen with ``python benchmarks/bench_forward.py`` (``FKSchedule.trajectory``,
T = 10, B = 64 and 256, float32, against a loop of smplx calls) on the 2-core CI machine; its figures
are in ``docs/forward.md`` ("Speed") and ``docs/benchmarks.md``. Re-tune them with that script on the
machine that matters, and update the figures with the values.
"""

from __future__ import annotations

# -- the torch path (kinediff.body._lbs): blocks of meshes x chunks of vertices, on CPU --------------

# Measured on the 2-core CI machine (benchmarks/bench_forward.py, B = 64 and 256): blocks of about
# 90 meshes and 2 MB of blended transforms (chunks of ~470 vertices) are 5-10 % faster than 700
# meshes x 120 vertices: a block's part of the output (90 rows of the mesh array) stays in cache
# until its lines are complete, instead of being fetched back from memory for every chunk.
# Where each rest point costs a GEMM of its own (the exact blend's pose-corrective offsets, K = 207),
# larger blocks keep that GEMM efficient: 768 meshes x 4 MB (~120 vertices) is best there.
CACHE_BYTES = 2_000_000  # blended transforms per block x chunk
BLOCK_MESHES = 96  # meshes per block on CPU (rounded down to whole groups, at least one)
WIDE_BLOCKS = (768, 4_000_000)  # (meshes, bytes) for rest points with a GEMM of their own
# (the autograd path takes all meshes at once, in vertex chunks of WIDE_BLOCKS[1] bytes)
MIN_CHUNK_VERTICES = 64  # the smallest vertex chunk, however many meshes a block holds

# Float CPU results of this size and more are allocated through numpy, which asks the kernel for
# transparent huge pages (``_lbs.empty_output``): the first touch of a fresh 58 MB trajectory (B = 64)
# costs about 4 ms instead of 20 (docs/forward.md, "Speed"). Smaller results are plain torch tensors.
HUGE_PAGE_MIN_BYTES = 4 << 20

# -- the numba path (kinediff.body._lbs_numba) ----------------------------------------------------

#: The most joints per vertex for which ``backend="auto"`` takes the numba kernels (SMPL: 4); past
#: it, the GEMM of the torch path does the work with fewer wasted multiplies. Not a measured
#: crossover: set from the kernels' per-joint cost (bench_forward.py prints both paths' GFLOP/s and
#: the body's joints per vertex).
MAX_AUTO_INFLUENCES = 8

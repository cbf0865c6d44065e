"""Benchmark metrics: MPJPE, PA-MPJPE, MPVE (per sample, in the input's units)."""

from kinediff.metrics.errors import mpjpe, mpve, pa_mpjpe, root_align, similarity_procrustes

__all__ = ["mpjpe", "mpve", "pa_mpjpe", "root_align", "similarity_procrustes"]

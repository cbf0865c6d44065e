"""Benchmark metrics (MPJPE, PA-MPJPE, MPVE), evaluation protocols and the evaluator."""

from kinediff.metrics.errors import mpjpe, mpve, pa_mpjpe, root_align, similarity_procrustes
from kinediff.metrics.evaluator import Evaluator
from kinediff.metrics.protocols import (
    GRAPHORMER_3DPW,
    H36M_P2,
    PROTOCOLS,
    SPIN_3DPW,
    SURREAL,
    Protocol,
    load_regressor,
)

__all__ = [
    "GRAPHORMER_3DPW",
    "H36M_P2",
    "PROTOCOLS",
    "SPIN_3DPW",
    "SURREAL",
    "Evaluator",
    "Protocol",
    "load_regressor",
    "mpjpe",
    "mpve",
    "pa_mpjpe",
    "root_align",
    "similarity_procrustes",
]

"""Timing helpers shared by the benchmark scripts: medians of repeated runs, device sync."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def devices() -> list[torch.device]:
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


def median_seconds_pair(fn_a: Callable[[], object], fn_b: Callable[[], object], device: torch.device,
                        repeats: int = 15, warmup: int = 3, budget_s: float = 30.0) -> tuple[float, float]:
    """Median times of two functions run alternately (a, b, a, b, ...), so machine drift hits both."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn_a()
        fn_b()
    sync()
    ta: list[float] = []
    tb: list[float] = []
    start = time.perf_counter()
    while len(ta) < repeats and (time.perf_counter() - start < budget_s or len(ta) < 3):
        for fn, out in ((fn_a, ta), (fn_b, tb)):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)

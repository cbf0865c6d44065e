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


def _sync(device: torch.device) -> Callable[[], object]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int = 5,
                   warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    sync = _sync(device)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_seconds_pair(fn_a: Callable[[], object], fn_b: Callable[[], object], device: torch.device,
                        repeats: int = 15, warmup: int = 3, budget_s: float = 30.0) -> tuple[float, float]:
    """Median times of two functions run alternately (a, b, a, b, ...), so machine drift hits both."""
    sync = _sync(device)
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


def status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmHWM, ...)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def peak_rss_growth_mb(run: Callable[[], object], cold: bool = False) -> float:
    """Warm up once, reset the peak-RSS mark, run again: the peak's growth over the resident size
    before the run (Linux; pages the allocator kept from the warm-up are reused, not counted).
    ``cold``: no warm-up, so every page the call touches counts (call it first in a fresh
    process; it then also counts one-time set-up, so it errs high)."""
    if not cold:
        run()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM (Linux >= 4.0)
    start = status_kb("VmRSS")
    run()
    return max(status_kb("VmHWM") - start, 0) / 1024


def write_json(rows: list[dict], path: str | None) -> None:
    """Write a benchmark's rows as JSON when ``--json PATH`` was given (``run_all.py`` reads it)."""
    if path:
        import json

        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1)

"""How kinediff's entry points run torch's OpenMP threads on a shared machine: a short spin before
they sleep, and only as many threads as other processes leave cores idle.

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the pip wheels) that, between parallel
regions, spin on a core for up to 300,000 iterations before they sleep. On a machine whose cores
are shared (a laptop with a browser, a node with other jobs) the spinning threads fight the other
processes for the cores: on this project's 2-core machine, beside one process spinning on one
core, the tiny config's training steps took 9x to 15x as long, plain PyTorch models 24x
(docs/benchmarks.md, "A busy machine"). ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) cures that but
costs 37-90 % on a quiet machine, where every parallel region then waits for its threads to wake.
``GOMP_SPINCOUNT=3000`` (spin briefly, then sleep) measured within the noise of the default when
quiet (0-7 %) and 2-3x instead of 9-30x beside busy processes, near the passive policy's absolute
times there, so that is what kinediff's entry points set.

libgomp reads the variable once, when it loads with torch, so it must be set before
``import torch``: the ``kinediff`` command does it first thing, and so do the example scripts. A
library import never changes the environment, and a user's own ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is never overridden. (Builds of torch on Intel's OpenMP read ``KMP_BLOCKTIME``
instead, which is left alone: not measured here.)

A short spin still leaves one of torch's threads sharing a core with a busy process, and every
parallel region waits for that slowest thread: the quickstart's first 50 2D steps took 2.84x
their quiet time beside one busy process. :func:`use_idle_cores` watches the cores for
:data:`IDLE_WINDOW_S` seconds when the program starts and, when other processes keep some busy,
sets ``OMP_NUM_THREADS`` to the idle ones: 1.26x there, with nothing changed on a quiet machine
(docs/benchmarks.md, "A busy machine"; one 2-core machine). The count is chosen once, at start:
load that comes later is not followed. A user's own ``OMP_NUM_THREADS`` is never overridden.

Imports nothing but the standard library (the command line calls it before torch loads).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ["IDLE_WINDOW_S", "SPIN_COUNT", "idle_cores", "idle_thread_count", "physical_cores",
           "set_thread_policy", "use_idle_cores", "use_short_openmp_spin"]

#: The spin iterations (``GOMP_SPINCOUNT``) kinediff's entry points give OpenMP threads before they
#: sleep, when the user chose no wait policy (libgomp's default: 300,000).
SPIN_COUNT = 3000

#: How long (seconds) :func:`use_idle_cores` watches the cores before it picks a thread count.
IDLE_WINDOW_S = 0.3


def use_short_openmp_spin(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` unless the user chose how OpenMP threads wait
    (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set) or torch is already imported (too late).

    Returns:
        What governs the wait when torch loads: ``"OMP_WAIT_POLICY=..."`` or
        ``"GOMP_SPINCOUNT=..."`` (the user's or kinediff's), or None when torch was loaded before
        the call.
    """
    env = os.environ if environ is None else environ
    for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if key in env:
            return f"{key}={env[key]}"
    if "torch" in sys.modules:
        return None
    env["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return f"GOMP_SPINCOUNT={SPIN_COUNT}"


def _cpu_ticks(stat: str) -> dict[int, tuple[int, int]]:
    """``{N: (busy, total)}`` clock ticks since boot of each ``cpuN`` line of a ``/proc/stat``
    text (user nice system idle iowait irq softirq steal: idle and iowait are idle, steal is busy,
    guest time is already inside user)."""
    out = {}
    for line in stat.splitlines():
        parts = line.split()
        if len(parts) < 9 or not parts[0].startswith("cpu") or not parts[0][3:].isdigit():
            continue
        values = [int(v) for v in parts[1:9]]
        out[int(parts[0][3:])] = (sum(values) - values[3] - values[4], sum(values))
    return out


def physical_cores(cpus: set[int] | None = None,
                   sys_path: str | os.PathLike = "/sys/devices/system/cpu") -> int:
    """The physical cores among ``cpus`` (default: this process's CPU affinity): hyperthread
    siblings (Linux's ``cpuN/topology/thread_siblings_list``) count once, as torch counts its
    default threads. The number of CPUs where the topology cannot be read."""
    if cpus is None:
        cpus = os.sched_getaffinity(0)
    cores = set()
    for cpu in cpus:
        try:
            siblings = (Path(sys_path) / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text()
        except OSError:
            return len(cpus)
        cores.add(siblings.strip())
    return max(1, len(cores))


def idle_cores(window: float = IDLE_WINDOW_S, stat_path: str | os.PathLike = "/proc/stat"
               ) -> float | None:
    """The CPUs this process may run on that other processes leave free: the CPUs of its affinity
    minus their busy time over the next ``window`` seconds (its own CPU time taken out), in CPUs,
    clipped to [0, CPUs]. It sleeps ``window`` seconds.

    Returns None where it cannot tell: ``stat_path`` unreadable (not Linux), or a CPU of the
    affinity missing from either snapshot (a container's renumbered ``/proc/stat``, a CPU taken
    offline meanwhile). A container's CPU quota (cgroup ``cpu.max``) is not read.
    """
    try:
        cpus = os.sched_getaffinity(0)
        before = Path(stat_path).read_text()
    except (OSError, AttributeError):  # no /proc/stat, or no sched_getaffinity (macOS)
        return None
    own0 = time.process_time()
    time.sleep(window)
    try:
        after = Path(stat_path).read_text()
    except OSError:
        return None
    own = time.process_time() - own0
    ticks0, ticks1 = _cpu_ticks(before), _cpu_ticks(after)
    if not cpus <= ticks0.keys() & ticks1.keys():
        return None
    busy = sum(ticks1[c][0] - ticks0[c][0] for c in cpus)
    total = sum(ticks1[c][1] - ticks0[c][1] for c in cpus)
    if total <= 0:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    # the busy share of the CPUs' time, times the number of CPUs, is the CPUs in use
    others = max(0.0, busy / tick - own) / (total / tick) * len(cpus)
    return max(0.0, len(cpus) - others)  # others >= 0: never above the CPUs


def idle_thread_count(idle: float, cores: int) -> int | None:
    """The thread count for ``idle`` CPUs (:func:`idle_cores`) on ``cores`` physical cores: a core
    counts as taken when other processes use at least 0.75 of one (a little background load
    changes nothing), at least 1, at most ``cores``; None when that is all of them."""
    threads = max(1, min(cores, math.ceil(idle - 0.25)))
    return None if threads >= cores else threads


def use_idle_cores(environ: MutableMapping[str, str] | None = None,
                   window: float = IDLE_WINDOW_S) -> int | None:
    """Set ``OMP_NUM_THREADS`` to the cores other processes leave idle
    (:func:`idle_thread_count` of :func:`idle_cores` and :func:`physical_cores`) when that is
    fewer than torch would use, so torch's threads do not share cores with busy processes; unless
    the user set ``OMP_NUM_THREADS`` or torch is already imported (too late: torch reads it when
    it loads). A quiet machine sets nothing.

    The thread count changes how float sums are split, so a seeded run beside a busy process does
    not repeat a quiet one's digits; set ``OMP_NUM_THREADS`` yourself for runs that must.

    Returns:
        The thread count set, or None when nothing was set.
    """
    env = os.environ if environ is None else environ
    if "OMP_NUM_THREADS" in env or "torch" in sys.modules:
        return None
    idle = idle_cores(window)
    if idle is None:
        return None
    threads = idle_thread_count(idle, physical_cores())
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return threads


def set_thread_policy(environ: MutableMapping[str, str] | None = None) -> dict[str, object]:
    """What kinediff's example scripts call first, before torch loads: :func:`use_short_openmp_spin`
    and :func:`use_idle_cores` (the ``kinediff`` command calls the two itself, the second after
    its command line is read, so that ``--help`` answers at once). Sleeps
    :data:`IDLE_WINDOW_S` seconds unless ``OMP_NUM_THREADS`` is set or torch is loaded.

    Returns:
        ``{"wait": ..., "threads": ...}``: the two functions' answers.
    """
    return {"wait": use_short_openmp_spin(environ), "threads": use_idle_cores(environ)}

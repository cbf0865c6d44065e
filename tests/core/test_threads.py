"""kinediff.core.threads: the entry points' short OpenMP spin, set before torch loads, never over
the user's own choice of wait policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kinediff.core import threads
from kinediff.core.threads import SPIN_COUNT, idle_cores, use_idle_cores, use_short_openmp_spin

PROBE = ("import os; from kinediff.core.threads import use_short_openmp_spin; "
         "got = use_short_openmp_spin(); import torch; "
         "print(got, os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def _child(code: str, **env_extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(env_extra)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def test_a_short_spin_before_torch_loads_and_the_users_choice_wins():
    assert _child(PROBE) == f"GOMP_SPINCOUNT={SPIN_COUNT} {SPIN_COUNT} None"
    assert _child(PROBE, OMP_WAIT_POLICY="ACTIVE") == "OMP_WAIT_POLICY=ACTIVE None ACTIVE"
    assert _child(PROBE, GOMP_SPINCOUNT="50") == "GOMP_SPINCOUNT=50 50 None"


def test_the_command_line_sets_it_first():
    code = ("import os, sys; from kinediff.cli import main; "
            "code = main(['config', '--preset', 'tiny']); "
            "print(os.environ.get('GOMP_SPINCOUNT'), file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr.strip().splitlines()[-1] == str(SPIN_COUNT)


def test_too_late_once_torch_is_loaded():
    import torch  # noqa: F401 - loaded, as in this test process

    env: dict[str, str] = {}
    assert use_short_openmp_spin(env) is None and env == {}
    assert use_short_openmp_spin({"OMP_WAIT_POLICY": "passive"}) == "OMP_WAIT_POLICY=passive"


def _stat(per_cpu: dict[int, tuple[int, ...]]) -> str:
    """A /proc/stat text: an aggregate line (which must be ignored), per-CPU lines, other lines."""
    total = [sum(v[i] for v in per_cpu.values()) for i in range(10)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{n} " + " ".join(map(str, v)) for n, v in per_cpu.items()]
    return "\n".join(lines + ["intr 12345 0 0", "ctxt 999", "btime 1700000000", "procs_running 3"])


def _ticks(user, system, idle, iowait, steal=0):
    return (user, 0, system, idle, iowait, 0, 0, steal, 0, 0)


@pytest.mark.parametrize(("busy_ticks", "expected"), [
    ((0, 0), 2.0),  # nobody else ran: both cores idle
    ((100, 0), 1.0),  # one core fully used by another process over the window
    ((100, 100), 0.0),
    ((30, 20), 1.5),
])
def test_idle_cores_from_proc_stat(tmp_path, monkeypatch, busy_ticks, expected):
    """idle = cores - (busy ticks of this process's cores over the window) / (their ticks per
    core), counted here by hand from the two snapshots; CPUs outside the affinity are ignored."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 2})
    monkeypatch.setattr(threads.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)
    path = tmp_path / "stat"
    before = {0: _ticks(500, 100, 4000, 10), 1: _ticks(9, 9, 9, 9), 2: _ticks(700, 50, 3000, 0)}
    # 100 ticks per core pass; CPU 1 (not ours) is fully busy and must not count
    a, b = busy_ticks
    after = {0: _ticks(500 + a, 100, 4000 + (100 - a), 10),
             1: _ticks(109, 9, 9, 9),
             2: _ticks(700 + b // 2, 50 + b - b // 2, 3000 + (100 - b), 0)}
    path.write_text(_stat(before))
    monkeypatch.setattr(threads.time, "sleep", lambda s: path.write_text(_stat(after)))
    assert idle_cores(0.1, path) == pytest.approx(expected, abs=1e-12)


def test_idle_cores_takes_its_own_time_out_and_none_without_proc_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads.os, "sysconf", lambda name: 100)
    clock = iter([10.0, 10.5])  # this process used 0.5 s of CPU in the window
    monkeypatch.setattr(threads.time, "process_time", lambda: next(clock))
    path = tmp_path / "stat"
    path.write_text(_stat({0: _ticks(0, 0, 0, 0), 1: _ticks(0, 0, 0, 0)}))
    after = _stat({0: _ticks(100, 0, 0, 0), 1: _ticks(50, 0, 50, 0)})  # 1.5 cores busy
    monkeypatch.setattr(threads.time, "sleep", lambda s: path.write_text(after))
    assert idle_cores(0.1, path) == pytest.approx(1.0)  # 1.5 cores busy, 0.5 of them ours
    assert idle_cores(0.1, tmp_path / "missing") is None


def test_use_idle_cores_sets_the_idle_count_and_never_the_users(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delitem(sys.modules, "torch")  # as before torch loads (restored afterwards)
    for idle, expected in ((4.0, None), (3.6, None), (2.4, 2), (0.2, 1), (None, None)):
        monkeypatch.setattr(threads, "idle_cores", lambda window, v=idle: v)
        env: dict[str, str] = {}
        assert use_idle_cores(env) == expected
        assert env == ({} if expected is None else {"OMP_NUM_THREADS": str(expected)})
    monkeypatch.setattr(threads, "idle_cores", lambda window: 1.0)
    assert use_idle_cores({"OMP_NUM_THREADS": "4"}) is None  # the user's choice


def test_use_idle_cores_is_too_late_once_torch_is_loaded():
    import torch  # noqa: F401

    env: dict[str, str] = {}
    assert use_idle_cores(env) is None and env == {}


def test_a_child_beside_a_busy_process_gets_fewer_threads():
    """End to end on this machine: a process spinning on every core but one leaves one idle, so
    a child started beside it runs torch on one thread (on one core there is nothing to take)."""
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one core: no thread count to lower")
    code = ("import os; from kinediff.core.threads import use_idle_cores; "
            "got = use_idle_cores(window=1.0); import torch; print(got, torch.get_num_threads())")
    spin = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores - 1)]
    try:
        out = _child(code).split()
    finally:
        for p in spinners:
            p.kill()
    assert out == ["1", "1"]

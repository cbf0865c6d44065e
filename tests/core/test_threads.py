"""kinediff.core.threads: the entry points' short OpenMP spin, set before torch loads, never over
the user's own choice of wait policy."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinediff.core import threads
from kinediff.core.threads import (
    SPIN_COUNT,
    idle_cores,
    idle_thread_count,
    physical_cores,
    use_idle_cores,
    use_short_openmp_spin,
)

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
    """A /proc/stat text: an aggregate line (which must be ignored), per-CPU lines, a blank line,
    other lines."""
    total = [sum(v[i] for v in per_cpu.values()) for i in range(10)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{n} " + " ".join(map(str, v)) for n, v in per_cpu.items()]
    return "\n".join(lines + ["", "intr 12345 0 0", "ctxt 999", "btime 1700000000", "procs_running 3"])


def _ticks(user, system, idle, iowait, steal=0):
    return (user, 0, system, idle, iowait, 0, 0, steal, 0, 0)


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    """CPUs 0 and 2 in the affinity, 250 clock ticks a second, this process idle; returns a
    function that writes the two snapshots (the second one while idle_cores sleeps)."""
    asked = []
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 2})
    monkeypatch.setattr(threads.os, "sysconf", lambda name: asked.append(name) or 250)
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)
    path = tmp_path / "stat"

    def snapshots(before, after):
        path.write_text(_stat(before))
        monkeypatch.setattr(threads.time, "sleep", lambda s: path.write_text(_stat(after)))
        return path

    snapshots.asked = asked
    return snapshots


@pytest.mark.parametrize(("busy", "expected"), [
    (dict(), 2.0),  # nobody else ran: both CPUs idle
    (dict(user0=100), 1.0),  # one CPU fully used by another process over the window
    (dict(user0=100, system2=100), 0.0),
    (dict(user0=30, system2=20), 1.5),
    (dict(iowait0=50), 2.0),  # waiting for I/O is idle
    (dict(steal2=50), 1.5),  # time the hypervisor gave to others is not ours to use
])
def test_idle_cores_from_proc_stat(fake_machine, busy, expected):
    """idle = CPUs - (busy ticks of this process's CPUs over the window) / (their ticks per CPU),
    counted by hand from the two snapshots; CPU 1 (outside the affinity) is fully busy and must
    not count."""
    u0, s2 = busy.get("user0", 0), busy.get("system2", 0)
    io0, st2 = busy.get("iowait0", 0), busy.get("steal2", 0)
    before = {0: _ticks(500, 100, 4000, 10), 1: _ticks(9, 9, 9, 9), 2: _ticks(700, 50, 3000, 0)}
    after = {0: _ticks(500 + u0, 100, 4000 + 100 - u0 - io0, 10 + io0),  # 100 ticks per CPU
             1: _ticks(109, 9, 9, 9),
             2: _ticks(700, 50 + s2, 3000 + 100 - s2 - st2, 0, st2)}
    path = fake_machine(before, after)
    assert idle_cores(0.1, path) == pytest.approx(expected, abs=1e-12)
    assert fake_machine.asked == ["SC_CLK_TCK"]


def test_idle_cores_takes_its_own_time_out_and_says_when_it_cannot_tell(fake_machine, monkeypatch,
                                                                         tmp_path):
    clock = itertools.cycle([10.0, 10.6])  # this process used 0.6 s of CPU in each window
    monkeypatch.setattr(threads.time, "process_time", lambda: next(clock))
    zero = _ticks(0, 0, 0, 0)
    # 0.8 s of the window (2 CPUs x 0.8 s = 400 ticks at 250 a second) passed, 1.4 s of it busy
    path = fake_machine({0: zero, 2: zero}, {0: _ticks(200, 0, 0, 0), 2: _ticks(150, 0, 50, 0)})
    assert idle_cores(0.1, path) == pytest.approx(2 - (1.4 - 0.6) / 0.8)  # 1 CPU used by others
    assert idle_cores(0.1, tmp_path / "missing") is None
    # CPU 2 of the affinity has no line (a container's renumbered view): no guess
    path = fake_machine({0: zero, 1: zero}, {0: _ticks(200, 0, 0, 0), 1: zero})
    assert idle_cores(0.1, path) is None
    # CPU 2 went offline during the window
    path = fake_machine({0: zero, 2: zero}, {0: _ticks(100, 0, 100, 0)})
    assert idle_cores(0.1, path) is None


def test_physical_cores_counts_hyperthread_siblings_once(tmp_path):
    for cpu, siblings in {0: "0,4", 4: "0,4", 1: "1,5", 5: "1,5", 2: "2-3", 3: "2-3"}.items():
        (tmp_path / f"cpu{cpu}" / "topology").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}" / "topology" / "thread_siblings_list").write_text(siblings + "\n")
    assert physical_cores({0, 4, 1, 5}, tmp_path) == 2
    assert physical_cores({0, 1, 2}, tmp_path) == 3
    assert physical_cores({0, 7}, tmp_path) == 2  # no topology for CPU 7: the CPUs counted


@pytest.mark.parametrize(("idle", "cores", "expected"), [
    (2.0, 2, None), (1.6, 2, None), (1.2, 2, 1), (1.0, 2, 1), (0.0, 2, 1),
    (15.5, 16, None), (15.4, 16, None), (15.2, 16, 15), (9.0, 16, 9),
    (15.0, 8, None),  # 16 hyperthreads, one busy: torch's 8 threads still have their cores
    (4.0, 8, 4),
])
def test_idle_thread_count(idle, cores, expected):
    assert idle_thread_count(idle, cores) == expected


def test_use_idle_cores_sets_the_idle_count_and_never_the_users(monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # before torch loads (restored after)
    for idle, expected in ((4.0, None), (3.6, None), (2.4, 3), (0.2, 1), (None, None)):
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
    """End to end on this machine: a child pinned to two CPUs, beside a process spinning on one of
    them, runs torch on one thread."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: no thread count to lower")
    pin = f"import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[:2]})\n"
    code = pin + ("from kinediff.core.threads import use_idle_cores\n"
                  "got = use_idle_cores(window=1.0)\nimport torch\n"
                  "print(got, torch.get_num_threads())")
    spin = pin + "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        out = _child(code)
    finally:
        spinner.kill()
        spinner.wait()
    assert out.split() == ["1", "1"]


@given(cores=st.integers(1, 128), quarters=st.integers(0, 4 * 128))
def test_idle_thread_count_leaves_each_core_others_use_at_least_three_quarters_of(cores, quarters):
    """Counted the other way round: the cores taken are those the other processes' load fills to
    0.75 or more, floor(others + 0.25); the rest run threads (at least one), None when none is
    taken. Idle counts in quarters of a CPU, so the sums are exact."""
    idle = min(quarters, 4 * cores) / 4
    taken = math.floor((cores - idle) + 0.25)
    threads = idle_thread_count(idle, cores)
    assert threads == (None if taken == 0 or cores == 1 else max(1, cores - taken))
    if threads is not None:
        assert 1 <= threads < cores


def test_set_thread_policy_applies_both(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # before torch loads (restored after)
    monkeypatch.setattr(threads, "physical_cores", lambda: 2)
    monkeypatch.setattr(threads, "idle_cores", lambda window: 1.0)
    env: dict[str, str] = {}
    assert threads.set_thread_policy(env) == {"wait": f"GOMP_SPINCOUNT={SPIN_COUNT}", "threads": 1}
    assert env == {"GOMP_SPINCOUNT": str(SPIN_COUNT), "OMP_NUM_THREADS": "1"}
    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"}  # the user's choices stand
    assert threads.set_thread_policy(env) == {"wait": "OMP_WAIT_POLICY=ACTIVE", "threads": None}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"}

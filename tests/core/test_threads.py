"""kinediff.core.threads: the entry points' short OpenMP spin, set before torch loads, never over
the user's own choice of wait policy."""

from __future__ import annotations

import os
import subprocess
import sys

from kinediff.core.threads import SPIN_COUNT, use_short_openmp_spin

PROBE = ("import os; from kinediff.core.threads import use_short_openmp_spin; "
         "got = use_short_openmp_spin(); import torch; "
         "print(got, os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


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

"""kinediff.core.threads: the entry points' OpenMP wait policy, set before torch loads, never over
the user's own."""

from __future__ import annotations

import os
import subprocess
import sys

from kinediff.core.threads import WAIT_POLICY, use_passive_wait_policy

PROBE = ("import os, sys; from kinediff.core.threads import use_passive_wait_policy; "
         "got = use_passive_wait_policy(); import torch; "
         "print(got, os.environ.get('OMP_WAIT_POLICY'))")


def _child(code: str, policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


def test_passive_before_torch_loads_and_the_users_choice_wins():
    assert _child(PROBE, None) == f"{WAIT_POLICY} {WAIT_POLICY}"
    assert _child(PROBE, "ACTIVE") == "ACTIVE ACTIVE"


def test_the_command_line_sets_it_first():
    code = ("import os, sys; from kinediff.cli import main; "
            "code = main(['config', '--preset', 'tiny']); "
            "print(os.environ.get('OMP_WAIT_POLICY'), file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr.strip().splitlines()[-1] == WAIT_POLICY


def test_too_late_once_torch_is_loaded():
    import torch  # noqa: F401 - loaded, as in this test process

    env: dict[str, str] = {}
    assert use_passive_wait_policy(env) is None and env == {}
    assert use_passive_wait_policy({"OMP_WAIT_POLICY": "active"}) == "active"

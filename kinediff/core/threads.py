"""How kinediff's entry points set OpenMP's wait policy: passive unless the user chose one.

PyTorch's CPU kernels run on OpenMP threads that, by default, spin while they wait for work. On a
machine whose cores are shared (a laptop with a browser, a node with other jobs), the spinning
threads fight the other processes for the cores and every step slows down about 3x;
``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead, at a few per cent on a quiet machine
(docs/benchmarks.md, "A busy machine"). OpenMP reads the variable once, when the runtime loads
with torch, so it must be set before ``import torch``: the ``kinediff`` command does it first
thing, and so do the example scripts. A library import never changes the environment.

Imports nothing but the standard library (the command line calls it before torch loads).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["WAIT_POLICY", "use_passive_wait_policy"]

#: The OpenMP wait policy kinediff's entry points set when the user set none.
WAIT_POLICY = "PASSIVE"


def use_passive_wait_policy(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set ``OMP_WAIT_POLICY`` to :data:`WAIT_POLICY` unless it is set already (the user's own
    choice is never overridden) or torch is already imported (too late to matter).

    Returns:
        The policy in effect for torch's OpenMP threads when it loads: the user's, kinediff's, or
        None when torch was loaded before the call (the policy it loaded with is unknown).
    """
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env:
        return env["OMP_WAIT_POLICY"]
    if "torch" in sys.modules:
        return None
    env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return WAIT_POLICY

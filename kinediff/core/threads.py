"""How kinediff's entry points make torch's OpenMP threads wait: a short spin, then sleep.

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

Imports nothing but the standard library (the command line calls it before torch loads).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

__all__ = ["SPIN_COUNT", "use_short_openmp_spin"]

#: The spin iterations (``GOMP_SPINCOUNT``) kinediff's entry points give OpenMP threads before they
#: sleep, when the user chose no wait policy (libgomp's default: 300,000).
SPIN_COUNT = 3000


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

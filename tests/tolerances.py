"""Float tolerances from the dtype and the quantity's magnitude, for comparisons between two
computations of the same thing (an exported graph against PyTorch, a batched against an unbatched
run) whose rounding differs with the kernels and the threads that ran them.

A float32 result of a few hundred operations carries a relative error of some hundreds of units in
the last place; a fixed ``atol`` ignores that a 50-pixel coordinate has 50 times the rounding of a
1-pixel one (a flaky ``atol=1e-4`` on 2D meshes at 50 px was the reason for this module).
"""

from __future__ import annotations

import numpy as np
import torch


def atol_for(reference, dtype=None, ulps: float = 1024.0) -> float:
    """``ulps`` units in the last place of ``dtype`` (default: the reference's own) at the largest
    magnitude in ``reference``: 1024 ulps of float32 are 1.2e-4 relative (6e-3 px at 50 px, 1.2e-4 m
    at 1 m). Floors the magnitude at 1 so that values near 0 get the absolute floor of ulps * eps.
    """
    ref = reference.detach().cpu().numpy() if torch.is_tensor(reference) else np.asarray(reference)
    if dtype is None:
        dtype = ref.dtype
    if isinstance(dtype, torch.dtype):
        eps = torch.finfo(dtype).eps
    else:
        eps = float(np.finfo(dtype).eps)
    magnitude = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    return ulps * eps * magnitude

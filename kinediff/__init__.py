"""kinediff: 3D human mesh recovery as a posture transformation (PostureHMR), as components.

Subpackages: :mod:`kinediff.body` (SMPL-family body models), :mod:`kinediff.forward` (posture
schedules), :mod:`kinediff.mesh`, :mod:`kinediff.decoders`, :mod:`kinediff.heads`,
:mod:`kinediff.render`, :mod:`kinediff.losses`, :mod:`kinediff.metrics`, :mod:`kinediff.data`,
:mod:`kinediff.training`; the composition :class:`PostureHMR` with :class:`PostureHMRConfig`.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {"PostureHMR", "PostureHMRConfig", "TABLE3_ROWS", "table3_configs"}

__all__ = ["TABLE3_ROWS", "PostureHMR", "PostureHMRConfig", "__version__", "table3_configs"]


def __getattr__(name: str) -> Any:
    # the composition pulls in every component: import it on first use, not with `import kinediff`
    if name in _LAZY:
        from kinediff import posturehmr

        return getattr(posturehmr, name)
    raise AttributeError(f"module 'kinediff' has no attribute {name!r}")

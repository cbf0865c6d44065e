"""kinediff: 3D human mesh recovery as a posture transformation (PostureHMR), as components.

Subpackages: :mod:`kinediff.body` (SMPL-family body models), :mod:`kinediff.forward` (posture
schedules), :mod:`kinediff.mesh`, :mod:`kinediff.decoders`, :mod:`kinediff.heads`,
:mod:`kinediff.render`, :mod:`kinediff.losses`, :mod:`kinediff.metrics`, :mod:`kinediff.data`,
:mod:`kinediff.training`; the composition :class:`PostureHMR` with :class:`PostureHMRConfig`.
"""

from typing import Any

from kinediff.core.version import __version__

_LAZY = {"PostureHMR", "PostureHMRConfig", "TABLE3_ROWS", "table3_configs"}
_CHECKS = {"value_checks", "value_checks_enabled"}

__all__ = ["TABLE3_ROWS", "PostureHMR", "PostureHMRConfig", "__version__", "table3_configs",
           "value_checks", "value_checks_enabled"]


def __getattr__(name: str) -> Any:
    # the composition pulls in every component: import it on first use, not with `import kinediff`
    if name in _LAZY:
        from kinediff import posturehmr

        return getattr(posturehmr, name)
    if name in _CHECKS:
        from kinediff.core import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'kinediff' has no attribute {name!r}")


def __dir__() -> list[str]:
    # the lazy names too, so that help(), completion and the API reference list them
    return sorted(set(globals()) | set(__all__))

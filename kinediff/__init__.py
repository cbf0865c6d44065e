"""kinediff: 3D human mesh recovery as a posture transformation (PostureHMR), as components.

Subpackages: :mod:`kinediff.body` (SMPL-family body models), with forward processes, mesh
hierarchy, decoders, heads, rendering, losses, metrics and data to follow (see the docs).
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]

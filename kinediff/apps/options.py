"""The names the command line offers and the jobs accept, in a module that imports nothing else,
so that ``kinediff --help`` and a mistyped command answer without loading the library."""

from __future__ import annotations

__all__ = ["DATASETS", "PRESETS"]

#: The data sets the jobs read: the synthetic SynthBody and the benchmarks' folders.
DATASETS = ("synthetic", "3dpw", "h36m", "surreal")
#: ``kinediff config --preset`` names: "kinediff" (the library's default config), "paper" (the
#: paper's forward process and recipe), "tiny" (CPU-sized).
PRESETS = ("kinediff", "paper", "tiny")

"""One mechanism for modules that moved: the old path gives the new module (same object, private
names included) with a ``DeprecationWarning``, and ``python -m <old path>`` still runs it."""

from __future__ import annotations

import importlib
import runpy
import sys
import warnings

__all__ = ["redirect"]


def redirect(module_name: str, old: str, new: str) -> None:
    """Called from the old module's body with its ``__name__``: warn, then make ``old`` the module
    ``new`` (or run ``new`` as ``__main__`` when the old module is run as a script)."""
    warnings.warn(f"{old} moved to {new}; the old import path will be removed in the next release",
                  DeprecationWarning, stacklevel=3)
    if module_name == "__main__":  # python -m <old> ...
        runpy.run_module(new, run_name="__main__", alter_sys=True)
    else:
        sys.modules[module_name] = importlib.import_module(new)

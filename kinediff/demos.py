"""Deprecated: moved to :mod:`kinediff.apps.demos` (apps live apart from the components); this
path works for one release and warns."""

import importlib
import runpy
import sys
import warnings

warnings.warn("kinediff.demos moved to kinediff.apps.demos; the old import path will be removed in the "
              "next release", DeprecationWarning, stacklevel=2)
if __name__ == "__main__":  # python -m kinediff.demos ...
    runpy.run_module("kinediff.apps.demos", run_name="__main__", alter_sys=True)
else:
    sys.modules[__name__] = importlib.import_module("kinediff.apps.demos")

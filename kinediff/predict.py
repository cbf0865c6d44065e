"""Deprecated: moved to :mod:`kinediff.apps.predict` (apps live apart from the components); this
path works for one release and warns."""

import importlib
import runpy
import sys
import warnings

warnings.warn("kinediff.predict moved to kinediff.apps.predict; the old import path will be removed in the "
              "next release", DeprecationWarning, stacklevel=2)
if __name__ == "__main__":  # python -m kinediff.predict ...
    runpy.run_module("kinediff.apps.predict", run_name="__main__", alter_sys=True)
else:
    sys.modules[__name__] = importlib.import_module("kinediff.apps.predict")

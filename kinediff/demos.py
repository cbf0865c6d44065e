"""Deprecated: moved to :mod:`kinediff.apps.demos` (apps live apart from the components); this
path works for one release and warns."""

from kinediff._moved import redirect

redirect(__name__, "kinediff.demos", "kinediff.apps.demos")

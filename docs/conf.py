"""Sphinx configuration of the kinediff documentation (``make docs``: warnings are errors)."""

import kinediff

project = "kinediff"
author = "the kinediff developers"
copyright = "2026, the kinediff developers (MIT licence)"
release = kinediff.__version__
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
myst_heading_anchors = 3
html_theme = "furo"
html_title = f"kinediff {release}"
nitpicky = False
suppress_warnings = ["myst.header"]

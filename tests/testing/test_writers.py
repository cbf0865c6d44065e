"""kinediff.testing: the fixture writers are public, documented, and their example runs. What each
writes is checked against its data set's loader in tests/data (the loaders read the files back and
find what the writer drew)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import kinediff.testing

MODULES = ["coco", "h36m", "mpii3d", "pw3d", "scene", "surreal", "up3d"]


def test_the_package_example_runs(synthetic_path, cache_dir):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder(recurse=False).find(kinediff.testing, "kinediff.testing")
    assert tests and tests[0].examples
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_is_documented_and_every_writer_exported(name):
    module = importlib.import_module(f"kinediff.testing.{name}")
    assert module.__doc__ and module.__doc__.strip()
    for public in module.__all__:
        obj = getattr(module, public)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name}.{public} has no docstring"
        if public.startswith("write_") and public != "write_mat_v73":
            assert getattr(kinediff.testing, public) is obj and public in kinediff.testing.__all__

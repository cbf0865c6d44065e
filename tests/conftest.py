"""Shared fixtures: one synthetic body per test session, built in a private cache folder."""

from __future__ import annotations

import os

# OpenMP threads sleep instead of spinning while they wait: on a shared 2-core CI machine spinning
# threads starve each other (the suite ran several times slower), and results do not change.
# Set before torch is imported; a value from the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import robust
import torch
from hypothesis import settings

# deterministic property tests: a fixed example sequence, no wall-clock deadlines on a shared CI box
settings.register_profile("kinediff", derandomize=True, deadline=None, max_examples=25,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kinediff"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("kinediff_cache")
    os.environ["KINEDIFF_CACHE_DIR"] = str(path)
    return str(path)


@pytest.fixture(scope="session")
def synthetic_path(cache_dir):
    from kinediff.body import synthetic_model_path

    return synthetic_model_path(0, cache_dir)


@pytest.fixture(scope="session")
def body64(synthetic_path, cache_dir):
    from kinediff.body import BodyModel

    return BodyModel.synthetic(0, dtype=torch.float64, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def body32(synthetic_path, cache_dir):
    from kinediff.body import BodyModel

    return BodyModel.synthetic(0, dtype=torch.float32, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory, body32, cache_dir) -> robust.Fixtures:
    """The robust tests' fixtures (:class:`robust.Fixtures`), built on first use."""
    return robust.Fixtures(tmp_path_factory.mktemp("robust"), body32, cache_dir)


def pytest_sessionfinish(session):
    """Fail the run when more robust outcomes are unclear or silent than documented."""
    if robust.over_documented():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    """The robust outcomes' counts (:func:`robust.terminal_summary`)."""
    robust.terminal_summary(terminalreporter)


def random_pose(batch: int, generator: torch.Generator, scale: float = 0.6,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(B, 24, 3) axis-angle pose with angles of about ``scale`` radians per joint."""
    return (torch.randn(batch, 24, 3, generator=generator) * scale).to(dtype)


def _region_weights(v: int, j: int, influences: int, gen: torch.Generator,
                    dtype=torch.float64) -> torch.Tensor:
    """Skinning weights (v, j) like a body's regions: vertex i is moved by ``influences`` joints
    from (i // 40) % j on, with random positive weights summing to 1."""
    w = torch.rand(v, j, generator=gen, dtype=dtype)
    first = (torch.arange(v) // 40) % j
    keep = ((torch.arange(j) - first[:, None]) % j) < influences
    w = torch.where(keep, w, torch.zeros((), dtype=dtype))
    return w / w.sum(1, keepdim=True)


@pytest.fixture
def region_weights():
    """:func:`_region_weights`, the sparse skinning weights the skinning tests share."""
    return _region_weights


"""Shared fixtures: one synthetic body per test session, built in a private cache folder."""

from __future__ import annotations

import os

import pytest
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


def random_pose(batch: int, generator: torch.Generator, scale: float = 0.6,
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(B, 24, 3) axis-angle pose with angles of about ``scale`` radians per joint."""
    return (torch.randn(batch, 24, 3, generator=generator) * scale).to(dtype)

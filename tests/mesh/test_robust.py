"""Robustness of kinediff's cache files (marker ``robust``, harness :mod:`robust`): a damaged
cached synthetic body or mesh hierarchy is named and safe to delete, and a full disk leaves no
half-written hierarchy behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from robust import enospc, expect, partial_write, write_fault_verdict

from kinediff.body import BodyModel
from kinediff.mesh import MeshHierarchy

pytestmark = pytest.mark.robust


def _cached_files(cache_dir, tmp_path):
    """The session's synthetic body copied into a cache of its own (drawing it takes seconds),
    and its (4, 4) hierarchy built there."""
    BodyModel.synthetic(0, cache_dir=cache_dir)
    for path in Path(cache_dir).glob("SMPL_SYNTHETIC*seed0.pkl"):
        shutil.copy(path, tmp_path / path.name)
    body = BodyModel.synthetic(0, cache_dir=tmp_path)
    MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)
    return body


@pytest.mark.parametrize("sizes", [(0, 100), (100, 0)])
def test_damaged_cache_files_are_named_and_safe_to_delete(cache_dir, tmp_path, sizes):
    body = _cached_files(cache_dir, tmp_path)
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())
    assert [p.suffix for p in files] == [".pkl", ".npz"] or [p.suffix for p in files] == [".npz", ".pkl"]
    for path in files:  # empty or cut short
        path.write_bytes(path.read_bytes()[:sizes[path.suffix == ".npz"]])
    with pytest.raises(ValueError, match=r"SMPL_SYNTHETIC.*cached synthetic body is damaged.*deleting the file is safe"):
        BodyModel.synthetic(0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"hierarchy_.*\.npz: kinediff's cached mesh hierarchy is damaged"):
        MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)
    for path in files:  # deleting them is indeed safe
        path.unlink()
    assert MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path).sizes[-1] > 0


def test_a_hierarchy_cache_without_its_arrays_is_damaged(cache_dir, tmp_path):
    body = _cached_files(cache_dir, tmp_path)
    (path,) = tmp_path.glob("hierarchy_*.npz")
    np.savez(path, other=np.zeros(3))
    with pytest.raises(ValueError, match="arrays missing"):
        MeshHierarchy.from_body(body, (4, 4), cache_dir=tmp_path)


def test_a_full_disk_leaves_no_half_written_hierarchy(body32, tmp_path):
    def savez_fault(file, *args, **kwargs):
        partial_write(file)
        raise enospc()

    def call():
        with mock.patch.object(np, "savez", savez_fault):
            MeshHierarchy.from_body(body32, (4, 4), cache_dir=tmp_path)

    expect(write_fault_verdict(tmp_path, tmp_path / "hierarchy_*.npz", call))

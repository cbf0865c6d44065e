"""Mesh hierarchy: sizes, pure selection, barycentric up-sampling, adjacency, cache, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kinediff.mesh import MeshHierarchy, is_closed_manifold


@pytest.fixture(scope="module")
def hierarchy(body64, cache_dir):
    return MeshHierarchy.from_body(body64, cache_dir=cache_dir).double()


def test_sizes_are_ceil_quarter_per_level(hierarchy):
    assert hierarchy.sizes == (6890, math.ceil(6890 / 4), math.ceil(math.ceil(6890 / 4) / 4))
    assert hierarchy.sizes == (6890, 1723, 431)


def test_levels_are_closed_genus0_meshes(hierarchy):
    for level, n in enumerate(hierarchy.sizes):
        ok, chi = is_closed_manifold(n, hierarchy.faces(level).numpy())
        assert ok and chi == 2
    # a closed genus-0 mesh with 431 vertices has 3 * 431 - 6 = 1287 edges, as SMPL's
    assert hierarchy.adjacency(-1)._nnz() == 431 + 2 * 1287


def test_downsample_selects_existing_vertices(body64, hierarchy):
    x = body64.v_template[None]
    coarse = hierarchy.downsample(x)
    sel = hierarchy.selection(-1)
    assert torch.equal(coarse[0], body64.v_template[sel])
    assert len(torch.unique(sel)) == 431
    assert torch.equal(hierarchy.downsample(hierarchy.downsample(x, 1), 2), coarse)


def test_upsampling_reproduces_the_template(body64, hierarchy):
    x = body64.v_template[None]
    for level, mean_mm, max_mm in ((1, 1.5, 12.0), (2, 5.0, 30.0)):
        err = (hierarchy.upsample(hierarchy.downsample(x, level)) - x).norm(dim=-1) * 1e3
        # measured on the synthetic body: 0.9 / 7.9 mm from 1723 vertices, 3.7 / 23 mm from 431
        assert err.mean() < mean_mm and err.max() < max_mm
    for level in (1, 2):
        u = hierarchy.upsampling_matrix(level)
        assert torch.all(u >= 0) and torch.allclose(u.sum(1), torch.ones(u.shape[0], dtype=u.dtype))
        assert int((u > 0).sum(1).max()) <= 3


def test_upsampling_matrix_matches_upsample(body64, hierarchy):
    c = hierarchy.downsample(body64.v_template[None])
    assert torch.allclose(hierarchy.upsampling_matrix(2) @ c[0], hierarchy.upsample(c, 1)[0])


def test_adjacency_is_symmetric_normalised_without_isolated_vertices(hierarchy):
    for level in range(3):
        a = hierarchy.adjacency(level).to_dense()
        pattern = a > 0
        assert torch.equal(pattern, pattern.T)
        assert torch.allclose(a.sum(1), torch.ones(a.shape[0], dtype=a.dtype))
        assert torch.all(pattern.sum(1) >= 4)  # itself and at least 3 neighbours
        assert torch.all(torch.diagonal(pattern))
    raw = hierarchy.adjacency(-1, normalize=False).to_dense()
    assert set(torch.unique(raw).tolist()) == {0.0, 1.0}


def test_deterministic_and_cached(body64, tmp_path):
    a = MeshHierarchy.from_body(body64, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("hierarchy_*.npz"))) == 1
    b = MeshHierarchy.from_body(body64, cache_dir=tmp_path)
    from kinediff.mesh import build_hierarchy_arrays

    fresh = build_hierarchy_arrays(body64.v_template.numpy(), body64.faces.numpy())
    for level in (1, 2):
        assert torch.equal(a.selection(level), b.selection(level))
        assert np.array_equal(fresh[f"select{level}"], getattr(a, f"select{level}").numpy())


def test_other_factors_and_a_small_mesh(tmp_path):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3)  # 642 vertices
    h = MeshHierarchy.from_mesh(sphere.vertices, sphere.faces, factors=(2, 3), cache_dir=tmp_path)
    assert h.sizes == (642, 321, 107)
    x = torch.as_tensor(sphere.vertices, dtype=torch.float32)[None]
    assert (h.upsample(h.downsample(x)) - x).norm(dim=-1).max() < 0.1


def test_bad_input(hierarchy, tmp_path):
    with pytest.raises(ValueError, match=r"V one of \(6890, 1723, 431\), got \(1, 500, 3\)"):
        hierarchy.downsample(torch.zeros(1, 500, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="coarser level"):
        hierarchy.downsample(torch.zeros(1, 431, 3, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="finer level"):
        hierarchy.upsample(torch.zeros(1, 6890, 3, dtype=torch.float64), 2)
    with pytest.raises(ValueError, match=r"level must be in \[-3, 2\]"):
        hierarchy.faces(3)
    with pytest.raises(ValueError, match="factors must be integers >= 2"):
        MeshHierarchy.from_mesh(np.eye(3), np.array([[0, 1, 2]]), factors=(1,), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="closed manifold"):
        MeshHierarchy.from_mesh(np.eye(3), np.array([[0, 1, 2]]), cache_dir=tmp_path)

"""The built-in synthetic body: topology, rigging and SMPL compatibility."""

from __future__ import annotations

import numpy as np
import pytest
import smplx
import torch

from kinediff.body import SHAPE_NAMES, BodyModel, build_synthetic_smpl, load_smpl_pickle
from kinediff.body.synthetic import synthetic_model_path, synthetic_skeleton
from kinediff.core.conventions import SMPL_PARENTS


@pytest.fixture(scope="module")
def data(synthetic_path):
    return load_smpl_pickle(synthetic_path)


def test_smpl_sizes_and_layout(data):
    assert data["v_template"].shape == (6890, 3)
    assert data["f"].shape == (13776, 3) and data["f"].dtype == np.uint32
    assert data["shapedirs"].shape == (6890, 3, 10)
    assert data["posedirs"].shape == (6890, 3, 207)
    assert data["J_regressor"].shape == (24, 6890)
    assert data["weights"].shape == (6890, 24)
    assert list(data["kintree_table"][0, 1:]) == list(SMPL_PARENTS[1:])
    assert data["shape_names"] == list(SHAPE_NAMES)


def test_mesh_is_closed_manifold_genus0_and_outward(data):
    import trimesh

    mesh = trimesh.Trimesh(data["v_template"], data["f"].astype(np.int64), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2
    assert mesh.volume > 0  # outward normals
    assert len(np.unique(data["f"])) == 6890  # every vertex is used


def test_proportions_of_an_adult(data):
    v, j = data["v_template"], data["J"]
    assert 1.6 < v[:, 1].max() - v[:, 1].min() < 1.9
    assert 0.8 < j[0, 1] - v[:, 1].min() < 1.05  # pelvis height above the feet
    assert j[16, 0] > 0 > j[17, 0]  # L_ is +x, as in SMPL
    import trimesh

    mesh = trimesh.Trimesh(v, data["f"].astype(np.int64), process=False)
    assert abs(mesh.center_mass[0]) < 0.005  # left-right symmetric
    assert 0.05 < mesh.volume < 0.09  # m^3: an adult's 50 to 90 litres


def test_mesh_has_no_sliver_edges(data):
    v, f = data["v_template"], data["f"].astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1).min() > 1e-3


def test_skinning_weights_are_sparse_convex_and_smooth(data):
    w = data["weights"]
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1.0)
    assert (w > 0).sum(1).max() <= 4
    # no hard seams: across any edge, the weight moved from joint to joint per metre of edge is
    # bounded, i.e. every transition between two joints is spread over at least 4 cm
    v, f = data["v_template"], data["f"].astype(np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    moved = 0.5 * np.abs(w[e[:, 0]] - w[e[:, 1]]).sum(1)
    assert (moved / np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)).max() < 25.0
    # each joint that moves geometry owns some vertices
    assert np.all(w.max(0)[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 18, 19, 20, 21]] > 0.5)


def test_joint_regressor_is_convex_and_returns_the_skeleton(data):
    r = data["J_regressor"].toarray()
    assert np.all(r >= 0) and np.allclose(r.sum(1), 1.0)
    assert np.abs(r @ data["v_template"] - synthetic_skeleton(np.zeros(10))).max() < 2e-4


def test_shape_directions_are_meaningful(synthetic_path):
    body = BodyModel.synthetic(0, dtype=torch.float64, cache_dir=synthetic_path.parent)
    zero = torch.zeros(1, 24, 3, dtype=torch.float64)

    def measure(k, value):
        betas = torch.zeros(1, 10, dtype=torch.float64)
        betas[0, k] = value
        out = body(zero, betas)
        v, j = out.vertices[0], out.joints[0]
        return {"height": float(v[:, 1].max() - v[:, 1].min()),
                "leg": float((j[4] - j[1]).norm() + (j[7] - j[4]).norm()),
                "arm": float((j[18] - j[16]).norm() + (j[20] - j[18]).norm()),
                "waist": float(np.ptp(v[(v[:, 1] - j[3, 1]).abs() < 0.02][:, 0].numpy()))}

    base = measure(0, 0.0)
    assert measure(0, 2.0)["height"] > base["height"] + 0.1  # stature: +2 sd is ~+15 cm
    assert measure(2, 2.0)["leg"] > base["leg"] + 0.05
    assert measure(3, 2.0)["arm"] > base["arm"] + 0.04
    assert measure(1, 2.0)["waist"] > base["waist"] + 0.03
    norms = np.linalg.norm(body.shapedirs.numpy().reshape(-1, 10), axis=0)
    assert np.all(norms > 0.05)


def test_pose_correctives_are_small_and_nonzero(data):
    pd = data["posedirs"]
    assert np.abs(pd).max() > 1e-3
    assert np.abs(pd).max() < 0.03


def test_no_array_becomes_subnormal_in_float32(data):
    """Every float array is 0 or a normal float32 number once cast (a subnormal one makes each
    float32 GEMM that reads it, smplx's included, an order of magnitude slower)."""
    tiny = np.finfo(np.float32).tiny
    for key, value in data.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            cast = np.abs(value.astype(np.float32))
            assert not ((cast > 0) & (cast < tiny)).any(), key


def test_smplx_create_loads_it(synthetic_path, tmp_path):
    folder = tmp_path / "models" / "smpl"
    folder.mkdir(parents=True)
    (folder / "SMPL_NEUTRAL.pkl").write_bytes(synthetic_path.read_bytes())
    model = smplx.create(str(tmp_path / "models"), model_type="smpl", gender="neutral")
    assert model.get_num_verts() == 6890


def test_build_is_deterministic_and_seeded(data):
    again = build_synthetic_smpl(0)
    for key in ("v_template", "shapedirs", "posedirs", "weights", "J"):
        assert np.array_equal(np.asarray(again[key]), np.asarray(data[key])), key
    other = build_synthetic_smpl(1)
    assert other["v_template"].shape == (6890, 3)
    assert not np.allclose(other["posedirs"], data["posedirs"])


def test_bad_seed_raises():
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got -1$"):
        build_synthetic_smpl(-1)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got 1.5$"):
        build_synthetic_smpl(1.5)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got 1.5$"):
        synthetic_model_path(1.5)  # not seed 1's cached file


def test_cached_load_is_fast(synthetic_path):
    import time

    t0 = time.perf_counter()
    BodyModel.synthetic(0, cache_dir=synthetic_path.parent)
    assert time.perf_counter() - t0 < 1.0

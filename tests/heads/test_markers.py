"""VirtualMarker's marker files, read against VirtualMarker's own computation written out from
its code's definition (``joints_dataset.py``: the kept vertices are range(6890) without the
ignored parts, in order; markers = vm_B.T @ mesh[kept]; the 17 joints come first)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.heads import HRNetMeshHead, read_virtual_markers
from kinediff.testing import write_virtual_markers


def _virtualmarker_markers(markers_file, indices_file, mesh: np.ndarray) -> np.ndarray:
    """VirtualMarker's way: the dense B of the npz, the kept list by removal, B.T @ mesh[kept]."""
    vm_b = sp.load_npz(markers_file).toarray().astype(float)
    with open(indices_file, "rb") as f:
        parts = pickle.load(f)  # the test's own file: a plain load is safe here
    kept = list(range(mesh.shape[0]))
    for name, indices in parts.items():
        if name in ("head",):
            for i in list(indices.numpy()):
                kept.remove(i)
    return vm_b.T @ mesh[kept]


def test_markers_read_from_virtualmarkers_files_equal_its_computation(tmp_path, body64):
    files = write_virtual_markers(tmp_path, seed=3)
    weights = read_virtual_markers(files["markers"], files["smpl_indices"])
    assert weights.shape == (64, 6890) and weights.dtype == torch.float64
    rng = np.random.default_rng(0)
    mesh = rng.normal(size=(6890, 3))
    want = _virtualmarker_markers(files["markers"], files["smpl_indices"], mesh)
    np.testing.assert_allclose(weights.numpy() @ mesh, want, rtol=0, atol=1e-12)
    # one vertex a marker, none on the head
    assert (weights.numpy()[:, files["parts"]["head"]] == 0).all()
    np.testing.assert_array_equal(weights.argmax(1).numpy(), files["marker_vertices"])
    # the folder works as the file
    assert torch.equal(read_virtual_markers(files["markers"].parent, files["smpl_indices"]), weights)


def test_a_model_with_virtualmarkers_markers_supervises_them(tmp_path, body64):
    files = write_virtual_markers(tmp_path, seed=4)
    config = PostureHMRConfig.tiny(head={"num_points": 81, "markers": str(files["markers"]),
                                         "smpl_indices": str(files["smpl_indices"])})
    assert config.markers.startswith("VirtualMarker's 64 markers")
    assert PostureHMRConfig.tiny().markers.startswith("kinediff's 16 stand-in markers")
    model = PostureHMR(config, body64)
    vertices = body64(torch.zeros(2, 24, 3, dtype=torch.float64),
                      torch.zeros(2, 10, dtype=torch.float64)).vertices
    points = torch.einsum("kv,bvc->bkc", model.keypoint_weights, vertices)
    want = _virtualmarker_markers(files["markers"], files["smpl_indices"], vertices[0].numpy())
    np.testing.assert_allclose(points[0, 17:].numpy(), want, rtol=0, atol=1e-12)
    stand_ins = PostureHMR(PostureHMRConfig.tiny(head={"num_points": 81}), body64)
    assert torch.equal(stand_ins.keypoint_weights[:17], model.keypoint_weights[:17])  # joints first
    assert not torch.equal(stand_ins.keypoint_weights[17:], model.keypoint_weights[17:])
    # the config names the files, and a trained model's config keeps them
    assert PostureHMRConfig.from_json(config.to_json()) == config
    assert config.as_trained().head.markers == str(files["markers"])


def test_marker_file_errors_name_the_file(tmp_path):
    files = write_virtual_markers(tmp_path / "vm", seed=5)
    other = write_virtual_markers(tmp_path / "other", head_vertices=1000, seed=6)
    with pytest.raises(ValueError, match=r"has 5664 rows, but .* keeps 5890 of 6890 vertices"):
        read_virtual_markers(files["markers"], other["smpl_indices"])
    no_head = tmp_path / "no_head.pkl"
    no_head.write_bytes(pickle.dumps({"torso": torch.arange(10)}))
    with pytest.raises(ValueError, match=r"no_head.pkl has no part 'head'"):
        read_virtual_markers(files["markers"], no_head)
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match=r"wrong.pkl must hold a dict body part -> vertex indices"):
        read_virtual_markers(files["markers"], wrong)
    out_of_range = tmp_path / "range.pkl"
    out_of_range.write_bytes(pickle.dumps({"head": torch.tensor([0, 7000])}))
    with pytest.raises(ValueError, match=r"part 'head' has vertex indices outside \[0, 6890\)"):
        read_virtual_markers(files["markers"], out_of_range)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"head": np.arange(3)}))  # names numpy globals: refused
    with pytest.raises(ValueError, match=r"evil.pkl is not a readable smpl_indices.pkl: refusing "
                                         r"global 'numpy"):
        read_virtual_markers(files["markers"], evil)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(files["smpl_indices"].read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.pkl is not a readable smpl_indices.pkl"):
        read_virtual_markers(files["markers"], cut)
    not_npz = tmp_path / "vm_B_sym.npz"
    not_npz.write_text("not a matrix")
    with pytest.raises(ValueError, match="is not a readable VirtualMarker marker file"):
        read_virtual_markers(not_npz, files["smpl_indices"])
    empty = tmp_path / "empty" / "vm_B_sym.npz"
    empty.parent.mkdir()
    sp.save_npz(empty, sp.csc_matrix((5664, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="marker 0 has no weight on any vertex"):
        read_virtual_markers(empty, files["smpl_indices"])


def test_the_head_checks_the_marker_options(tmp_path):
    files = write_virtual_markers(tmp_path, seed=7)
    with pytest.raises(ValueError, match="markers and smpl_indices go together"):
        HRNetMeshHead(backbone="hrnet_w18_small", markers=str(files["markers"]))
    with pytest.raises(ValueError, match=r"num_points must be 17 joints \+ the 64 markers .* = 81, "
                                         r"got 33"):
        HRNetMeshHead(backbone="hrnet_w18_small", num_points=33, markers=str(files["markers"]),
                      smpl_indices=str(files["smpl_indices"]))
    head = HRNetMeshHead(backbone="hrnet_w18_small", heatmap_size=16, num_vertices=108,
                         markers=str(files["markers"]), smpl_indices=str(files["smpl_indices"]))
    assert head.marker_weights.shape == (64, 6890)
    assert "marker_weights" not in head.state_dict()  # read from the files, not saved as weights
    assert HRNetMeshHead(backbone="hrnet_w18_small").marker_weights is None

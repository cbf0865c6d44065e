"""VirtualMarker's marker files, read against VirtualMarker's own computation written out from
its code's definition (``joints_dataset.py``: the kept vertices are range(6890) without the
ignored parts, in order; markers = vm_B.T @ mesh[kept]; the 17 joints come first)."""

from __future__ import annotations

import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.core.conventions import keypoint_regressor
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


def test_markers_read_from_virtualmarkers_files_equal_its_computation(tmp_path):
    files = write_virtual_markers(tmp_path, seed=3)
    vertices = read_virtual_markers(files["markers"], files["smpl_indices"])
    assert len(vertices) == 64 and all(isinstance(v, int) for v in vertices)
    mesh = np.random.default_rng(0).normal(size=(6890, 3))
    want = _virtualmarker_markers(files["markers"], files["smpl_indices"], mesh)
    np.testing.assert_array_equal(mesh[list(vertices)], want)
    assert not set(vertices) & set(files["parts"]["head"].tolist())  # none on the head
    # the folder works as the file
    assert read_virtual_markers(files["markers"].parent, files["smpl_indices"]) == vertices


def test_a_model_with_virtualmarkers_markers_supervises_them_and_needs_no_file(tmp_path, body64):
    files = write_virtual_markers(tmp_path / "vm", seed=4)
    vertices = read_virtual_markers(files["markers"], files["smpl_indices"])
    config = PostureHMRConfig.tiny(head={"num_points": 81, "marker_vertices": vertices})
    assert config.markers == "64 markers at head.marker_vertices"
    assert PostureHMRConfig.tiny().markers.startswith("kinediff's 16 stand-in markers")
    model = PostureHMR(config, body64)
    mesh = body64(torch.zeros(2, 24, 3, dtype=torch.float64),
                  torch.zeros(2, 10, dtype=torch.float64)).vertices
    points = torch.einsum("kv,bvc->bkc", model.keypoint_weights, mesh)
    want = _virtualmarker_markers(files["markers"], files["smpl_indices"], mesh[0].numpy())
    np.testing.assert_array_equal(points[0, 17:].numpy(), want)
    stand_ins = PostureHMR(PostureHMRConfig.tiny(head={"num_points": 81}), body64)
    assert torch.equal(stand_ins.keypoint_weights[:17], model.keypoint_weights[:17])  # joints first
    assert not torch.equal(stand_ins.keypoint_weights[17:], model.keypoint_weights[17:])
    # the config holds the vertices: a saved model is loaded without VirtualMarker's files
    assert PostureHMRConfig.from_json(config.to_json()) == config
    folder = model.save_pretrained(tmp_path / "model")
    for path in (files["markers"], files["smpl_indices"]):
        path.unlink()
    again = PostureHMR.from_pretrained(folder, body64)
    assert again.config.head.marker_vertices == vertices
    assert torch.equal(again.keypoint_weights, model.keypoint_weights)


def _oversized_tensor():
    class View:  # pickles as a tensor of 1000 elements over a storage of 3, as torch's own
        def __reduce__(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # TypedStorage, as pickles hold
                storage = torch.arange(3).storage()
            return (torch._utils._rebuild_tensor_v2,
                    (storage, 0, (1000,), (1,), False, OrderedDict()))
    return View()


def test_marker_file_errors_name_the_file(tmp_path):
    files = write_virtual_markers(tmp_path / "vm", seed=5)
    other = write_virtual_markers(tmp_path / "other", head_vertices=1000, seed=6)
    with pytest.raises(ValueError, match=r"has 5664 rows, but .* keeps 5890 of 6890 vertices"):
        read_virtual_markers(files["markers"], other["smpl_indices"])
    bad = {"no_head": ({"torso": torch.arange(10)}, r"no_head.pkl has no part 'head'"),
           "wrong": ([1, 2, 3], r"wrong.pkl must hold a dict body part -> vertex indices"),
           "range": ({"head": torch.tensor([0, 7000])},
                     r"part 'head' has vertex indices outside \[0, 6890\)"),
           "numpy": ({"head": np.arange(3)},
                     r"numpy.pkl is not a readable smpl_indices.pkl: refusing global 'numpy"),
           "oversized": ({"head": _oversized_tensor()},
                         r"a tensor of 1000 indices .* does not fit its storage of")}
    for name, (content, message) in bad.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(content))
        with pytest.raises(ValueError, match=message):
            read_virtual_markers(files["markers"], path)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(files["smpl_indices"].read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.pkl is not a readable smpl_indices.pkl"):
        read_virtual_markers(files["markers"], cut)
    for content in (b"not a matrix", files["markers"].read_bytes()[:100]):  # foreign, truncated
        not_npz = tmp_path / "vm_B_sym.npz"
        not_npz.write_bytes(content)
        with pytest.raises(ValueError, match="is not a readable VirtualMarker marker file"):
            read_virtual_markers(not_npz, files["smpl_indices"])
    for matrix, message in (
            (sp.csc_matrix((5664, 64), dtype=np.float32),
             r"marker 0 is not one vertex of weight 1 \(0 weights"),
            (sp.csc_matrix((np.array([0.5, 0.5] + [1.0] * 63), (np.r_[0, 1, 2:65],
                                                               np.r_[0, 0, 1:64])), shape=(5664, 64)),
             r"marker 0 is not one vertex of weight 1 \(2 weights \[0.5, 0.5\]")):
        path = tmp_path / "blend" / "vm_B_sym.npz"
        path.parent.mkdir(exist_ok=True)
        sp.save_npz(path, matrix)
        with pytest.raises(ValueError, match=message):
            read_virtual_markers(path, files["smpl_indices"])


def test_marker_vertices_are_checked(body64):
    with pytest.raises(ValueError, match=r"num_points must be 17 joints \+ the 2 marker_vertices "
                                         r"= 19, got 33"):
        HRNetMeshHead.Config(backbone="hrnet_w18_small", num_points=33, marker_vertices=(1, 2))
    with pytest.raises(ValueError, match="marker_vertices must be distinct vertices"):
        HRNetMeshHead.Config(num_points=19, marker_vertices=(1, 1))
    with pytest.raises(ValueError, match=r"marker_vertices\[0\] must be an integer >= 0"):
        HRNetMeshHead.Config(num_points=18, marker_vertices=(-1,))
    with pytest.raises(ValueError, match="head.marker_vertices names vertex 7000; this body has "
                                         "6890 vertices"):
        PostureHMR(PostureHMRConfig.tiny(head={"num_points": 18, "marker_vertices": (7000,)}),
                   body64)
    with pytest.raises(ValueError, match=r"marker_vertices must be vertex indices in \[0, 6890\)"):
        keypoint_regressor(body64, marker_vertices=[6890])

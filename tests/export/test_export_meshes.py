"""kinediff.export.meshes: OBJ / PLY / GLB and NPZ files read back equal (trimesh, numpy), bad input
is refused with a clear message, and a failing write leaves nothing half-written."""

import pathlib
import re

import numpy as np
import pytest
import torch
import trimesh

from kinediff.export import MESH_FORMATS, export_mesh, export_npz


@pytest.fixture(scope="module")
def mesh(body32):
    """A posed-looking body: the synthetic template plus a seeded offset, and its faces."""
    gen = torch.Generator().manual_seed(0)
    verts = body32.v_template + 0.01 * torch.randn(body32.v_template.shape, generator=gen)
    return verts, body32.faces


def reread(path):
    """The mesh in ``path`` as trimesh reads it, in the order it was written."""
    return trimesh.load(path, force="mesh", process=False, maintain_order=True)


@pytest.mark.parametrize("suffix", sorted(MESH_FORMATS))
def test_mesh_files_read_back_equal(mesh, tmp_path, suffix):
    verts, faces = mesh
    path = export_mesh(tmp_path / "sub" / f"body{suffix}", verts, faces)
    assert path == tmp_path / "sub" / f"body{suffix}"
    back = reread(path)
    np.testing.assert_allclose(back.vertices, verts.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(back.faces, faces.numpy())
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_mesh_takes_arrays_tensors_with_grad_and_upper_case_suffixes(mesh, tmp_path):
    verts, faces = mesh
    path = export_mesh(tmp_path / "body.OBJ", verts.double().requires_grad_(), faces.numpy().astype(np.int32))
    np.testing.assert_allclose(reread(path).vertices, verts.numpy(), atol=1e-6, rtol=0)


def raises(exc, message):
    """pytest.raises matching ``message`` literally and in full."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def test_mesh_errors(mesh, tmp_path):
    verts, faces = mesh
    v = verts.shape[0]
    with raises(ValueError, f"unknown mesh format '.stl' in '{tmp_path / 'a.stl'}': the suffix must be "
                            f".obj, .ply, .glb (for arrays and SMPL parameters, export_npz writes .npz)"):
        export_mesh(tmp_path / "a.stl", verts, faces)
    with raises(ValueError, f"vertices must have shape (V, 3), got ({v}, 2)"):
        export_mesh(tmp_path / "a.obj", verts[:, :2], faces)
    bad = verts.clone()
    bad[[5, 9], 1] = float("nan")
    with raises(ValueError, f"vertices must be finite: 2 of {v} vertices hold NaN or inf (first: vertex 5)"):
        export_mesh(tmp_path / "a.obj", bad, faces)
    with raises(ValueError, f"faces index vertices in [0, {v}] but vertices has {v} vertices"):
        export_mesh(tmp_path / "a.obj", verts, torch.cat([faces, torch.tensor([[0, 1, v]])]))
    with raises(ValueError, f"faces index vertices in [-1, {v - 1}] but vertices has {v} vertices"):
        export_mesh(tmp_path / "a.ply", verts, torch.cat([faces, torch.tensor([[0, 1, -1]])]))
    with raises(ValueError, "faces must have shape (F, 3), got (2, 4)"):
        export_mesh(tmp_path / "a.glb", verts, [[0, 1, 2, 3], [1, 2, 3, 4]])
    with raises(TypeError, "faces must hold integer vertex indices, got dtype float32"):
        export_mesh(tmp_path / "a.obj", verts, faces.float())
    with raises(TypeError, "vertices must hold real numbers, got dtype bool"):
        export_mesh(tmp_path / "a.obj", verts > 0, faces)
    assert list(tmp_path.iterdir()) == []  # nothing written by a refused call


def test_npz_reads_back_equal(mesh, tmp_path):
    verts, faces = mesh
    gen = torch.Generator().manual_seed(1)
    pose, betas, transl = (torch.randn(24, 3, generator=gen), torch.randn(10, generator=gen),
                           torch.tensor([0.1, -0.2, 3.0]))
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    joints = torch.randn(24, 3, generator=gen)
    path = export_npz(tmp_path / "body.npz", verts, faces, smpl={"pose": pose.reshape(72), "betas": betas,
                                                                 "transl": transl},
                      camera={"K": torch.from_numpy(K), "image_size": (480, 640)}, joints=joints,
                      score=np.float32(0.75))
    data = np.load(path)
    assert sorted(data.files) == ["K", "betas", "faces", "image_size", "joints", "pose", "score", "transl",
                                  "vertices"]
    for key, value in {"vertices": verts, "pose": pose, "betas": betas, "transl": transl, "K": K,
                       "joints": joints}.items():
        np.testing.assert_allclose(data[key], np.asarray(value), atol=1e-6, rtol=0, err_msg=key)
    np.testing.assert_array_equal(data["faces"], faces.numpy())
    assert data["image_size"].tolist() == [480, 640] and data["image_size"].dtype == np.int64
    assert data["score"] == np.float32(0.75) and data["vertices"].dtype == np.float64
    # the minimum: vertices alone; a square image given as one int
    path = export_npz(tmp_path / "min.npz", verts, camera={"K": K, "image_size": 256})
    assert np.load(path)["image_size"].tolist() == [256, 256]
    assert sorted(np.load(path).files) == ["K", "image_size", "vertices"]


def test_npz_errors(mesh, tmp_path):
    verts, _faces = mesh
    smpl = {"pose": torch.zeros(24, 3), "betas": torch.zeros(10)}
    with raises(ValueError, f"export_npz writes .npz files, got '{tmp_path / 'a.obj'}' (for meshes, "
                            f"export_mesh writes .obj, .ply, .glb)"):
        export_npz(tmp_path / "a.obj", verts)
    with raises(ValueError, "extra arrays may not be named ['pose']: export_npz writes those itself "
                            "(pass them as vertices, faces, smpl= or camera=)"):
        export_npz(tmp_path / "a.npz", verts, pose=np.zeros(3))
    with raises(ValueError, "smpl must hold pose (24, 3), betas (K,) and optionally transl (3,); "
                            "missing ['betas'], unknown ['global_orient']"):
        export_npz(tmp_path / "a.npz", verts, smpl={"pose": smpl["pose"], "global_orient": 0})
    with raises(ValueError, "smpl['pose'] must have shape (24, 3), got (23, 3)"):
        export_npz(tmp_path / "a.npz", verts, smpl={**smpl, "pose": torch.zeros(23, 3)})
    with raises(ValueError, "smpl['transl'] must have shape (3,), got (1, 3)"):
        export_npz(tmp_path / "a.npz", verts, smpl={**smpl, "transl": torch.zeros(1, 3)})
    with raises(ValueError, "smpl['betas'] must be finite"):
        export_npz(tmp_path / "a.npz", verts, smpl={**smpl, "betas": torch.full((10,), float("inf"))})
    with raises(ValueError, "camera must be a dict with K (3, 3) intrinsics in pixels and image_size "
                            "(an int or (H, W)), got ['K']"):
        export_npz(tmp_path / "a.npz", verts, camera={"K": np.eye(3)})
    with raises(ValueError, "camera['K'] must have shape (3, 3), got (4, 4)"):
        export_npz(tmp_path / "a.npz", verts, camera={"K": np.eye(4), "image_size": 64})
    with raises(ValueError, "image_size must be positive, got [0, 64]"):
        export_npz(tmp_path / "a.npz", verts, camera={"K": np.eye(3), "image_size": np.array([0, 64])})
    with raises(ValueError, f"faces index vertices in [0, {verts.shape[0]}] but vertices has "
                            f"{verts.shape[0]} vertices"):
        export_npz(tmp_path / "a.npz", verts, torch.tensor([[0, 1, verts.shape[0]]]))
    with raises(TypeError, "extra array 'tags' must be numeric, got an object array (from dict)"):
        export_npz(tmp_path / "a.npz", verts, tags={"a": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["body.obj", "body.ply", "body.glb", "body.npz"])
def test_a_failing_write_leaves_the_old_file_and_no_temporary(mesh, tmp_path, monkeypatch, name):
    verts, faces = mesh
    target = tmp_path / name
    target.write_bytes(b"the previous export")

    def half_then_fail(self, data):  # a full disk: half the bytes reach the file, then an error
        with open(self, "wb") as f:
            f.write(data[:len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then_fail)
    write = export_npz if name.endswith(".npz") else export_mesh
    with pytest.raises(OSError, match="No space left on device"):
        write(target, verts, faces)
    assert target.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [name]

"""Real-data loaders on tiny fixtures written in the exact file formats."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from kinediff.data import PW3D, check_sample, convert_3dpw
from kinediff.data.writers import write_3dpw_raw
from kinediff.core.camera import project_points


@pytest.fixture(scope="module")
def pw3d_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("3dpw")
    info = write_3dpw_raw(root, body32, frames=3)
    return root, info


def _camera_vertices(body, sample):
    out = body(sample["pose"][None].float(), sample["betas"][None].float())
    return out.vertices[0] + sample["transl"], out.joints[0] + sample["transl"]


def test_3dpw_raw_gives_the_fixtures_camera_frame_meshes(pw3d_root, body32):
    root, info = pw3d_root
    data = PW3D(root, "test", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    assert len(data) == 3
    for i in range(3):
        sample = data[i]
        check_sample(sample)
        assert sample["gender"] == "female"
        verts, joints = _camera_vertices(body32, sample)
        torch.testing.assert_close(verts.double(), info["cam_vertices"][i], atol=1e-5, rtol=0)
        # projected joints land on the fixture's 2D joints (full image)
        uv = project_points(joints[None].double(), torch.as_tensor(info["K"]))[0][:18]
        torch.testing.assert_close(uv, torch.as_tensor(info["poses2d"][i][:2].T), atol=1e-3, rtol=0)
        # and the crop's intrinsics put them where the sample says
        torch.testing.assert_close(sample["joints2d"][:18, :2].double(),
                                   project_points(joints[None].double(), sample["K"].double())[0][:18],
                                   atol=1e-3, rtol=0)
        # the person is in the crop: bright body pixels under the projected mesh
        px = sample["mesh2d"].long().clamp(0, 63)
        assert sample["image"][:, px[:, 1], px[:, 0]].mean() > 0.4


def test_3dpw_coco_conversion_round_trip(pw3d_root, body32, tmp_path):
    root, _ = pw3d_root
    out = convert_3dpw(root, root, "test", body=body32)
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == 3 and set(coco["annotations"][0]["smpl_param"]) == {
        "pose", "shape", "trans", "gender"}
    raw = PW3D(root, "test", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    via = PW3D(root, "test", format="coco", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    for i in range(3):
        a, b = raw[i], via[i]
        for key in ("pose", "betas", "transl", "K", "mesh2d", "image"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)


def test_3dpw_bad_input(pw3d_root, body32, tmp_path):
    root, _ = pw3d_root
    with pytest.raises(FileNotFoundError, match="sequenceFiles"):
        PW3D(tmp_path / "nowhere", body=body32)
    with pytest.raises(FileNotFoundError, match="3DPW_train.json"):
        PW3D(root, "train", format="coco", body=body32)
    with pytest.raises(ValueError, match="split must be one of"):
        PW3D(root, "val", body=body32)
    bad = tmp_path / "bad"
    (bad / "sequenceFiles" / "test").mkdir(parents=True)
    src = root / "sequenceFiles" / "test" / "courtyard_fixture_00.pkl"
    data = pickle.loads(src.read_bytes(), encoding="latin1")
    del data["cam_poses"]
    (bad / "sequenceFiles" / "test" / "x.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match=r"x.pkl: missing or malformed key 'cam_poses'"):
        PW3D(bad, body=body32)
    data = pickle.loads(src.read_bytes(), encoding="latin1")
    data["poses"][0] = data["poses"][0][:, :70]
    (bad / "sequenceFiles" / "test" / "x.pkl").write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match=r"x.pkl person 0: key 'poses' has shape"):
        PW3D(bad, body=body32)
    (bad / "sequenceFiles" / "test" / "x.pkl").write_bytes(
        b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")
    with pytest.raises(pickle.UnpicklingError, match="refusing global 'os.system'"):
        PW3D(bad, body=body32)


def test_unreadable_images_are_skipped_and_reported(pw3d_root, body32, tmp_path):
    import shutil

    root, _ = pw3d_root
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "imageFiles" / "courtyard_fixture_00" / "image_00002.jpg").write_bytes(b"broken")
    data = PW3D(copy, body=body32, image_size=32, mesh_factors=(4, 4, 4))
    samples = [data[i] for i in range(len(data))]
    assert [s["index"] for s in samples] == [0, 2, 2]  # record 1 replaced by the next readable
    assert "skipped 1 unreadable image" in data.report() and "image_00002.jpg" in data.report()


# -- Human3.6M --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def h36m_root(tmp_path_factory, body32):
    from kinediff.data.writers import write_h36m

    root = tmp_path_factory.mktemp("h36m")
    return root, write_h36m(root, body32)


def test_h36m_protocol2_selection_and_camera_frame(h36m_root, body32):
    from kinediff.data import Human36M

    root, expect = h36m_root
    data = Human36M(root, "test", subjects=(9,), body=body32, image_size=64, mesh_factors=(4, 4, 4))
    assert [(r.extra["camera"], r.extra["frame"]) for r in data.records] == [(4, 0), (4, 5), (4, 10)]
    every10 = Human36M(root, "test", subjects=(9,), frame_step=10, camera=1, body=body32, image_size=64,
                       mesh_factors=(4, 4, 4))
    assert [(r.extra["camera"], r.extra["frame"]) for r in every10.records] == [(1, 0), (1, 10)]
    for i, record in enumerate(data.records):
        sample = data[i]
        check_sample(sample)
        verts, _ = _camera_vertices(body32, sample)
        want = expect[(record.extra["camera"], record.extra["frame"])]
        torch.testing.assert_close(verts.double(), want["vertices"], atol=1e-5, rtol=0)
        torch.testing.assert_close(sample["joints17"].double(), want["joints17"], atol=1e-5, rtol=0)


def test_h36m_bad_input(h36m_root, body32, tmp_path):
    import shutil

    from kinediff.data import Human36M

    root, _ = h36m_root
    with pytest.raises(FileNotFoundError, match="Human36M_subject11_data.json"):
        Human36M(root, "test", body=body32)  # the fixture has S9 only
    copy = tmp_path / "h36m"
    shutil.copytree(root, copy)
    path = copy / "annotations" / "Human36M_subject9_smpl_param.json"
    params = json.loads(path.read_text())
    del params["2"]["1"]["5"]["shape"]
    path.write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"smpl_param.json action 2 subaction 1 frame 5: missing "
                                         r"or malformed key 'shape'"):
        Human36M(copy, "test", subjects=(9,), body=body32)


def test_convert_cli(pw3d_root, tmp_path, capsys):
    from kinediff.cli import main

    root, _ = pw3d_root
    assert main(["data", "convert", "3dpw", str(root), str(tmp_path), "--split", "test"]) == 0
    assert (tmp_path / "3DPW_test.json").is_file() and "wrote" in capsys.readouterr().out
    assert main(["data", "convert", "3dpw", str(tmp_path / "none"), str(tmp_path)]) == 2
    assert "sequenceFiles" in capsys.readouterr().err


# -- SURREAL raw clips ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def surreal_root(tmp_path_factory, body32):
    from kinediff.data.writers import write_surreal_raw

    root = tmp_path_factory.mktemp("surreal")
    return root, write_surreal_raw(root, body32, "val", clips=2, frames=3)


def test_surreal_raw_gives_the_true_camera_frame_meshes(surreal_root, body32):
    from kinediff.data import Surreal

    root, info = surreal_root
    data = Surreal(root, "val", format="raw", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    assert len(data) == 6
    for i in range(6):
        sample = data[i]
        check_sample(sample)
        assert sample["gender"] == ("male", "female")[i // 3]  # SURREAL codes: clip c has c % 2
        verts, joints = _camera_vertices(body32, sample)
        torch.testing.assert_close(verts.double(), info["cam_vertices"][i], atol=1e-5, rtol=0)
        # the released joints2D were projected through SURREAL's mirroring extrinsic and rounded:
        # kinediff's camera sees them at 320 - u, within the rounding
        uv = project_points(joints[None].double(), torch.as_tensor(info["K"]))[0][:24]
        released = info["joints2D"][i].double()
        assert (uv[:, 0] - (320 - released[:, 0])).abs().max() <= 0.5 + 1e-3
        assert (uv[:, 1] - released[:, 1]).abs().max() <= 0.5 + 1e-3
        # un-mirrored mask and frame agree with the mesh: bright body pixels under the mask
        assert bool(sample["has_mask"]) and sample["mask"].sum() > 100
        image = sample["image"].mean(0)
        assert image[sample["mask"] > 0].mean() > image[sample["mask"] == 0].mean() + 0.3
        full = data._read_mask(data.records[i])
        assert np.array_equal(full > 0, info["masks"][i])


def test_surreal_frame_step_runs_and_bad_input(surreal_root, body32, tmp_path):
    import shutil

    from scipy.io import loadmat, savemat

    from kinediff.data import Surreal

    root, _ = surreal_root
    kw = dict(body=body32, image_size=32, mesh_factors=(4, 4, 4))
    assert [r.extra["frame"] for r in Surreal(root, "val", "raw", frame_step=2, **kw).records] == [
        0, 2, 0, 2]
    with pytest.raises(FileNotFoundError, match=r"run1.*data/cmu"):
        Surreal(root, "val", "raw", runs=(1,), **kw)
    with pytest.raises(FileNotFoundError, match="data/cmu"):
        Surreal(root, "test", "raw", **kw)
    with pytest.raises(ValueError, match="split must be one of"):
        Surreal(root, "validation", "raw", **kw)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    folder = copy / "val" / "run0" / "01_01"
    info = loadmat(folder / "01_01_c0002_info.mat")
    savemat(folder / "01_01_c0002_info.mat", {k: v for k, v in info.items()
                                              if not k.startswith("__") and k != "camLoc"})
    with pytest.raises(ValueError, match=r"01_01_c0002_info.mat: missing key\(s\) 'camLoc'"):
        Surreal(copy, "val", "raw", **kw)
    info["joints3D"] = info["joints3D"][:, :20]
    savemat(folder / "01_01_c0002_info.mat", {k: v for k, v in info.items() if not k.startswith("__")})
    with pytest.raises(ValueError, match=r"c0002_info.mat: key 'joints3D' has shape \(3, 20, 3\)"):
        Surreal(copy, "val", "raw", **kw)
    # a broken video: its frames are skipped, counted and reported, not a crash
    (folder / "01_01_c0002_info.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(ValueError, match="c0002_info.mat is not a readable MATLAB file"):
        Surreal(copy, "val", "raw", **kw)
    shutil.copy(root / "val" / "run0" / "01_01" / "01_01_c0002_info.mat", folder)
    (folder / "01_01_c0001.mp4").write_bytes(b"not a video")
    data = Surreal(copy, "val", "raw", **kw)
    assert [data[i]["index"] for i in (0, 2, 4)] == [3, 3, 4]  # clip 1's frames replaced
    assert "skipped 1 unreadable image" in data.report() and "01_01_c0001.mp4" in data.report()


@pytest.mark.parametrize(("key", "edit", "message"), [
    ("pose", lambda v: v.__setitem__((5, 1), np.nan), r"c0001_info.mat frame 1: key 'pose' holds 1 NaN"),
    ("joints3D", lambda v: v.__setitem__((0, 0, 2), np.inf),
     r"c0001_info.mat frame 2: key 'joints3D' holds 0 NaN and 1 infinite"),
    ("gender", lambda v: v.__setitem__(0, 0.5), r"c0001_info.mat: key 'gender' must hold integer codes"),
    ("camLoc", lambda v: v.__setitem__(1, np.nan), r"c0001_info.mat: key 'camLoc' holds 1 NaN"),
])
def test_surreal_bad_values_name_file_frame_and_key(surreal_root, body32, tmp_path, key, edit, message):
    import shutil

    from scipy.io import loadmat, savemat

    from kinediff.data import Surreal

    root, _ = surreal_root
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "val" / "run0" / "01_01" / "01_01_c0001_info.mat"
    info = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    info[key] = info[key].astype(np.float64)
    edit(info[key])
    savemat(path, info)
    with pytest.raises(ValueError, match=message):
        Surreal(copy, "val", "raw", body=body32, image_size=32, mesh_factors=(4, 4, 4))


def test_surreal_single_frame_clip_and_the_callers_body_untouched(tmp_path, body32):
    from scipy.io import loadmat, savemat

    from kinediff.data import Surreal
    from kinediff.data.writers import write_surreal_raw

    info = write_surreal_raw(tmp_path, body32, "test", clips=1, frames=1)
    assert body32.v_template.dtype == torch.float32  # the writer labels in float64 on a copy
    path = tmp_path / "test" / "run0" / "01_01" / "01_01_c0001_info.mat"
    mat = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    # as MATLAB writes a 1-frame clip: no trailing frame axis on the 3-D arrays
    mat["joints2D"], mat["joints3D"] = mat["joints2D"][:, :, 0], mat["joints3D"][:, :, 0]
    savemat(path, mat)
    assert loadmat(path)["joints3D"].shape == (3, 24)
    data = Surreal(tmp_path, "test", "raw", body=body32, image_size=32, mesh_factors=(4, 4, 4))
    verts, _ = _camera_vertices(body32, data[0])
    torch.testing.assert_close(verts.double(), info["cam_vertices"][0], atol=1e-5, rtol=0)


def test_surreal_conversion_round_trip_and_cli(surreal_root, body32, tmp_path, capsys):
    from kinediff.cli import main
    from kinediff.data import Surreal, convert_surreal

    root, _ = surreal_root
    out = convert_surreal(root, tmp_path, "val", body=body32, progress=False)
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == 6 and coco["annotations"][0]["smpl_param"]["gender"] == 1
    kw = dict(body=body32, image_size=64, mesh_factors=(4, 4, 4))
    raw, via = Surreal(root, "val", "raw", **kw), Surreal(tmp_path, "val", **kw)
    for i in range(6):
        a, b = raw[i], via[i]
        assert a["gender"] == b["gender"]
        for key in ("pose", "betas", "transl", "K", "mesh2d"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)
        # the JPEG frames are the un-mirrored video frames (lossy: compare loosely)
        assert (a["image"] - b["image"]).abs().mean() < 0.02
    with pytest.raises(FileNotFoundError, match="surreal_test.json"):
        Surreal(tmp_path, "test", **kw)
    assert main(["data", "convert", "surreal", str(root), str(tmp_path / "cli"), "--split", "val",
                 "--frame-step", "3"]) == 0
    assert "surreal_val.json" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "cli" / "surreal_val.json").read_text())["images"]) == 2


def test_spin_npz(pw3d_root, body32, tmp_path):
    from kinediff.data import SpinNpz

    root, _ = pw3d_root
    raw = PW3D(root, "test", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    boxes = [r.box for r in raw.records]
    np.savez(tmp_path / "3dpw_test.npz",
             imgname=np.array([str(r.image.relative_to(root)) for r in raw.records]),
             center=np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2] for b in boxes]),
             scale=np.array([max(b[2], b[3]) * 1.2 / 200 for b in boxes]),
             pose=np.stack([r.pose for r in raw.records]),
             shape=np.stack([r.betas for r in raw.records]), gender=np.array(["f"] * 3))
    data = SpinNpz(tmp_path / "3dpw_test.npz", root, body=body32, image_size=64,
                   mesh_factors=(4, 4, 4))
    for i in range(3):
        sample, ref = data[i], raw[i]
        check_sample(sample)
        assert sample["gender"] == "female"
        torch.testing.assert_close(sample["pose"], ref["pose"])  # the same crop and 3D body;
        assert torch.equal(sample["image"], ref["image"])  # only the camera is nominal
    np.savez(tmp_path / "h36m.npz", imgname=np.array(["a.jpg"]), center=np.zeros((1, 2)),
             scale=np.ones(1), S=np.zeros((1, 24, 4)))
    with pytest.raises(ValueError, match="no SMPL parameters"):
        SpinNpz(tmp_path / "h36m.npz", root, body=body32)
    # rows without a fit (has_smpl 0: zeros, not a body) are left out and reported, never scored
    with np.load(tmp_path / "3dpw_test.npz") as arrays:
        fields = dict(arrays)
    np.savez(tmp_path / "partial.npz", **fields, has_smpl=np.array([1, 0, 1]))
    partial = SpinNpz(tmp_path / "partial.npz", root, body=body32, image_size=64,
                      mesh_factors=(4, 4, 4))
    assert len(partial) == 2 and "left out 1 row(s)" in partial.report()
    np.savez(tmp_path / "none.npz", **fields, has_smpl=np.zeros(3))
    with pytest.raises(ValueError, match="no row has SMPL parameters"):
        SpinNpz(tmp_path / "none.npz", root, body=body32)


def test_h36m_coco_conversion_round_trip(h36m_root, body32, tmp_path):
    from kinediff.cli import main
    from kinediff.data import Human36M, convert_h36m

    root, _ = h36m_root
    out = convert_h36m(root, tmp_path, "test", subjects=(9,), body=body32)
    kw = dict(body=body32, image_size=64, mesh_factors=(4, 4, 4))
    source = Human36M(root, "test", subjects=(9,), **kw)
    (root / out.name).write_bytes(out.read_bytes())
    try:
        coco = Human36M(root, "test", format="coco", **kw)
        assert len(coco) == len(source) == 3
        for i in range(3):
            a, b = source[i], coco[i]
            for key in ("pose", "betas", "transl", "K", "joints17", "mesh2d", "image"):
                torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)
    finally:
        (root / out.name).unlink()
    with pytest.raises(FileNotFoundError, match="Human36M_train.json"):
        Human36M(root, "train", format="coco", **kw)
    assert main(["data", "convert", "h36m", str(tmp_path / "none"), str(tmp_path)]) == 2


def test_malformed_json_is_named(tmp_path, body32):
    (tmp_path / "3DPW_test.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"3DPW_test.json is not valid JSON"):
        PW3D(tmp_path, "test", format="coco", body=body32)


def test_record_reading_helpers_name_file_and_key():
    """kinediff.data.base.require_key / require_array, shared by the 3DPW, H36M and SURREAL readers."""
    from kinediff.data.base import require_array, require_key

    assert require_key({"pose": 1}, "pose", "f.json") == 1
    assert require_key([5, 6], 1, "f.json") == 6
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 'pose' \(KeyError\)$"):
        require_key({}, "pose", "f.json")
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 2 \(IndexError\)$"):
        require_key([5, 6], 2, "f.json")
    with pytest.raises(ValueError, match=r"^f\.json: missing or malformed key 'a' \(TypeError\)$"):
        require_key(None, "a", "f.json")
    out = require_array([[0, 1, 2]] * 2, (3,), "f.json", "t")
    assert out.dtype == np.float64 and out.shape == (2, 3)
    with pytest.raises(ValueError, match=r"^f\.json: key 'pose' has shape \(69,\), expected \(\.\.\., 72\)$"):
        require_array(np.zeros(69), (72,), "f.json", "pose")
    with pytest.raises(ValueError, match=r"^f\.json: key 'pose' is not numeric: "):
        require_array(["a"], (1,), "f.json", "pose")

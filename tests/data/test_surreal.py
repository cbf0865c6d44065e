"""SURREAL: the raw clips (``_info.mat``, ``_segm.mat``, ``.mp4``) and the COCO-style files, on tiny
clips written the way SURREAL's generator writes them (:func:`kinediff.testing.write_surreal_raw`)."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat
from tolerances import atol_for

from kinediff.cli import main
from kinediff.core.camera import project_points
from kinediff.data import Surreal, check_sample, convert_surreal
from kinediff.testing import write_surreal_raw


def _camera_vertices(body, sample):
    out = body(sample["pose"][None].float(), sample["betas"][None].float())
    return out.vertices[0] + sample["transl"], out.joints[0] + sample["transl"]


@pytest.fixture(scope="module")
def surreal_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("surreal")
    return root, write_surreal_raw(root, body32, "val", clips=2, frames=3)


def test_surreal_raw_gives_the_true_camera_frame_meshes(surreal_root, body32):
    root, info = surreal_root
    data = Surreal(root, "val", format="raw", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    assert len(data) == 6
    for i in range(6):
        sample = data[i]
        check_sample(sample)
        assert sample["gender"] == ("male", "female")[i // 3]  # SURREAL codes: clip c has c % 2
        verts, joints = _camera_vertices(body32, sample)
        torch.testing.assert_close(verts.double(), info["cam_vertices"][i],
                                   atol=atol_for(info["cam_vertices"][i], torch.float32, ulps=128), rtol=0)
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
    root, _ = surreal_root
    kw = dict(body=body32, image_size=32, mesh_factors=(4, 4, 4))
    assert [r.extra["frame"] for r in Surreal(root, "val", "raw", frame_step=2, **kw).records] == [
        0, 2, 0, 2]
    with pytest.raises(FileNotFoundError, match=r"run1.*data/cmu"):
        Surreal(root, "val", "raw", runs=(1,), **kw)
    with pytest.raises(FileNotFoundError, match="data/cmu"):
        Surreal(root, "test", "raw", **kw)
    with pytest.raises(ValueError, match=r"^split must be 'train', 'val' or 'test', got 'validation'$"):
        Surreal(root, "validation", "raw", **kw)
    with pytest.raises(ValueError, match=r"^frame_step must be an integer >= 1, got 0$"):
        Surreal(root, "val", "raw", frame_step=0, **kw)
    with pytest.raises(ValueError, match=r"^frame_step must be an integer >= 1, got 1.5$"):
        Surreal(root, "val", "raw", frame_step=1.5, **kw)
    with pytest.raises(ValueError, match=r"^format must be 'raw' or 'coco', got 'mp4'$"):
        Surreal(root, "val", "mp4", **kw)
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
    torch.testing.assert_close(verts.double(), info["cam_vertices"][0],
                               atol=atol_for(info["cam_vertices"][0], torch.float32, ulps=128), rtol=0)


def test_surreal_conversion_round_trip_and_cli(surreal_root, body32, tmp_path, capsys):
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


def test_a_surreal_set_with_an_open_video_pickles_for_worker_processes(surreal_root, body32):
    root, _ = surreal_root
    data = Surreal(root, "val", "raw", body=body32, image_size=32, mesh_factors=(4, 4, 4))
    first = data[1]  # opens the clip's video and keeps it
    assert data._video
    copy = pickle.loads(pickle.dumps(data))  # as a spawned DataLoader worker receives it
    assert not copy._video and data._video
    assert torch.equal(copy[1]["image"], first["image"]) and torch.equal(data[2]["image"], copy[2]["image"])

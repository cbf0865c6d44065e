"""3DPW: the raw sequence files and the COCO-style JSON, on a tiny fixture written in the released
layout (:func:`kinediff.testing.write_3dpw_raw`); every bad value or length in a sequence file
named with its file, person, frame and key."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tolerances import atol_for

from kinediff.body.smpl_io import PickleFileError
from kinediff.cli import main
from kinediff.core.camera import project_points
from kinediff.data import PW3D, check_sample, convert_3dpw

KW = dict(image_size=32, mesh_factors=(4, 4, 4))
SEQ = "courtyard_fixture_00.pkl"


def _camera_vertices(body, sample):
    out = body(sample["pose"][None].float(), sample["betas"][None].float())
    return out.vertices[0] + sample["transl"], out.joints[0] + sample["transl"]


def test_3dpw_raw_gives_the_fixtures_camera_frame_meshes(pw3d, body32):
    root, info = pw3d
    data = PW3D(root, "test", body=body32, image_size=64, mesh_factors=(4, 4, 4))
    assert len(data) == 3
    for i in range(3):
        sample = data[i]
        check_sample(sample)
        assert sample["gender"] == "female"
        verts, joints = _camera_vertices(body32, sample)
        torch.testing.assert_close(verts.double(), info["cam_vertices"][i],
                                   atol=atol_for(info["cam_vertices"][i], torch.float32, ulps=128), rtol=0)
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


def test_3dpw_coco_conversion_round_trip(pw3d, body32, tmp_path):
    root, _ = pw3d
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


def test_3dpw_bad_input(pw3d, body32, tmp_path):
    root, _ = pw3d
    with pytest.raises(FileNotFoundError, match="sequenceFiles"):
        PW3D(tmp_path / "nowhere", body=body32)
    with pytest.raises(FileNotFoundError, match="3DPW_train.json"):
        PW3D(root, "train", format="coco", body=body32)
    with pytest.raises(ValueError, match=r"^split must be 'train', 'validation' or 'test', got 'val'$"):
        PW3D(root, "val", body=body32)
    with pytest.raises(ValueError, match=r"^format must be 'raw' or 'coco', got 'spin'$"):
        PW3D(root, "test", format="spin", body=body32)
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


def test_unreadable_images_are_skipped_and_reported(pw3d, body32, tmp_path):
    root, _ = pw3d
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "imageFiles" / "courtyard_fixture_00" / "image_00002.jpg").write_bytes(b"broken")
    data = PW3D(copy, body=body32, image_size=32, mesh_factors=(4, 4, 4))
    samples = [data[i] for i in range(len(data))]
    assert [s["index"] for s in samples] == [0, 2, 2]  # record 1 replaced by the next readable
    assert "skipped 1 unreadable image" in data.report() and "image_00002.jpg" in data.report()


def test_convert_cli(pw3d, tmp_path, capsys):
    root, _ = pw3d
    assert main(["data", "convert", "3dpw", str(root), str(tmp_path), "--split", "test"]) == 0
    assert (tmp_path / "3DPW_test.json").is_file() and "wrote" in capsys.readouterr().out
    assert main(["data", "convert", "3dpw", str(tmp_path / "none"), str(tmp_path)]) == 2
    assert "sequenceFiles" in capsys.readouterr().err


def test_malformed_json_is_named(tmp_path, body32):
    (tmp_path / "3DPW_test.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"3DPW_test.json is not valid JSON"):
        PW3D(tmp_path, "test", format="coco", body=body32)


# -- bad values and lengths in a sequence file ------------------------------------------------------

def _copy(root: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(root, dst)
    return dst


def _raw_with(pw3d_root, tmp_path, data) -> Path:
    """A copy of the 3DPW fixture whose sequence file holds ``data``."""
    root = _copy(pw3d_root, tmp_path / "raw")
    (root / "sequenceFiles" / "test" / SEQ).write_bytes(pickle.dumps(data, protocol=2))
    return root


def _edited(data, edit):
    data = pickle.loads(pickle.dumps(data))
    edit(data)
    return data


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["betas"].__setitem__(0, d["betas"][0][:5]), r"person 0: key 'betas' has shape \(5,\)"),
    (lambda d: d.__setitem__("genders", ["q"]), "person 0: unknown gender 'q'"),
    (lambda d: d.__setitem__("img_frame_ids", d["img_frame_ids"] + 0.5),
     "key 'img_frame_ids' must hold non-negative integers"),
    (lambda d: d.__setitem__("cam_poses", d["cam_poses"] * np.array([2.0, 2, 2, 1])[:, None]),
     "person 0 frame 0: key 'cam_poses' is not a rotation matrix"),
    (lambda d: d.__setitem__("cam_intrinsics", np.eye(3) * [0.0, 1.0, 1.0]),
     "key 'cam_intrinsics' must have positive focal lengths"),
    (lambda d: d["poses"].__setitem__(0, np.stack([d["poses"][0]] * 2, 1)),
     r"person 0: keys 'poses' and 'trans' must have shapes"),
    # inconsistent lengths within the sequence
    (lambda d: d["trans"].__setitem__(0, d["trans"][0][:2]),
     "person 0: key 'trans' has 2 frames but 'cam_poses' has 3"),
    (lambda d: d["campose_valid"].__setitem__(0, np.ones(5)), "key 'campose_valid' has 5 frames"),
    (lambda d: d.__setitem__("img_frame_ids", d["img_frame_ids"][:2]), "key 'img_frame_ids' has 2 frames"),
    (lambda d: d.__setitem__("cam_poses", d["cam_poses"][:2]),
     "key 'img_frame_ids' has 3 frames but 'cam_poses' has 2"),
    (lambda d: d["poses2d"].__setitem__(0, d["poses2d"][0][:2]), "key 'poses2d' has 2 frames"),
    (lambda d: d.__setitem__("genders", []), "key 'genders' has 0 entries but 'poses' has 1 persons"),
    (lambda d: d.__setitem__("betas", d["betas"] * 2), "key 'betas' has 2 entries but 'poses' has 1"),
])
def test_3dpw_raw_bad_values_and_lengths_name_file_person_and_key(pw3d_root, raw_data, tmp_path, body32,
                                                                   edit, message):
    root = _raw_with(pw3d_root, tmp_path, _edited(raw_data, edit))
    with pytest.raises(ValueError, match=rf"{SEQ}.*{message}"):
        PW3D(root, "test", body=body32, **KW)


@given(key=st.sampled_from(["poses", "trans", "poses2d"]), frame=st.integers(0, 2),
       value=st.sampled_from([np.nan, np.inf]))
def test_3dpw_raw_any_non_finite_frame_value_is_refused(pw3d_root, raw_data, tmp_path_factory, body32, key,
                                                        frame, value):
    def edit(d):
        array = np.array(d[key][0], dtype=np.float64)
        array[frame].flat[-1] = value
        d[key][0] = array

    root = _raw_with(pw3d_root, tmp_path_factory.mktemp("nan"), _edited(raw_data, edit))
    with pytest.raises(ValueError, match=rf"{SEQ} person 0 frame {frame}: key '{key}' holds"):
        PW3D(root, "test", body=body32, **KW)


@given(cut=st.integers(0, 10_000))
def test_3dpw_any_truncated_pickle_names_the_file(pw3d_root, tmp_path_factory, body32, cut):
    blob = (pw3d_root / "sequenceFiles" / "test" / SEQ).read_bytes()
    root = _copy(pw3d_root, tmp_path_factory.mktemp("cut") / "r")
    (root / "sequenceFiles" / "test" / SEQ).write_bytes(blob[:cut % len(blob)])
    with pytest.raises(PickleFileError, match=rf"3DPW file .*{SEQ} is (empty|not a readable pickle)"):
        PW3D(root, "test", body=body32, **KW)

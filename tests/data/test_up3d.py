"""UP-3D on a tiny fixture in the released layout (and GraphCMR's npz), checked against the
fixture's own parameters."""

from __future__ import annotations

import copy
import io
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from kinediff.body.smpl_io import PickleFileError, load_smpl_pickle
from kinediff.core.camera import box_to_square, project_points
from kinediff.core.conventions import H36M_JOINTS
from kinediff.data import check_sample
from kinediff.data.up3d import UP3D, UP3D_JOINTS, convert_up3d, lsp_keypoints
from kinediff.testing.up3d import LSP_FROM_SMPL, write_up3d, write_up3d_spin_npz

KW = {"image_size": 64, "mesh_factors": (4, 4, 4)}


@pytest.fixture(scope="module")
def up3d(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("up-3d")
    info = write_up3d(root, body32)
    write_up3d_spin_npz(root, "trainval")
    return root, info


@pytest.fixture(scope="module")
def model64(body32):
    return copy.deepcopy(body32).double()


def _records(root, body):
    return {r.extra["index"]: (r, s) for s in ("trainval", "test")
            for r in UP3D(root, s, body=body, **KW).records}


def _crop_K(K, vertices, size):
    """The crop intrinsics kinediff's crop convention gives for the projected mesh's box."""
    uv = project_points(vertices[None], torch.as_tensor(K))[0]
    lo, hi = uv.min(0).values, uv.max(0).values
    cx, cy, side = box_to_square((float(lo[0]), float(lo[1]), float(hi[0] - lo[0]),
                                  float(hi[1] - lo[1])), 1.2)
    s = size / side
    return np.array([[K[0, 0] * s, 0, (K[0, 2] - cx + side / 2) * s],
                     [0, K[1, 1] * s, (K[1, 2] - cy + side / 2) * s], [0, 0, 1]])


def test_joint_names_follow_lsp_and_map_by_name():
    # LSP's order (classner/up 3dfit/bodyfit.py): ankles, knees, hips, wrists, elbows, shoulders
    lsp = ["right ankle", "right knee", "right hip", "left hip", "left knee", "left ankle",
           "right wrist", "right elbow", "right shoulder", "left shoulder", "left elbow",
           "left wrist", "neck", "head top"]
    expect = {"right ankle": "r_ankle", "right knee": "r_knee", "right hip": "r_hip",
              "left hip": "l_hip", "left knee": "l_knee", "left ankle": "l_ankle",
              "right wrist": "r_wrist", "right elbow": "r_elbow", "right shoulder": "r_shoulder",
              "left shoulder": "l_shoulder", "left elbow": "l_elbow", "left wrist": "l_wrist",
              "neck": "upper_neck", "head top": "head"}
    assert [expect[n] for n in lsp] == list(UP3D_JOINTS)
    assert "upper_neck" not in H36M_JOINTS  # LSP's neck is not H36M's thorax
    joints = np.stack([np.arange(14) * 10.0, np.arange(14) * 10.0 + 1, np.ones(14)])  # (3, 14)
    out = lsp_keypoints(joints)
    for j, name in enumerate(UP3D_JOINTS):
        if name in H36M_JOINTS:
            assert out[H36M_JOINTS.index(name)].tolist() == [10.0 * j, 10.0 * j + 1, 1.0], name
    h = {n: i for i, n in enumerate(H36M_JOINTS)}
    assert out[h["pelvis"]].tolist() == [25.0, 26.0, 1.0]  # mid-hips (LSP 2, 3)
    assert out[h["neck"]].tolist() == [85.0, 86.0, 1.0]  # mid-shoulders (LSP 8, 9)
    assert out[h["torso"]].tolist() == out[h["nose"]].tolist() == [0.0, 0.0, 0.0]
    joints[2, 3] = 0  # left hip hidden: no pelvis either
    out = lsp_keypoints(joints)
    assert out[h["l_hip"], 2] == 0 and out[h["pelvis"]].tolist() == [0.0, 0.0, 0.0]


def test_raw_files_give_the_fits_camera_frame_mesh(up3d, body32, model64):
    root, info = up3d
    records = _records(root, body32)
    assert sorted(records) == [0, 1, 2, 3]
    assert b"chumpy.ch\nCh" in (root / "00003_body.pkl").read_bytes()  # chumpy arrays, read as numpy
    for i, (record, _) in records.items():
        want = info[i]
        assert record.gender == "neutral" and record.extra["pseudo_gt"] is True
        assert record.extra["quality"] == "high" and record.extra["dataset"] in (
            "lsp", "mpii", "lspext", "fashionpose")
        np.testing.assert_allclose(record.K, want["K"], atol=1e-9)
        with torch.no_grad():
            out = model64(torch.as_tensor(record.pose)[None], torch.as_tensor(record.betas)[None],
                          torch.as_tensor(record.transl)[None])
        torch.testing.assert_close(out.vertices[0], want["vertices"], atol=1e-5, rtol=0)
        # the file's own j2d (fit frame) lands, through the crop info, on the loader's projection
        fit = load_smpl_pickle(root / f"{i:05d}_body.pkl")  # the restricted unpickler, no chumpy
        h, w, y1, y2, x1, x2 = want["crop"]
        j2d = np.asarray(fit["j2d"])[:24] / [w / (x2 - x1), h / (y2 - y1)] + [x1, y1]
        uv = project_points(out.joints, torch.as_tensor(record.K))[0].numpy()
        np.testing.assert_allclose(uv, j2d, atol=1e-6)
        # LSP joints -> keypoints2d one by one, in full-image pixels
        kp = record.keypoints2d
        for j, name in enumerate(UP3D_JOINTS):
            if name in H36M_JOINTS:
                np.testing.assert_allclose(kp[H36M_JOINTS.index(name)], want["lsp"][j], atol=1e-9,
                                           err_msg=name)
        np.testing.assert_allclose(kp[0, :2], (want["lsp"][2, :2] + want["lsp"][3, :2]) / 2)


def test_samples_label_the_crop(up3d, body32, model64):
    root, info = up3d
    for split, indices in (("trainval", (0, 1, 2)), ("test", (3,))):
        data = UP3D(root, split, body=body32, **KW)
        assert [r.extra["index"] for r in data.records] == list(indices)
        for n, i in enumerate(indices):
            sample, want = data[n], info[i]
            check_sample(sample)
            assert bool(sample["has_smpl"]) and bool(sample["has_mesh2d"])
            assert bool(sample["has_joints2d"]) and bool(sample["has_joints3d"])
            with torch.no_grad():
                out = model64(sample["pose"][None].double(), sample["betas"][None].double(),
                              sample["transl"][None].double())
            torch.testing.assert_close(out.vertices[0], want["vertices"], atol=1e-5, rtol=0)
            K = _crop_K(want["K"], want["vertices"], 64)
            np.testing.assert_allclose(sample["K"].double().numpy(), K, rtol=1e-5, atol=1e-4)
            uv = project_points(want["joints"][None], torch.as_tensor(K))[0]
            assert (sample["joints2d"][:, :2].double() - uv).abs().max() < 0.5
            # measured LSP keypoints moved into the crop; hidden / missing ones have visibility 0
            kp = want["lsp"][:, :2] @ (K @ np.linalg.inv(want["K"]))[:2, :2].T \
                + (K @ np.linalg.inv(want["K"]))[:2, 2]
            got = sample["keypoints2d"].double().numpy()
            for j, name in enumerate(UP3D_JOINTS):
                if name in H36M_JOINTS:
                    row = got[H36M_JOINTS.index(name)]
                    assert row[2] == want["lsp"][j, 2], name
                    if row[2]:
                        assert np.abs(row[:2] - kp[j]).max() < 0.5, name
            assert got[H36M_JOINTS.index("torso"), 2] == 0 and got[H36M_JOINTS.index("nose"), 2] == 0
            px = sample["mesh2d"].long().clamp(0, 63)
            assert sample["image"][:, px[:, 1], px[:, 0]].mean() > 0.4
    assert info[0]["lsp"][11, 2] == 0  # the fixture hides sample 0's left wrist


def test_coco_conversion_round_trip(up3d, body32, tmp_path):
    root, _ = up3d
    copy_root = tmp_path / "up-3d"
    shutil.copytree(root, copy_root)
    out = convert_up3d(copy_root, copy_root, "trainval", body=body32)
    coco = json.loads(out.read_text())
    ann = coco["annotations"][0]
    assert len(coco["images"]) == 3 and ann["pseudo_gt"] is True
    assert {"smpl_param", "keypoints", "bbox"} <= set(ann) and ann["bbox"] is None
    raw = UP3D(copy_root, "trainval", body=body32, **KW)
    via = UP3D(copy_root, "trainval", format="coco", body=body32, **KW)
    for a_rec, b_rec in zip(raw.records, via.records):
        assert b_rec.extra["pseudo_gt"] and b_rec.extra["index"] == a_rec.extra["index"]
    for i in range(3):
        a, b = raw[i], via[i]
        for key in ("pose", "betas", "transl", "K", "mesh2d", "image", "keypoints2d", "joints3d"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)


def test_graphcmr_npz(up3d, body32):
    root, info = up3d
    data = UP3D(root, "trainval", format="spin", body=body32, **KW)
    assert [r.image.name for r in data.records] == [f"{i:05d}_image.png" for i in (0, 1, 2)]
    for n, i in enumerate((0, 1, 2)):
        record = data.records[n]
        np.testing.assert_allclose(record.pose, info[i]["params"]["pose"], atol=1e-12)
        np.testing.assert_allclose(record.betas, info[i]["params"]["betas"], atol=1e-12)
        assert record.extra["pseudo_gt"] is True
        kp = record.keypoints2d
        np.testing.assert_allclose(kp[H36M_JOINTS.index("r_ankle")], info[i]["lsp"][0])
        np.testing.assert_allclose(kp[H36M_JOINTS.index("head")], info[i]["lsp"][13])
        check_sample(data[n])


def test_bad_input(up3d, body32, tmp_path):
    root, _ = up3d
    with pytest.raises(FileNotFoundError, match="nowhere.*Unite the People"):
        UP3D(tmp_path / "nowhere", body=body32)
    with pytest.raises(ValueError, match=r"^split must be 'train', 'val', 'test' or 'trainval', "
                                         r"got 'validation'$"):
        UP3D(root, "validation", body=body32)
    with pytest.raises(ValueError, match="format must be"):
        UP3D(root, format="h5", body=body32)
    with pytest.raises(FileNotFoundError, match="UP3D_val.json"):
        UP3D(root, "val", format="coco", body=body32)
    with pytest.raises(FileNotFoundError, match="up_3d_lsp_test.npz"):
        UP3D(root, "lsp_test", format="spin", body=body32)
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "train.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"train.txt; expected the up-3d folder"):
        UP3D(bad, "train", body=body32)
    (bad / "train.txt").write_text("/00000_image.png\n00001.jpg\n")
    with pytest.raises(ValueError, match=r"train.txt line 2: expected '/<index:05d>_image.png'"):
        UP3D(bad, "train", body=body32)
    (bad / "train.txt").write_text("/00000_image.png\n/00001_image.png\n")
    (bad / "00001_body.pkl").rename(bad / "00001_body.bak")
    with pytest.raises(FileNotFoundError, match="00001_body.pkl"):
        UP3D(bad, "train", body=body32)
    fit = pickle.loads((bad / "00001_body.bak").read_bytes(), encoding="latin1")
    del fit["betas"]
    (bad / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2))
    with pytest.raises(ValueError, match=r"00001_body.pkl \(UP-3D index 1\): missing or malformed key "
                                         r"'betas'"):
        UP3D(bad, "train", body=body32)
    fit["betas"], fit["pose"] = np.zeros(10), np.zeros(69)
    (bad / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2))
    with pytest.raises(ValueError, match=r"index 1\): key 'pose' has shape \(69,\)"):
        UP3D(bad, "train", body=body32)
    (bad / "00001_body.pkl").write_bytes(b"cos\nsystem\n(S'ls'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"00001_body.pkl: refusing global 'os.system'"):
        UP3D(bad, "train", body=body32)
    shutil.copy(root / "00001_body.pkl", bad / "00001_body.pkl")
    (bad / "00001_fit_crop_info.txt").write_text("160 180 10\n")
    with pytest.raises(ValueError, match=r"00001_fit_crop_info.txt: expected six integers"):
        UP3D(bad, "train", body=body32)
    shutil.copy(root / "00001_fit_crop_info.txt", bad / "00001_fit_crop_info.txt")
    (bad / "00001_quality_info.txt").write_text("medium\n")
    assert [r.extra["index"] for r in UP3D(bad, "train", body=body32, quality="high").records] == [0]
    # an unreadable image is skipped, counted and reported
    (bad / "00000_image.png").write_bytes(b"not a png")
    data = UP3D(bad, "train", body=body32, **KW)
    assert [data[i]["index"] for i in range(2)] == [1, 1]
    assert "skipped 1 unreadable image" in data.report() and "00000_image.png" in data.report()


def test_fixture_keypoints_come_from_the_written_body(up3d, model64):
    """The fixture's LSP joints are the fit's SMPL joints (and head vertex) seen by the image's K."""
    root, info = up3d
    want = info[2]
    uv = project_points(want["joints"][list(LSP_FROM_SMPL)][None], torch.as_tensor(want["K"]))[0]
    np.testing.assert_allclose(np.load(root / "00002_joints.npy")[:2, :13].T, uv.numpy(), atol=1e-9)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_up3d_bad_fits_and_joint_files_name_the_file(tmp_path, body32):
    write_up3d(tmp_path, body32, samples=2, splits={"train": (0, 1), "val": (), "test": (), "trainval": ()})
    fit = pickle.loads((tmp_path / "00001_body.pkl").read_bytes(), encoding="latin1")
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps({**fit, "pose": np.full(72, np.nan)}, protocol=2))
    with pytest.raises(ValueError, match=r"00001_body.pkl \(UP-3D index 1\): key 'pose' holds 72 NaN"):
        UP3D(tmp_path, "train", body=body32, **KW)
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2)[:60])
    with pytest.raises(PickleFileError, match=r"00001_body.pkl: .* is not a readable pickle"):
        UP3D(tmp_path, "train", body=body32, **KW)
    (tmp_path / "00001_body.pkl").write_bytes(pickle.dumps(fit, protocol=2))
    nan_joints = _npy_bytes(np.full((3, 14), np.nan))
    for blob, message in ((b"", "is empty"), (b"garbage", "is not a NumPy .npy array"),
                          (nan_joints, r"\(UP-3D index 0\): key 'joints' holds 42 NaN")):
        (tmp_path / "00000_joints.npy").write_bytes(blob)
        with pytest.raises(ValueError, match=r"00000_joints.npy.*" + message):
            UP3D(tmp_path, "train", body=body32, **KW)

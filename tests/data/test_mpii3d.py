"""MPI-INF-3DHP on tiny fixtures written in the released formats (:mod:`kinediff.testing.mpii3d`)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from scipy.io import loadmat, savemat
from tolerances import atol_for

from kinediff.cli import main
from kinediff.core.camera import project_points
from kinediff.core.conventions import H36M_JOINTS, map_joints
from kinediff.core.video import read_video_frame
from kinediff.data import MPIINF3DHP, check_sample, collate, convert_mpii3d
from kinediff.data.mpii3d import (
    MPII3D_JOINTS,
    MPII3D_TEST_JOINTS,
    SPIN_MPII3D_SLOTS,
    read_calibration,
)
from kinediff.testing.mpii3d import (
    write_mpii3d_hybrik,
    write_mpii3d_neuralannot,
    write_mpii3d_spin,
    write_mpii3d_test,
    write_mpii3d_train,
)

KW = dict(image_size=64, mesh_factors=(4, 4, 4))

# The data set's own joint names (mpii_get_joint_set('all'), 1-based in its MATLAB code) and the
# Human3.6M joint each one is, as SPIN, HybrIK and the data set's H36M map pair them.
OFFICIAL_28 = ("spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
               "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
               "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
               "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
               "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe")
OFFICIAL_TO_H36M = {"pelvis": "pelvis", "right_hip": "r_hip", "right_knee": "r_knee",
                    "right_ankle": "r_ankle", "left_hip": "l_hip", "left_knee": "l_knee",
                    "left_ankle": "l_ankle", "spine": "torso", "neck": "neck", "head": "nose",
                    "head_top": "head", "left_shoulder": "l_shoulder", "left_elbow": "l_elbow",
                    "left_wrist": "l_wrist", "right_shoulder": "r_shoulder",
                    "right_elbow": "r_elbow", "right_wrist": "r_wrist"}
# VirtualMarker's hp3d_to_h36m (training joints for each H36M joint) and the test set's H36M map
# (a MATLAB script's "map = [15, 9, 10, 11, 12, 13, 14, 16, 2, 17, 1, 6, 7, 8, 3, 4, 5]", 1-based).
VM_TRAIN_TO_H36M = [4, 23, 24, 25, 18, 19, 20, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16]
TEST_TO_H36M = [i - 1 for i in (15, 9, 10, 11, 12, 13, 14, 16, 2, 17, 1, 6, 7, 8, 3, 4, 5)]
RELEVANT_1BASED = (8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7)


def test_joint_names_map_to_h36m_one_by_one():
    for official, ours in zip(OFFICIAL_28, MPII3D_JOINTS, strict=True):
        if official in OFFICIAL_TO_H36M:
            assert ours == OFFICIAL_TO_H36M[official], official
        else:
            assert ours not in H36M_JOINTS, official  # its own name, left out of the map
    for k, j in enumerate(RELEVANT_1BASED):  # the test set's 17 are the 'relevant' subset
        assert MPII3D_TEST_JOINTS[k] == MPII3D_JOINTS[j - 1]
    index = np.arange(28, dtype=float)[:, None]
    out, valid = map_joints(index, MPII3D_JOINTS)
    assert valid.all() and out[:, 0].astype(int).tolist() == VM_TRAIN_TO_H36M
    out, valid = map_joints(np.arange(17, dtype=float)[:, None], MPII3D_TEST_JOINTS)
    assert valid.all() and out[:, 0].astype(int).tolist() == TEST_TO_H36M
    # SPIN: slot joints_idx[k] holds training joint joints17_idx[k]
    spin_slots = (14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6)
    spin_joints = (4, 18, 19, 20, 23, 24, 25, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16)
    for slot, joint in zip(spin_slots, spin_joints, strict=True):
        assert SPIN_MPII3D_SLOTS[slot] == MPII3D_JOINTS[joint]
    assert sum(n in H36M_JOINTS for n in SPIN_MPII3D_SLOTS) == 17


# -- training set -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("mpii3d_train")
    return root, write_mpii3d_train(root, body32, frames=3, cameras=(0, 2), extracted=(0,))


def _check_joints(sample, want_cam_joints, atol=1e-5):
    """joints3d equal the fixture's camera-frame joints; keypoints2d are them projected into the crop."""
    torch.testing.assert_close(sample["joints3d"][:, :3].double(), torch.as_tensor(want_cam_joints),
                               atol=atol, rtol=0)
    uv = project_points(torch.as_tensor(want_cam_joints)[None], sample["K"].double())[0]
    vis = sample["keypoints2d"][:, 2] > 0
    assert vis.sum() >= 15
    assert (sample["keypoints2d"][vis, :2].double() - uv[vis]).abs().max() < 0.5


def test_train_raw_joints_frames_and_video(train_root, body32):
    root, info = train_root
    data = MPIINF3DHP(root, "train", body=body32, frame_step=1, **KW)
    assert [(r.extra["camera"], r.extra["frame"]) for r in data.records] == [
        (0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]
    assert data.records[0].image.name == "frame_000001.jpg"  # SPIN's extraction, 1-based
    assert data.records[3].image.name == "video_2.avi"  # camera 2: no extracted frames
    for i, record in enumerate(data.records):
        sample = data[i]
        check_sample(sample)
        assert not sample["has_smpl"] and sample["has_joints3d"] and sample["has_joints2d"]
        cam, frame = record.extra["camera"], record.extra["frame"]
        _check_joints(sample, info["joints28"][cam][frame][VM_TRAIN_TO_H36M])
        torch.testing.assert_close(torch.as_tensor(record.K), torch.as_tensor(info["K"]))
        # the full-image 2D joints are the released annot2
        torch.testing.assert_close(torch.as_tensor(record.keypoints2d[:, :2]),
                                   torch.as_tensor(info["uv28"][cam][frame][VM_TRAIN_TO_H36M]))
        # the person is where the joints are: bright body pixels under the visible keypoints
        kp = sample["keypoints2d"][sample["keypoints2d"][:, 2] > 0, :2].long().clamp(0, 63)
        assert sample["image"][:, kp[:, 1], kp[:, 0]].mean() > 0.35
    # the same frame from the JPEG and from the video (camera 0 has both)
    jpeg = data._read(data.records[1])
    video = read_video_frame(root / "S1" / "Seq1" / "imageSequence" / "video_0.avi", 1)
    assert (jpeg - video).abs().mean() < 0.02
    assert len(MPIINF3DHP(root, "train", body=body32, **KW)) == 2  # SPIN's every 10th frame
    assert len(MPIINF3DHP(root, "train", body=body32, cameras=(2,), frame_step=2, **KW)) == 2
    assert len(MPIINF3DHP(root, "train", body=body32, cameras="ceiling", **KW)) == 0


def test_calibration_file(train_root):
    root, info = train_root
    cams = read_calibration(root / "S1" / "Seq1" / "camera.calibration")
    assert sorted(cams) == [0, 1, 2]
    for c in (0, 2):
        np.testing.assert_allclose(cams[c]["R"], info["R"][c], atol=1e-9)
        np.testing.assert_allclose(cams[c]["t"], info["t"][c], atol=1e-9)  # mm in the file
        assert cams[c]["size"] == (128, 128)


def test_video_frames_in_any_order(train_root, tmp_path):
    root, _ = train_root
    path = root / "S1" / "Seq1" / "imageSequence" / "video_2.avi"
    frames = [read_video_frame(path, i) for i in range(3)]
    cache: dict = {}
    for i in (2, 0, 1, 1, 2):
        assert torch.equal(read_video_frame(path, i, cache), frames[i])
    with pytest.raises(ValueError, match="has no frame 3"):
        read_video_frame(path, 3, cache)
    with pytest.raises(FileNotFoundError, match="no video at"):
        read_video_frame(tmp_path / "video_9.avi", 0)
    (tmp_path / "bad.avi").write_bytes(b"RIFF....AVI not really")
    with pytest.raises(ValueError, match="bad.avi"):
        read_video_frame(tmp_path / "bad.avi", 0)


def test_video_frames_in_dataloader_workers(train_root, body32):
    """A video open in the parent (closed before the fork) does not hang the forked workers."""
    root, _ = train_root
    data = MPIINF3DHP(root, "train", body=body32, cameras=(2,), frame_step=1, **KW)
    first = data[0]["image"]
    loader = torch.utils.data.DataLoader(data, batch_size=3, num_workers=1, collate_fn=collate, timeout=60)
    batch = next(iter(loader))
    assert torch.equal(batch["image"][0], first) and batch["index"].tolist() == [0, 1, 2]


def test_train_bad_input(train_root, body32, tmp_path):
    root, _ = train_root
    with pytest.raises(FileNotFoundError, match=r"nowhere.*S<s>/Seq<q>/annot.mat"):
        MPIINF3DHP(tmp_path / "nowhere", "train", body=body32)
    with pytest.raises(FileNotFoundError, match=r"S4.*S<s>/Seq<q>/annot.mat"):
        MPIINF3DHP(root, "train", subjects=(4,), body=body32)
    with pytest.raises(ValueError, match=r"^split must be 'train' or 'test', got 'val'$"):
        MPIINF3DHP(root, "val", body=body32)
    with pytest.raises(ValueError, match=r"^frame_step must be an integer >= 1, got 0$"):
        MPIINF3DHP(root, "train", frame_step=0, body=body32)
    with pytest.raises(ValueError, match=r"^format must be 'raw', 'coco', 'neuralannot', 'hybrik' or 'spin', "
                                         r"got 'pose2mesh'$"):
        MPIINF3DHP(root, "train", format="pose2mesh", body=body32)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    seq = copy / "S1" / "Seq1"
    # HybrIK's extraction layout is found too
    (seq / "images").mkdir()
    shutil.move(seq / "imageFrames" / "video_0", seq / "images" / "S1_Seq1_V0")
    for f in sorted((seq / "images" / "S1_Seq1_V0").iterdir()):
        f.rename(f.with_name("img_S1_Seq1_V0_" + f.name.removeprefix("frame_")))
    data = MPIINF3DHP(copy, "train", body=body32, frame_step=1, **KW)
    assert data.records[1].image == seq / "images" / "S1_Seq1_V0" / "img_S1_Seq1_V0_000002.jpg"
    assert data[1]["index"] == 1
    shutil.rmtree(seq / "images")
    shutil.copytree(root / "S1" / "Seq1" / "imageFrames", seq / "imageFrames", dirs_exist_ok=True)
    (seq / "camera.calibration").unlink()
    with pytest.raises(FileNotFoundError, match="camera.calibration"):
        MPIINF3DHP(copy, "train", body=body32)
    shutil.copy(root / "S1" / "Seq1" / "camera.calibration", seq)
    mat = {k: v for k, v in loadmat(seq / "annot.mat").items() if not k.startswith("__")}
    mat["annot3"][1, 0] = mat["annot3"][1, 0][:, :80]
    savemat(seq / "annot.mat", mat)
    with pytest.raises(ValueError, match=r"annot.mat camera 2: key 'annot3' has shape \(3, 80\)"):
        MPIINF3DHP(copy, "train", body=body32)
    del mat["annot3"]
    savemat(seq / "annot.mat", mat)
    with pytest.raises(ValueError, match=r"annot.mat: missing or malformed key 'annot3'"):
        MPIINF3DHP(copy, "train", body=body32)
    shutil.copy(root / "S1" / "Seq1" / "annot.mat", seq)
    text = (seq / "camera.calibration").read_text().replace("  size        128 128\n", "", 1)
    (seq / "camera.calibration").write_text(text)
    with pytest.raises(ValueError, match=r"camera.calibration camera 0: missing or malformed key 'size'"):
        MPIINF3DHP(copy, "train", body=body32)
    shutil.copy(root / "S1" / "Seq1" / "camera.calibration", seq)
    (seq / "imageSequence" / "video_2.avi").unlink()
    with pytest.raises(FileNotFoundError, match=r"no frames of camera 2 .*video_2.avi.*imageFrames/video_2"):
        MPIINF3DHP(copy, "train", body=body32)
    # unreadable frames and videos: skipped, counted and reported
    shutil.copy(root / "S1" / "Seq1" / "imageSequence" / "video_2.avi", seq / "imageSequence")
    (seq / "imageFrames" / "video_0" / "frame_000002.jpg").write_bytes(b"broken")
    data = MPIINF3DHP(copy, "train", body=body32, frame_step=1, **KW)
    assert [data[i]["index"] for i in range(3)] == [0, 2, 2]
    assert "skipped 1 unreadable image(s)" in data.report() and "frame_000002.jpg" in data.report()
    (seq / "imageSequence" / "video_2.avi").write_bytes(b"not a video")
    data = MPIINF3DHP(copy, "train", body=body32, frame_step=1, **KW)
    assert [data[i]["index"] for i in (3, 4, 5)] == [0, 0, 0]  # the video's frames replaced
    assert "unreadable image(s)" in data.report() and "video_2.avi" in data.report()


def test_train_conversion_round_trip(train_root, body32, tmp_path, capsys):
    root, _ = train_root
    out = convert_mpii3d(root, tmp_path, "train", frame_step=1)
    coco = json.loads(out.read_text())
    assert out.name == "MPI-INF-3DHP_train.json" and len(coco["images"]) == 6
    ann = coco["annotations"][3]
    assert {"joint_cam", "joint_valid", "keypoints", "bbox"} <= set(ann) and "smpl_param" not in ann
    # frames only in the video were decoded into SPIN's layout; the JPEGs copied
    assert (tmp_path / "S1/Seq1/imageFrames/video_2/frame_000003.jpg").is_file()
    raw = MPIINF3DHP(root, "train", body=body32, frame_step=1, **KW)
    via = MPIINF3DHP(tmp_path, "train", format="coco", body=body32, **KW)
    assert len(via) == len(raw) == 6
    for i in range(6):
        a, b = raw[i], via[i]
        for key in ("joints3d", "keypoints2d", "K"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)
        assert (a["image"] - b["image"]).abs().mean() < 0.02
    with pytest.raises(FileNotFoundError, match="MPI-INF-3DHP_test.json"):
        MPIINF3DHP(tmp_path, "test", format="coco", body=body32)


# -- test set ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def test_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("mpii3d_test") / "mpi_inf_3dhp_test_set"
    info = write_mpii3d_test(root, body32, sequences=(1, 5), frames=2, valid=(1, 0), v73=True)
    v5 = root.parent / "v5"
    shutil.copytree(root, v5)
    for k, seq in info.items():  # the same annotations re-saved as MATLAB v5
        savemat(v5 / f"TS{k}" / "annot_data.mat", seq["variables"])
    return root, v5, info


@pytest.mark.parametrize("version", ["v7.3", "v5"])
def test_test_set_valid_frames_intrinsics_and_joints(test_root, body32, version):
    root, v5, info = test_root
    if version == "v7.3":  # h5py is in the test extra: the v7.3 reader is always tested
        assert (root / "TS1" / "annot_data.mat").read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    folder = root.parent if version == "v7.3" else v5  # the parent of mpi_inf_3dhp_test_set, or TS*
    data = MPIINF3DHP(folder, "test", body=body32, **KW)
    assert [(r.extra["sequence"], r.extra["frame"]) for r in data.records] == [(1, 0), (5, 0)]
    for i, record in enumerate(data.records):
        seq, frame = info[record.extra["sequence"]], record.extra["frame"]
        np.testing.assert_allclose(record.K, seq["K"], rtol=1e-12)
        assert record.image.name == f"img_{frame + 1:06d}.jpg"
        sample = data[i]
        check_sample(sample)
        _check_joints(sample, seq["joints17"][frame][TEST_TO_H36M])
        torch.testing.assert_close(sample["joints3d_univ"][:, :3].double(),
                                   torch.as_tensor(seq["univ17"][frame][TEST_TO_H36M]), atol=1e-5, rtol=0)
        kp = sample["keypoints2d"][sample["keypoints2d"][:, 2] > 0, :2].long().clamp(0, 63)
        assert sample["image"][:, kp[:, 1], kp[:, 0]].mean() > 0.35
    # TS1-4: f = 2048 / 10 * 7.320339203 px at the published size; TS5-6: 1920 / 10 * 8.770747185
    from kinediff.data.mpii3d import mpii3d_test_intrinsics

    assert mpii3d_test_intrinsics(2)[0, 0] == pytest.approx(1499.2054687744)
    assert mpii3d_test_intrinsics(6)[:2, 2].tolist() == [960.0, 540.0]
    assert mpii3d_test_intrinsics(6)[0, 0] == pytest.approx(1683.98345952)


def test_test_set_v73_without_h5py_says_what_to_install(test_root, body32, monkeypatch, tmp_path):
    _, v5, _ = test_root
    copy = tmp_path / "copy"
    shutil.copytree(v5, copy)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: x HDF5 schema 1.00 ."
    (copy / "TS1" / "annot_data.mat").write_bytes(header.ljust(512, b"\x00"))  # as the release's
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"TS1/annot_data.mat is a MATLAB v7.3 .*pip install h5py"):
        MPIINF3DHP(copy, "test", body=body32)


def test_test_set_bad_input_and_round_trip(test_root, body32, tmp_path):
    _, v5, _info = test_root
    with pytest.raises(FileNotFoundError, match=r"TS3.*TS<k>/annot_data.mat"):
        MPIINF3DHP(v5, "test", sequences=(3,), body=body32)
    copy = tmp_path / "copy"
    shutil.copytree(v5, copy)
    mat = {k: v for k, v in loadmat(copy / "TS5" / "annot_data.mat").items() if not k.startswith("__")}
    mat["annot3"] = mat["annot3"][:, :16]
    savemat(copy / "TS5" / "annot_data.mat", mat)
    with pytest.raises(ValueError, match=r"TS5/annot_data.mat: key 'annot3' has shape \(3, 16, 1, 2\)"):
        MPIINF3DHP(copy, "test", body=body32)
    (copy / "TS5" / "annot_data.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(ValueError, match="TS5/annot_data.mat is not a readable MATLAB file"):
        MPIINF3DHP(copy, "test", body=body32)
    out = convert_mpii3d(v5, tmp_path / "coco", "test")
    raw = MPIINF3DHP(v5, "test", body=body32, **KW)
    via = MPIINF3DHP(out.parent, "test", format="coco", body=body32, **KW)
    for i in range(len(raw)):
        a, b = raw[i], via[i]
        for key in ("joints3d", "joints3d_univ", "keypoints2d", "K", "image"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)


# -- preprocessed files -----------------------------------------------------------------------------

def _camera_vertices(body, sample):
    out = body(sample["pose"][None].float(), sample["betas"][None].float())
    return out.vertices[0] + sample["transl"]


def test_neuralannot_smpl_pseudo_gt_and_joints(body32, tmp_path):
    info = write_mpii3d_neuralannot(tmp_path, body32, frames=(0, 3), cameras=(0, 1), missing_fit=3)
    data = MPIINF3DHP(tmp_path, "train", format="neuralannot", body=body32, **KW)
    assert len(data) == 4
    for i, record in enumerate(data.records):
        want = info["expect"][(record.extra["camera"], record.extra["frame"])]
        sample = data[i]
        check_sample(sample)
        _check_joints(sample, want["joints17"][TEST_TO_H36M])
        assert record.box == pytest.approx(tuple(want["bbox"]))
        if record.extra["frame"] in info["fitted"]:
            assert sample["has_smpl"] and sample["has_mesh2d"] and record.extra["pseudo_gt"] is True
            torch.testing.assert_close(_camera_vertices(body32, sample).double(),
                                       torch.as_tensor(want["vertices"]),
                                       atol=atol_for(want["vertices"], torch.float32, ulps=128), rtol=0)
        else:  # no NeuralAnnot fit for this frame: joints only
            assert not sample["has_smpl"] and "pseudo_gt" not in record.extra
    assert len(MPIINF3DHP(tmp_path, "train", format="neuralannot", frame_step=3, body=body32, **KW)) == 4
    with pytest.raises(ValueError, match="training set only"):
        MPIINF3DHP(tmp_path, "test", format="neuralannot", body=body32)
    (tmp_path / "MPI-INF-3DHP_SMPL_NeuralAnnot.json").unlink()
    with pytest.raises(FileNotFoundError, match="MPI-INF-3DHP_SMPL_NeuralAnnot.json"):
        MPIINF3DHP(tmp_path, "train", format="neuralannot", body=body32)
    joints = json.loads((tmp_path / "MPI-INF-3DHP_joint_3d.json").read_text())
    joints["1"]["1"]["3"] = joints["1"]["1"]["3"][:16]
    (tmp_path / "MPI-INF-3DHP_joint_3d.json").write_text(json.dumps(joints))
    from kinediff.data.mpii3d import mpii3d_neuralannot_records

    with pytest.raises(ValueError, match=r"joint_3d.json subject 1 seq 1 frame 3: expected 17 x 3"):
        mpii3d_neuralannot_records(tmp_path, body32, smpl=False)


@pytest.mark.parametrize("split", ["train", "test"])
def test_hybrik_virtualmarker_json(body32, tmp_path, split):
    frames = 2 if split == "train" else 1
    info = write_mpii3d_hybrik(tmp_path, body32, split, frames=frames)
    data = MPIINF3DHP(tmp_path, split, format="hybrik", body=body32, **KW)
    assert len(data) == frames
    for i in range(frames):
        sample = data[i]
        check_sample(sample)
        order = VM_TRAIN_TO_H36M if split == "train" else TEST_TO_H36M
        _check_joints(sample, info["joints"][i][order])
    if split == "test":
        assert data.records[0].extra["activity"] == 1


def test_spin_npz_places_joints_and_fits(train_root, body32, tmp_path):
    root, info = train_root
    npz = tmp_path / "mpi_inf_3dhp_train.npz"
    write_mpii3d_spin(npz, info, camera_id=0, has_smpl=(1, 0, 1))
    data = MPIINF3DHP(root, "train", format="spin", annotation=str(npz), body=body32, **KW)
    assert len(data) == 3
    for i, record in enumerate(data.records):
        sample = data[i]
        check_sample(sample)
        # root-relative S placed where it reprojects onto part: the camera-frame joints again
        _check_joints(sample, info["joints28"][0][i][VM_TRAIN_TO_H36M])
        if i != 1:
            assert sample["has_smpl"] and record.extra["pseudo_gt"]
            torch.testing.assert_close(_camera_vertices(body32, sample).double(),
                                       torch.as_tensor(info["vertices"][0][i]),
                                       atol=atol_for(info["vertices"][0][i], torch.float32, ulps=128), rtol=0)
        else:
            assert not sample["has_smpl"]
    np.savez(tmp_path / "bad.npz", imgname=np.array(["x.jpg"]), center=np.zeros((1, 2)), scale=np.ones(1))
    with pytest.raises(ValueError, match=r"bad.npz: missing keys \['part', 'S'\]"):
        MPIINF3DHP(root, "train", format="spin", annotation=str(tmp_path / "bad.npz"), body=body32)


def test_convert_cli(tmp_path, body32, capsys):
    write_mpii3d_train(tmp_path / "src", body32, frames=2, cameras=(0,), extracted=(0,))
    assert main(["data", "convert", "mpi-inf-3dhp", str(tmp_path / "src"), str(tmp_path / "dst"),
                 "--frame-step", "1"]) == 0
    assert (tmp_path / "dst" / "MPI-INF-3DHP_train.json").is_file()
    assert "wrote" in capsys.readouterr().out


def test_conversion_leaves_out_unreadable_frames_and_says_so(tmp_path, body32, capsys):
    src = tmp_path / "src"
    write_mpii3d_train(src, body32, frames=2, cameras=(0, 2), extracted=(0,))
    (src / "S1" / "Seq1" / "imageSequence" / "video_2.avi").write_bytes(b"not a video")
    out = convert_mpii3d(src, tmp_path / "dst", "train", frame_step=1)
    data = json.loads(out.read_text())
    assert {im["camera"] for im in data["images"]} == {0} and len(data["images"]) == 2
    assert "left out 2 unreadable frame(s) of 4" in capsys.readouterr().out


@pytest.mark.parametrize(("line", "message"), [
    ("  intrinsic   0 0 80 0 0 100 60 0 0 0 1 0 0 0 0 1", r"camera 0: key 'intrinsic' must have positive"),
    ("  intrinsic   100 0 80 0 0 100 60 0 0 0 1 0 0 0 0", r"camera 0: key 'intrinsic' has shape \(15,\)"),
    ("  extrinsic   2 0 0 0 0 2 0 0 0 0 2 0 0 0 0 1", r"camera 0: key 'extrinsic' is not a rotation matrix"),
    ("  extrinsic   1 0 0 nan 0 1 0 0 0 0 1 0 0 0 0 1", r"camera 0: key 'extrinsic' holds 1 NaN"),
    ("  size        0 128", r"camera 0: key 'size' must be a positive width and height"),
])
def test_mpii3d_calibration_bad_values_name_camera_and_key(tmp_path, line, message):
    key = line.split()[0]
    good = {"intrinsic": "  intrinsic   100 0 80 0 0 100 60 0 0 0 1 0 0 0 0 1",
            "extrinsic": "  extrinsic   1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1", "size": "  size        128 128"}
    good[key] = line
    path = tmp_path / "camera.calibration"
    path.write_text("\n".join(["Skeletool Camera Calibration File V1.0", "name          0", *good.values()]))
    with pytest.raises(ValueError, match=r"camera.calibration " + message):
        read_calibration(path)


def test_mpii3d_hybrik_bad_values_name_file_record_and_key(tmp_path, body32):
    write_mpii3d_hybrik(tmp_path, body32)
    path = tmp_path / "annotation_mpi_inf_3dhp_train.json"
    good = json.loads(path.read_text())
    for edit, message in (
            (lambda d: d["annotations"][1]["keypoints_cam"][3].__setitem__(2, float("nan")),
             r"annotations\[1\]: key 'keypoints_cam' holds 1 NaN"),
            (lambda d: d["annotations"][0]["cam_param"].update(intrinsic_param=[[0, 0, 1, 0]] * 3),
             r"annotations\[0\]: key 'cam_param.intrinsic_param' must have positive focal lengths"),
            (lambda d: d["images"][0].update(width=0), r"keys 'width' and 'height' must be positive")):
        data = json.loads(json.dumps(good))
        edit(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=message):
            MPIINF3DHP(tmp_path, "train", format="hybrik", body=body32, **KW)

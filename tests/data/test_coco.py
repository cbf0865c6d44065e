"""COCO 2017 person keypoints with NeuralAnnot / EFT SMPL pseudo-GT, on a tiny fixture written in the
released formats (:func:`kinediff.testing.write_coco`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tolerances import atol_for

from kinediff.cli import main
from kinediff.core.camera import project_points
from kinediff.core.conventions import H36M_JOINTS
from kinediff.data import check_sample
from kinediff.data.coco import (
    COCO,
    COCO_JOINTS,
    COCO_KEYPOINT_NAMES,
    coco_keypoints_h36m,
    convert_coco,
)
from kinediff.testing import write_coco, write_up3d

from .conftest import fresh_copy

S = 64
KW = dict(image_size=S, mesh_factors=(4, 4, 4))

# COCO's keypoint name -> kinediff's name, one by one (COCO's documentation names them; H36M's
# names are I2L-MeshNet's): the limbs are the same joints; eyes and ears are not in H36M's set.
COCO_TO_KINEDIFF = {
    "nose": "nose", "left_eye": "l_eye", "right_eye": "r_eye", "left_ear": "l_ear", "right_ear": "r_ear",
    "left_shoulder": "l_shoulder", "right_shoulder": "r_shoulder", "left_elbow": "l_elbow",
    "right_elbow": "r_elbow", "left_wrist": "l_wrist", "right_wrist": "r_wrist", "left_hip": "l_hip",
    "right_hip": "r_hip", "left_knee": "l_knee", "right_knee": "r_knee", "left_ankle": "l_ankle",
    "right_ankle": "r_ankle"}
# each H36M joint from COCO's file columns: one index, the midpoint of two, or nothing
H36M_FROM_COCO = {
    "pelvis": (11, 12), "r_hip": 12, "r_knee": 14, "r_ankle": 16, "l_hip": 11, "l_knee": 13, "l_ankle": 15,
    "torso": None, "neck": (5, 6), "nose": 0, "head": None, "l_shoulder": 5, "l_elbow": 7, "l_wrist": 9,
    "r_shoulder": 6, "r_elbow": 8, "r_wrist": 10}


def _expected_keypoints(raw: np.ndarray) -> np.ndarray:
    """COCO keypoints (17, 3) -> H36M order, kinediff pixels (+0.5), from the table above."""
    out = np.zeros((17, 3))
    for j, name in enumerate(H36M_JOINTS):
        src = H36M_FROM_COCO[name]
        if src is None:
            continue
        cols = src if isinstance(src, tuple) else (src,)
        if all(raw[c, 2] > 0 for c in cols):
            out[j] = [*(raw[list(cols), :2].mean(0) + 0.5), 1.0]
    return out


def _to_crop(uv, box, size: int = S):
    """Full-image pixels -> crop pixels from the crop's definition (square of side 1.2 max(w, h)
    on the box centre, resampled to size x size)."""
    x, y, w, h = box
    side = 1.2 * max(w, h)
    corner = np.array([x + w / 2 - side / 2, y + h / 2 - side / 2])
    return (np.asarray(uv) - corner) * size / side


def _rodrigues(aa: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) of axis-angle vectors (N, 3): I + sin(a) K + (1 - cos(a)) K^2."""
    out = []
    for v in aa:
        angle = np.linalg.norm(v)
        k = v / angle if angle > 0 else np.zeros(3)
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out.append(np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K)
    return np.stack(out)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory, body32):
    root = tmp_path_factory.mktemp("coco")
    return root, write_coco(root, body32)


def test_joint_names_map_one_by_one():
    assert len(COCO_KEYPOINT_NAMES) == len(COCO_JOINTS) == 17
    for coco_name, ours in zip(COCO_KEYPOINT_NAMES, COCO_JOINTS):
        assert COCO_TO_KINEDIFF[coco_name] == ours, coco_name
    # every column distinct so each H36M joint shows where it came from
    raw = np.stack([np.arange(17) * 10.0, 100.0 + np.arange(17), np.full(17, 2.0)], 1)
    np.testing.assert_allclose(coco_keypoints_h36m(raw), _expected_keypoints(raw))
    for name in ("torso", "head"):  # no COCO counterpart
        assert coco_keypoints_h36m(raw)[H36M_JOINTS.index(name)].tolist() == [0, 0, 0]
    # derived joints only where both sources are labelled; v = 1 (occluded) counts as labelled
    for hidden, lost in ((11, "pelvis"), (12, "pelvis"), (5, "neck"), (6, "neck")):
        part = raw.copy()
        part[hidden] = 0
        out = coco_keypoints_h36m(part)
        assert out[H36M_JOINTS.index(lost)].tolist() == [0, 0, 0]
    part = raw.copy()
    part[:, 2] = 1
    assert (coco_keypoints_h36m(part)[:, 2] == _expected_keypoints(raw)[:, 2]).all()


def test_keypoints_boxes_and_filters(coco_root, body32):
    root, info = coco_root
    data = COCO(root, "train", body=body32, **KW)
    ids = [r.extra["ann_id"] for r in data.records]
    assert ids == [1001, 1002, 1003, 1004, 1005]  # file order; 1006 no keypoints, crowd, empty box
    assert data.counts == {"annotations": 8, "crowd": 1, "few_keypoints": 1, "empty_box": 1, "kept": 5,
                           "with_fit": 0, "without_fit": 5, "no_fit_dropped": 0, "unused_fits": 0}
    report = data.report()
    assert "kept 5 of 8" in report and "1 crowd" in report and "1 with an empty box" in report
    for i, record in enumerate(data.records):
        sample = data[i]
        check_sample(sample, S)
        assert not sample["has_smpl"] and not sample["has_mesh2d"] and sample["has_joints2d"]
        raw = record.extra["coco_keypoints"]
        assert record.extra["iscrowd"] == 0 and len(record.box) == 4
        expected = _expected_keypoints(raw)
        crop = _to_crop(expected[:, :2], record.box)
        visible = (expected[:, 2] > 0) & ((crop >= 0) & (crop < S)).all(1)
        got = sample["keypoints2d"].double().numpy()
        np.testing.assert_array_equal(got[:, 2], visible.astype(float))
        np.testing.assert_allclose(got[visible, :2], crop[visible], atol=1e-3)
        if record.extra["ann_id"] in info:
            assert list(record.box) == info[record.extra["ann_id"]]["bbox"]
    assert data.records[2].extra["crowd_boxes"] == [[0.0, 0.0, 10.0, 10.0]]
    # SPIN's filter (all 12 limb joints labelled) drops B (right hip unlabelled) and the 2-keypoint one
    spin = COCO(root, "train", body=body32, min_limb_keypoints=12, **KW)
    assert [r.extra["ann_id"] for r in spin.records] == [1001, 1003, 1004]
    assert spin.counts["few_keypoints"] == 3
    assert len(COCO(root, "train", body=body32, min_keypoints=3, **KW)) == 4


def test_neuralannot_pseudo_gt_is_the_fixtures_camera_frame_mesh(coco_root, body32):
    root, info = coco_root
    data = COCO(root, "train", smpl="neuralannot", body=body32, **KW)
    assert data.counts["with_fit"] == 3 and data.counts["without_fit"] == 2
    for i, record in enumerate(data.records):
        sample = data[i]
        check_sample(sample, S)
        ann_id = record.extra["ann_id"]
        if ann_id not in (1001, 1002, 1003):
            assert not sample["has_smpl"] and "pseudo_gt" not in record.extra
            continue
        assert sample["has_smpl"] and sample["has_mesh2d"] and record.extra["pseudo_gt"] is True
        assert record.extra["smpl_source"] == "neuralannot" and sample["gender"] == "neutral"
        want = info[ann_id]
        verts = body32(sample["pose"][None], sample["betas"][None]).vertices[0] + sample["transl"]
        torch.testing.assert_close(verts.double(), want["cam_vertices"],
                                   atol=atol_for(want["cam_vertices"], torch.float32, ulps=128), rtol=0)
        # the coarse mesh in the crop = the fixture's mesh through its true camera, into the crop
        uv = project_points(want["cam_vertices"][None], torch.as_tensor(want["K"]))[0]
        expected = _to_crop(uv[data.selection].numpy(), record.box)
        assert np.abs(sample["mesh2d"].double().numpy() - expected).max() < 1e-3  # exact camera
        # and the keypoints stay COCO's
        np.testing.assert_array_equal(record.keypoints2d, _expected_keypoints(want["keypoints"]))
    only = COCO(root, "train", smpl="neuralannot", fitted_only=True, body=body32, **KW)
    assert [r.extra["ann_id"] for r in only.records] == [1001, 1002, 1003]
    assert "2 without a neuralannot fit (fitted_only)" in only.report()


def test_eft_pseudo_gt_rotations_and_weak_perspective(coco_root, body32):
    root, info = coco_root
    data = COCO(root, "train", smpl="eft", body=body32, **KW)
    assert data.counts["with_fit"] == 2 and data.counts["unused_fits"] == 1
    assert "1 fit(s) of no kept annotation" in data.report()
    fitted = [i for i, r in enumerate(data.records) if r.has_smpl]
    assert [data.records[i].extra["ann_id"] for i in fitted] == [1001, 1003]
    for i in fitted:
        record, sample = data.records[i], data[i]
        want = info[record.extra["ann_id"]]
        eft = want["eft"]
        # axis-angle back to the file's rotation matrices, by Rodrigues' formula
        np.testing.assert_allclose(_rodrigues(record.pose.reshape(24, 3)), eft["rotmats"], atol=1e-9)
        # the fit's own weak perspective of the mesh, into the crop: SPIN's perspective camera
        # (f = 5000 px for 224) departs from it by the body's depth relief only (0.2 px here)
        expected = _to_crop(eft["weak_uv"][data.selection].numpy(), record.box)
        assert np.abs(sample["mesh2d"].double().numpy() - expected).max() < 0.5
        s, tx, ty = eft["cam"]
        f = 5000 * 200 * eft["scale"] / 224
        np.testing.assert_allclose(record.transl, [tx / s, ty / s, 2 * 5000 / (224 * s)])
        np.testing.assert_allclose(record.K, [[f, 0, eft["center"][0] + 0.5], [0, f, eft["center"][1] + 0.5],
                                              [0, 0, 1]])
        # same body as the NeuralAnnot fit of the same person (the fixture's camera-frame pose)
        torch.testing.assert_close(sample["vertices"].double(),
                                   want["cam_vertices"] - torch.as_tensor(want["transl"]), atol=1e-5, rtol=0)


def test_conversion_round_trip(coco_root, body32, tmp_path):
    root, _ = coco_root
    for smpl in (None, "neuralannot", "eft"):
        out = convert_coco(root, tmp_path, "train", smpl=smpl)
        assert out.name == ("COCO_train.json" if smpl is None else f"COCO_train_{smpl}.json")
        (root / out.name).write_bytes(out.read_bytes())
        raw = COCO(root, "train", smpl=smpl, body=body32, **KW)
        via = COCO(root, "train", smpl=smpl, format="kinediff", body=body32, **KW)
        assert len(raw) == len(via) == 5
        for i in range(5):
            a, b = raw[i], via[i]
            assert via.records[i].extra["ann_id"] == raw.records[i].extra["ann_id"]
            assert via.records[i].extra.get("pseudo_gt") == raw.records[i].extra.get("pseudo_gt")
            np.testing.assert_array_equal(via.records[i].extra["coco_keypoints"],
                                          raw.records[i].extra["coco_keypoints"])
            for key in ("pose", "betas", "transl", "K", "mesh2d", "keypoints2d", "joints3d", "image",
                        "has_smpl", "has_joints2d"):
                torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=0, msg=key)
    coco = json.loads((root / "COCO_train_eft.json").read_text())
    assert coco["info"]["counts"]["unused_fits"] == 1
    assert sum(bool(a.get("pseudo_gt")) for a in coco["annotations"]) == 2


def test_layouts_and_bad_input(coco_root, body32, tmp_path):
    root, _ = coco_root
    with pytest.raises(FileNotFoundError, match=r"nowhere; expected .*person_keypoints_<split>2017.json"):
        COCO(tmp_path / "nowhere", body=body32)
    with pytest.raises(FileNotFoundError, match="person_keypoints_val2017.json"):
        COCO(root, "val", body=body32)
    with pytest.raises(ValueError, match=r"^split must be 'train' or 'val', got 'test'$"):
        COCO(root, "test", body=body32)
    with pytest.raises(ValueError, match=r"^smpl must be None, 'neuralannot' or 'eft', got 'spin'$"):
        COCO(root, smpl="spin", body=body32)
    with pytest.raises(FileNotFoundError, match="COCO_val.json"):
        COCO(root, "val", format="kinediff", body=body32)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    # I2L-MeshNet / VirtualMarker keep the images under images/
    (copy / "images").mkdir()
    (copy / "train2017").rename(copy / "images" / "train2017")
    assert len(COCO(copy, body=body32, **KW)) == 5
    shutil.rmtree(copy / "images")
    with pytest.raises(FileNotFoundError, match=r"train2017.*images/train2017"):
        COCO(copy, body=body32)
    shutil.copytree(root / "train2017", copy / "train2017")
    (copy / "eft_fit" / "COCO2014-All-ver01.json").unlink()
    with pytest.raises(FileNotFoundError, match="COCO2014-All-ver01.json or COCO2014-Part-ver01.json"):
        COCO(copy, smpl="eft", body=body32)
    shutil.copy(root / "eft_fit" / "COCO2014-All-ver01.json", copy / "eft_fit" / "COCO2014-Part-ver01.json")
    assert COCO(copy, smpl="eft", body=body32, **KW).counts["with_fit"] == 2
    # malformed records name file, record and key
    ann = copy / "annotations"
    fits = json.loads((ann / "MSCOCO_train_SMPL_NeuralAnnot.json").read_text())
    del fits["1002"]["smpl_param"]["trans"]
    (ann / "MSCOCO_train_SMPL_NeuralAnnot.json").write_text(json.dumps(fits))
    with pytest.raises(ValueError, match=r"NeuralAnnot.json annotation 1002: missing or malformed key 'tra"):
        COCO(copy, smpl="neuralannot", body=body32)
    eft = json.loads((copy / "eft_fit" / "COCO2014-Part-ver01.json").read_text())
    eft["data"][1]["parm_pose"] = eft["data"][1]["parm_pose"][:23]
    (copy / "eft_fit" / "COCO2014-Part-ver01.json").write_text(json.dumps(eft))
    with pytest.raises(ValueError, match=r"Part-ver01.json data\[1\]: key 'parm_pose' has shape \(23, 3, 3"):
        COCO(copy, smpl="eft", body=body32)
    eft["data"][1]["parm_pose"] = eft["data"][0]["parm_pose"]
    eft["data"][1]["imageName"] = "COCO_train2014_000000000777.jpg"
    (copy / "eft_fit" / "COCO2014-Part-ver01.json").write_text(json.dumps(eft))
    with pytest.raises(ValueError, match=r"data\[1\]: key 'imageName'"):
        COCO(copy, smpl="eft", body=body32)
    keypoints = json.loads((ann / "person_keypoints_train2017.json").read_text())
    keypoints["annotations"][1]["keypoints"] = keypoints["annotations"][1]["keypoints"][:50]
    (ann / "person_keypoints_train2017.json").write_text(json.dumps(keypoints))
    with pytest.raises(ValueError, match=r"train2017.json annotations\[1\]: key 'keypoints' has shape \(50"):
        COCO(copy, body=body32)
    keypoints["categories"][0]["keypoints"][5:7] = ["right_shoulder", "left_shoulder"]
    (ann / "person_keypoints_train2017.json").write_text(json.dumps(keypoints))
    with pytest.raises(ValueError, match=r"categories\[0\]: key 'keypoints' lists"):
        COCO(copy, body=body32)


def test_unreadable_images_are_skipped_and_reported(coco_root, body32, tmp_path):
    root, _ = coco_root
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "train2017" / "000000000285.jpg").write_bytes(b"broken")
    data = COCO(copy, body=body32, **KW)
    # image 285's two persons (records 2 and 4) replaced by the next readable records
    assert [data[i]["index"] for i in range(len(data))] == [0, 1, 3, 3, 0]
    assert "skipped 1 unreadable image" in data.report() and "000000000285.jpg" in data.report()


def test_convert_cli_for_the_hybrid_sets(tmp_path, body32, capsys):
    root = tmp_path / "coco"
    write_coco(root, body32, "train")
    assert main(["data", "convert", "coco", str(root), str(tmp_path / "out"), "--pseudo-gt",
                 "neuralannot", "--fitted-only"]) == 0
    assert (tmp_path / "out" / "COCO_train_neuralannot.json").is_file()
    assert "wrote" in capsys.readouterr().out
    up = tmp_path / "up"
    write_up3d(up, body32)
    assert main(["data", "convert", "up3d", str(up), str(tmp_path / "out")]) == 0  # trainval
    assert (tmp_path / "out" / "UP3D_trainval.json").is_file()


@pytest.mark.parametrize(("smpl", "edit", "message"), [
    (None, lambda k, n, e: k["annotations"][0].update(keypoints=[float("nan")] * 51),
     r"person_keypoints_train2017.json annotations\[0\]: key 'keypoints' holds 51 NaN"),
    (None, lambda k, n, e: k["annotations"][0].update(bbox=[1.0, 2.0, float("nan"), 4.0]),
     r"annotations\[0\]: key 'bbox' holds 1 NaN"),
    (None, lambda k, n, e: k["images"][0].update(width="160"), r"image 139: key 'width' is not numeric"),
    (None, lambda k, n, e: k["annotations"][0].update(image_id=139.5), r"key 'image_id' must be an integer"),
    ("neuralannot", lambda k, n, e: n[next(iter(n))]["cam_param"].update(focal=[0.0, 1.0]),
     r"NeuralAnnot.json annotation \d+: key 'cam_param.focal' must hold positive focal lengths"),
    ("neuralannot",
     lambda k, n, e: n[next(iter(n))]["smpl_param"].update(shape=[0.0] * 9 + [float("nan")]),
     r"NeuralAnnot.json annotation \d+: key 'smpl_param.shape' holds 1 NaN"),
    ("eft", lambda k, n, e: e["data"][0].update(parm_pose=np.full((24, 3, 3), np.nan).tolist()),
     r"COCO2014-All-ver01.json data\[0\]: key 'parm_pose' holds 216 NaN"),
    ("eft", lambda k, n, e: e["data"][0].update(bbox_scale=float("nan")),
     r"data\[0\]: key 'bbox_scale' holds 1 NaN"),
])
def test_coco_bad_values_name_file_record_and_key(coco_root, tmp_path, body32, smpl, edit, message):
    root = fresh_copy(coco_root[0], tmp_path / "coco")
    files = {"k": root / "annotations" / "person_keypoints_train2017.json",
             "n": root / "annotations" / "MSCOCO_train_SMPL_NeuralAnnot.json",
             "e": root / "eft_fit" / "COCO2014-All-ver01.json"}
    data = {k: json.loads(p.read_text()) for k, p in files.items()}
    edit(data["k"], data["n"], data["e"])
    for k, p in files.items():
        p.write_text(json.dumps(data[k]))
    with pytest.raises(ValueError, match=message):
        COCO(root, "train", smpl=smpl, body=body32, **KW)

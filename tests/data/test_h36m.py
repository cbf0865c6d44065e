"""Human3.6M: the Pose2Mesh per-subject files (Protocol 2 selection) and the COCO-style file, on a
tiny fixture written in the released layout (:func:`kinediff.testing.write_h36m`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tolerances import atol_for

from kinediff.cli import main
from kinediff.data import Human36M, check_sample, convert_h36m

from .conftest import fresh_copy

KW = dict(image_size=32, mesh_factors=(4, 4, 4))


def _camera_vertices(body, sample):
    out = body(sample["pose"][None].float(), sample["betas"][None].float())
    return out.vertices[0] + sample["transl"], out.joints[0] + sample["transl"]


def test_h36m_protocol2_selection_and_camera_frame(h36m, body32):
    root, expect = h36m
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
        torch.testing.assert_close(verts.double(), want["vertices"],
                                   atol=atol_for(want["vertices"], torch.float32, ulps=128), rtol=0)
        torch.testing.assert_close(sample["joints17"].double(), want["joints17"], atol=1e-5, rtol=0)


def test_h36m_bad_input(h36m, body32, tmp_path):
    root, _ = h36m
    with pytest.raises(FileNotFoundError, match="Human36M_subject11_data.json"):
        Human36M(root, "test", body=body32)  # the fixture has S9 only
    with pytest.raises(ValueError, match=r"^split must be 'train' or 'test', got 'val'$"):
        Human36M(root, "val", body=body32)
    with pytest.raises(ValueError, match=r"^protocol must be 1 or 2, got 3$"):
        Human36M(root, "test", protocol=3, body=body32)
    with pytest.raises(ValueError, match=r"^frame_step must be an integer >= 1, got 0$"):
        Human36M(root, "test", subjects=(9,), frame_step=0, body=body32)
    with pytest.raises(ValueError, match=r"^format must be 'pose2mesh' or 'coco', got 'raw'$"):
        Human36M(root, "test", subjects=(9,), format="raw", body=body32)
    copy = tmp_path / "h36m"
    shutil.copytree(root, copy)
    path = copy / "annotations" / "Human36M_subject9_smpl_param.json"
    params = json.loads(path.read_text())
    del params["2"]["1"]["5"]["shape"]
    path.write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"smpl_param.json action 2 subaction 1 frame 5: missing "
                                         r"or malformed key 'shape'"):
        Human36M(copy, "test", subjects=(9,), body=body32)


def test_h36m_coco_conversion_round_trip(h36m, body32, tmp_path):
    root, _ = h36m
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


@pytest.mark.parametrize(("kind", "edit", "message"), [
    ("camera", lambda d: d["4"].update(f=[float("nan"), 500.0]),
     r"camera.json camera 4: key 'f' holds 1 NaN"),
    ("camera", lambda d: d["4"].update(f=["500", "500"]), r"camera 4: key 'f' is not numeric"),
    ("camera", lambda d: d["4"].update(c=[1.0, 2.0, 3.0]),
     r"camera 4: key 'c' has shape \(3,\), expected \(2,\)"),
    ("camera", lambda d: d["4"].update(R=(np.eye(3) * 3).tolist()), r"camera 4: key 'R' is not a rotation"),
    ("smpl_param", lambda d: d["2"]["1"]["5"].update(trans=[0.0, float("nan"), 0.0]),
     r"smpl_param.json action 2 subaction 1 frame 5: key 'trans' holds 1 NaN"),
    ("smpl_param", lambda d: d["2"]["1"]["5"].update(pose=[[0.0] * 72] * 2),
     r"frame 5: key 'pose' has shape \(2, 72\)"),
    ("joint_3d", lambda d: d["2"]["1"]["5"][3].__setitem__(0, float("inf")),
     r"joint_3d.json action 2 subaction 1 frame 5: key 'joints' holds 0 NaN and 1 infinite"),
    ("data", lambda d: [im.update(cam_idx=4.5) for im in d["images"] if im["cam_idx"] == 4],
     r"key 'cam_idx' must be an integer, got 4.5"),
    ("data", lambda d: d["annotations"][4].update(bbox=[1, 1, float("nan"), 5]),
     r"data.json annotations\[4\]: key 'bbox' holds 1 NaN"),
])
def test_h36m_bad_values_name_file_record_and_key(h36m_root, tmp_path, body32, kind, edit, message):
    root = fresh_copy(h36m_root, tmp_path / "h36m")
    path = root / "annotations" / f"Human36M_subject9_{kind}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        Human36M(root, "test", subjects=(9,), body=body32, **KW)

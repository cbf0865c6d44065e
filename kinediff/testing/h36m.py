"""A Human3.6M subject in the Pose2Mesh / I2L-MeshNet per-subject JSON layout, read by
:class:`kinediff.data.Human36M` (``format="pose2mesh"``, the default)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from kinediff.core.conventions import synthetic_h36m_regressor
from kinediff.testing.scene import camera, render_image, world_people

__all__ = ["write_h36m"]


def write_h36m(root: Path, body, subject: int = 9, frames=(0, 5, 10), cameras=(1, 4), seed: int = 1
               ) -> dict:
    """One subject, one action (2, subaction 1), ``frames`` x ``cameras`` images in the Pose2Mesh
    JSON layout under ``root``: ``annotations/Human36M_subject<s>_{data,camera,joint_3d,smpl_param}.json``
    and ``images/s_<s>_act_02_subact_01_ca_<c>/frame_<f:06d>.jpg`` (120 x 120).

    Returns, per (camera, frame), the camera-frame ``vertices`` (V, 3) and the 17 ``joints17``
    (17, 3) of :func:`~kinediff.core.conventions.synthetic_h36m_regressor`, metres (float64)."""
    w, h = 120, 120
    n = len(frames)
    pose, betas, trans, verts, _ = world_people(body, n, seed)
    reg = synthetic_h36m_regressor(body).double()
    cams, K = camera(len(cameras), seed + 7, w, h)
    images: list[dict] = []
    annotations: list[dict] = []
    joint3d: dict[str, dict] = {}
    smpl: dict[str, dict] = {}
    camera_json = {}
    expect = {}
    for c, cam_idx in enumerate(cameras):
        R, t = cams[c, :3, :3], cams[c, :3, 3]
        camera_json[str(cam_idx)] = {"R": R.tolist(), "t": (t * 1000).tolist(),
                                     "f": [K[0, 0], K[1, 1]], "c": [K[0, 2], K[1, 2]]}
        for i, frame in enumerate(frames):
            image_id = len(images)
            name = f"s_{subject:02d}_act_02_subact_01_ca_{cam_idx:02d}/frame_{frame:06d}.jpg"
            images.append({"id": image_id, "file_name": name, "width": w, "height": h,
                           "subject": subject, "action_idx": 2, "subaction_idx": 1,
                           "cam_idx": cam_idx, "frame_idx": frame})
            annotations.append({"id": image_id, "image_id": image_id, "bbox": None})
            cv = verts[i] @ torch.as_tensor(R).T + torch.as_tensor(t)
            render_image(body, cv, K, w, h, root / "images" / name)
            expect[(cam_idx, frame)] = {"vertices": cv,
                                        "joints17": (reg @ verts[i]) @ torch.as_tensor(R).T
                                        + torch.as_tensor(t)}
    for i, frame in enumerate(frames):
        joint3d.setdefault("2", {}).setdefault("1", {})[str(frame)] = (
            (reg @ verts[i]) * 1000).tolist()
        smpl.setdefault("2", {}).setdefault("1", {})[str(frame)] = {
            "pose": pose[i].reshape(72).tolist(), "shape": betas[i].tolist(),
            "trans": trans[i].tolist()}
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for key, value in (("data", {"images": images, "annotations": annotations}),
                       ("camera", camera_json), ("joint_3d", joint3d), ("smpl_param", smpl)):
        (ann / f"Human36M_subject{subject}_{key}.json").write_text(json.dumps(value))
    return expect

"""Writers of small data sets in the real file formats (3DPW raw, Human3.6M Pose2Mesh JSON),
drawn from a body model: the test suite's fixtures and the reproduce scripts' ``--synthetic`` data.

Each writer returns what it used (camera-frame meshes, joints, 2D joints) so tests can check the
loaders against an independent computation. Images are flat-shaded renders of the body.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from kinediff.data.limits import sample_body_pose
from kinediff.render import project_points, render_flat

__all__ = ["camera", "render_image", "world_people", "write_3dpw_raw", "write_h36m",
           "write_surreal_coco"]


def world_people(body, n: int, seed: int):
    """n world-frame SMPL parameter sets of one person (one shape; upright, y up) and their
    vertices / joints (float64)."""
    g = torch.Generator().manual_seed(seed)
    pose = sample_body_pose(n, g, 0.6, torch.float64)
    pose[:, 0] = torch.tensor(Rotation.from_euler("y", np.linspace(-40, 40, n)[:, None], degrees=True)
                              .as_rotvec())
    betas = (torch.randn(1, 10, generator=g, dtype=torch.float64) * 0.5).expand(n, 10).clone()
    trans = torch.tensor([[0.1 * i, 0.0, 0.2 * i] for i in range(n)], dtype=torch.float64)
    out = body.double()(pose, betas, trans)
    body.float()
    return pose, betas, trans, out.vertices, out.joints


def camera(n: int, seed: int, w: int = 160, h: int = 120):
    """World -> camera extrinsics (n, 4, 4) looking at the origin from about 4 m, and K."""
    rng = np.random.default_rng(seed)
    cams = np.zeros((n, 4, 4))
    for i in range(n):
        # camera frame: x right, y down, z forward; world y up -> flip, small random yaw / tilt
        r = Rotation.from_euler("xyz", [180 + rng.uniform(-5, 5), rng.uniform(-20, 20), 0],
                                degrees=True).as_matrix()
        cams[i, :3, :3] = r
        cams[i, :3, 3] = [rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 4.0]
        cams[i, 3, 3] = 1
    K = np.array([[150.0, 0, w / 2], [0, 150.0, h / 2], [0, 0, 1]])
    return cams, K


def render_image(body, cam_vertices: torch.Tensor, K: np.ndarray, w: int, h: int, path: Path) -> None:
    """Render camera-frame vertices (V, 3) into a w x h JPEG (square render, cropped)."""
    side = max(w, h)
    colors = torch.full((body.faces.shape[0], 3), 0.8)
    img, _ = render_flat(cam_vertices[None].float(), body.faces,
                         torch.as_tensor(K, dtype=torch.float32), colors, side)
    array = (img[0, :, :h, :w].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_3dpw_raw(root: Path, body, split: str = "test", frames: int = 3, seed: int = 0,
                   sequence: str = "courtyard_fixture_00") -> dict:
    """One sequence, one person, ``frames`` frames, in 3DPW's raw layout (Python-2-style pickle)."""
    w, h = 160, 120
    pose, betas, trans, verts, joints = world_people(body, frames, seed)
    cams, K = camera(frames, seed, w, h)
    seq = sequence
    poses2d, cam_verts, cam_joints = [], [], []
    for i in range(frames):
        r, t = torch.as_tensor(cams[i, :3, :3]), torch.as_tensor(cams[i, :3, 3])
        cv, cj = verts[i] @ r.T + t, joints[i] @ r.T + t
        cam_verts.append(cv)
        cam_joints.append(cj)
        uv = project_points(cj[None], torch.as_tensor(K))[0][:18].numpy()
        poses2d.append(np.concatenate([uv.T, np.ones((1, 18))], 0))  # (3, 18)
        render_image(body, cv, K, w, h, root / "imageFiles" / seq / f"image_{i * 2:05d}.jpg")
    data = {
        "sequence": seq, "betas": [np.concatenate([betas[0].numpy(), np.zeros(290)])],
        "poses": [pose.reshape(frames, 72).numpy()], "trans": [trans.numpy()],
        "img_frame_ids": np.arange(frames) * 2, "poses2d": [np.stack(poses2d)],
        "cam_poses": cams, "cam_intrinsics": K, "campose_valid": [np.ones(frames, dtype=np.int64)],
        "genders": ["f"], "jointPositions": [joints.reshape(frames, 72).numpy()],
    }
    path = root / "sequenceFiles" / split / f"{seq}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    return {"pose": pose, "betas": betas, "trans": trans, "cams": cams, "K": K,
            "cam_vertices": torch.stack(cam_verts), "cam_joints": torch.stack(cam_joints),
            "poses2d": np.stack(poses2d)}


def write_h36m(root: Path, body, subject: int = 9, frames=(0, 5, 10), cameras=(1, 4), seed: int = 1
               ) -> dict:
    """One subject, one action, ``frames`` x ``cameras`` images in the Pose2Mesh JSON layout."""
    import json

    from kinediff.metrics import synthetic_h36m_regressor

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


def write_surreal_coco(pw3d_root: Path, dst: Path, src_split: str, split: str, body,
                       gender: str | int | None = None) -> Path:
    """SURREAL's COCO-style layout (``dst/surreal_<split>.json``, frames under ``dst/images/``)
    from 3DPW-format files written by :func:`write_3dpw_raw`; ``gender`` overrides every
    annotation's (SURREAL codes 0 = female, 1 = male are allowed)."""
    import json

    from kinediff.data.pw3d import convert_3dpw

    coco = json.loads(convert_3dpw(pw3d_root, dst / "tmp", src_split, body).read_text())
    for im in coco["images"]:
        src = pw3d_root / "imageFiles" / im["sequence"] / im["file_name"]
        im["file_name"] = f"{im['sequence']}/{im['file_name']}"
        (dst / "images" / im["sequence"]).mkdir(parents=True, exist_ok=True)
        (dst / "images" / im["file_name"]).write_bytes(src.read_bytes())
    if gender is not None:
        for ann in coco["annotations"]:
            ann["smpl_param"]["gender"] = gender
    out = dst / f"surreal_{split}.json"
    out.write_text(json.dumps(coco))
    return out


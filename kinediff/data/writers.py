"""Writers of small data sets in the real file formats (3DPW raw, Human3.6M Pose2Mesh JSON,
SURREAL raw clips and COCO style),
drawn from a body model: the test suite's fixtures and the reproduce scripts' ``--synthetic`` data.

Each writer returns what it used (camera-frame meshes, joints, 2D joints) so tests can check the
loaders against an independent computation. Images are flat-shaded renders of the body.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from kinediff.core.camera import project_points
from kinediff.data.limits import sample_body_pose
from kinediff.render import render_flat

__all__ = ["camera", "render_image", "render_rgb", "world_people", "write_3dpw_raw", "write_h36m",
           "write_surreal_raw"]


def world_people(body, n: int, seed: int):
    """n world-frame SMPL parameter sets of one person (one shape; upright, y up) and their
    vertices / joints (float64)."""
    g = torch.Generator().manual_seed(seed)
    pose = sample_body_pose(n, g, 0.6, torch.float64)
    pose[:, 0] = torch.tensor(Rotation.from_euler("y", np.linspace(-40, 40, n)[:, None], degrees=True)
                              .as_rotvec())
    betas = (torch.randn(1, 10, generator=g, dtype=torch.float64) * 0.5).expand(n, 10).clone()
    trans = torch.tensor([[0.1 * i, 0.0, 0.2 * i] for i in range(n)], dtype=torch.float64)
    out = copy.deepcopy(body).double()(pose, betas, trans)  # float64 labels; the caller's body untouched
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


def render_rgb(body, cam_vertices: torch.Tensor, K: np.ndarray, w: int, h: int) -> np.ndarray:
    """Flat-shaded grey body (or bodies) from camera-frame vertices (V, 3) or (P, V, 3) metres and
    K (3, 3) pixels, as an (h, w, 3) uint8 image (square render, cropped)."""
    faces = body.faces.cpu()
    if cam_vertices.dim() == 3:  # several people: one mesh of P copies of the topology
        n = cam_vertices.shape[1]
        faces = torch.cat([faces + p * n for p in range(cam_vertices.shape[0])])
        cam_vertices = cam_vertices.reshape(-1, 3)
    colors = torch.full((faces.shape[0], 3), 0.8)
    img, _ = render_flat(cam_vertices[None].float(), faces,
                         torch.as_tensor(K, dtype=torch.float32), colors, max(w, h))
    return (img[0, :, :h, :w].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def render_image(body, cam_vertices: torch.Tensor, K: np.ndarray, w: int, h: int, path: Path) -> None:
    """:func:`render_rgb` saved as a w x h JPEG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(render_rgb(body, cam_vertices, K, w, h)).save(path)


_PW3D_GENDERS = {"m": "male", "f": "female"}


def write_3dpw_raw(root: Path, body, split: str = "test", frames: int = 3, seed: int = 0,
                   sequence: str = "courtyard_fixture_00", genders: tuple[str, ...] = ("f",)
                   ) -> dict:
    """One sequence of ``frames`` frames in 3DPW's raw layout (Python-2-style pickle), one person
    per entry of ``genders`` (3DPW's "m" / "f").

    ``body``: one model draws every person, or a mapping gender -> model (see
    :class:`~kinediff.body.BodySet`) draws each person with their own gender's model, as 3DPW's
    parameters were fitted. Returns the persons' world parameters and their camera-frame meshes,
    joints and 2D joints in the loader's record order (person-major): ``cam_vertices``
    (P * frames, V, 3), ``cam_joints``, ``poses2d`` (P * frames, 3, 18), ``pose``, ``betas``,
    ``trans``, and per record ``gender``."""
    from kinediff.body.genders import BodySet

    bodies = BodySet.of(body)
    unknown = [g for g in genders if g not in _PW3D_GENDERS]
    if unknown or not genders:
        raise ValueError(f"genders must be 3DPW's 'm' / 'f' codes, got {list(genders)}")
    w, h = 160, 120
    cams, K = camera(frames, seed, w, h)
    people = []
    for p, code in enumerate(genders):
        model = bodies.for_gender(_PW3D_GENDERS[code], "write_3dpw_raw")
        pose, betas, trans, verts, joints = world_people(model, frames, seed + 7919 * p)
        side = torch.tensor([0.9 * p, 0.0, 0.0], dtype=trans.dtype)  # people side by side
        people.append((pose, betas, trans + side, verts + side, joints + side))
    seq = sequence
    cam_verts = torch.zeros(len(genders), frames, *people[0][3].shape[1:], dtype=torch.float64)
    cam_joints = torch.zeros(len(genders), frames, *people[0][4].shape[1:], dtype=torch.float64)
    poses2d = np.zeros((len(genders), frames, 3, 18))
    for i in range(frames):
        r, t = torch.as_tensor(cams[i, :3, :3]), torch.as_tensor(cams[i, :3, 3])
        for p, (_, _, _, verts, joints) in enumerate(people):
            cam_verts[p, i], cam_joints[p, i] = verts[i] @ r.T + t, joints[i] @ r.T + t
            uv = project_points(cam_joints[p, i][None], torch.as_tensor(K))[0][:18].numpy()
            poses2d[p, i] = np.concatenate([uv.T, np.ones((1, 18))], 0)  # (3, 18)
        render_image(bodies.reference, cam_verts[:, i], K, w, h,
                     root / "imageFiles" / seq / f"image_{i * 2:05d}.jpg")
    data = {
        "sequence": seq,
        "betas": [np.concatenate([p[1][0].numpy(), np.zeros(290)]) for p in people],
        "poses": [p[0].reshape(frames, 72).numpy() for p in people],
        "trans": [p[2].numpy() for p in people],
        "img_frame_ids": np.arange(frames) * 2, "poses2d": list(poses2d),
        "cam_poses": cams, "cam_intrinsics": K,
        "campose_valid": [np.ones(frames, dtype=np.int64) for _ in people],
        "genders": list(genders), "jointPositions": [p[4].reshape(frames, 72).numpy() for p in people],
    }
    path = root / "sequenceFiles" / split / f"{seq}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    return {"pose": torch.cat([p[0] for p in people]), "betas": torch.cat([p[1] for p in people]),
            "trans": torch.cat([p[2] for p in people]), "cams": cams, "K": K,
            "cam_vertices": cam_verts.flatten(0, 1), "cam_joints": cam_joints.flatten(0, 1),
            "poses2d": poses2d.reshape(-1, 3, 18),
            "gender": [_PW3D_GENDERS[g] for g in genders for _ in range(frames)]}


def write_h36m(root: Path, body, subject: int = 9, frames=(0, 5, 10), cameras=(1, 4), seed: int = 1
               ) -> dict:
    """One subject, one action, ``frames`` x ``cameras`` images in the Pose2Mesh JSON layout."""
    import json

    from kinediff.core.conventions import synthetic_h36m_regressor

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


def _blender_camera() -> tuple[np.ndarray, np.ndarray]:
    """SURREAL's camera as its generation code sets it up: K and its world -> cv camera matrix
    (SURREAL's ``getExtrinsicBlender``; determinant -1, the mirror its videos show).

    Written from Blender's settings (60 mm lens, 32 mm sensor, 320 x 240 render, the camera's
    fixed matrix_world rotation), not from kinediff.data.surreal's constants, so the fixture
    checks them."""
    f_px = 60.0 * 320 / 32
    K = np.array([[f_px, 0, 320 / 2], [0, f_px, 240 / 2], [0, 0, 1]])
    matrix_world = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
    r_world2bcam = matrix_world.T
    r_bcam2cv = np.diag([1.0, -1.0, -1.0])
    return K, r_bcam2cv @ r_world2bcam


def write_surreal_raw(root: Path, body, split: str = "val", clips: int = 2, frames: int = 3,
                      seed: int = 0, sequence: str = "01_01", run: int = 0) -> dict:
    """``clips`` clips of ``frames`` frames in SURREAL's raw layout under ``root`` (the data/cmu
    folder): ``*_info.mat`` and ``_segm.mat`` (scipy.io.savemat, SURREAL's keys, float32 and
    uint8 as released) and an H.264 ``.mp4`` (PyAV). Clip c has gender code c % 2 (0 female,
    1 male); ``body`` is one model for every clip or a mapping gender -> model (each clip drawn
    with its own gender's model, as SURREAL's generator did).

    The scene follows SURREAL's: a z-up mocap root orientation turned by the clip's ``zrot`` and
    Rx(pi/2) into the Blender world, the root joint at ``joints3D[:, 0]``, the camera about 6 m
    away along +x looking back; ``joints2D`` through SURREAL's (mirroring) extrinsic, and frames
    and part masks mirrored to match. Returns, in record order (clip-major), the vertices / joints
    (N, V, 3) in the frame of the un-mirrored camera (SURREAL's extrinsic with its x row negated),
    the released ``joints2D`` (N, 24, 2), the un-mirrored masks (N, 240, 320) and the gender
    codes."""
    import av
    from scipy.io import savemat

    from kinediff.body.genders import BodySet
    from kinediff.render import rasterize_faces

    bodies = BodySet.of(body)
    body = bodies.reference
    w, h = 320, 240
    K, r_mirror = _blender_camera()
    r_w2cv = np.diag([-1.0, 1.0, 1.0]) @ r_mirror  # the camera of the un-mirrored image
    faces = body.faces.cpu()
    part = (body.weights.argmax(1)[body.faces[:, 0]].cpu() + 1).to(torch.uint8)  # SURREAL: 1..24
    expect: dict[str, list] = {"cam_vertices": [], "cam_joints": [], "joints2D": [], "masks": [],
                               "gender": []}
    folder = root / split / f"run{run}" / sequence
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(1, clips + 1):
        g = torch.Generator().manual_seed(seed * 1000 + c)
        rng = np.random.default_rng(seed * 1000 + c)
        zrot = float(rng.uniform(0, 2 * np.pi))
        turn = Rotation.from_euler("x", np.pi / 2) * Rotation.from_euler("z", zrot)
        pose = sample_body_pose(frames, g, 0.6, torch.float64).reshape(frames, 72).numpy()
        for t, yaw in enumerate(np.linspace(-40, 40, frames)):
            wanted = Rotation.from_euler("xy", [180, yaw], degrees=True)  # upright, facing the camera
            pelvis = turn.inv() * Rotation.from_matrix(r_w2cv.T) * wanted
            pose[t, :3] = pelvis.as_rotvec()
        betas = np.repeat(rng.normal(0, 0.5, (1, 10)), frames, 0)
        pose, betas = pose.astype(np.float32), betas.astype(np.float32)  # as released
        root_world = np.array([[0.05 * t, 0.1 * c, -0.03 * t] for t in range(frames)])
        cam_loc = (root_world[0] + [6.0 + 0.3 * c, 0.05, -0.1]).astype(np.float32)
        model = bodies.for_gender("female" if c % 2 == 0 else "male", "write_surreal_raw")
        with torch.no_grad():
            out = copy.deepcopy(model).double()(torch.as_tensor(pose, dtype=torch.float64),
                                                torch.as_tensor(betas, dtype=torch.float64))
        j0 = out.joints[:, :1]
        m = torch.as_tensor(turn.as_matrix())
        rw = torch.as_tensor(root_world)[:, None]
        verts_w, joints_w = (out.vertices - j0) @ m.T + rw, (out.joints - j0) @ m.T + rw
        joints3d = joints_w.numpy().astype(np.float32)
        # everything below from the released (float32) joints3D and camLoc, as a reader sees them
        shift = torch.as_tensor(joints3d[:, :1], dtype=torch.float64) - joints_w[:, :1]
        r, cam = torch.as_tensor(r_w2cv), torch.as_tensor(cam_loc, dtype=torch.float64)
        cam_verts = (verts_w + shift - cam) @ r.T
        cam_joints = (joints_w + shift - cam) @ r.T
        # SURREAL's joints2D: its own (mirroring) extrinsic, rounded (misc/3Dto2D/main.m)
        mirror_joints = (joints_w + shift - cam) @ torch.as_tensor(r_mirror).T
        joints2d = project_points(mirror_joints, torch.as_tensor(K))[:, :24].round().numpy() \
            .astype(np.float32)
        stem = f"{sequence}_c{c:04d}"
        segm = {}
        with av.open(str(folder / f"{stem}.mp4"), "w") as video:
            stream = video.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": "12"}
            for t in range(frames):
                # SURREAL's frames are mirror images
                rgb = np.ascontiguousarray(render_rgb(body, cam_verts[t], K, w, h)[:, ::-1])
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    video.mux(packet)
                screen = torch.cat([project_points(cam_verts[t][None], torch.as_tensor(K)),
                                    cam_verts[t][None, :, 2:]], -1)
                face_index, _ = rasterize_faces(screen, faces, (h, w))
                labels = torch.where(face_index[0] >= 0, part[face_index[0].clamp_min(0)], 0)
                segm[f"segm_{t + 1}"] = np.ascontiguousarray(labels.numpy()[:, ::-1]).astype(np.uint8)
                expect["masks"].append(labels.numpy() > 0)
            for packet in stream.encode():
                video.mux(packet)
        gender = np.full((frames, 1), c % 2, dtype=np.uint8)
        savemat(folder / f"{stem}_info.mat", {
            "pose": pose.T, "shape": betas.T, "gender": gender,
            "joints2D": joints2d.transpose(2, 1, 0), "joints3D": joints3d.transpose(2, 1, 0),
            "zrot": np.full((frames, 1), zrot, dtype=np.float32), "camLoc": cam_loc[:, None],
            "camDist": np.float32(6.0 + 0.3 * c), "clipNo": c, "sequence": stem, "source": "cmu",
            "stride": np.uint8(50), "light": np.zeros((9, frames), dtype=np.float32)},
            do_compression=True)
        savemat(folder / f"{stem}_segm.mat", segm, do_compression=True)
        expect["cam_vertices"].append(cam_verts)
        expect["cam_joints"].append(cam_joints)
        expect["joints2D"].append(torch.as_tensor(joints2d))
        expect["gender"] += [c % 2] * frames
    return {"K": K, "cam_vertices": torch.cat(expect["cam_vertices"]),
            "cam_joints": torch.cat(expect["cam_joints"]), "joints2D": torch.cat(expect["joints2D"]),
            "masks": np.stack(expect["masks"]), "gender": expect["gender"]}

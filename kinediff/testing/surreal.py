"""SURREAL clips in the released raw layout, read by :class:`kinediff.data.Surreal`
(``format="raw"``), under ``root`` (SURREAL's ``data/cmu`` folder)::

    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>_info.mat   annotations (scipy.io.savemat)
    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>_segm.mat   part masks
    <split>/run<r>/<sequence>/<sequence>_c<clip:04d>.mp4        H.264 video (PyAV)

drawn as SURREAL's generator draws them (its mirroring camera included).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from scipy.io import savemat
from scipy.spatial.transform import Rotation

from kinediff.body.genders import BodySet
from kinediff.core.camera import project_points
from kinediff.data.limits import sample_body_pose
from kinediff.render import rasterize_faces
from kinediff.testing.scene import render_rgb

__all__ = ["write_surreal_raw"]


def _blender_camera() -> tuple[np.ndarray, np.ndarray]:
    """SURREAL's camera as its generation code sets it up: K and its world -> cv camera matrix
    (SURREAL's ``getExtrinsicBlender``; determinant -1, the mirror its videos show).

    Written from Blender's settings (60 mm lens, 32 mm sensor, 320 x 240 render, the camera's
    fixed matrix_world rotation), not from :mod:`kinediff.data.surreal`'s constants, so the
    fixture checks them."""
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
    import av  # optional (kinediff[video]): writing the .mp4 needs it

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

"""The scene every fixture writer draws: people posed by a body model in a world frame (y up), cameras
looking at them from about 4 m, and flat-shaded renders of their meshes as the images."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from kinediff.data.limits import sample_body_pose
from kinediff.render import render_flat

__all__ = ["camera", "render_image", "render_rgb", "world_people"]


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

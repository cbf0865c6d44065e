"""A 3DPW sequence in the released raw layout, read by :class:`kinediff.data.PW3D` (``format="raw"``)::

    sequenceFiles/<split>/<sequence>.pkl        Python-2-style pickle (protocol 2): per person
                                                world-frame poses, trans, betas (300), genders,
                                                poses2d; per frame cam_poses, img_frame_ids; one
                                                cam_intrinsics
    imageFiles/<sequence>/image_<frame:05d>.jpg  renders of the people
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from kinediff.body.genders import BodySet
from kinediff.core.camera import project_points
from kinediff.testing.scene import camera, render_image, world_people

__all__ = ["write_3dpw_raw"]

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

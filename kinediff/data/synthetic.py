"""``SynthBody``: a data set anyone can regenerate, drawn from the synthetic body (or real SMPL).

Per sample (all from a generator seeded by ``(seed, index)``, so a sample does not depend on which
other samples were made, nor on the order): a pose within the per-joint anatomical limits of
:mod:`kinediff.data.limits`, a shape (beta ~ N(0, 1) clipped to +-2.5), a camera-frame root
orientation (upright, turned by a yaw, slightly tilted), a perspective camera (focal length 1.2-2.2
crop sizes, the person filling 65-90 % of the crop, off-centre by up to 8 %), and an image drawn
with kinediff's z-buffer rasterizer: body parts in distinct colours (left and right differ), flat
Lambert shading from a random light, on a random smooth background with noise. Everything else
(mask, 2D joints, 2D coarse mesh) follows from the same geometry, in the sample format of
:mod:`kinediff.data.sample`.

``cache=True`` renders the whole set once (batched, with a progress bar) into a file under the
kinediff cache folder, keyed by every parameter; otherwise samples are drawn on the fly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from kinediff.body.genders import BodySet
from kinediff.body.rotations import matrix_to_axis_angle
from kinediff.core.checks import check_int, check_number
from kinediff.core.conventions import H36M_LIKE_SMPL_JOINTS
from kinediff.core.io import cache_dir, corrupt_cache_error, read_cached, write_atomic
from kinediff.data.limits import pose_from_uniform, root_orientation
from kinediff.data.sample import project_labels
from kinediff.mesh import MeshHierarchy
from kinediff.render.zbuffer import render_flat

__all__ = ["SynthBody", "part_colors"]

# body parts for colouring: joint -> part; left and right limbs get different hues
_PARTS = {0: 0, 3: 1, 6: 1, 9: 1, 12: 2, 15: 2, 13: 3, 16: 3, 18: 4, 20: 5, 22: 5,
          14: 6, 17: 6, 19: 7, 21: 8, 23: 8, 1: 9, 4: 10, 7: 11, 10: 11, 2: 12, 5: 13, 8: 14, 11: 14}
_PALETTE = torch.tensor([
    [0.55, 0.55, 0.60], [0.20, 0.45, 0.80], [0.95, 0.80, 0.65], [0.90, 0.30, 0.30],
    [0.95, 0.60, 0.20], [0.95, 0.90, 0.30], [0.30, 0.75, 0.35], [0.30, 0.80, 0.80],
    [0.60, 0.40, 0.85], [0.85, 0.35, 0.60], [0.75, 0.15, 0.15], [0.45, 0.25, 0.10],
    [0.15, 0.55, 0.25], [0.10, 0.35, 0.55], [0.35, 0.35, 0.35]])


def part_colors(body) -> torch.Tensor:
    """(F, 3) RGB per face: the part of the joint that weighs most on the face's first vertex."""
    joint = body.weights.argmax(1)[body.faces[:, 0]].cpu()
    part = torch.tensor([_PARTS[int(j)] for j in range(24)])[joint]
    return _PALETTE[part]


class SynthBody(Dataset):
    """Synthetic images of the synthetic (or a real SMPL) body, with every label.

    Args:
        n: number of samples.
        seed: the data set's seed (a different seed gives a disjoint-looking set; use one per split).
        body: a :class:`~kinediff.body.BodyModel` (default: ``BodyModel.synthetic()``), or a
            mapping gender -> model, of which the neutral one is used: every SynthBody person is
            drawn, and labelled, with one body (samples' ``gender`` is "neutral"). The data set
            works on a float32 CPU copy; the given model is never converted or moved.
        image_size: crop side S in pixels.
        mesh_factors: decimation factors of the hierarchy whose coarsest level is ``mesh2d``
            ((4, 4): 431 vertices on SMPL topology; (4, 4, 4): 108).
        yaw_range: the body turns uniformly within +-yaw_range degrees about its vertical axis.
        pose_spread: scales the joint ranges, in (0, 1] (1 = the full limits).
        cache: render everything once and keep it in a file (see ``cache_root``).
        cache_root: folder for the cache file (default: the kinediff cache folder).
        progress: show a progress bar while caching.

    Each item is a sample dict (see :mod:`kinediff.data.sample`) plus ``index``.
    """

    def __init__(self, n: int, seed: int = 0, body=None, image_size: int = 256,
                 mesh_factors: tuple[int, ...] = (4, 4), yaw_range: float = 180.0,
                 pose_spread: float = 1.0, cache: bool = False,
                 cache_root: str | os.PathLike | None = None, progress: bool = True) -> None:
        self.n = check_int(n, "n", 1)
        self.image_size = check_int(image_size, "image_size", 16)
        self.yaw_range = check_number(yaw_range, "yaw_range", 0.0, 180.0, what="degrees")
        self.pose_spread = check_number(pose_spread, "pose_spread", 0.0, 1.0, low_open=True)
        self.seed = check_int(seed, "seed", 0)
        self.mesh_factors = tuple(mesh_factors)
        self.body = BodySet.of(body).to("cpu", torch.float32, copy=True).for_gender("neutral",
                                                                                  "SynthBody")
        self.selection = MeshHierarchy.from_body(self.body, self.mesh_factors).selection(-1).cpu()
        self.face_colors = part_colors(self.body)
        self._cached: dict[str, Any] | None = None
        if cache:
            self._cached = self._load_or_build(cache_root, progress)

    def body_for(self, gender: str):
        """The body that drew and labels a sample (every SynthBody sample is "neutral")."""
        if gender != "neutral":
            raise ValueError(f"SynthBody samples are neutral, got gender {gender!r}")
        return self.body

    # -- parameters ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The parameters that determine every sample (the cache key; ``version`` is the cache
        file's layout: a cache of another layout is never read, a new one is written)."""
        v = self.body.v_template
        return {"n": self.n, "seed": self.seed, "image_size": self.image_size,
                "mesh_factors": list(self.mesh_factors), "yaw_range": self.yaw_range,
                "pose_spread": self.pose_spread, "version": 2,
                "body": hashlib.sha1(v.detach().numpy().tobytes()).hexdigest()[:12]}

    def _params(self, index: int) -> dict[str, torch.Tensor]:
        """The raw random draws of one sample (CPU), from its own generator."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return {"joints_u": torch.rand(23, 3, generator=g, dtype=torch.float64),
                "betas": torch.randn(10, generator=g).clamp(-2.5, 2.5),
                "u": torch.rand(12, generator=g, dtype=torch.float64),
                "background": torch.rand(2, 3, generator=g),
                "noise": torch.rand(3, 8, 8, generator=g),
                "light": torch.randn(3, generator=g) * 0.4 + torch.tensor([0.0, 0.4, 1.0]),
                "tint": 0.8 + 0.4 * torch.rand(3, generator=g)}

    def _poses(self, ps: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """(B, 24, 3) camera-frame poses from the draws (batched rotation maths, float64)."""
        u = torch.stack([p["u"] for p in ps])
        pose = pose_from_uniform(torch.stack([p["joints_u"] for p in ps]), self.pose_spread)
        rad = math.pi / 180.0
        root = root_orientation((2 * u[:, 0] - 1) * self.yaw_range * rad,
                                (2 * u[:, 1] - 1) * 12 * rad, (2 * u[:, 2] - 1) * 8 * rad)
        pose[:, 0] = matrix_to_axis_angle(root)
        return pose.float()

    def _make(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Render a batch of samples (their randomness is per sample, so batching changes nothing)."""
        ps = [self._params(i) for i in indices]
        pose = self._poses(ps)
        betas = torch.stack([p["betas"] for p in ps])
        u = torch.stack([p["u"] for p in ps]).float()
        s = self.image_size
        with torch.no_grad():
            out = self.body(pose, betas)
            verts, joints = out.vertices, out.joints
            lo, hi = verts.amin(1), verts.amax(1)
            centre = (lo + hi) / 2
            focal = s * (1.2 + 1.0 * u[:, 3])
            fill = 0.65 + 0.25 * u[:, 4]
            half = ((hi - lo)[:, :2] / 2).amax(-1)
            depth = focal * half / (fill * s / 2) + (hi - lo)[:, 2] / 2
            off = (2 * u[:, 5:7] - 1) * 0.08 * s
            transl = torch.stack([-centre[:, 0] + off[:, 0] * depth / focal,
                                  -centre[:, 1] + off[:, 1] * depth / focal,
                                  depth - centre[:, 2]], -1)
            K = torch.zeros(len(indices), 3, 3)
            K[:, 0, 0] = K[:, 1, 1] = focal
            K[:, :2, 2] = s / 2
            K[:, 2, 2] = 1
            cam = verts + transl[:, None]
            background = self._backgrounds(ps)
            colors = self.face_colors[None] * torch.stack([p["tint"] for p in ps])[:, None]
            light = torch.stack([p["light"] for p in ps])
            images, masks = render_flat(cam, self.body.faces, K, colors.clamp(0, 1), s,
                                        background, light)
            joints2d, mesh2d = project_labels(joints, verts[:, self.selection], K, transl, s)
        return {"image": images.float(), "mask": masks.float(), "pose": pose, "betas": betas,
                "transl": transl, "K": K, "joints2d": joints2d, "mesh2d": mesh2d,
                **self._h36m_joints(joints, transl, joints2d)}

    @staticmethod
    def _h36m_joints(joints: torch.Tensor, transl: torch.Tensor, joints2d: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        """``joints3d`` (B, 17, 4) and ``keypoints2d`` (B, 17, 3): the SMPL skeleton's H36M-like
        joints in the camera frame and in the crop (as :func:`~kinediff.data.base.make_sample`)."""
        picks = list(H36M_LIKE_SMPL_JOINTS)
        cam = joints[:, picks] + transl[:, None]
        ones = torch.ones(*cam.shape[:2], 1, dtype=cam.dtype)
        kp = joints2d[:, picks]
        return {"joints3d": torch.cat([cam, ones], -1), "keypoints2d": kp * kp[..., 2:]}

    def _backgrounds(self, ps: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        s = self.image_size
        ramp = torch.linspace(0, 1, s)
        out = []
        for p in ps:
            c0, c1 = p["background"]
            direction = ramp[:, None] if float(p["u"][7]) < 0.5 else ramp[None, :]
            grad = c0[:, None, None] + (c1 - c0)[:, None, None] * direction[None]
            noise = torch.nn.functional.interpolate(p["noise"][None], size=(s, s), mode="bilinear",
                                                    align_corners=False)[0]
            out.append((0.75 * grad + 0.25 * noise).clamp(0, 1))
        return torch.stack(out)

    # -- caching ------------------------------------------------------------------------------

    def _load_or_build(self, root, progress: bool) -> dict[str, Any]:
        cfg = self.config()
        key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
        path = cache_dir(root) / "synthbody" / f"{key}.pt"
        if path.is_file():
            data = read_cached(path, lambda p: torch.load(p, map_location="cpu", weights_only=True),
                               "SynthBody render")
            self._check_cache(data, path)
            return data
        parts: list[dict[str, torch.Tensor]] = []
        chunk = 64
        for start in tqdm(range(0, self.n, chunk), desc="SynthBody: rendering", unit="batch",
                          disable=not progress):
            parts.append(self._make(list(range(start, min(start + chunk, self.n)))))
        data = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        data["image"] = (data["image"] * 255).round().to(torch.uint8)  # 4x smaller on disk
        write_atomic(path, lambda tmp: torch.save(data, tmp))
        return data

    def _check_cache(self, data: Any, path) -> None:
        """Raise :func:`~kinediff.core.io.corrupt_cache_error` unless ``data`` holds every sample's
        tensors: a dict of them, ``n`` rows each, the images uint8 (n, 3, S, S)."""
        keys = ("image", "mask", "pose", "betas", "transl", "K", "joints2d", "mesh2d", "joints3d",
                "keypoints2d")
        if not isinstance(data, dict):
            raise corrupt_cache_error(path, "SynthBody render", f"holds a {type(data).__name__}, not a dict")
        missing = [k for k in keys if k not in data]
        if missing:
            raise corrupt_cache_error(path, "SynthBody render", f"missing {missing}")
        s = self.image_size
        for k, v in data.items():
            if not isinstance(v, torch.Tensor) or v.dim() == 0 or len(v) != self.n:
                raise corrupt_cache_error(path, "SynthBody render", f"{k!r} is not a tensor of {self.n} rows")
        if data["image"].dtype != torch.uint8 or tuple(data["image"].shape) != (self.n, 3, s, s):
            raise corrupt_cache_error(path, "SynthBody render", f"'image' is {data['image'].dtype} "
                                      f"{tuple(data['image'].shape)}, expected uint8 {(self.n, 3, s, s)}")

    # -- Dataset ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n

    def _items(self, indices: list[int]) -> dict[str, Any]:
        for i in indices:
            if not -self.n <= i < self.n:
                raise IndexError(f"index {i} out of range for SynthBody of {self.n} samples")
        indices = [i % self.n for i in indices]
        if self._cached is not None:
            idx = torch.tensor(indices)
            items = {k: v[idx] for k, v in self._cached.items()}
            items["image"] = items["image"].float() / 255
        else:
            items = self._make(indices)
            items["image"] = (items["image"] * 255).round() / 255  # the cache's quantisation
        b = len(indices)
        yes = torch.ones(b, dtype=torch.bool)
        items.update(gender=["neutral"] * b, has_smpl=yes, has_mask=yes.clone(),
                     has_mesh2d=yes.clone(), has_joints3d=yes.clone(),
                     has_joints2d=items["keypoints2d"][..., 2].amax(-1) > 0,
                     index=torch.tensor(indices))
        return items

    def __getitem__(self, index: int) -> dict[str, Any]:
        items = self._items([int(index)])
        return {k: v[0] for k, v in items.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        """A whole batch at once (the DataLoader calls this; :func:`~kinediff.data.collate`
        passes it through)."""
        return self._items(list(indices))

    def batch(self, indices: list[int] | range) -> dict[str, Any]:
        """Several samples as one collated batch, rendered together (faster than a DataLoader
        for on-the-fly sets); equal to collating the items one by one."""
        return self._items(list(indices))

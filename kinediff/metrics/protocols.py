"""Benchmark evaluation protocols: which joint regressor, which 14 joints, which pelvis, which GT
gender, which frames. Getting these right is half of reproducing a table; mixing one regressor
with another's joint map is refused.

- ``GRAPHORMER_3DPW``: ``J_regressor_h36m_correct.npy``, joints [3,2,1,4,5,6,16,15,14,11,12,13,8,10],
  pelvis = regressed H36M joint 0, GT built with the neutral model (Graphormer, VirtualMarker).
- ``SPIN_3DPW``: ``J_regressor_h36m.npy``, SPIN's map [6,5,4,1,2,3,16,15,14,11,12,13,8,10], pelvis =
  midpoint of the two hips of the 14, gendered GT (SPIN, Pose2Mesh).
- ``H36M_P2``: Protocol 2 — subjects S9 and S11, the frontal camera, every 5th frame (SPIN) or
  64th (I2L: ``frame_step=64``); Graphormer's regressor and map.
- ``SURREAL``: Graphormer's regressor and map, gendered GT (0 = female, 1 = male).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from kinediff.metrics.errors import mpjpe, mpve, pa_mpjpe

__all__ = [
    "GRAPHORMER_3DPW",
    "H36M_P2",
    "PROTOCOLS",
    "SPIN_3DPW",
    "SURREAL",
    "Protocol",
    "load_regressor",
    "synthetic_h36m_regressor",
]

GRAPHORMER_MAP = (3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10)
SPIN_MAP = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
#: The 14 evaluated joints, in the order both maps produce.
J14_NAMES = ("R_ankle", "R_knee", "R_hip", "L_hip", "L_knee", "L_ankle", "R_wrist", "R_elbow",
             "R_shoulder", "L_shoulder", "L_elbow", "L_wrist", "thorax", "head")
_WHERE = {
    "J_regressor_h36m_correct.npy": "MeshGraphormer's and METRO's data folders "
                                    "(src/modeling/data/J_regressor_h36m_correct.npy)",
    "J_regressor_h36m.npy": "SPIN's data folder (data/J_regressor_h36m.npy, from its fetch_data.sh)",
}


@dataclass(frozen=True)
class Protocol:
    """One evaluation convention. ``pelvis`` is "h36m_joint0" or "hip_midpoint"."""

    name: str
    regressor_file: str
    joint_map: tuple[int, ...]
    pelvis: str
    gt_gender: str
    frame_step: int | None = None
    camera: str | None = None
    subjects: tuple[str, ...] | None = None

    def describe(self) -> str:
        parts = [f"{self.name}: regressor {self.regressor_file}, joints {list(self.joint_map)}",
                 f"pelvis = {'regressed H36M joint 0' if self.pelvis == 'h36m_joint0' else 'mid-hip of the 14'}",
                 f"GT gender {self.gt_gender}"]
        if self.subjects:
            parts.append(f"subjects {', '.join(self.subjects)}, {self.camera} camera, every "
                         f"{self.frame_step}th frame")
        return "; ".join(parts)

    def with_frame_step(self, step: int) -> Protocol:
        return replace(self, frame_step=step)

    def joints(self, vertices: torch.Tensor, regressor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 14 evaluated joints and the pelvis (B, 1, 3) from meshes (B, V, 3)."""
        if regressor.dim() != 2 or regressor.shape[0] != 17 or regressor.shape[1] != vertices.shape[1]:
            raise ValueError(f"{self.name} needs a (17, {vertices.shape[1]}) H36M joint regressor "
                             f"({self.regressor_file}); got {tuple(regressor.shape)}")
        return self._select(torch.einsum("jv,bvc->bjc", regressor.to(vertices), vertices))

    def _select(self, j17: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        j14 = j17[:, list(self.joint_map)]
        pelvis = j17[:, :1] if self.pelvis == "h36m_joint0" else j14[:, 2:4].mean(1, keepdim=True)
        return j14, pelvis

    def evaluate(self, pred_vertices: torch.Tensor, gt_vertices: torch.Tensor,
                 regressor: torch.Tensor, gt_joints17: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        """Per-sample MPVE, MPJPE, PA-MPJPE (B,) and per-joint errors (B, 14), in the input's units.

        ``gt_joints17`` (B, 17, 3): measured H36M joints (Human3.6M's mocap) to score the joints
        against instead of joints regressed from ``gt_vertices`` (which MPVE still uses).
        """
        pj, pp = self.joints(pred_vertices, regressor)
        mesh_joints, mesh_pelvis = self.joints(gt_vertices, regressor)
        if gt_joints17 is None:
            gj, gp = mesh_joints, mesh_pelvis
        elif gt_joints17.shape != (pred_vertices.shape[0], 17, 3):
            raise ValueError(f"gt_joints17 must have shape ({pred_vertices.shape[0]}, 17, 3), "
                             f"got {tuple(gt_joints17.shape)}")
        else:
            gj, gp = self._select(gt_joints17.to(pj))
        pj, gj = pj - pp, gj - gp
        return {"mpve": mpve(pred_vertices, gt_vertices, (pp, mesh_pelvis)), "mpjpe": mpjpe(pj, gj),
                "pa_mpjpe": pa_mpjpe(pj, gj), "per_joint": (pj - gj).norm(dim=-1)}


GRAPHORMER_3DPW = Protocol("graphormer-3dpw", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP,
                           "h36m_joint0", "neutral")
SPIN_3DPW = Protocol("spin-3dpw", "J_regressor_h36m.npy", SPIN_MAP, "hip_midpoint", "gendered")
H36M_P2 = Protocol("h36m-p2", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP, "h36m_joint0",
                   "neutral", frame_step=5, camera="frontal", subjects=("S9", "S11"))
SURREAL = Protocol("surreal", "J_regressor_h36m_correct.npy", GRAPHORMER_MAP, "h36m_joint0",
                   "gendered")
PROTOCOLS = {p.name: p for p in (GRAPHORMER_3DPW, SPIN_3DPW, H36M_P2, SURREAL)}


def synthetic_h36m_regressor(body) -> torch.Tensor:
    """An H36M-17-style regressor (17, V) from the body's own SMPL joint regressor rows (convex vertex
    weights): lets every protocol run on the synthetic body. Numbers from it are synthetic."""
    from kinediff.heads.keypoints import H36M_LIKE_SMPL_JOINTS

    return body.J_regressor[list(H36M_LIKE_SMPL_JOINTS)].clone()


def load_regressor(protocol: Protocol, path: str | os.PathLike | None = None, body=None) -> torch.Tensor:
    """The protocol's (17, V) regressor: from ``path`` (a ``.npy`` or a folder holding
    ``protocol.regressor_file``), or built for a synthetic ``body`` when no path is given.

    Raises:
        FileNotFoundError: no file (the message names the file and where it is usually found).
        ValueError: the array is not (17, V) (with V the body's vertex count when a body is given).
    """
    if path is None:
        if body is not None and str(getattr(body, "name", "")).startswith("synthetic"):
            return synthetic_h36m_regressor(body)
        raise FileNotFoundError(
            f"the {protocol.name} protocol needs {protocol.regressor_file} (17 x 6890), usually found "
            f"in {_WHERE[protocol.regressor_file]}; pass its path")
    p = Path(path)
    if p.is_dir():
        p = p / protocol.regressor_file
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: {protocol.name} needs {protocol.regressor_file}, "
                                f"usually found in {_WHERE[protocol.regressor_file]}")
    array = np.load(p, allow_pickle=False)
    expected_v = body.num_vertices if body is not None else array.shape[-1]
    if array.ndim != 2 or array.shape != (17, expected_v):
        raise ValueError(f"{p}: expected a (17, {expected_v}) joint regressor, got {array.shape}")
    return torch.as_tensor(array, dtype=torch.float32)

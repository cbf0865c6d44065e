"""Small, self-contained demonstrations: the body demo (``make body-demo``, ``kinediff body demo``)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from kinediff.body import BodyModel
from kinediff.forward import FKSchedule
from kinediff.viz import draw_mesh, plot_body, plot_trajectory

__all__ = ["body_demo", "demo_pose"]


def demo_pose(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A fixed walking-like pose (1, 24, 3), axis-angle radians, used by demos and docs."""
    pose = torch.zeros(1, 24, 3, dtype=dtype)
    values = {
        1: (-0.9, 0.0, 0.05), 4: (1.2, 0.0, 0.0), 2: (0.35, 0.0, -0.05), 5: (0.3, 0.0, 0.0),
        3: (0.15, 0.0, 0.0), 15: (0.2, 0.25, 0.0), 16: (0.0, 0.0, -1.1), 17: (0.0, 0.0, 1.1),
        18: (0.0, -1.3, 0.0), 19: (0.0, 0.6, 0.0),
    }
    for joint, aa in values.items():
        pose[0, joint] = torch.tensor(aa, dtype=dtype)
    return pose


def body_demo(out_dir: str | Path = "outputs/body-demo", seed: int = 0) -> dict[str, Any]:
    """Build (or load) the synthetic body, pose it, print its statistics and write PNGs.

    Writes ``template.png`` (front and side), ``posed.png``, ``shapes.png`` (each shape direction
    at +3 standard deviations) and ``trajectory.png`` (FKSchedule's T = 10 posture transformation
    from the T-pose template to the posed body, the paper's Fig. 10) under ``out_dir``. Returns
    the statistics as a dict.
    """
    # matplotlib: heavy, imported only where a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    body = BodyModel.synthetic(seed)
    load_s = time.perf_counter() - t0
    zero = torch.zeros(1, 24, 3)
    rest = body(zero)
    v = rest.vertices[0]
    weights_per_vertex = (body.weights > 0).sum(1).float()
    with torch.no_grad():
        t0 = time.perf_counter()
        posed = body(demo_pose())
        forward_ms = 1e3 * (time.perf_counter() - t0)
    stats = {
        "model": body.name,
        "vertices": body.num_vertices,
        "faces": int(body.faces.shape[0]),
        "joints": body.num_joints,
        "betas": body.num_betas,
        "height_m": float(v[:, 1].max() - v[:, 1].min()),
        "arm_span_m": float(v[:, 0].max() - v[:, 0].min()),
        "pelvis_above_feet_m": float(rest.joints[0, 0, 1] - v[:, 1].min()),
        "skinning_influences_per_vertex": float(weights_per_vertex.mean()),
        "shape_directions": ", ".join(body.shape_names or []),
        "load_or_build_s": round(load_s, 3),
        "forward_ms_batch1": round(forward_ms, 2),
    }
    plot_body(v, body.faces, out / "template.png", title="kinediff synthetic body (T-pose)",
              joints=rest.joints[0])
    plot_body(posed.vertices[0], body.faces, out / "posed.png", title="posed (demo_pose)")
    names = body.shape_names or [f"beta{k}" for k in range(body.num_betas)]
    fig, axes = plt.subplots(1, body.num_betas, figsize=(2.0 * body.num_betas, 3.0))
    for k, ax in enumerate(axes):
        betas = torch.zeros(1, body.num_betas)
        betas[0, k] = 3.0
        draw_mesh(ax, body(zero, betas).vertices[0], body.faces, view="front")
        ax.set_title(f"{names[k]} +3σ", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "shapes.png", dpi=100)
    # the posture transformation: demo_pose seen by a camera it faces (root: pi about x)
    target = demo_pose()
    target[0, 0] = torch.tensor([math.pi, 0.0, 0.0])
    with torch.no_grad():
        trajectory = FKSchedule(body).trajectory(target, torch.zeros(1, body.num_betas))
    plot_trajectory(trajectory, body.faces, out / "trajectory.png",
                    title="FKSchedule: T-pose (t = 10) to target (t = 0), synthetic body")
    plt.close("all")
    width = max(len(k) for k in stats)
    print("kinediff body demo (synthetic body: no licensed SMPL data)")
    for key, value in stats.items():
        print(f"  {key:<{width}}  {value}")
    written = ", ".join(str(out / n) for n in ("template.png", "posed.png", "shapes.png",
                                                "trajectory.png"))
    print(f"  wrote {written}")
    return stats

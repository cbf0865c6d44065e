"""The rig that kinediff's animation files carry, as a picture (docs/img/rig.png).

    python examples/rig_figure.py [--out docs/img/rig.png]

Left: the shaped rest mesh coloured by the joint with each vertex's largest skinning weight, the 24
joints at J(beta) and the bones between them (the glTF skin's and the BVH hierarchy's). Right: three
frames of an animation as the rig shows them (linear blend skinning with the 4 largest weights,
:func:`kinediff.export.rig_vertices`), coloured by what leaving out the pose-corrective offsets
moves (mm, :func:`kinediff.export.rig_errors`' quantity per vertex). Synthetic body.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from kinediff.apps.demos import demo_pose
from kinediff.body import BodyModel
from kinediff.export import make_rig, rig_vertices
from kinediff.export.rig import check_motion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/rig.png")
    args = parser.parse_args()
    body = BodyModel.synthetic(dtype=torch.float64)
    betas = torch.zeros(10, dtype=torch.float64)
    rig = make_rig(body, betas)
    poses = torch.cat([torch.zeros(1, 24, 3, dtype=torch.float64),
                       0.5 * demo_pose(torch.float64), demo_pose(torch.float64)])
    motion = check_motion(rig, poses, torch.tensor([[0.0, 0, 0], [0.9, 0, 0], [1.8, 0, 0]]), 30)
    frames = rig_vertices(rig, motion)
    with torch.no_grad():
        correctives = body.pose_offsets(poses).norm(dim=-1).numpy() * 1000
    fig = plt.figure(figsize=(11, 5.2))
    ax = fig.add_subplot(1, 2, 1)
    v = rig.vertices
    owner = rig.influences[:, 0]
    ax.scatter(v[:, 0], v[:, 1], c=owner, cmap="tab20", s=1.5, alpha=0.35, linewidths=0)
    j = rig.joints
    for i, p in enumerate(rig.parents):
        if p >= 0:
            ax.plot([j[p, 0], j[i, 0]], [j[p, 1], j[i, 1]], color="k", lw=1.2)
    ax.scatter(j[:, 0], j[:, 1], color="k", s=14, zorder=3)
    for i, name in enumerate(rig.names):
        if name in ("pelvis", "head", "L_wrist", "R_wrist", "L_ankle", "R_ankle", "neck", "spine2",
                    "L_knee", "R_elbow"):
            ax.annotate(name, j[i, :2], xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_aspect("equal")
    ax.set_title("the rig: 24 joints at J(beta), vertices coloured by\ntheir largest-weight joint "
                 "(up to 4 joints per vertex)", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(1, 2, 2)
    for k in range(3):
        sc = ax.scatter(frames[k, :, 0], frames[k, :, 1], c=correctives[k], cmap="magma_r", s=1.5,
                        vmin=0, vmax=max(1e-6, float(correctives.max())), linewidths=0)
    fig.colorbar(sc, ax=ax, shrink=0.7, label="pose-corrective offset left out (mm)")
    ax.set_aspect("equal")
    ax.set_title("three keyframes as the .glb shows them (linear blend skinning),\ncoloured by "
                 "what the file leaves out (synthetic body)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()

"""From a photo to a body, as a figure: two people in one synthetic frame -> boxes -> meshes placed
in the frame's camera -> SMPL fits (docs/img/photo_to_body.png).

    python examples/photo_to_body.py --model kinediff-quickstart/fk/3d_last.pt
    python examples/photo_to_body.py                 # trains the quickstart first (~3 min, CPU)

The frame is two SynthBody crops side by side on one background (synthetic data: the quickstart's
model has only seen SynthBody), so the figure shows the pipeline, not accuracy on photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

import torch


def render_over(image: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                color: tuple[float, float, float]) -> torch.Tensor:
    """Meshes (P, V, 3) drawn over a (3, H, W) image through K (the square renderer, cropped)."""
    from kinediff.render import overlay_mesh

    _, h, w = image.shape
    side = max(h, w)
    square = torch.zeros(3, side, side)
    square[:, :h, :w] = image
    for mesh in vertices:
        square = overlay_mesh(square[None], mesh[None].float(), faces, K.float(), color=color)[0]
    return square[:, :h, :w]


def main(argv=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from kinediff.apps.predict import load_model
    from kinediff.data import SynthBody

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a pretrained folder or a 3D-stage checkpoint of the tiny config")
    p.add_argument("--out", default="docs/img/photo_to_body.png")
    args = p.parse_args(argv)
    source = args.model
    if source is None:
        from kinediff.apps.quickstart import run_quickstart

        run_quickstart("kinediff-quickstart")
        source = "kinediff-quickstart/fk/3d_last.pt"
    model = load_model(source)
    size = model.config.image_size
    data = SynthBody(8, seed=7, image_size=size, mesh_factors=model.config.mesh_factors,
                     progress=False)
    a, b = data[1], data[4]
    # one frame: the two crops side by side, with a margin of their own background
    h, w = size + 24, 2 * size + 40
    frame = a["image"][:, :1, :1].expand(3, h, w).clone()
    origin = [(12, 12), (size + 28, 12)]
    boxes = []
    for sample, (x0, y0) in zip((a, b), origin):
        frame[:, y0:y0 + size, x0:x0 + size] = sample["image"]
        uv = sample["joints2d"][:, :2]
        lo, hi = uv.min(0).values, uv.max(0).values
        boxes.append((float(lo[0]) + x0 - 4, float(lo[1]) + y0 - 6, float(hi[0] - lo[0]) + 8,
                      float(hi[1] - lo[1]) + 12))
    people = model.predict_frames([frame], [boxes], fit_smpl=True)
    faces = model.body.faces.cpu()
    K = people[0].K
    placed = render_over(frame, torch.stack([q.vertices for q in people]), faces, K, (0.55, 0.75, 0.95))
    fitted = render_over(frame, torch.stack([q.smpl["vertices"] for q in people]), faces, K,
                         (0.95, 0.7, 0.45))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    axes[0].imshow(frame.permute(1, 2, 0).numpy())
    for box in boxes:
        axes[0].add_patch(Rectangle(box[:2], box[2], box[3], fill=False, color="yellow", lw=1.5))
    axes[0].set_title("frame + person boxes")
    axes[1].imshow(placed.permute(1, 2, 0).clamp(0, 1).numpy())
    axes[1].set_title("predict_frames: placed meshes")
    axes[2].imshow(fitted.permute(1, 2, 0).clamp(0, 1).numpy())
    errors = ", ".join(f"{1000 * q.smpl['error']:.0f}" for q in people)
    axes[2].set_title(f"fit_smpl: SMPL bodies ({errors} mm off)")
    for q, c in zip(people, ("tab:blue", "tab:orange")):
        v = q.vertices[::20]
        axes[3].scatter(v[:, 0], v[:, 2], s=1, color=c)
    axes[3].set_xlabel("x (m)")
    axes[3].set_ylabel("depth z (m)")
    axes[3].set_title("top view: both people placed")
    axes[3].invert_yaxis()
    for ax in axes[:3]:
        ax.axis("off")
    fig.suptitle("synthetic frame, a tiny-config model trained on SynthBody: the pipeline, not "
                 "accuracy on photos", fontsize=9)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()

"""The quickstart (``make demo``, ``kinediff demo``, ``examples/quickstart.py``): PostureHMR learns on
SynthBody on a laptop CPU in about three minutes, next to its baselines.

What it does, all on synthetic data (every number it prints says so):

1. renders a SynthBody training and a held-out test split (64 x 64 crops, cached);
2. trains the tiny config's 2D stage (HRNet-W18-small -> 33 points -> 108-vertex 2D mesh);
3. trains four 3D decoders for the same number of steps: PostureHMR's M2P decoder on the FK
   schedule, the same decoder on the VL and the noise-diffusion schedules, and the one-step
   GraphormerRegressor. So that this fits the CPU budget, their 3D stages condition on the GT 2D mesh
   plus Gaussian noise (``noise_px`` pixels) rather than on the 2D stage's output (the paper's
   two-stage training freezes the 2D stage anyway); the FK model is then also evaluated on the full
   image pipeline (its own predicted 2D mesh), and the table says which row used which condition;
4. prints MPVE / MPJPE / PA-MPJPE (mm), and writes the Fig. 10-style transition strip, overlays of
   predictions on test images, OBJ meshes, training curves, checkpoints and ``results.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from kinediff.body import BodyModel
from kinediff.core.camera import fit_translation
from kinediff.core.conventions import synthetic_h36m_regressor
from kinediff.core.io import write_atomic
from kinediff.data import SynthBody
from kinediff.decoders import GraphormerRegressor
from kinediff.forward import (
    GaussianNoiseSchedule,
    VertexLinearSchedule,
    default_template_orientation,
    template_mesh,
)
from kinediff.metrics import GRAPHORMER_3DPW, Evaluator
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.render import overlay_mesh
from kinediff.training import Trainer, evaluate
from kinediff.viz import plot_trajectory

__all__ = ["QuickstartSettings", "mesh2d_error", "quickstart_configs", "run_quickstart", "template_reference"]


#: Whether the quickstart's 2D stage trains with the trimap render loss (eq. 6), as the paper's.
RENDER_2D = False


@dataclass
class QuickstartSettings:
    """Sizes of the quickstart (``reduced()`` is the test suite's version of the same code path)."""

    n_train: int = 2048
    n_test: int = 256
    steps_2d: int = 200
    steps_3d: int = 300
    batch_size: int = 32
    noise_px: float = 1.0
    yaw_range: float = 180.0
    num_examples: int = 6
    render_2d: bool = RENDER_2D

    @classmethod
    def reduced(cls) -> QuickstartSettings:
        return cls(n_train=64, n_test=16, steps_2d=3, steps_3d=3, batch_size=8, num_examples=2)


ROWS = (
    ("PostureHMR (FK)", "fk", "predicted"),
    ("PostureHMR (FK)", "fk", "gt"),
    ("VL baseline", "vl", "gt"),
    ("noise-diffusion baseline", "noise", "gt"),
    ("one-step GraphormerRegressor", "regressor", "gt"),
)


def quickstart_configs(settings: QuickstartSettings) -> dict[str, PostureHMRConfig]:
    """The quickstart's models' configs by name (``fk``, ``vl``, ``noise``, ``regressor``): the
    tiny config trained on the ground-truth 2D mesh with ``settings.noise_px`` of noise."""

    # the render loss is read by the 2D stage only, which only the FK model trains
    base = PostureHMRConfig.tiny(train_condition="gt", condition_noise_px=settings.noise_px,
                                 **{"train.batch_size": settings.batch_size})
    if not settings.render_2d:
        base = base.replace(render=None)
    return {"fk": base,
            "vl": base.replace(schedule=VertexLinearSchedule.Config(root_path="heading")),
            "noise": base.replace(schedule=GaussianNoiseSchedule.Config(prediction="sample")),
            "regressor": base.replace(decoder=GraphormerRegressor.Config(
                **base.decoder.arguments()))}


def run_quickstart(out_dir: str | Path = "kinediff-quickstart",
                   settings: QuickstartSettings | None = None, seed: int = 0,
                   progress: bool = True, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the quickstart; returns the results (also in ``out_dir/results.json``)."""

    s = settings or QuickstartSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    body = BodyModel.synthetic()
    configs = quickstart_configs(s)
    size, factors = configs["fk"].image_size, configs["fk"].mesh_factors
    data_kw = dict(image_size=size, mesh_factors=factors, yaw_range=s.yaw_range, cache=True,
                   progress=progress)
    log(f"[1/4] SynthBody (synthetic data): {s.n_train} training and {s.n_test} test crops of "
        f"{size} x {size} pixels")
    train = SynthBody(s.n_train, seed=2 * seed + 1, body=body, **data_kw)
    test = SynthBody(s.n_test, seed=2 * seed + 2, body=body, **data_kw)
    timings = {"data_s": time.perf_counter() - t_start}

    models: dict[str, PostureHMR] = {}
    curves: dict[str, list[float]] = {}
    for name, cfg in configs.items():
        torch.manual_seed(seed)
        models[name] = PostureHMR(cfg, body)
    fk = models["fk"]
    t0 = time.perf_counter()
    log(f"[2/4] 2D stage of PostureHMR (tiny config: {cfg.head.backbone}, {cfg.head.num_points} points, "
        f"{fk.num_coarse}-vertex 2D mesh), {s.steps_2d} steps"
        f"{', with the render loss' if s.render_2d else ''}")
    fk.init_coefficients(train.batch(range(min(len(train), 256))))
    trainer = Trainer(fk, "2d", train, out / "fk", epochs=10_000, max_steps=s.steps_2d,
                      seed=seed, progress=progress, tensorboard=False)
    curves["2D stage (FK model)"] = [row["total"] for row in trainer.fit()]
    timings["stage_2d_s"] = time.perf_counter() - t0

    log(f"[3/4] 3D stages, {s.steps_3d} steps each (condition: GT 2D mesh + {s.noise_px:g} px noise)")
    for name, model in models.items():
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        trainer = Trainer(model, "3d", train, out / name, epochs=10_000, max_steps=s.steps_3d,
                          seed=seed, progress=progress, tensorboard=False)
        curves[f"3D stage: {name}"] = [row["total"] for row in trainer.fit()]
        timings[f"stage_3d_{name}_s"] = time.perf_counter() - t0

    log("[4/4] evaluating on the held-out synthetic test split")
    rows = []
    for label, name, condition in ROWS:
        ev = evaluate(models[name], test, s.batch_size, condition=condition,
                      condition_noise_px=s.noise_px, seed=seed, progress=False,
                      label="SynthBody test (synthetic)")
        cond_text = ("image -> predicted 2D mesh" if condition == "predicted"
                     else f"GT 2D mesh + {s.noise_px:g} px noise")
        rows.append({"method": label, "condition": cond_text, **ev.summary()})
    rows.append({"method": "reference: T-pose template", "condition": "none",
                 **template_reference(fk.body, test, s.batch_size)})
    mesh2d_px = mesh2d_error(fk, test, s.batch_size)
    timings["total_s"] = time.perf_counter() - t_start

    figures = _figures(out, models, test, curves, s, seed)
    # the thread count splits float sums: seeded runs repeat their digits at the same count only
    threads = {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    results: dict[str, Any] = {"data": "SynthBody (synthetic)", "settings": asdict(s), "seed": seed,
               "rows": rows, "mesh2d_error_px": mesh2d_px, "timings": timings, "threads": threads,
               "files": {k: str(v) for k, v in figures.items()}}
    write_atomic(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    log("")
    log(format_table(rows, f"synthetic data: SynthBody test split, {s.n_test} crops of {size} px; "
                           f"{s.steps_3d} 3D training steps per model"))
    log(f"2D stage: mean 2D-mesh error {mesh2d_px:.2f} px on {size}-pixel crops")
    log(f"time: {timings['total_s']:.0f} s in all (data {timings['data_s']:.0f} s), "
        f"{threads['torch']} CPU thread{'s' if threads['torch'] != 1 else ''}")
    log("files:")
    for key, path in sorted(results["files"].items()):
        log(f"  {key}: {path}")
    log(f"  results: {out / 'results.json'}")
    return results


def format_table(rows: list[dict[str, Any]], caption: str) -> str:
    """Rows of method / condition / mpve / mpjpe / pa_mpjpe as a fixed-width table (mm)."""
    head = f"{'method':<32} {'3D-stage condition':<28} {'MPVE':>7} {'MPJPE':>7} {'PA-MPJPE':>9}"
    lines = [caption, head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<32} {r['condition']:<28} {r['mpve']:7.1f} {r['mpjpe']:7.1f} "
                     f"{r['pa_mpjpe']:9.1f}")
    lines.append("(mm; synthetic data, not comparable to the paper's 3DPW / Human3.6M numbers)")
    return "\n".join(lines)


@torch.no_grad()
def template_reference(body, dataset, batch_size: int) -> dict[str, float]:
    """MPVE / MPJPE / PA-MPJPE (mm) of answering ``body``'s T-pose template, facing the camera,
    for every sample of ``dataset`` (what "no learning" scores), under the Graphormer 3DPW
    protocol with the synthetic H36M regressor."""

    ev = Evaluator(GRAPHORMER_3DPW, synthetic_h36m_regressor(body), "synthetic")
    template = template_mesh(body, default_template_orientation().to(body.v_template))
    for start in range(0, len(dataset), batch_size):
        batch = dataset.batch(range(start, min(start + batch_size, len(dataset))))
        gt = body(batch["pose"], batch["betas"]).vertices
        ev.update(template.expand_as(gt), gt)
    return ev.summary()


@torch.no_grad()
def mesh2d_error(model, dataset, batch_size: int) -> float:
    """The 2D stage's mean 2D-mesh vertex error over ``dataset``, in crop pixels (the model is put
    in eval mode; batches go to its device)."""
    model.eval()
    device = next(model.parameters()).device
    errors = []
    for start in range(0, len(dataset), batch_size):
        batch = dataset.batch(range(start, min(start + batch_size, len(dataset))))
        pred = model.head(batch["image"].to(device))["mesh2d"].cpu()
        errors.append((pred - batch["mesh2d"]).norm(dim=-1).mean(-1))
    return float(torch.cat(errors).mean())


def _figures(out: Path, models, test, curves, s: QuickstartSettings, seed: int) -> dict[str, Path]:
    # matplotlib and trimesh: heavy, imported only where the figures and meshes are written
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import trimesh

    fk = models["fk"]
    body = fk.body
    files: dict[str, Path] = {}
    n = min(s.num_examples, len(test))
    batch = test.batch(range(n))
    g = torch.Generator().manual_seed(seed)
    pred = fk.predict(batch["image"], return_trajectory=True, generator=g)
    gt = body(batch["pose"], batch["betas"]).vertices

    files["transition"] = out / "transition.png"
    fig = plot_trajectory(pred["trajectory"][0], body.faces, files["transition"],
                          title="PostureHMR (FK) reverse process on a synthetic test crop: "
                                "T-pose (t = T) to prediction (t = 0)")
    plt.close(fig)

    # overlays at 4x the crop size: input | prediction (image pipeline) | ground truth
    scale = 4
    size = test.image_size * scale
    K = batch["K"].clone()
    K[:, :2] *= scale
    transl_pred = fit_translation(fk.hierarchy.downsample(pred["vertices"]), pred["mesh2d"] * scale, K)
    big = torch.nn.functional.interpolate(batch["image"], size=(size, size), mode="nearest")
    renders = {key: overlay_mesh(big, verts + transl[:, None], body.faces, K)
               for key, verts, transl in (("pred", pred["vertices"], transl_pred),
                                          ("gt", gt, batch["transl"]))}
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for i in range(n):
        for j, (title, img) in enumerate((("input (synthetic)", big[i]),
                                          ("PostureHMR (FK)", renders["pred"][i]),
                                          ("ground truth", renders["gt"][i]))):
            axes[i, j].imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[i, j].set_axis_off()
            if i == 0:
                axes[i, j].set_title(title, fontsize=9)
    fig.tight_layout()
    files["overlay"] = out / "overlay.png"
    fig.savefig(files["overlay"], dpi=80)
    plt.close(fig)

    mesh_dir = out / "meshes"
    mesh_dir.mkdir(exist_ok=True)
    faces = body.faces.numpy()
    for i in range(n):
        for key, verts in (("pred", pred["vertices"][i]), ("gt", gt[i])):
            path = mesh_dir / f"test{i:02d}_{key}.obj"
            trimesh.Trimesh(verts.numpy(), faces, process=False).export(path)
    files["meshes"] = mesh_dir

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("training curves (synthetic data)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    files["curves"] = out / "training_curves.png"
    fig.savefig(files["curves"], dpi=100)
    plt.close(fig)
    files["checkpoint"] = out / "fk" / "3d_last.pt"
    return files

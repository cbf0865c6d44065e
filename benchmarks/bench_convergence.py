"""Does PostureHMR learn? FK, VL, noise diffusion and the one-step regressor on SynthBody.

    python benchmarks/bench_convergence.py [--steps 1500] [--steps-2d 1200] [--seeds 0 1]
        [--models fk,vl,noise,regressor,fk_paper] [--out benchmarks/results] [--quick]

Synthetic data (SynthBody, the built-in body): every figure this prints is synthetic and says so.
The tiny config, yaw +-180 degrees, 8192 training crops (seed 11), 256 held-out crops (seed 12),
batch 32, the same step budget for every 3D decoder. The 3D stages condition on the GT 2D mesh plus
1 px of Gaussian noise (train and test alike); the FK model also trains its 2D stage (with the
render loss) and is then scored on the full image pipeline, conditioned on its own predicted 2D
mesh. Every ``--eval-every`` steps the models are scored on the held-out crops, so the curves show
whether they have converged.

Rows: ``fk`` (kinediff's default config: the heading root path and rollout training),
``fk_paper`` (the paper's forward process: geodesic root path, exact-path training), ``vl``,
``noise`` (DDPM x0 prediction, DDIM 10 steps), ``regressor`` (GraphormerRegressor, one pass), and
the T-pose template as the no-learning reference (and the template turned to the heading estimated
from the 2D mesh: what the untrained default FK model answers). Targets (issue 16): FK no worse than the noise
baseline within the seeds' spread and <= 0.3x the template's MPVE; the image pipeline <= 0.45x.

Writes ``convergence.json`` (every figure, the curves, the settings) and ``convergence.png``
(training loss and held-out MPVE against the step) into ``--out``; prints the table last.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from kinediff.apps.quickstart import mesh2d_error, template_reference
from kinediff.body import BodyModel
from kinediff.data import SynthBody
from kinediff.decoders import GraphormerRegressor
from kinediff.forward import GaussianNoiseSchedule, VertexLinearSchedule
from kinediff.posturehmr import PostureHMR, PostureHMRConfig
from kinediff.training import TrainConfig, Trainer, evaluate

LABELS = {
    "fk": "PostureHMR FK (kinediff default)",
    "fk_image": "PostureHMR FK, full image pipeline",
    "fk_paper": "FK, the paper's forward process",
    "fk_predicted": "FK image pipeline, 3D on its 2D stage",
    "vl": "VL (kinediff default)",
    "noise": "noise diffusion (x0, DDIM 10)",
    "regressor": "one-step GraphormerRegressor",
    "template": "reference: T-pose template",
    "heading_template": "reference: template at the estimated heading",
}
NOISE_PX = 1.0


def configs(batch_size: int) -> dict[str, PostureHMRConfig]:
    # the render loss is read by the 2D stage only (the FK model's, for the image-pipeline row)
    base = PostureHMRConfig.tiny(train_condition="gt", condition_noise_px=NOISE_PX,
                                 train=TrainConfig.tiny(batch_size=batch_size))
    return {"fk": base, "fk_paper": base.with_paper_path(),
            "vl": base.replace(schedule=VertexLinearSchedule.Config(root_path="heading")),
            "noise": base.replace(schedule=GaussianNoiseSchedule.Config(prediction="sample")),
            "regressor": base.replace(decoder=GraphormerRegressor.Config(**base.decoder.arguments())),
            # the paper's two-stage recipe: the 3D stage conditions on the frozen 2D stage's own
            # predictions, in training and in the score
            "fk_predicted": base.replace(train_condition="predicted", condition_noise_px=0.0)}


def score(model, test, batch_size: int, condition: str, seed: int) -> dict[str, float]:
    device = next(model.parameters()).device
    return evaluate(model, test, batch_size, device, condition=condition,
                    condition_noise_px=NOISE_PX, seed=seed, progress=False,
                    label="SynthBody (synthetic)").summary()


def smooth(values: list[float], every: int) -> list[float]:
    return [statistics.fmean(values[i:i + every]) for i in range(0, len(values), every)]


def run_model(name: str, cfg: PostureHMRConfig, body, train, test, args, seed: int,
              out: Path) -> dict:
    torch.manual_seed(seed)
    model = PostureHMR(cfg, body).to(args.device)
    start = time.perf_counter()
    result: dict = {"curve_steps": [], "curve_mpve": []}
    condition = "predicted" if name == "fk_predicted" else "gt"
    if name in ("fk", "fk_predicted"):  # the 2D stage, for the image-conditioned rows
        model.init_coefficients(train.batch(range(min(len(train), 256))))
        t2d = Trainer(model, "2d", train, out / name / f"seed{seed}", epochs=10**6,
                      max_steps=args.steps_2d, seed=seed, progress=args.progress,
                      tensorboard=False)
        result["loss_2d"] = smooth([r["total"] for r in t2d.fit()], args.smooth)
        result["seconds_2d"] = time.perf_counter() - start
    trainer = Trainer(model, "3d", train, out / name / f"seed{seed}", epochs=10**6, max_steps=0,
                      seed=seed, progress=args.progress, tensorboard=False)
    t3d = time.perf_counter()
    evaluating = 0.0
    for stop in range(args.eval_every, args.steps + args.eval_every, args.eval_every):
        trainer.max_steps = min(stop, args.steps)
        trainer.fit()
        t0 = time.perf_counter()
        summary = score(model, test, args.batch_size, condition, seed)
        evaluating += time.perf_counter() - t0
        result["curve_steps"].append(trainer.step)
        result["curve_mpve"].append(summary["mpve"])
        if trainer.step >= args.steps:
            break
    result["seconds_3d"] = time.perf_counter() - t3d - evaluating
    result["loss_3d"] = smooth([r["total"] for r in trainer.history], args.smooth)
    result["final"] = summary
    if name == "fk":
        result["final_image"] = score(model, test, args.batch_size, "predicted", seed)
    if name in ("fk", "fk_predicted"):
        result["mesh2d_error_px"] = mesh2d_error(model, test, args.batch_size)
    return result


def table(results: dict, reference: dict, args) -> str:
    ref = reference["mpve"]
    rows = [(f"synthetic data (SynthBody, built-in body): {args.n_test} held-out crops, yaw +-180 deg, "
            f"tiny config, {args.steps} 3D steps at batch {args.batch_size}, seeds {args.seeds}; "
            f"condition: GT 2D mesh + {NOISE_PX:g} px unless said"),
            f"{'method':44s} {'MPVE':>15s} {'MPJPE':>15s} {'PA-MPJPE':>15s} {'x template':>10s}"]

    def line(label, runs):
        cells = []
        for key in ("mpve", "mpjpe", "pa_mpjpe"):
            vals = [r[key] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.fmean(vals):7.1f} +- {sd:4.1f}")
        ratio = statistics.fmean(r["mpve"] for r in runs) / ref
        return f"{label:44s} {cells[0]:>15s} {cells[1]:>15s} {cells[2]:>15s} {ratio:10.2f}"

    for name, per_seed in results.items():
        rows.append(line(LABELS[name], [r["final"] for r in per_seed]))
        if name == "fk":
            rows.append(line(LABELS["fk_image"], [r["final_image"] for r in per_seed]))
    rows.append(line(LABELS["template"], [reference]))
    if "heading_template" in reference:
        rows.append(line(LABELS["heading_template"], [reference["heading_template"]]))
    return "\n".join(rows)


def targets(results: dict, reference: dict) -> list[str]:
    """The issue's targets, each with its measured figure and PASS / MISS."""
    ref = reference["mpve"]
    out = []
    if "fk" in results:
        fk = [r["final"]["mpve"] for r in results["fk"]]
        img = [r["final_image"]["mpve"] for r in results["fk"]]
        out.append(f"FK MPVE {statistics.fmean(fk):.1f} <= 0.3 x template ({0.3 * ref:.1f}): "
                   f"{'PASS' if statistics.fmean(fk) <= 0.3 * ref else 'MISS'}")
        out.append(f"FK image pipeline MPVE {statistics.fmean(img):.1f} <= 0.45 x template "
                   f"({0.45 * ref:.1f}): {'PASS' if statistics.fmean(img) <= 0.45 * ref else 'MISS'}")
        if "noise" in results:
            noise = [r["final"]["mpve"] for r in results["noise"]]
            spread = max(statistics.stdev(fk) if len(fk) > 1 else 0.0,
                         statistics.stdev(noise) if len(noise) > 1 else 0.0)
            ok = statistics.fmean(fk) <= statistics.fmean(noise) + spread
            out.append(f"FK MPVE {statistics.fmean(fk):.1f} no worse than noise "
                       f"{statistics.fmean(noise):.1f} (+ spread {spread:.1f}): "
                       f"{'PASS' if ok else 'MISS'}")
    if "fk_predicted" in results:
        img = statistics.fmean(r["final"]["mpve"] for r in results["fk_predicted"])
        out.append(f"FK image pipeline (3D on its 2D stage) MPVE {img:.1f} <= 0.45 x template "
                   f"({0.45 * ref:.1f}): {'PASS' if img <= 0.45 * ref else 'MISS'}")
    return out


def plot(results: dict, reference: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_mpve) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, per_seed in results.items():
        for i, run in enumerate(per_seed):
            steps = [(k + 0.5) * args.smooth for k in range(len(run["loss_3d"]))]
            ax_loss.plot(steps, run["loss_3d"], color=f"C{list(results).index(name)}",
                         alpha=1.0 if i == 0 else 0.4, label=LABELS[name] if i == 0 else None)
        mean = [statistics.fmean(v) for v in zip(*(r["curve_mpve"] for r in per_seed))]
        ax_mpve.plot(per_seed[0]["curve_steps"], mean, "o-", color=f"C{list(results).index(name)}",
                     label=LABELS[name])
    ref = reference["mpve"]
    ax_mpve.axhline(ref, color="grey", ls=":", label=LABELS["template"])
    ax_mpve.axhline(0.3 * ref, color="grey", ls="--", label="target: 0.3 x template")
    ax_loss.set(xlabel="3D training step", ylabel="training loss (total, log scale)",
                yscale="log", title="3D-stage training loss (each model's own terms)")
    ax_mpve.set(xlabel="3D training step", ylabel="held-out MPVE (mm)",
                title=f"held-out MPVE, mean over seeds {args.seeds}")
    ax_loss.legend(fontsize=8)
    ax_mpve.legend(fontsize=8)
    fig.suptitle("SynthBody (synthetic data), tiny config, GT 2D mesh + 1 px condition")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="3D training steps per model")
    parser.add_argument("--steps-2d", type=int, default=1200,
                        help="2D steps of the FK model (1200: about 16 of the default run's 30 "
                             "minutes; 300 leaves its 2D mesh 4.5 px off, see docs/posturehmr.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--models", default="fk,vl,noise,regressor")
    parser.add_argument("--n-train", type=int, default=8192)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--smooth", type=int, default=50, help="steps per loss-curve point")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="convergence", help="output file name (no suffix)")
    parser.add_argument("--quick", action="store_true", help="seconds-long sizes (a smoke test)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.steps_2d, args.n_train, args.n_test = 4, 2, 32, 8
        args.batch_size, args.eval_every, args.smooth = 8, 2, 2
    names = args.models.split(",")
    unknown = set(names) - set(configs(args.batch_size))
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {sorted(configs(32))}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    body = BodyModel.synthetic()
    cfgs = configs(args.batch_size)
    kw = dict(image_size=64, mesh_factors=(4, 4, 4), yaw_range=180.0, cache=True,
              progress=args.progress)
    train = SynthBody(args.n_train, seed=11, body=body, **kw)
    test = SynthBody(args.n_test, seed=12, body=body, **kw)
    reference = template_reference(body, test, args.batch_size)
    # an untrained FK model moves nothing (its last layer starts at zero): it answers the coarse
    # template turned to the heading estimated from the 2D mesh, up-sampled
    reference["heading_template"] = score(PostureHMR(cfgs["fk"], body).to(args.device), test,
                                          args.batch_size, "gt", 0)
    results: dict[str, list[dict]] = {}
    start = time.perf_counter()
    runs = out / "convergence_runs"
    for name in names:
        for seed in args.seeds:
            run = run_model(name, cfgs[name], body, train, test, args, seed, runs)
            results.setdefault(name, []).append(run)
            print(f"{LABELS[name]}, seed {seed}: MPVE {run['final']['mpve']:.1f} mm (synthetic), "
                  f"3D stage {run['seconds_3d']:.0f} s", flush=True)
    total = time.perf_counter() - start
    text = table(results, reference, args)
    checks = targets(results, reference)
    stem = args.name + ("_quick" if args.quick else "")
    where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
             else f"CPU, {torch.get_num_threads()} threads")
    report = {"data": "SynthBody (synthetic)", "machine": f"{platform.machine()}, {where}",
              "settings": vars(args),
              "configs": {n: cfgs[n].to_dict() for n in names}, "template": reference,
              "results": results, "targets": checks, "seconds": total, "table": text}
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot(results, reference, args, out / f"{stem}.png")
    print(f"\n{text}\n")
    for line in checks:
        print(line)
    print(f"total {total / 60:.1f} min; wrote {out / f'{stem}.json'} and .png")


if __name__ == "__main__":
    main()

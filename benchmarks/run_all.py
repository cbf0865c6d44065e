"""Run every benchmark, save the figures per machine, and plot how costs grow.

    python benchmarks/run_all.py [--quick] [--machine NAME] [--docs]

Runs each ``bench_*.py`` in its own process (``--json``), adds two mesh-size sweeps (skinning and
the soft silhouette rasterizer on the hierarchy's 6890 / 1723 / 431 / 108-vertex levels) and, where
torch sees a CUDA device, ``gpu_check.py``'s rows (a row saying "skipped" elsewhere), and writes

- ``benchmarks/results/<machine>.json``: every row of every benchmark, with the machine's details;
- ``benchmarks/results/<machine>.md``: the same as markdown tables;
- ``benchmarks/results/<machine>_batch.png`` and ``_mesh.png``: cost against batch size and
  against mesh size (log-log); with ``--docs`` also copied to ``docs/img/`` for the docs.

``--quick`` uses fewer repeats and sizes (minutes instead of tens of minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _timing import median_seconds

SCRIPTS = {
    "body": ("bench_body.py", ["--batches", "1", "8", "64", "256", "512"], ["--repeats", "5"]),
    "forward": ("bench_forward.py", ["--batches", "16", "64", "256"], ["--repeats", "3"]),
    "decoder": ("bench_decoder.py", ["--batches", "1", "8", "32"], ["--repeats", "3"]),
    # the pytorch3d peer (about 45 min on 2 CPU cores) has its own run and results file:
    # python benchmarks/bench_render.py --peer only
    "render": ("bench_render.py", ["--peer", "off"], ["--repeats", "2", "--peer", "off"]),
    "train": ("bench_train.py", [], ["--steps", "6"]),
    # SMPL fitting against smplx + Adam and smplfitter (the PostureHMR part trains for minutes:
    # run bench_fit.py alone for it)
    "fit": ("bench_fit.py", ["--no-predicted", "--smplfitter-batches", "1", "64", "1024"],
            ["--quick", "--no-predicted"]),
    "export": ("bench_export.py", [], ["--repeats", "1"]),
    "smooth": ("bench_smooth.py", [], ["--repeats", "5"]),
    "video": ("bench_video.py", [], ["--repeats", "1", "--frames", "8"]),
}
# not here: bench_load.py (minutes of busy processes beside it). benchmarks/gpu_check.py, the one
# script for a CUDA machine, is the "gpu" row: run where torch sees a CUDA device (its own full
# report goes to gpu_check.json in the results folder), one row saying so elsewhere.
GPU_CHECK = "gpu_check.py"


def machine_info() -> dict:
    info = {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def default_name() -> str:
    gpu = f"-{torch.cuda.get_device_name(0).replace(' ', '_')}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}-{os.cpu_count()}cpu{gpu}"


def run_script(name: str, quick: bool) -> list[dict]:
    script, sizes, quick_args = SCRIPTS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(HERE / script), "--json", str(out)]
        cmd += (quick_args if quick else []) + (sizes if not quick or name != "body" else
                                                 ["--batches", "1", "64", "512"])
        print(f"== {script}", flush=True)
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def gpu_rows(quick: bool, out: Path) -> list[dict]:
    """gpu_check.py's table rows on a CUDA machine (``--budget 300`` with ``--quick``; its whole
    report goes to ``out/gpu_check.json``); one row saying why not elsewhere."""
    if not torch.cuda.is_available():
        return [{"item": "gpu_check.py", "status": "skipped", "note": "no CUDA device here"}]
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE / GPU_CHECK), "--json", str(out / "gpu_check.json")]
    cmd += ["--budget", "300"] if quick else []
    print(f"== {GPU_CHECK}", flush=True)
    subprocess.run(cmd, check=True)
    report = json.loads((out / "gpu_check.json").read_text())
    return [{k: v for k, v in row.items() if k in ("item", "variant", "batch", "value", "unit",
                                                    "ms", "peak_mb", "status", "note")}
            for row in report["results"]]


def mesh_sweep(quick: bool) -> list[dict]:
    """Skinning (batch 64) and soft silhouettes (batch 8, 128 px) per hierarchy level."""
    from kinediff.body import BodyModel, axis_angle_to_matrix, forward_kinematics, linear_blend_skinning
    from kinediff.mesh import MeshHierarchy
    from kinediff.render import soft_silhouette

    body = BodyModel.synthetic()
    h = MeshHierarchy.from_body(body, (4, 4, 4))
    rows = []
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(64, 24, 3, generator=g) * 0.4
    fk = forward_kinematics(axis_angle_to_matrix(pose),
                            body.joint_template.expand(64, -1, -1), body.parent_list)
    repeats = 3 if quick else 7
    for level, n in enumerate(h.sizes):
        sel = h.selection(level)
        rest = body.v_template[sel].expand(64, -1, -1)
        weights = body.weights[sel]
        with torch.inference_mode():
            t = median_seconds(lambda: linear_blend_skinning(rest, weights, fk.skinning_transforms),
                               torch.device("cpu"), repeats)
        rows.append({"op": "skinning (B=64)", "vertices": n, "ms": 1e3 * t})
        faces = h.faces(level)
        # a front view of the template scaled into a 128-pixel image
        xy = body.v_template[sel][:, :2] * torch.tensor([1.0, -1.0])
        xy = (xy - xy.min(0).values) / (xy.max(0).values - xy.min(0).values).max() * 110 + 9
        verts = xy.expand(8, -1, -1).clone().requires_grad_()

        def render():
            soft_silhouette(verts, faces, 128, 1.0).sum().backward()

        t = median_seconds(render, torch.device("cpu"), max(2, repeats // 2))
        rows.append({"op": "soft silhouette fwd+bwd (B=8, 128 px)", "vertices": n,
                     "faces": int(faces.shape[0]), "ms": 1e3 * t})
    return rows


def markdown(results: dict) -> str:
    lines = [f"# Benchmarks on {results['name']}", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in results["info"].items()), ""]
    for name, rows in results["benchmarks"].items():
        if not rows:
            continue
        keys = list(rows[0])
        lines += [f"## {name}", "", "| " + " | ".join(keys) + " |",
                  "|" + "---|" * len(keys)]
        for row in rows:
            lines.append("| " + " | ".join(f"{row.get(k, ''):.3g}" if isinstance(row.get(k), float)
                                            else str(row.get(k, "")) for k in keys) + " |")
        lines.append("")
    return "\n".join(lines)


def plots(results: dict, stem: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = results["benchmarks"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = [("body forward: kinediff", "body", "kinediff_ms", {}),
              ("body forward: smplx", "body", "peer_ms", {}),
              ("FK trajectory T=10 (paper, numba)", "forward", "kinediff_ms",
               {"blend": "paper", "backend": "numba"}),
              ("FK trajectory T=10 (paper, torch)", "forward", "kinediff_ms",
               {"blend": "paper", "backend": "torch"}),
              ("smplx loop of 11 calls", "forward", "peer_ms", {"blend": "paper", "backend": "torch"}),
              ("M2P reverse, 10 steps", "decoder", "reverse_ms", {}),
              ("HRNet-W48 forward", "decoder", "hrnet_ms", {})]
    for label, key, field, match in series:
        rows = [r for r in b.get(key, []) if r.get("device") == "cpu"
                and all(r.get(k) == v for k, v in match.items())]
        if rows:
            ax.plot([r["batch"] for r in rows], [r[field] for r in rows], "o-", label=label)
    out = [_finish(fig, ax, "batch size", results["name"], stem.with_name(stem.name + "_batch.png"))]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for op in sorted({r["op"] for r in b.get("mesh", [])}):
        rows = [r for r in b["mesh"] if r["op"] == op]
        ax.plot([r["vertices"] for r in rows], [r["ms"] for r in rows], "o-", label=op)
    out.append(_finish(fig, ax, "mesh vertices (hierarchy levels)", results["name"],
                       stem.with_name(stem.name + "_mesh.png")))
    return out


def _finish(fig, ax, xlabel: str, name: str, path: Path) -> Path:
    """Log-log axes, labels, legend; save and close."""
    import matplotlib.pyplot as plt

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ms (CPU, median)")
    ax.set_title(f"cost against {xlabel.split(' (')[0]} — {name}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--machine", default=None, help="name of the results files")
    parser.add_argument("--only", nargs="+", choices=[*SCRIPTS, "mesh", "gpu"], default=None,
                        help="run only these benchmarks")
    parser.add_argument("--docs", action="store_true", help="copy the plots to docs/img/")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder")
    args = parser.parse_args(argv)
    name = args.machine or default_name()
    chosen = args.only or [*SCRIPTS, "mesh", "gpu"]
    results = {"name": name, "info": machine_info(), "benchmarks": {}}
    special = {"mesh": mesh_sweep, "gpu": lambda quick: gpu_rows(quick, Path(args.out))}
    for key in chosen:
        results["benchmarks"][key] = (special[key](args.quick) if key in special
                                      else run_script(key, args.quick))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1))
    (out / f"{name}.md").write_text(markdown(results))
    pngs = plots(results, out / name)
    if args.docs:
        for png in pngs:
            shutil.copy(png, HERE.parent / "docs" / "img" / f"benchmarks{png.name[len(name):]}")
    print(f"wrote {out / (name + '.json')}, {out / (name + '.md')}, " + ", ".join(map(str, pngs)))
    return results


if __name__ == "__main__":
    main()

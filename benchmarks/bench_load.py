"""A busy machine: how much kinediff slows down beside other CPU-bound processes, against plain
PyTorch models of similar cost in the same run, under OpenMP's default wait, the passive policy and
the short spin kinediff's entry points set (``GOMP_SPINCOUNT=3000``, kinediff.core.threads).

    python benchmarks/bench_load.py [--steps 15] [--busy 0 1 2] [--policies default passive spin3000]
                                    [--quickstart-steps 50] [--json PATH]

Each policy runs in a fresh child process (OpenMP reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT``
once, when torch loads; "default" leaves both unset, as a plain ``import torch`` does). In each child, for 0, 1 and 2
other processes spinning on one core each, the medians of ``--steps`` runs of

- kinediff: the tiny config's 2D and 3D (FK) training steps (B = 32, SynthBody crops), ``predict``
  (B = 8), an FK trajectory (B = 64, T = 10), and the quickstart's first ``--quickstart-steps`` 2D
  steps through its ``Trainer`` (timed whole, once);
- plain PyTorch: timm's ``hrnet_w18_small`` forward + backward on the same crops (B = 32, the 2D
  step's peer), an 8-layer MLP forward + backward (the 3D step's);

and prints each one's quiet time and its slowdown beside 1 and 2 busy processes, per policy, and
the quiet cost of the passive policy. Targets (the busy-machine issue): the quickstart's steps
beside one busy process <= 2x their quiet time; kinediff's slowdown no worse than plain PyTorch's
under the same policy. Synthetic data; the figures are costs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _workloads(quickstart_steps: int):
    import timm
    import torch

    from kinediff.apps.quickstart import QuickstartSettings, quickstart_configs
    from kinediff.body import BodyModel
    from kinediff.data import SynthBody
    from kinediff.forward import FKSchedule
    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import Trainer

    torch.manual_seed(0)
    body = BodyModel.synthetic()
    cfg = PostureHMRConfig.tiny(train_condition="gt", condition_noise_px=1.0)
    data = SynthBody(64, seed=3, body=body, image_size=cfg.image_size,
                     mesh_factors=cfg.mesh_factors, cache=True, progress=False)
    batch = data.batch(range(32))
    model = PostureHMR(cfg, body)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)

    def step_2d():
        opt.zero_grad()
        model.loss_2d(batch)["total"].backward()
        opt.step()

    def step_3d():
        opt.zero_grad()
        model.loss_3d(batch, generator=g)["total"].backward()
        opt.step()

    images = batch["image"][:8]
    model_eval = PostureHMR(cfg, body).eval()

    def predict():
        model_eval.predict(images)

    schedule = FKSchedule(body, num_steps=10)
    pose, betas = torch.randn(64, 24, 3) * 0.4, torch.randn(64, 10)

    def trajectory():
        with torch.no_grad():
            schedule.trajectory(pose, betas)

    net = timm.create_model("hrnet_w18_small", pretrained=False, features_only=True)
    crops = batch["image"]
    opt2 = torch.optim.Adam(net.parameters(), 1e-4)

    def hrnet():
        opt2.zero_grad()
        sum(f.float().mean() for f in net(crops)).backward()
        opt2.step()

    mlp = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(8)])
    y = torch.randn(256, 512)
    opt3 = torch.optim.Adam(mlp.parameters(), 1e-4)

    def plain_mlp():
        opt3.zero_grad()
        mlp(y).square().mean().backward()
        opt3.step()

    s = QuickstartSettings()
    qcfg = quickstart_configs(s)["fk"]
    qdata = SynthBody(s.n_train, seed=1, body=body, image_size=qcfg.image_size,
                      mesh_factors=qcfg.mesh_factors, yaw_range=s.yaw_range, cache=True,
                      progress=False)

    def quickstart():
        torch.manual_seed(0)
        fk = PostureHMR(qcfg, body)
        fk.init_coefficients(qdata.batch(range(256)))
        with tempfile.TemporaryDirectory() as out:
            Trainer(fk, "2d", qdata, out, epochs=10_000, max_steps=quickstart_steps, seed=0,
                    progress=False, tensorboard=False).fit()

    return {"kinediff 2D step (tiny, B=32)": (step_2d, "plain torch: hrnet_w18_small fwd+bwd"),
            "kinediff 3D step, FK (tiny, B=32)": (step_3d, "plain torch: 8-layer MLP fwd+bwd"),
            "kinediff predict (tiny, B=8)": (predict, "plain torch: hrnet_w18_small fwd+bwd"),
            "kinediff FK trajectory (B=64, T=10)": (trajectory, "plain torch: 8-layer MLP fwd+bwd"),
            "plain torch: hrnet_w18_small fwd+bwd": (hrnet, None),
            "plain torch: 8-layer MLP fwd+bwd": (plain_mlp, None),
            f"quickstart: first {quickstart_steps} 2D steps (Trainer, whole)": (quickstart, None)}


def child(args) -> None:
    """Run in a fresh process whose OMP_WAIT_POLICY was set (or not) before torch loaded."""
    import torch
    from _timing import median_seconds  # imports torch: only in the child, after the policy

    from kinediff.core.threads import idle_cores, idle_thread_count

    work = _workloads(args.quickstart_steps)
    rows: dict[str, dict[str, float]] = {name: {} for name in work}
    threads: dict[str, int] = {}
    full = torch.get_num_threads()
    for busy in args.busy:
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(1.0)
        # "-idle" policies: the thread count kinediff's entry points would pick when they start
        # beside this load (kinediff.core.threads.use_idle_cores sets OMP_NUM_THREADS to it)
        idle = idle_cores() if args.fit_threads else None
        torch.set_num_threads((idle_thread_count(idle, full) or full) if idle is not None else full)
        threads[str(busy)] = torch.get_num_threads()
        try:
            for name, (fn, _) in work.items():
                n = 1 if name.startswith("quickstart") else args.steps
                if n == 1:
                    t0 = time.perf_counter()
                    fn()
                    rows[name][str(busy)] = time.perf_counter() - t0
                else:
                    rows[name][str(busy)] = median_seconds(fn, torch.device("cpu"), n, warmup=2)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    peers = {name: peer for name, (_, peer) in work.items()}
    print(json.dumps({"policy": os.environ.get("OMP_WAIT_POLICY",
                                                os.environ.get("GOMP_SPINCOUNT", "default")),
                      "threads": threads, "rows": rows, "peers": peers}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=["default", "passive", "spin3000"],
                        help="default (nothing set), passive (OMP_WAIT_POLICY=PASSIVE), spinN "
                             "(GOMP_SPINCOUNT=N); a '-idle' suffix also uses only the cores the "
                             "busy processes leave idle (OMP_NUM_THREADS): kinediff's entry "
                             "points use spin3000-idle")
    parser.add_argument("--quickstart-steps", type=int, default=50)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fit-threads", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = {}
    for policy in args.policies:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
        wait, _, idle = policy.partition("-")
        if wait.startswith("spin"):
            env["GOMP_SPINCOUNT"] = wait[4:]
        elif wait != "default":
            env["OMP_WAIT_POLICY"] = wait.upper()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--steps", str(args.steps),
               "--quickstart-steps", str(args.quickstart_steps), "--busy", *map(str, args.busy)]
        if idle == "idle":
            cmd.append("--fit-threads")
        elif idle:
            sys.exit(f"unknown policy {policy!r}: a wait policy, optionally with '-idle'")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"the {policy} child failed:\n{done.stderr[-3000:]}")
        results[policy] = json.loads(done.stdout.strip().splitlines()[-1])
    busy = [str(b) for b in args.busy if b]
    head = " | ".join(f"x{b} busy ({p})" for p in args.policies for b in busy)
    print(f"| workload | quiet ms ({' / '.join(args.policies)}) | {head} |")
    print("|---" * (2 + len(busy) * len(args.policies)) + "|")
    first = results[args.policies[0]]
    for name in first["rows"]:
        quiet = " / ".join(f"{results[p]['rows'][name]['0'] * 1e3:,.0f}" for p in args.policies)
        ratios = " | ".join(f"{results[p]['rows'][name][b] / results[p]['rows'][name]['0']:.2f}"
                            for p in args.policies for b in busy)
        print(f"| {name} | {quiet} | {ratios} |")
    print("\nkinediff's slowdown / its plain-PyTorch peer's, same policy and load (<= 1: no worse):")
    for p in args.policies:
        rows, peers = results[p]["rows"], results[p]["peers"]
        for name, peer in peers.items():
            if peer is None:
                continue
            parts = []
            for b in busy:
                ours = rows[name][b] / rows[name]["0"]
                theirs = rows[peer][b] / rows[peer]["0"]
                parts.append(f"{b} busy: {ours / theirs:.2f}")
            print(f"  {p:8s} {name}: " + ", ".join(parts))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

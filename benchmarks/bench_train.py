"""Training throughput (samples/s) with 1 and 2 processes on torch.distributed, and on a GPU.

    python benchmarks/bench_train.py [--steps 12] [--batch 16] [--config tiny|paper]

Each run trains the 3D stage of PostureHMR (FK schedule, GT 2D-mesh condition) on cached SynthBody
crops for ``--steps`` timed steps after 2 warm-up steps, in fresh processes started by
torch.multiprocessing (gloo on CPU, NCCL on GPUs). The CPU's cores are split between the
processes, so on CPU the 2-process figure measures DDP's overhead more than a speed-up; the
issue's target (>= 1.7x from 1 to 2 processes) applies where two devices exist (two GPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.multiprocessing as mp
from _timing import write_json


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, args: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    if args["device"] == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // world))
    from kinediff.body import BodyModel
    from kinediff.data import SynthBody
    from kinediff.posturehmr import PostureHMR, PostureHMRConfig
    from kinediff.training import Trainer, cleanup, setup

    info = setup()
    body = BodyModel.synthetic()
    cfg = (PostureHMRConfig.tiny if args["config"] == "tiny" else PostureHMRConfig)(
        train_condition="gt", condition_noise_px=1.0)
    cfg = replace(cfg, train=replace(cfg.train, batch_size=args["batch"]))
    data = SynthBody(args["batch"] * 4, seed=1, body=body, image_size=cfg.image_size,
                     mesh_factors=cfg.mesh_factors, cache=True, progress=False)
    torch.manual_seed(0)
    model = PostureHMR(cfg, body)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, "3d", data, tmp, epochs=10**6, progress=False, tensorboard=False,
                          distributed=info)
        trainer.max_steps = 2
        trainer.fit()
        if info.device.type == "cuda":
            torch.cuda.synchronize()
        if info.active:
            torch.distributed.barrier()
        start = time.perf_counter()
        trainer.max_steps = 2 + args["steps"]
        trainer.fit()
        if info.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    if info.is_main:
        Path(out).write_text(json.dumps({"seconds": seconds}))
    cleanup()


def run(world: int, args: dict) -> float:
    """Samples per second of ``world`` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.spawn(_worker, args=(world, _port(), args, out), nprocs=world, join=True)
        seconds = json.loads(Path(out).read_text())["seconds"]
    return args["steps"] * args["batch"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--config", choices=["tiny", "paper"], default="tiny")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    a = parser.parse_args()
    rows = []
    setups = [("cpu", 1), ("cpu", 2)]
    if torch.cuda.is_available():
        setups.append(("cuda", 1))
        if torch.cuda.device_count() >= 2:
            setups.append(("cuda", 2))
    for device, world in setups:
        args = {"steps": a.steps, "batch": a.batch, "config": a.config, "device": device}
        rows.append((device, world, run(world, args)))
    print(f"PostureHMR 3D-stage training throughput ({a.config} config, global batch {a.batch}, "
          f"{a.steps} steps, synthetic data)")
    print(f"{'device':<8} {'processes':>9} {'samples/s':>10} {'vs 1 process':>13}")
    for device, world, rate in rows:
        base = next(r for d, w, r in rows if d == device and w == 1)
        print(f"{device:<8} {world:>9} {rate:>10.1f} {rate / base:>12.2f}x")
    write_json([{"device": d, "processes": w, "samples_per_s": r} for d, w, r in rows], a.json)


if __name__ == "__main__":
    main()

"""BodyModel forward against smplx.SMPL forward on the same (synthetic) SMPL file.

Batch 1, 64 and 512 on CPU (and CUDA when available), in one process, inference mode, float32.
Prints median times and the ratio smplx / kinediff (> 1 means kinediff is faster).
Target (issue 2): kinediff at least as fast as smplx at every batch size.

    python benchmarks/bench_body.py [--batches 1 64 512] [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform

import smplx
import torch
from _timing import devices, median_seconds_pair, write_json

from kinediff.body import BodyModel, synthetic_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 512])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    path = synthetic_model_path(0)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; body: synthetic (SMPL layout, 6890 vertices)")
    print(f"{'device':<7}{'batch':>6}{'kinediff ms':>13}{'smplx ms':>11}{'ratio':>8}")
    rows = []
    for device in devices():
        ours = BodyModel.synthetic(0).to(device)
        ref = smplx.SMPL(model_path=str(path)).to(device)
        for batch in args.batches:
            pose = (torch.randn(batch, 24, 3) * 0.5).to(device)
            betas = torch.randn(batch, 10).to(device)
            transl = torch.randn(batch, 3).to(device)
            with torch.inference_mode():
                def run_ours():
                    return ours(pose, betas, transl)

                def run_ref():
                    return ref(betas=betas, global_orient=pose[:, 0],
                               body_pose=pose[:, 1:].reshape(batch, -1), transl=transl)

                t_ours, t_ref = median_seconds_pair(run_ours, run_ref, device, args.repeats)
            print(f"{device.type:<7}{batch:>6}{1e3 * t_ours:>13.2f}{1e3 * t_ref:>11.2f}"
                  f"{t_ref / t_ours:>8.2f}")
            rows.append({"device": device.type, "batch": batch, "kinediff_ms": 1e3 * t_ours,
                         "peer_ms": 1e3 * t_ref, "ratio": t_ref / t_ours})
    write_json(rows, args.json)


if __name__ == "__main__":
    main()

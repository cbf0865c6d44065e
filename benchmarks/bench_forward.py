"""Full T = 10 trajectories (11 meshes) with FKSchedule against a per-step smplx.SMPL loop.

The peer is what a user would otherwise write: call smplx once per step with the interpolated
parameters (theta_t = (1 - s) theta, beta_t = (1 - s) beta, root on the geodesic to the template).
Both run in one process, alternating, inference mode, float32; medians are printed with the ratio
smplx / kinediff (> 1: kinediff faster). Targets (issue 3): blend="paper" >= 5x, blend="exact"
>= 1.5x. The paper blend is timed with each skinning backend: "numba" (the fused sparse kernel,
kinediff[fast]; what backend="auto" takes where numba is installed) and "torch" (blocked GEMMs).
Also prints the skinning's achieved GFLOP/s and GB/s next to a plain matmul and copy.

    python benchmarks/bench_forward.py [--batches 64 256]
    THP_MEM_ALLOC_ENABLE=1 python benchmarks/bench_forward.py   # PyTorch's huge-page CPU buffers
"""

from __future__ import annotations

import argparse
import os

import smplx
import torch
from _timing import devices, median_seconds_pair, write_json

from kinediff.body import (
    BodyModel,
    _lbs_numba,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    synthetic_model_path,
)
from kinediff.body import skinning
from kinediff.forward import FKSchedule


def smplx_loop(model, schedule: FKSchedule, pose, betas):
    """The per-step loop a user would write with smplx (same meshes as blend="exact")."""
    out = []
    rot0 = axis_angle_to_matrix(pose[:, 0])
    rel = matrix_to_axis_angle(rot0.transpose(-1, -2) @ schedule.template_orientation)
    for t in range(schedule.num_steps + 1):
        s = float(schedule.progress(torch.tensor(t)))
        root = matrix_to_axis_angle(rot0 @ axis_angle_to_matrix(s * rel))
        out.append(model(betas=(1 - s) * betas, global_orient=root,
                         body_pose=((1 - s) * pose[:, 1:]).reshape(len(pose), -1)).vertices)
    return torch.stack(out, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "0")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; body: synthetic "
          f"(SMPL layout, 6890 vertices); T = 10; THP_MEM_ALLOC_ENABLE={thp} (PyTorch's huge "
          f"pages for CPU buffers >= 2 MB: fewer page faults on fresh outputs, for both sides)")
    print(f"{'device':<7}{'batch':>6}{'blend':>7}{'backend':>8}{'kinediff ms':>13}{'smplx loop ms':>15}"
          f"{'ratio':>8}")
    rows = []
    for device in devices():
        body = BodyModel.synthetic(0).to(device)
        ref = smplx.SMPL(model_path=str(synthetic_model_path(0))).to(device)
        for batch in args.batches:
            pose = (torch.randn(batch, 24, 3) * 0.5).to(device)
            betas = torch.randn(batch, 10).to(device)
            cases = [("paper", "numba"), ("paper", "torch"), ("exact", "torch")]
            for blend, backend in cases:
                if backend == "numba" and not skinning._use_numba("auto", body.weights, (pose,)):
                    print(f"{device.type:<7}{batch:>6}{blend:>7}{backend:>8}  (numba not installed "
                          f"or not for this device: pip install 'kinediff[fast]')")
                    continue
                schedule = FKSchedule(body, blend=blend, backend=backend)
                with torch.inference_mode():
                    t_ours, t_ref = median_seconds_pair(lambda: schedule.trajectory(pose, betas),
                                                        lambda: smplx_loop(ref, schedule, pose, betas),
                                                        device, args.repeats)
                print(f"{device.type:<7}{batch:>6}{blend:>7}{backend:>8}{1e3 * t_ours:>13.1f}"
                      f"{1e3 * t_ref:>15.1f}{t_ref / t_ours:>8.2f}")
                rows.append({"device": device.type, "batch": batch, "blend": blend,
                             "backend": backend, "thp": thp, "kinediff_ms": 1e3 * t_ours,
                             "peer_ms": 1e3 * t_ref, "ratio": t_ref / t_ours})
        write_json(rows, args.json)
        # machine limits next to the skinning: a plain matmul and a plain copy of the same sizes
        n = 64 * 11
        v, j = body.num_vertices, body.num_joints

        rest = torch.randn(n, v, 3, device=device)
        tf = torch.randn(n, j, 3, 4, device=device)
        w = body.weights
        a, b = torch.randn(v, j, device=device), torch.randn(j, 12 * n, device=device)
        big = torch.empty(n, v, 12, device=device)
        with torch.inference_mode():
            t_skin, t_mm = median_seconds_pair(
                lambda: skinning.linear_blend_skinning(rest, w, tf, backend="torch"), lambda: a @ b, device,
                args.repeats)
            t_fused, _ = median_seconds_pair(lambda: skinning.linear_blend_skinning(rest, w, tf),
                                             lambda: None, device, args.repeats)
            t_copy, _ = median_seconds_pair(lambda: big.clone(), lambda: None, device, args.repeats)
        flop = 2 * v * j * 12 * n + 8 * 3 * v * n  # dense GEMM over all joints + the apply
        k = _lbs_numba.influences(w)
        sparse_flop = n * v * k * 30  # per joint: 3 rows of 4 multiply-adds, weighted
        moved = 4 * (2 * n * v * 3)  # read rest vertices, write meshes
        print(f"{device.type}: skinning of {n} meshes, torch path {1e3 * t_skin:.1f} ms = "
              f"{flop / t_skin / 1e9:.1f} GFLOP/s (dense-equivalent), {moved / t_skin / 1e9:.2f} GB/s; "
              f"backend='auto' {1e3 * t_fused:.1f} ms = {sparse_flop / t_fused / 1e9:.1f} GFLOP/s "
              f"(sparse, {k} joints per vertex), {moved / t_fused / 1e9:.2f} GB/s; plain matmul of "
              f"the same GEMM {2 * v * j * 12 * n / t_mm / 1e9:.1f} GFLOP/s; plain copy of "
              f"{big.numel() * 4 / 1e6:.0f} MB {2 * big.numel() * 4 / t_copy / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()

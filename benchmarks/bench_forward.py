"""Full T = 10 trajectories (11 meshes) with FKSchedule against a per-step smplx.SMPL loop.

The peer is the loop a user would write with smplx alone: per step t, s = t / T, call smplx with
the interpolated parameters (theta_t = (1 - s) theta, beta_t = (1 - s) beta, the root slerped from
its own orientation to the template's, with the user's own quaternion code: no kinediff in the
peer) and keep the 11 (B, V, 3) meshes in a list (not stacked into one tensor, which would cost the
peer a copy and page faults). Both run in one process, alternating, under ``torch.no_grad()``,
float32, with the process's default threads and OpenMP settings (the header prints
``OMP_WAIT_POLICY`` and the load average: on a shared machine the default, active-spinning OpenMP
threads make every parallel region a chance to wait for a descheduled thread); medians are printed
with the ratio smplx / kinediff (> 1: kinediff faster), and the peer's meshes are checked against
kinediff's (``maxdiff``, metres). Targets (issue 3): blend="paper" >= 5x, blend="exact" >= 1.5x
(issue 20: also with roots near 180 deg).

Rows: the paper blend with each skinning backend, "numba" (the fused sparse kernel,
kinediff[fast]; what backend="auto" takes where numba is installed) and "torch" (blocked GEMMs),
and the exact blend with both, for small roots (pose ~ N(0, 0.5)) and for roots near 180 deg
(angle in [pi - 0.3, pi] about a random axis; body pose as before), where the root's path to the
template is long. Also prints the skinning's achieved GFLOP/s and GB/s next to a plain matmul and
copy.

    python benchmarks/bench_forward.py [--batches 64 256]
    THP_MEM_ALLOC_ENABLE=1 python benchmarks/bench_forward.py   # PyTorch's huge-page CPU buffers
"""

from __future__ import annotations

import argparse
import math
import os

import smplx
import torch
from _timing import devices, median_seconds_pair, write_json

from kinediff.body import BodyModel, lbs_numba, matrix_to_axis_angle, skinning, synthetic_model_path
from kinediff.forward import FKSchedule

#: (blend, backend, roots) rows per batch size
CASES = [("paper", "numba", "small"), ("paper", "torch", "small"), ("exact", "numba", "small"),
         ("exact", "torch", "small"), ("exact", "numba", "near-pi"), ("exact", "torch", "near-pi")]


# -- the user's code: quaternions for the root's slerp, smplx for the meshes ----------------------

def quaternion(axis_angle):
    """(B, 3) axis-angle -> (B, 4) unit quaternions (w, x, y, z)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    axis = axis_angle / angle.clamp_min(1e-12)
    return torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], dim=-1)


def axis_angle(q):
    """(B, 4) unit quaternions -> (B, 3) axis-angle with angles in [0, pi]."""
    q = torch.where(q[:, :1] < 0, -q, q)
    vec = q[:, 1:]
    norm = vec.norm(dim=-1, keepdim=True)
    return vec / norm.clamp_min(1e-12) * 2 * torch.atan2(norm, q[:, :1])


def slerp(q0, q1, s: float):
    """Shortest-arc spherical interpolation of unit quaternions (B, 4) at fraction s."""
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    omega = torch.acos(dot.abs().clamp(max=1.0))
    sin = torch.sin(omega)
    small = sin < 1e-6
    w0 = torch.where(small, torch.full_like(sin, 1 - s), torch.sin((1 - s) * omega) / sin.clamp_min(1e-6))
    w1 = torch.where(small, torch.full_like(sin, s), torch.sin(s * omega) / sin.clamp_min(1e-6))
    return torch.nn.functional.normalize(w0 * q0 + w1 * q1, dim=-1)


def smplx_loop(model, pose, betas, end, num_steps: int = 10):
    """The per-step loop a user would write with smplx (the meshes of blend="exact", linear alpha):
    ``end`` (3,) is the template's root orientation, axis-angle. Returns the T + 1 meshes as a list."""
    batch = len(pose)
    q0, q1 = quaternion(pose[:, 0]), quaternion(end.expand(batch, 3))
    meshes = []
    for t in range(num_steps + 1):
        s = t / num_steps
        out = model(betas=(1 - s) * betas, global_orient=axis_angle(slerp(q0, q1, s)),
                    body_pose=((1 - s) * pose[:, 1:]).reshape(batch, -1))
        meshes.append(out.vertices)
    return meshes


def random_inputs(batch: int, roots: str, device: torch.device):
    """pose (B, 24, 3) ~ N(0, 0.5), its roots replaced near 180 deg for ``roots="near-pi"``;
    betas (B, 10) ~ N(0, 1)."""
    pose = torch.randn(batch, 24, 3) * 0.5
    if roots == "near-pi":
        axis = torch.nn.functional.normalize(torch.randn(batch, 3), dim=-1)
        pose[:, 0] = axis * (math.pi - 0.3 * torch.rand(batch, 1))
    return pose.to(device), torch.randn(batch, 10).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "0")
    omp = os.environ.get("OMP_WAIT_POLICY", "unset (libgomp: threads spin a while between regions)")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; body: synthetic "
          f"(SMPL layout, 6890 vertices); T = 10; THP_MEM_ALLOC_ENABLE={thp} (PyTorch's huge "
          f"pages for CPU buffers >= 2 MB: fewer page faults on fresh outputs, for both sides); "
          f"OMP_WAIT_POLICY={omp}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'device':<7}{'batch':>6}{'blend':>7}{'backend':>8}{'roots':>9}{'kinediff ms':>13}"
          f"{'smplx loop ms':>15}{'ratio':>8}{'maxdiff':>10}{'load':>6}")
    rows = []
    for device in devices():
        body = BodyModel.synthetic(0).to(device)
        ref = smplx.SMPL(model_path=str(synthetic_model_path(0))).to(device)
        for batch in args.batches:
            inputs = {roots: random_inputs(batch, roots, device) for roots in ("small", "near-pi")}
            for blend, backend, roots in CASES:
                pose, betas = inputs[roots]
                label = f"{device.type:<7}{batch:>6}{blend:>7}{backend:>8}{roots:>9}"
                if backend == "numba" and not skinning._use_numba("auto", body.weights, (pose,)):
                    print(f"{label}  (numba not installed or not for this device: pip install "
                          f"'kinediff[fast]')")
                    continue
                try:
                    schedule = FKSchedule(body, blend=blend, backend=backend)
                except ValueError as err:  # a kinediff without this combination
                    print(f"{label}  (refused: {err})")
                    continue
                end = matrix_to_axis_angle(schedule.template_orientation)  # the user's constant
                load = os.getloadavg()[0]
                with torch.no_grad():
                    diff = None  # the paper blend's meshes are not SMPL meshes
                    if blend == "exact":  # the peer computes the same meshes
                        peer = torch.stack(smplx_loop(ref, pose, betas, end, schedule.num_steps), 1)
                        diff = float((schedule.trajectory(pose, betas) - peer).abs().max())
                        del peer
                    t_ours, t_ref = median_seconds_pair(
                        lambda: schedule.trajectory(pose, betas),
                        lambda: smplx_loop(ref, pose, betas, end, schedule.num_steps), device,
                        args.repeats)
                print(f"{label}{1e3 * t_ours:>13.1f}{1e3 * t_ref:>15.1f}{t_ref / t_ours:>8.2f}"
                      f"{'-' if diff is None else f'{diff:.1e}':>10}{load:>6.1f}")
                rows.append({"device": device.type, "batch": batch, "blend": blend,
                             "backend": backend, "roots": roots, "thp": thp,
                             "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
                             "load": load, "kinediff_ms": 1e3 * t_ours, "peer_ms": 1e3 * t_ref,
                             "ratio": t_ref / t_ours, "maxdiff_m": diff})
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
        k = lbs_numba.influences(w)
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

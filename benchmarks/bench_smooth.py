"""Video smoothing (kinediff.video): cost per frame, and jitter removed against lag added.

Cost: median time of one :class:`SMPLSmoother` step (pose, betas, translation) for 1 and 4 people,
and of :func:`smooth_smpl` on a 10 s clip at 30 fps, float32, on each device.
Quality: a synthetic 2-person motion (joints swinging 0.2-0.8 rad at 0.3-1 Hz, the root's angle
swinging around pi) at 30 fps with 0.03 rad of rotation jitter per axis, filtered with a few
(min_cutoff, beta): how much the jerk (third time difference of the rotation matrices) drops, and
the mean and worst angle to the clean motion (a causal filter trades one for the other).

    python benchmarks/bench_smooth.py [--repeats 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import platform

import torch
from _timing import devices, median_seconds, write_json

from kinediff.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from kinediff.video import SMPLSmoother, smooth_rotations, smooth_smpl


def motion(times: torch.Tensor, people: int = 2) -> torch.Tensor:
    """(T, P, 24, 3) axis-angle: sinusoids about fixed axes; the root swings through angle pi."""
    g = torch.Generator().manual_seed(1)
    axes = torch.nn.functional.normalize(torch.randn(people, 24, 3, generator=g, dtype=torch.float64), dim=-1)
    amp = 0.2 + 0.6 * torch.rand(people, 24, 1, generator=g, dtype=torch.float64)
    freq = 0.3 + 0.7 * torch.rand(people, 24, 1, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(people, 24, 1, generator=g, dtype=torch.float64)
    t = times[:, None, None, None]
    angle = amp * torch.sin(2 * math.pi * freq * t + phase)
    angle[:, :, 0] = math.pi + 0.8 * torch.sin(2 * math.pi * 0.4 * t[:, :, 0])
    return angle * axes


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return matrix_to_axis_angle(axis_angle_to_matrix(a).transpose(-1, -2) @ axis_angle_to_matrix(b)).norm(dim=-1)


def jerk(aa: torch.Tensor) -> float:
    r = axis_angle_to_matrix(aa)
    return float(((r[3:] - 3 * r[2:-1] + 3 * r[1:-2] - r[:-3]) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    rows = []
    print(f"{'device':<7}{'people':>7}{'step ms':>9}{'10 s clip (300 frames) s':>26}")
    for device in devices():
        for people in (1, 4):
            pose = (torch.randn(300, people, 24, 3) * 0.5).to(device)
            betas = torch.randn(300, people, 10).to(device)
            transl = torch.randn(300, people, 3).to(device)
            smoother = SMPLSmoother(min_cutoff=1.0, beta=1.0)
            frame = iter(range(10**9))

            def step():
                i = next(frame)
                smoother.step(i / 30, pose[i % 300], betas[i % 300], transl[i % 300])

            t_step = median_seconds(step, device, args.repeats, warmup=3)
            t_clip = median_seconds(lambda: smooth_smpl(pose, betas, transl, fps=30, beta=1.0), device, 1)
            print(f"{device.type:<7}{people:>7}{1e3 * t_step:>9.2f}{t_clip:>26.2f}")
            rows.append({"bench": "smooth_cost", "device": device.type, "people": people,
                         "step_ms": 1e3 * t_step, "clip_300_s": t_clip})

    times = torch.arange(121, dtype=torch.float64) / 30
    clean = motion(times)
    n = 0.03 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    noisy = matrix_to_axis_angle(axis_angle_to_matrix(clean) @ axis_angle_to_matrix(n))
    print(f"\n{'min_cutoff':>10}{'beta':>6}{'jerk / noisy':>14}{'mean err rad':>14}{'max err rad':>13}")
    err = angle_between(noisy, clean)
    print(f"{'(input)':>16}{1.0:>14.3f}{float(err.mean()):>14.4f}{float(err.max()):>13.4f}")
    for min_cutoff, beta in ((1.0, 0.0), (1.0, 1.0), (2.0, 1.0), (3.0, 3.0)):
        out = smooth_rotations(noisy, fps=30, min_cutoff=min_cutoff, beta=beta)
        err = angle_between(out, clean)
        ratio = jerk(out) / jerk(noisy)
        print(f"{min_cutoff:>10.1f}{beta:>6.1f}{ratio:>14.3f}{float(err.mean()):>14.4f}{float(err.max()):>13.4f}")
        rows.append({"bench": "smooth_quality", "min_cutoff": min_cutoff, "beta": beta, "jerk_ratio": ratio,
                     "mean_err_rad": float(err.mean()), "max_err_rad": float(err.max())})
    write_json(rows, args.json)


if __name__ == "__main__":
    main()

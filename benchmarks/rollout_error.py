"""Where a trained posture decoder's error comes from: one step against the whole rollout.

    python benchmarks/rollout_error.py CHECKPOINT [CHECKPOINT ...] [--n 128] [--yaw 180]

For each 3D-stage checkpoint of an M2P decoder on a posture schedule (FK or VL; e.g. the ones
``bench_convergence.py`` leaves under ``benchmarks/results/convergence_runs/``), on SynthBody test
crops (seed 12, synthetic data) conditioned on the GT 2D mesh plus 1 px of noise, prints the mean
coarse-vertex error (mm, not aligned) at each reverse step t = T .. 1:

- teacher-forced: the decoder's one step from the schedule's exact M_t, against M_{t-1};
- rollout: the decoder's own M_{t-1}, run from M_T as inference does, against the exact M_{t-1}.

A rollout error that grows step by step while the one-step error stays small is exposure bias.
"""

from __future__ import annotations

import argparse

import torch

from kinediff.apps.predict import load_model
from kinediff.body import BodyModel
from kinediff.data import SynthBody


@torch.no_grad()
def per_step_errors(model, batch: dict, noise_px: float = 1.0, seed: int = 0
                    ) -> tuple[list[float], list[float]]:
    """(teacher-forced, rollout) mean coarse errors in mm for t = T .. 1."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    gt = model.ground_truth(batch)
    mesh2d = gt["mesh2d"] + noise_px * torch.randn(gt["mesh2d"].shape, generator=gen)
    cond, _ = model.condition(batch["image"].float(), mesh2d=mesh2d)
    encoded = model.decoder.encode_condition(cond)
    schedule, heading = model.schedule, model.heading(cond)
    steps = schedule.num_steps
    t = torch.arange(steps + 1)[None].expand(len(cond), -1)
    full = schedule.meshes(batch["pose"].float(), batch["betas"].float(), t, heading)
    path = model.hierarchy.downsample(full.flatten(0, 1)).view(len(cond), steps + 1, -1, 3)
    forced, rolled = [], []
    mesh = path[:, steps]
    for step in range(steps, 0, -1):
        index = torch.full((len(cond),), step)
        one = path[:, step] + model.decoder(path[:, step], step=index, condition=encoded)
        forced.append(float((one - path[:, step - 1]).norm(dim=-1).mean()) * 1000)
        mesh = mesh + model.decoder(mesh, step=index, condition=encoded)
        rolled.append(float((mesh - path[:, step - 1]).norm(dim=-1).mean()) * 1000)
    return forced, rolled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--n", type=int, default=128, help="test crops")
    parser.add_argument("--yaw", type=float, default=180.0, help="SynthBody's yaw range, degrees")
    args = parser.parse_args()
    body = BodyModel.synthetic()
    for path in args.checkpoints:
        model = load_model(path, body)
        c = model.config
        if c.decoder != "m2p" or c.schedule == "noise":
            raise SystemExit(f"{path}: an M2P decoder on a posture schedule is needed, not "
                             f"decoder={c.decoder!r}, schedule={c.schedule!r}")
        test = SynthBody(args.n, seed=12, body=body, image_size=c.image_size,
                         mesh_factors=c.mesh_factors, yaw_range=args.yaw, cache=True,
                         progress=False)
        forced, rolled = per_step_errors(model, test.batch(range(args.n)))
        print(f"{path} (root_path={getattr(c.schedule, 'root_path', None)}, rollout_share="
              f"{c.rollout_share}; synthetic data), coarse error in mm at t = "
              f"{c.schedule.num_steps} .. 1:")
        print("  teacher-forced one step:", " ".join(f"{v:5.0f}" for v in forced))
        print("  rollout from M_T:       ", " ".join(f"{v:5.0f}" for v in rolled))


if __name__ == "__main__":
    main()

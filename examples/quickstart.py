"""PostureHMR learns on synthetic data on a CPU in about three minutes (``make demo``).

    python examples/quickstart.py [--out DIR] [--seed N]

Trains the tiny PostureHMR config on SynthBody next to the VL, noise-diffusion and one-step
regressor baselines, prints a table of MPVE / MPJPE / PA-MPJPE (mm, synthetic data) and writes
the transition strip, overlays, OBJ meshes and checkpoints under DIR (see kinediff.apps.quickstart).
"""

import argparse

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

from kinediff.apps.quickstart import run_quickstart

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="kinediff-quickstart", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training")
    args = parser.parse_args()
    run_quickstart(args.out, seed=args.seed)

"""Synthetic body demo (`make body-demo`): template, posed body, shape directions, FK trajectory.

    python examples/body_demo.py --out outputs/body-demo
"""

import argparse

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

from kinediff.apps.demos import body_demo

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/body-demo", help="folder for the PNG files")
    parser.add_argument("--seed", type=int, default=0, help="synthetic body seed")
    args = parser.parse_args()
    body_demo(args.out, seed=args.seed)

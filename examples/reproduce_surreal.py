"""Reproduce PostureHMR on surreal with the paper's recipe, PostureHMRConfig.paper() (see
kinediff.apps.reproduce; --kinediff-path trains kinediff's forward process).

    python examples/reproduce_surreal.py --data-root DIR --smpl-dir DIR --regressor FILE \
        --pretrained pose_hrnet_w48_256x192.pth [--protocol P]
    python examples/reproduce_surreal.py --eval-only --checkpoint RUN/target/3d_last.pt ...
    python examples/reproduce_surreal.py --synthetic          # same code path, generated data, CPU
    torchrun --nproc_per_node 4 examples/reproduce_surreal.py ...   # DDP, one process per GPU
"""

import sys

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

from kinediff.apps.reproduce import main

if __name__ == "__main__":
    main("surreal", sys.argv[1:])

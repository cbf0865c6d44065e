"""Reproduce PostureHMR on h36m with the paper's recipe, PostureHMRConfig.paper() (see
kinediff.apps.reproduce; --kinediff-path trains kinediff's forward process).

    python examples/reproduce_h36m.py --data-root DIR --smpl-dir DIR --regressor FILE \
        --pretrained pose_hrnet_w48_256x192.pth [--protocol P]
    python examples/reproduce_h36m.py --eval-only --checkpoint RUN/target/3d_last.pt ...
    python examples/reproduce_h36m.py --synthetic          # same code path, generated data, CPU
    torchrun --nproc_per_node 4 examples/reproduce_h36m.py ...   # DDP, one process per GPU
    python examples/reproduce_h36m.py ... --mix-root DIR   # + MPI-INF-3DHP, UP-3D, COCO in the 2D stage
"""

import sys

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

from kinediff.apps.reproduce import main

if __name__ == "__main__":
    main("h36m", sys.argv[1:])

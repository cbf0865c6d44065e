"""Reproduce PostureHMR on 3dpw with the paper's recipe, PostureHMRConfig.paper() (see
kinediff.apps.reproduce; --kinediff-path trains kinediff's forward process).

    python examples/reproduce_3dpw.py --data-root DIR --h36m-root DIR --smpl-dir DIR --regressor FILE \
        --pretrained pose_hrnet_w48_256x192.pth
    python examples/reproduce_3dpw.py --eval-only --checkpoint RUN/target/3d_last.pt ...
    python examples/reproduce_3dpw.py --synthetic          # same code path, generated data, CPU
    torchrun --nproc_per_node 4 examples/reproduce_3dpw.py ...   # DDP, one process per GPU
    python examples/reproduce_3dpw.py ... --mix-root DIR   # + MPI-INF-3DHP, UP-3D, COCO in the 2D stage
"""

import sys

from kinediff.core.threads import set_thread_policy

set_thread_policy()  # before torch loads: a short OpenMP spin, and only the idle cores

from kinediff.apps.reproduce import main

if __name__ == "__main__":
    main("3dpw", sys.argv[1:])

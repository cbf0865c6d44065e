"""Forward + backward of TrimapIoULoss on the coarse body mesh (431 vertices, 858 faces).

CPU (and CUDA when available): median time and peak memory, each case in a fresh process so one
case's memory does not hide another's. Targets (issue 5):
- B = 32 at 256 x 256: peak memory under 1.5 GB;
- B = 2 at 256 x 256 against the naive all-faces reference: >= 5x less peak memory, not slower;
- B = 32 at 64 x 64: under 1 s for the whole batch.

    python benchmarks/bench_render.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch
from _timing import median_seconds, peak_rss_growth_mb, write_json

from kinediff.body import BodyModel
from kinediff.losses import TrimapIoULoss
from kinediff.mesh import MeshHierarchy
from kinediff.render import soft_silhouette, soft_silhouette_naive

CASES = [(32, 256, "culled"), (2, 256, "culled"), (2, 256, "naive"), (32, 64, "culled")]


def _case(batch: int, size: int, method: str, repeats: int) -> dict:
    torch.manual_seed(0)
    body = BodyModel.synthetic()
    hierarchy = MeshHierarchy.from_body(body)
    coarse = hierarchy.downsample(body.v_template[None])[0]
    faces = hierarchy.faces(-1)
    scale = 0.47 * size
    base = torch.stack([coarse[:, 0] * scale + size / 2, -coarse[:, 1] * scale + size / 2], -1)
    gt = base[None].repeat(batch, 1, 1)
    pred = (gt + torch.randn(batch, 431, 2) * size / 64).requires_grad_()
    sigma = size / 256.0
    gt_mask = soft_silhouette(gt, faces, size, 0.0)
    loss_fn = TrimapIoULoss(width=max(2, size // 32))
    render = soft_silhouette if method == "culled" else soft_silhouette_naive

    def run():
        pred.grad = None
        loss_fn(render(pred, faces, size, sigma), gt_mask).backward()

    peak = peak_rss_growth_mb(run, cold=True)  # first, so no pages are left from earlier calls
    seconds = median_seconds(run, torch.device("cpu"), repeats, warmup=0)
    return {"seconds": seconds, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    parser.add_argument("--case", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        b, s, m = args.case
        print(json.dumps(_case(int(b), int(s), m, args.repeats)))
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU; coarse synthetic body "
          f"(431 vertices, 858 faces); loss forward + backward")
    print(f"{'batch':>6}{'size':>6}{'method':>8}{'median s':>10}{'peak MB':>10}")
    results = {}
    for b, s, m in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", str(b), str(s), m,
                              "--repeats", str(args.repeats)], check=True, capture_output=True,
                             text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results[(b, s, m)] = r
        print(f"{b:>6}{s:>6}{m:>8}{r['seconds']:>10.2f}{r['peak_mb']:>10.1f}")
    write_json([{"batch": b, "size": s, "method": m, **r} for (b, s, m), r in results.items()],
               args.json)
    culled, naive = results[(2, 256, "culled")], results[(2, 256, "naive")]
    print(f"B = 2 at 256: naive / culled peak memory {naive['peak_mb'] / max(culled['peak_mb'], 1e-3):.1f}x,"
          f" time {naive['seconds'] / culled['seconds']:.2f}x")


if __name__ == "__main__":
    main()

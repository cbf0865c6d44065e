"""Forward + backward of TrimapIoULoss on the coarse body mesh (431 vertices, 858 faces).

CPU (and CUDA when available): median time and peak memory, each case in a fresh process so one
case's memory does not hide another's. Targets (issue 5):
- B = 32 at 256 x 256: peak memory under 1.5 GB;
- B = 2 at 256 x 256 against the naive all-faces reference: >= 5x less peak memory, not slower;
- B = 32 at 64 x 64: under 1 s for the whole batch.

Peer (issue 22), when pytorch3d imports: the same loss at B = 32, 64 and 256 px, through
``soft_silhouette(..., backend="pytorch3d")``, i.e. pytorch3d's rasterizer and its backward pass
with the faces per pixel (K) that make it exact, against kinediff's torch backend; printed as
pytorch3d / torch ratios of time and peak memory. pytorch3d's CPU backward pass takes minutes
here, so its cold first run (the memory measurement) is timed too and the median is over it and
``--peer-repeats`` more runs (its first-call overhead is well under 1 % of a run).

    python benchmarks/bench_render.py [--peer auto|only|off]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from _timing import median_seconds, peak_rss_growth_mb, write_json

from kinediff.body import BodyModel
from kinediff.losses import TrimapIoULoss
from kinediff.mesh import MeshHierarchy
from kinediff.render import (
    pytorch3d_available,
    pytorch3d_faces_per_pixel,
    soft_silhouette,
    soft_silhouette_naive,
)

CASES = [(32, 256, "culled"), (2, 256, "culled"), (2, 256, "naive"), (32, 64, "culled")]
#: pytorch3d against the torch backend ("culled") at these (batch, size)
PEER_CASES = [(32, 64), (32, 256)]


def _sigma(size: int) -> float:
    return size / 256.0


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
    sigma = _sigma(size)
    gt_mask = soft_silhouette(gt, faces, size, 0.0)
    loss_fn = TrimapIoULoss(width=max(2, size // 32))
    render = {"culled": soft_silhouette, "naive": soft_silhouette_naive,
              "pytorch3d": lambda *a: soft_silhouette(*a, backend="pytorch3d")}[method]

    def run():
        pred.grad = None
        loss_fn(render(pred, faces, size, sigma), gt_mask).backward()

    times = []

    def timed_run():
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)

    peak = peak_rss_growth_mb(timed_run, cold=True)  # first, so no pages are left from earlier calls
    k = ""
    if method == "pytorch3d":  # minutes a run: the cold run counts as one of the timed runs
        for _ in range(repeats):
            timed_run()
        seconds = statistics.median(times)
        k = int(pytorch3d_faces_per_pixel(pred, faces, size, sigma).max()) + 1
    else:
        seconds = median_seconds(run, torch.device("cpu"), repeats, warmup=0)
    return {"seconds": seconds, "peak_mb": peak, "faces_per_pixel": k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=2,
                        help="pytorch3d runs after its timed cold run (default 2: a median of 3)")
    parser.add_argument("--peer", choices=("auto", "only", "off"), default="auto",
                        help="pytorch3d as a peer: when it imports (auto), only it and its "
                             "baselines (only), never (off)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    parser.add_argument("--case", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        b, s, m = args.case
        print(json.dumps(_case(int(b), int(s), m, args.repeats)))
        return
    peer = args.peer != "off" and pytorch3d_available()
    if args.peer == "only" and not peer:
        parser.error("--peer only needs pytorch3d")
    cases = [c for c in CASES if args.peer != "only" or (c[0], c[1]) in PEER_CASES]
    if peer:
        cases += [(b, s, "pytorch3d") for b, s in PEER_CASES]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU; coarse synthetic body "
          f"(431 vertices, 858 faces); loss forward + backward; sigma = size / 256 px")
    print(f"{'batch':>6}{'size':>6}{'method':>10}{'median s':>10}{'peak MB':>10}{'K':>6}")
    results = {}
    for b, s, m in cases:
        repeats = args.peer_repeats if m == "pytorch3d" else args.repeats
        out = subprocess.run([sys.executable, __file__, "--case", str(b), str(s), m,
                              "--repeats", str(repeats)], check=True, capture_output=True,
                             text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results[(b, s, m)] = r
        print(f"{b:>6}{s:>6}{m:>10}{r['seconds']:>10.2f}{r['peak_mb']:>10.1f}"
              f"{r['faces_per_pixel']:>6}", flush=True)
    write_json([{"batch": b, "size": s, "sigma": _sigma(s), "method": m, **r}
                for (b, s, m), r in results.items()], args.json)
    if (2, 256, "naive") in results:
        culled, naive = results[(2, 256, "culled")], results[(2, 256, "naive")]
        print(f"B = 2 at 256: naive / culled peak memory "
              f"{naive['peak_mb'] / max(culled['peak_mb'], 1e-3):.1f}x, time "
              f"{naive['seconds'] / culled['seconds']:.2f}x")
    if peer:
        print("pytorch3d (exact K) / kinediff torch backend, loss forward + backward:")
        for b, s in PEER_CASES:
            ours, theirs = results[(b, s, "culled")], results[(b, s, "pytorch3d")]
            print(f"  B = {b} at {s} px (sigma {_sigma(s):g}, K = {theirs['faces_per_pixel']}): "
                  f"time {theirs['seconds'] / ours['seconds']:.1f}x "
                  f"({theirs['seconds']:.2f} s vs {ours['seconds']:.2f} s), peak memory "
                  f"{theirs['peak_mb'] / max(ours['peak_mb'], 1e-3):.1f}x "
                  f"({theirs['peak_mb']:.0f} MB vs {ours['peak_mb']:.0f} MB)")


if __name__ == "__main__":
    main()

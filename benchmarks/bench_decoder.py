"""Latency of the M2P reverse process (paper config) next to one HRNet-W48 forward at 256 x 256.

One reverse step and the whole 10-step reverse process, B = 1 and B = 32, on CPU (and CUDA when
available), in one process, inference mode, float32. "extra peak MB" is the memory the 10-step
reverse process adds at its peak: CUDA's peak allocation, or on CPU the growth of the peak resident
size over a warmed-up run in a fresh process (pages the allocator kept from the warm-up are reused
and not counted, so this is the steady-state extra, not the whole working set). Target (issue 4): the
10-step reverse process at most 0.5x the HRNet-W48 forward time at both batch sizes.

    python benchmarks/bench_decoder.py [--batches 1 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import timm
import torch
from _timing import median_seconds, peak_rss_growth_mb, write_json

from kinediff.body import BodyModel
from kinediff.decoders import M2PDecoder
from kinediff.forward import FKSchedule
from kinediff.mesh import MeshHierarchy


def peak_memory_mb(device: torch.device, batch: int) -> float:
    """Peak memory of the 10-step reverse process alone: CUDA's peak allocation, or on CPU the
    peak-RSS growth over a warmed-up run, in a fresh process (``--memory-only``)."""
    if device.type == "cuda":
        decoder, hierarchy, schedule = _setup(device)
        mesh, mesh2d = _inputs(hierarchy, schedule, batch, device)
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            decoder.reverse(mesh, mesh2d, schedule)
        return torch.cuda.max_memory_allocated() / 2**20
    out = subprocess.run([sys.executable, __file__, "--memory-only", str(batch)], check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _setup(device: torch.device):
    body = BodyModel.synthetic().to(device)
    hierarchy = MeshHierarchy.from_body(body).to(device)
    decoder = M2PDecoder(hierarchy.adjacency(-1)).to(device).eval()
    return decoder, hierarchy, FKSchedule(body)


def _inputs(hierarchy, schedule, batch: int, device: torch.device):
    mesh = hierarchy.downsample(schedule.initial(batch))
    return mesh, torch.randn(batch, 431, 2, device=device)


def _memory_only(batch: int) -> None:
    decoder, hierarchy, schedule = _setup(torch.device("cpu"))
    mesh, mesh2d = _inputs(hierarchy, schedule, batch, torch.device("cpu"))
    with torch.inference_mode():
        print(peak_rss_growth_mb(lambda: decoder.reverse(mesh, mesh2d, schedule)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    parser.add_argument("--memory-only", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only is not None:
        _memory_only(args.memory_only)
        return
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; M2P paper config "
          f"(dim 128, ffn 512, 4 layers, 431 vertices, T = 10); HRNet-W48 (timm, random weights)")
    print(f"{'device':<7}{'batch':>6}{'1 step ms':>11}{'10 steps ms':>13}{'HRNet ms':>10}"
          f"{'ratio':>8}{'extra peak MB':>15}")
    rows = []
    for device in devices:
        decoder, hierarchy, schedule = _setup(device)
        hrnet = timm.create_model("hrnet_w48", pretrained=False).to(device).eval()
        for batch in args.batches:
            mesh, mesh2d = _inputs(hierarchy, schedule, batch, device)
            step = torch.full((batch,), 10, device=device)
            images = torch.randn(batch, 3, 256, 256, device=device)
            with torch.inference_mode():
                one = median_seconds(lambda: decoder(mesh, mesh2d, step), device, args.repeats)
                full = median_seconds(lambda: decoder.reverse(mesh, mesh2d, schedule), device,
                                   args.repeats)
                backbone = median_seconds(lambda: hrnet(images), device, max(2, args.repeats // 2))
            peak = peak_memory_mb(device, batch)
            print(f"{device.type:<7}{batch:>6}{1e3 * one:>11.1f}{1e3 * full:>13.1f}"
                  f"{1e3 * backbone:>10.1f}{full / backbone:>8.2f}{peak:>15.1f}")
            rows.append({"device": device.type, "batch": batch, "step_ms": 1e3 * one,
                         "reverse_ms": 1e3 * full, "hrnet_ms": 1e3 * backbone,
                         "ratio": full / backbone, "extra_peak_mb": peak})
    write_json(rows, args.json)


if __name__ == "__main__":
    main()

"""ONNX export of PostureHMR: export time, file size, and onnxruntime next to PyTorch's ``predict``.

Per config (``tiny``: PostureHMRConfig.tiny(), 64-px crops, 108 coarse vertices; ``paper``:
PostureHMRConfig.paper(), HRNet-W48, 256-px crops, 431 coarse vertices; both T = 10, the synthetic body,
random weights with the decoder's zero-initialised last layer and the head's uniform C perturbed so
the meshes move): the time of ``export_onnx`` (dynamic batch), the file's size, onnxruntime's
session start, the median latency of onnxruntime (CPU provider) and of ``model.predict`` (PyTorch,
CPU, float32) per batch size, and the largest vertex difference between them.

    python benchmarks/bench_export.py [--configs tiny paper] [--batches 1 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from _timing import median_seconds, write_json

from kinediff import PostureHMR, PostureHMRConfig
from kinediff.body import BodyModel
from kinediff.export import export_onnx, onnx_session, run_onnx

CONFIGS = {"tiny": PostureHMRConfig.tiny, "paper": PostureHMRConfig.paper}


def build(name: str) -> PostureHMR:
    """A model with random weights that still behaves like one: the decoder's zero-initialised last
    layer and the head's uniform C perturbed (else the mesh never moves), and the backbone's
    batch-norm statistics taken from one batch of random crops (with the initial ones a random
    HRNet-W48's heatmaps reach 1e7, the soft-argmax becomes a hard argmax, and its near-ties fall
    differently in onnxruntime and PyTorch)."""
    torch.manual_seed(0)
    model = PostureHMR(CONFIGS[name](), BodyModel.synthetic())
    size = model.config.image_size
    with torch.no_grad():
        model.decoder.head[-1].weight.normal_(0.0, 0.05)
        model.head.coefficients.add_(0.5 * torch.randn_like(model.head.coefficients))
        for module in model.head.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # a plain average over the batches seen: here one
                module.reset_running_stats()
        model.head.train()(torch.rand(4, 3, size, size))
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny"], choices=sorted(CONFIGS))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = parser.parse_args()
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print(f"{'config':<7}{'export s':>9}{'MB':>7}{'session s':>10}{'batch':>6}{'ort ms':>9}"
          f"{'torch ms':>10}{'max |dv| m':>12}")
    rows = []
    for name in args.configs:
        model = build(name)
        size = model.config.image_size
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.onnx"
            t0 = time.perf_counter()
            export_onnx(model, path)
            export_s = time.perf_counter() - t0
            mb = path.stat().st_size / 1e6
            t0 = time.perf_counter()
            session = onnx_session(path)
            session_s = time.perf_counter() - t0
            for batch in args.batches:
                images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
                diff = float((torch.from_numpy(run_onnx(session, images)["vertices"])
                              - model.predict(images)["vertices"]).abs().max())
                ort_s = median_seconds(lambda: run_onnx(session, images), cpu, args.repeats)
                torch_s = median_seconds(lambda: model.predict(images), cpu, args.repeats)
                print(f"{name:<7}{export_s:>9.1f}{mb:>7.1f}{session_s:>10.2f}{batch:>6}"
                      f"{1e3 * ort_s:>9.1f}{1e3 * torch_s:>10.1f}{diff:>12.1e}")
                rows.append({"config": name, "export_s": export_s, "file_mb": mb,
                             "session_s": session_s, "batch": batch, "onnxruntime_ms": 1e3 * ort_s,
                             "torch_ms": 1e3 * torch_s, "max_vertex_diff_m": diff})
    write_json(rows, args.json)


if __name__ == "__main__":
    main()

"""benchmarks/run_all.py's report: markdown and plots from result rows (no benchmark is run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_all():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_from_rows(tmp_path):
    run_all = _run_all()
    results = {"name": "test-machine", "info": {"cpus": 2}, "benchmarks": {
        "body": [{"device": "cpu", "batch": b, "kinediff_ms": 1.0 * b, "peer_ms": 1.5 * b,
                  "ratio": 1.5} for b in (1, 8, 64)],
        "mesh": [{"op": "skinning (B=64)", "vertices": n, "ms": n / 1000} for n in (108, 431, 6890)],
    }}
    text = run_all.markdown(results)
    assert "## body" in text and "| device | batch | kinediff_ms" in text and "test-machine" in text
    pngs = run_all.plots(results, tmp_path / "test-machine")
    assert [p.name for p in pngs] == ["test-machine_batch.png", "test-machine_mesh.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)

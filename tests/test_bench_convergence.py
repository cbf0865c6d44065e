"""benchmarks/bench_convergence.py end to end at seconds-long sizes, and its target checks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("bench_convergence",
                                                  ROOT / "benchmarks" / "bench_convergence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_the_table_curves_and_json(tmp_path, cache_dir, synthetic_path,
                                                     monkeypatch, capsys):
    bench = _module()
    monkeypatch.setattr(sys, "argv", ["bench_convergence.py", "--quick", "--models", "fk,noise",
                                      "--out", str(tmp_path)])
    bench.main()
    out = capsys.readouterr().out
    assert "synthetic data" in out and "full image pipeline" in out and "T-pose template" in out
    report = json.loads((tmp_path / "convergence_quick.json").read_text())
    assert set(report["results"]) == {"fk", "noise"}
    run = report["results"]["fk"][0]
    assert run["curve_steps"] == [2, 4] and len(run["curve_mpve"]) == 2
    assert {"final", "final_image", "loss_3d", "loss_2d"} <= set(run)
    assert len(report["targets"]) == 3
    assert (tmp_path / "convergence_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_targets_report_pass_and_miss():
    bench = _module()
    ref = {"mpve": 300.0}

    def runs(*mpves, image=None):
        return [{"final": {"mpve": m}, "final_image": {"mpve": image or m}} for m in mpves]

    good = bench.targets({"fk": runs(80.0, 84.0, image=120.0), "noise": runs(81.0, 83.0)}, ref)
    assert all(line.endswith("PASS") for line in good)
    bad = bench.targets({"fk": runs(95.0, 96.0, image=140.0), "noise": runs(80.0, 81.0)}, ref)
    assert [line.endswith("MISS") for line in bad] == [True, True, True]
    two_stage = bench.targets({"fk_predicted": runs(130.0)}, ref)
    assert len(two_stage) == 1 and two_stage[0].endswith("PASS")

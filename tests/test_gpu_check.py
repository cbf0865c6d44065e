"""benchmarks/gpu_check.py: the CPU dry run end to end (its JSON and table), the JUnit counting
and the target verdicts. The GPU run itself needs a CUDA machine."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _module():
    """The script as a module (registered: its dataclasses look their module up)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory, cache_dir, synthetic_path):
    """The dry run in a fresh process, as a user runs it: (its JSON, its stdout)."""
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    env = {**os.environ, "KINEDIFF_CACHE_DIR": cache_dir, "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-W", "ignore", str(SCRIPT), "--device", "cpu", "--quick",
                           "--skip-tests", "--json", str(out)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_dry_run_writes_the_report(dry_run):
    report, _ = dry_run
    assert report["schema"] == 1 and report["mode"] == "cpu-dry-run" and report["complete"]
    assert report["device"]["type"] == "cpu" and report["device"]["torch"] == torch.__version__
    assert report["config"]["name"] == "tiny" and report["config"]["coarse_vertices"] == 108
    assert "synthetic" in report["config"]["body"]
    assert report["tests"]["status"] == "not run" and report["tests"]["total"] == 0
    rows = report["results"]
    keys = {(r["key"], r["variant"]) for r in rows}
    for key in ("inference_large", "inference_small", "train_2d", "train_3d"):
        for precision in ("fp32", "bf16"):
            assert {(key, f"{precision} eager"), (key, f"{precision} compiled")} <= keys
    assert {("fk_ratio", "fp32 eager"), ("fk_ratio", "fp32 compiled"), ("render_ms", "fp32 eager"),
            ("bf16_deviation", "eager")} <= keys
    for r in rows:
        assert r["status"] in ("ok", "skipped", "error")
        if r["variant"].endswith("eager"):  # every eager item runs in the dry run
            assert r["status"] == "ok" and r["value"] > 0, r
            assert r["peak_mb"] is None  # no device memory on the CPU
        else:  # the dry run compiles nothing by default, and says so
            assert r["status"] == "skipped" and "compile off" in r["note"]
    train = next(r for r in rows if r["key"] == "train_2d" and r["variant"] == "fp32 eager")
    assert train["batch"] == 2 and train["unit"] == "samples/s"
    assert train["value"] == pytest.approx(2 / (train["ms"] / 1000))


def test_dry_run_judges_nothing_and_states_its_assumptions(dry_run):
    report, stdout = dry_run
    targets = report["targets"]
    assert [t["key"] for t in targets] == ["inference_large", "inference_small", "train_2d",
                                           "fk_ratio", "render_ms"]
    assert all(t["pass"] is None and "CPU dry run" in t["note"] for t in targets)
    epoch = report["epoch_estimate"]
    assert epoch["epochs_per_stage"] == 40 and epoch["epoch_2d_samples"] > epoch["epoch_3d_samples"] > 0
    assert "ASSUMPTION" in epoch["rtx3090_basis"] and "ASSUMPTION" in epoch["set_sizes_note"]
    assert epoch["rtx3090x4_epoch_2d_h"] == pytest.approx(
        epoch["epoch_2d_samples"] / (4 * epoch["rtx3090_samples_per_s_per_card"]) / 3600)
    assert epoch["epoch_2d_h"] > 0 and epoch["recipe_h"] > 0
    # the table comes last, under a header naming the device and torch
    lines = stdout.rstrip().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("item "))
    assert "CPU DRY RUN" in lines[head - 1] and torch.__version__ in lines[head - 1]
    assert lines[-1].startswith("CUDA tests (pytest -m cuda): not run")
    assert any("ESTIMATED" in line and "ASSUMED" in line for line in lines[head:])
    assert sum(line.startswith("target: ") for line in lines[head:]) == 5


def test_junit_counts(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" '
        'failures="1" skipped="1" tests="5"><testcase classname="tests.test_cuda" name="test_a"/>'
        '<testcase classname="tests.test_cuda" name="test_b"><failure message="x">x</failure>'
        '</testcase><testcase classname="tests.test_cuda" name="test_c"><error message="y">y</error>'
        '</testcase><testcase classname="tests.test_cuda" name="test_d"><skipped message="z"/>'
        '</testcase><testcase classname="tests.test_fit" name="test_cuda"/></testsuite></testsuites>')
    counts = _module().junit_counts(xml)
    assert (counts["total"], counts["passed"], counts["failed"], counts["errors"], counts["skipped"]) == \
        (5, 2, 1, 1, 1)
    assert counts["failures"] == ["tests.test_cuda::test_b", "tests.test_cuda::test_c"]


def test_targets_pass_and_fail_on_cuda_figures():
    gc = _module()
    s = gc.settings_from(gc.parse_args(["--device", "cpu", "--quick"]))
    s.device = torch.device("cuda")  # judged as a GPU run (nothing runs on a device here)
    rows = [gc.Row("inference_large", "inference", "bf16 compiled", 128, value=1200.0),
            gc.Row("inference_large", "inference", "bf16 eager", 128, value=5000.0),  # not the judged variant
            gc.Row("inference_small", "inference", "bf16 compiled", 32, value=250.0),
            gc.Row("train_2d", "training", "fp32 eager", 32, value=300.0),
            gc.Row("train_2d", "training", "bf16 compiled", 32, value=450.0),
            gc.Row("fk_ratio", "fk", "fp32 eager", 256, status="error"),
            gc.Row("render_ms", "render", "fp32 eager", 32, value=31.0)]
    verdicts = {t["key"]: (t["pass"], t["value"]) for t in gc.judge(rows, s)}
    assert verdicts == {"inference_large": (True, 1200.0), "inference_small": (False, 250.0),
                        "train_2d": (True, 450.0), "fk_ratio": (None, None), "render_ms": (False, 31.0)}

"""The quickstart (reduced: same code path, smaller numbers), `kinediff predict` and the Table 3
script's smoke budget, so CI catches a broken demo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from kinediff.apps.quickstart import QuickstartSettings, run_quickstart
from kinediff.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory, cache_dir, synthetic_path):
    out = tmp_path_factory.mktemp("quickstart")
    lines: list[str] = []
    results = run_quickstart(out, QuickstartSettings.reduced(), progress=False, log=lines.append)
    return out, results, "\n".join(lines)


def test_quickstart_writes_everything_it_promises(quickstart):
    out, results, text = quickstart
    assert [r["method"] for r in results["rows"]][:5] == [
        "PostureHMR (FK)", "PostureHMR (FK)", "VL baseline", "noise-diffusion baseline",
        "one-step GraphormerRegressor"]
    assert {r["condition"] for r in results["rows"][:2]} == {"image -> predicted 2D mesh",
                                                             "GT 2D mesh + 1 px noise"}
    assert all(r["mpve"] > 0 and r["samples"] == 16 for r in results["rows"][:5])
    assert "synthetic data" in text and "MPVE" in text
    for key in ("transition", "overlay", "curves"):
        assert Path(results["files"][key]).read_bytes()[:8] == PNG
    objs = sorted(Path(results["files"]["meshes"]).glob("*.obj"))
    assert len(objs) == 4
    assert sum(line.startswith("v ") for line in objs[0].read_text().splitlines()) == 6890
    assert json.loads((out / "results.json").read_text())["data"] == "SynthBody (synthetic)"
    for path in results["files"].values():
        assert path in text  # every output path is printed


def test_predict_cli_writes_obj_and_overlay(quickstart, tmp_path, capsys):
    import matplotlib.pyplot as plt

    out, results, _ = quickstart
    image = torch.rand(90, 120, 3).numpy()
    plt.imsave(tmp_path / "photo.png", image)
    ckpt = results["files"]["checkpoint"]
    code = main(["predict", str(tmp_path / "photo.png"), "--checkpoint", ckpt,
                 "--bbox", "30", "10", "40", "70", "--out", str(tmp_path / "pred")])
    assert code == 0
    assert sum(line.startswith("v ") for line in
               (tmp_path / "pred" / "photo.obj").read_text().splitlines()) == 6890
    assert (tmp_path / "pred" / "photo_overlay.png").read_bytes()[:8] == PNG
    capsys.readouterr()
    assert main(["predict", "--no-detect", str(tmp_path / "nope.png"), "--checkpoint", ckpt]) == 2
    assert "no image at" in capsys.readouterr().err
    assert main(["predict", "--no-detect", str(tmp_path / "photo.png"), "--checkpoint",
                 str(Path(out) / "fk" / "2d_last.pt")]) == 2
    assert "2D-stage checkpoint" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "photo.png"), "--checkpoint", ckpt,
                 "--bbox", "500", "10", "40", "70"]) == 2
    assert "outside" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["predict", "--no-detect", str(tmp_path / "broken.png"), "--checkpoint", ckpt]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_ablation_script_smoke_budget(tmp_path, cache_dir, synthetic_path, capsys):
    path = Path(__file__).resolve().parents[1] / "examples" / "ablation_table3.py"
    spec = importlib.util.spec_from_file_location("ablation_table3", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--budget", "smoke", "--seeds", "0", "--out", str(tmp_path),
                           "--no-progress"])
    assert len(results) == 7 and all(len(runs) == 1 for runs in results.values())
    assert (tmp_path / "table3_curves.png").stat().st_size > 0
    text = (tmp_path / "table3.md").read_text()
    assert "synthetic data" in text and "83.2 / 48.6" in text
    only = module.main(["--budget", "smoke", "--seeds", "0", "--out", str(tmp_path / "two"),
                        "--no-progress", "--rows", "Baseline + FK + 2D mesh",
                        "one-step regressor (2D mesh)"])
    assert list(only) == ["Baseline + FK + 2D mesh", "one-step regressor (2D mesh)"]
    assert only["one-step regressor (2D mesh)"][0]["2d_stage_from"] == "Baseline + FK + 2D mesh"
    with pytest.raises(SystemExit):
        module.main(["--budget", "smoke", "--rows", "Baseline + magic"])
